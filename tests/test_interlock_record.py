"""The shared record format: encoding, CRC, hash chain and verify()."""

import binascii
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlock import record

I32 = st.integers(-(2**31), 2**31 - 1)
U32 = st.integers(0, 2**32 - 1)


def _chain(n, first=1, prev=record.GENESIS):
    """n encoded records from seq first on, and the hash after them."""
    out = bytearray()
    h = prev
    for seq in range(first, first + n):
        enc = record.encode(h, seq, 1000 + seq, 1 + seq % 25, seq, -seq, seq * 3, seq % 2)
        out += enc
        h = record.chain(h, enc)
    return bytes(out), h


@given(U32, U32, st.integers(0, 255), I32, I32, I32, U32)
def test_encode_decode_round_trips(seq, wall, rtype, a, b, c, photo):
    """Every value in range decodes to exactly what was encoded, in SIZE bytes."""
    enc = record.encode(record.GENESIS, seq, wall, rtype, a, b, c, photo)
    assert len(enc) == record.SIZE == 40
    assert record.decode(enc) == (seq, wall, rtype, a, b, c, photo)
    assert record.fields(enc)[7] == 0


def test_layout_is_the_documented_one():
    """Fields sit at the documented offsets, little-endian, and the CRC is zlib's CRC-32 of bytes 0..35."""
    enc = record.encode(b"\xab" * 32, 0x01020304, 0x0A0B0C0D, 9, -2, 3, 4, 5)
    assert enc[0:4] == bytes([4, 3, 2, 1]) and enc[4:8] == bytes([0x0D, 0x0C, 0x0B, 0x0A])
    assert enc[8:12] == b"\xfe\xff\xff\xff" and enc[24] == 9 and enc[25] == record.VERSION
    assert enc[28:36] == b"\xab" * 8
    assert int.from_bytes(enc[36:40], "little") == binascii.crc32(enc[:36])


def test_out_of_range_values_saturate_and_are_flagged():
    """A value that does not fit is clamped and its flag bit set, never silently wrapped."""
    enc = record.encode(record.GENESIS, 1, 2, 3, 2**40, -(2**40), 5, -1)
    f = record.fields(enc)
    assert (f[3], f[4], f[5], f[6]) == (2**31 - 1, -(2**31), 5, 0)
    assert f[7] == 1 | 2 | 8


def test_chain_is_sha256_of_previous_hash_and_record():
    """chain() is SHA-256 over the previous hash then the 40 record bytes; GENESIS is a label's hash."""
    enc = record.encode(record.GENESIS, 1, 2, 3)
    assert record.chain(record.GENESIS, enc) == hashlib.sha256(record.GENESIS + enc).digest()
    assert record.GENESIS == hashlib.sha256(b"interlock event log v1").digest()


def test_verify_accepts_a_good_chain():
    """verify() of an untouched chain is ok with the last seq and hash."""
    data, h = _chain(12)
    assert record.verify(data, record.GENESIS) == (True, 12, h, -1)
    assert record.verify(data, record.GENESIS, 1) == (True, 12, h, -1)


def test_verify_continues_from_an_acknowledged_hash():
    """A batch uploaded after an acknowledged record verifies against that record's hash."""
    data, h = _chain(20)
    first10 = record.verify(data[:10 * 40], record.GENESIS)
    assert record.verify(data[10 * 40:], first10[2], 11) == (True, 20, h, -1)
    assert record.verify(data[10 * 40:], record.GENESIS)[3] == 0  # wrong anchor: the first record fails


@pytest.mark.parametrize("pos", range(0, 40, 3))
def test_verify_finds_a_flipped_byte(pos):
    """Any changed byte makes verify() stop at that record with the last good seq and hash."""
    data, _h = _chain(8)
    bad = bytearray(data)
    bad[4 * 40 + pos] ^= 0x20
    ok, last, lh, idx = record.verify(bytes(bad), record.GENESIS)
    assert (ok, last, idx) == (False, 4, 4)
    assert lh == record.verify(data[:160], record.GENESIS)[2]


def test_verify_reports_gaps_truncation_and_forgery():
    """A missing record, a cut-off tail and a CRC-fixed rewrite each give their own reason."""
    data, _h = _chain(6)
    gap = data[:80] + data[120:]
    assert record.verify_reason(gap, record.GENESIS)[3:] == (2, record.BAD_LINK)
    assert record.verify_reason(data[:-3], record.GENESIS)[3:] == (5, record.BAD_LENGTH)
    forged = bytearray(data)
    forged[2 * 40 + 8] ^= 1
    forged[2 * 40 + 36:2 * 40 + 40] = (binascii.crc32(forged[80:116]) & 0xFFFFFFFF).to_bytes(4, "little")
    assert record.verify_reason(bytes(forged), record.GENESIS)[3:] == (3, record.BAD_LINK)
    wrong_first = record.verify_reason(data, record.GENESIS, 5)
    assert wrong_first[3:] == (0, record.BAD_SEQ)


def test_decode_refuses_damage_with_a_clear_error():
    """decode() raises ValueError naming the problem instead of returning wrong values."""
    enc = bytearray(record.encode(record.GENESIS, 1, 2, 3))
    with pytest.raises(ValueError, match="truncated"):
        record.decode(enc[:39])
    enc[0] ^= 1
    with pytest.raises(ValueError, match="CRC"):
        record.decode(enc)


def test_header_round_trips_and_rejects_other_data():
    """A segment header gives back its first seq and previous hash; anything else is refused."""
    h = record.header(77, b"\x11" * 32)
    assert len(h) == record.HEADER_SIZE and record.parse_header(h) == (77, b"\x11" * 32)
    with pytest.raises(ValueError):
        record.parse_header(b"XXXX" + h[4:])
