"""The firmware's own HMAC-SHA256, key derivation and HOTP truncation against the published vectors."""

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from interlock import codes, crypto

RFC6238_SEED = b"12345678901234567890123456789012"


def test_rfc4231_case_1():
    """HMAC-SHA256 of "Hi There" under 0x0b x 20 matches RFC 4231 case 1."""
    got = crypto.hexlify(crypto.hmac_sha256(b"\x0b" * 20, b"Hi There"))
    assert got == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"


def test_rfc4231_case_2():
    """HMAC-SHA256 with key "Jefe" matches RFC 4231 case 2."""
    got = crypto.hexlify(crypto.hmac_sha256(b"Jefe", b"what do ya want for nothing?"))
    assert got == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_agrees_with_the_standard_library(key, msg):
    """For any key (including ones longer than a block) and message, HMAC equals Python's hmac module."""
    assert crypto.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_rfc6238_sha256_vectors():
    """TOTP with SHA-256, 8 digits, 30 s steps gives the RFC 6238 Appendix B values."""
    vectors = {59: 46119246, 1111111109: 68084774, 1111111111: 67062674, 1234567890: 91819424,
               2000000000: 90698825, 20000000000: 77737706}
    for t, want in vectors.items():
        assert crypto.hotp(RFC6238_SEED, t // 30, 8) == want


def test_rfc4226_truncation_with_sha1():
    """HOTP truncation over HMAC-SHA1 gives the RFC 4226 Appendix D values (the hash passed in)."""
    want = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489]
    got = [crypto.hotp(b"12345678901234567890", c, 6, hashlib.sha1) for c in range(10)]
    assert got == want


def test_derive_is_rfc5869_hkdf():
    """derive() is HKDF-SHA256 with an empty salt: checked against RFC 5869 test case 3."""
    ikm = b"\x0b" * 22
    okm = crypto.derive(ikm, b"", 42)
    assert okm.hex() == ("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                         "9d201395faa4b61a96c8")


def test_purpose_keys_differ():
    """Sync, unlock and technician keys derived from one secret are distinct."""
    secret = bytes(range(32))
    keys = {crypto.derive(secret, label) for label in (crypto.LABEL_SYNC, crypto.LABEL_UNLOCK, crypto.LABEL_TECH)}
    assert len(keys) == 3


def test_equal_compares_contents():
    """equal() is true only for identical byte strings."""
    assert crypto.equal(b"abc", b"abc")
    assert not crypto.equal(b"abc", b"abd")
    assert not crypto.equal(b"abc", b"abcd")


def test_code_binds_device_action_counter_and_hour():
    """Changing any bound field changes the unlock code."""
    key = bytes(32)
    base = codes.code_for(key, 1001, codes.ACTION_CLEAR, 1, 500000)
    assert base != codes.code_for(key, 1002, codes.ACTION_CLEAR, 1, 500000)
    assert base != codes.code_for(key, 1001, codes.ACTION_SERVICE, 1, 500000)
    assert base != codes.code_for(key, 1001, codes.ACTION_CLEAR, 2, 500000)
    assert base != codes.code_for(key, 1001, codes.ACTION_CLEAR, 1, 500001)
    assert 0 <= base < 10**8


def _code_reference(unlock_key, device_id, action, counter, issue_hour, digits=8):
    """The unlock code as HANDSET's contract defines it, with the standard library (as the companion does)."""
    import struct

    d = hmac.new(unlock_key, b"UC" + struct.pack(">IBII", device_id, action, counter, issue_hour),
                 hashlib.sha256).digest()
    off = d[-1] & 0x0F
    return (int.from_bytes(d[off:off + 4], "big") & 0x7FFFFFFF) % 10**digits


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**32 - 1), st.sampled_from([1, 2]),
       st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_unlock_codes_match_the_contract_for_any_device_id(key, device_id, action, counter, hour):
    """A code is the truncated HMAC of "UC" and the big-endian unsigned fields, for any 32-bit device id."""
    assert codes.code_for(key, device_id, action, counter, hour) == _code_reference(key, device_id, action,
                                                                                     counter, hour)
