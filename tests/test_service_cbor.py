"""The service port's CBOR codec against the cbor2 package."""

import math

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import cbor

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**64), max_value=2**64 - 1)
           | st.binary(max_size=300) | st.text(max_size=60))
keys = st.integers(min_value=-(2**64), max_value=2**64 - 1) | st.text(max_size=20) | st.binary(max_size=8)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(keys, inner, max_size=6),
                      max_leaves=30)


@given(values)
@settings(max_examples=200)
def test_encoding_matches_cbor2(value):
    """Every value encodes to exactly the bytes cbor2's canonical encoding produces."""
    assert cbor.encode(value) == cbor2.dumps(value, canonical=True)


@given(values)
@settings(max_examples=200)
def test_decodes_what_cbor2_encodes(value):
    """cbor2's encoding of any value decodes to the same value, and cbor2 reads ours back."""
    assert cbor.decode(cbor2.dumps(value)) == value
    assert cbor2.loads(cbor.encode(value)) == value


@given(st.floats(allow_nan=False) | st.floats(width=32, allow_nan=False) | st.floats(width=16, allow_nan=False))
def test_decodes_floats_of_every_width(x):
    """Half, single and double floats decode to the value cbor2 encoded (shortest exact form)."""
    assert cbor.decode(cbor2.dumps(x, canonical=True)) == x


def test_decodes_indefinite_lengths_and_undefined():
    """Indefinite arrays, maps and strings and the undefined value decode."""
    assert cbor.decode(bytes.fromhex("9f0102ff")) == [1, 2]
    assert cbor.decode(bytes.fromhex("bf616101ff")) == {"a": 1}
    assert cbor.decode(bytes.fromhex("5f42010243030405ff")) == b"\x01\x02\x03\x04\x05"
    assert cbor.decode(b"\xf7") is cbor.UNDEFINED
    assert math.isnan(cbor.decode(bytes.fromhex("f97e00")))


@pytest.mark.parametrize("data", [b"", b"\x18", b"\x5a\xff\xff\xff\xff", b"\xc1\x00", b"\x1c", b"\xff", b"\x01\x02",
                                  b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", b"\xa1\x80\x01", b"\x62\xc3\x28",
                                  b"\x81" * 40 + b"\x00", b"\xf8\x20", b"\x5f\x61\x61\xff",
                                  b"\x7f\x61\xe2\x62\x82\xac\xff", b"\x62\xc0\xaf", b"\x63\xed\xa0\x80"])
def test_malformed_input_raises_cbor_error(data):
    """Truncated, reserved, tagged, over-deep, trailing or ill-typed input is a CborError, nothing else."""
    with pytest.raises(cbor.CborError):
        cbor.decode(data)


@given(st.binary(max_size=64))
@settings(max_examples=300)
def test_random_bytes_decode_or_raise_cbor_error(data):
    """Random bytes either decode to what cbor2 reads or raise CborError; nothing else escapes."""
    try:
        value = cbor.decode(data)
    except cbor.CborError:
        return
    if isinstance(value, float) and math.isnan(value):
        return
    try:
        theirs = cbor2.loads(data)
    except Exception:  # cbor2 is stricter in places (e.g. some simple values); ours must still not crash
        return
    if value is cbor.UNDEFINED:
        assert theirs is cbor2.undefined
    elif not _has_nan(value):
        assert value == theirs


def _has_nan(v):
    if isinstance(v, float):
        return math.isnan(v)
    if isinstance(v, list):
        return any(_has_nan(x) for x in v)
    if isinstance(v, dict):
        return any(_has_nan(x) for x in v.values()) or any(_has_nan(x) for x in v)
    return False


def test_unencodable_values_raise_cbor_error():
    """Floats, sets and integers beyond 64 bits are refused with CborError."""
    for v in (1.5, {1, 2}, 2**64, -(2**64) - 1, object()):
        with pytest.raises(cbor.CborError):
            cbor.encode(v)


def test_item_budget():
    """One decode builds at most 256 items (string chunks included): one more is a CborError."""
    assert cbor.decode(b"\x98\xff" + b"\x80" * 255) == [[]] * 255
    for data in (b"\x99\x01\x00" + b"\x80" * 256, b"\x5f" + b"\x40" * 256 + b"\xff", b"\xb8\x80" + b"\x00\x00" * 128):
        with pytest.raises(cbor.CborError):
            cbor.decode(data)


@given(st.binary(max_size=12) | st.text(max_size=4).map(lambda t: t.encode("utf-8", "surrogatepass")))
@settings(max_examples=500)
def test_utf8_check_agrees_with_cpython(data):
    """The codec's own UTF-8 check (MicroPython's decoder is lax) accepts exactly what CPython's strict one does."""
    try:
        data.decode("utf-8")
        strict = True
    except UnicodeDecodeError:
        strict = False
    assert cbor.utf8_valid(data) == strict
