"""HMAC-SHA256, HKDF-style key derivation and HOTP dynamic truncation, written for MicroPython.

MicroPython has `hashlib.sha256` but no `hmac` module, so HMAC (RFC 2104) is built here and checked against
RFC 4231 in the tests. The same code runs on CPython. The companion may pass the standard library's HMAC as
`mac` for speed: the labels and the message layouts stay the ones defined here.
"""

import hashlib

_BLOCK = 64

# Purpose labels for keys derived from the handset secret (TRUST.md "Keys"): HKDF's info.
LABEL_SYNC = b"interlock sync v1"
LABEL_UNLOCK = b"interlock unlock v1"
LABEL_TECH = b"interlock technician v1"


def _xor_pad(key, byte):
    out = bytearray(_BLOCK)
    for i in range(_BLOCK):
        out[i] = (key[i] if i < len(key) else 0) ^ byte
    return out


def hmac_digest(key, msg, hash_new=None):
    """HMAC of msg under key with the given hash constructor (sha256 by default)."""
    new = hash_new or hashlib.sha256
    if len(key) > _BLOCK:
        key = new(key).digest()
    inner = new(_xor_pad(key, 0x36))
    inner.update(msg)
    outer = new(_xor_pad(key, 0x5C))
    outer.update(inner.digest())
    return outer.digest()


def hmac_sha256(key, msg):
    """HMAC-SHA256 of msg under key."""
    return hmac_digest(key, msg)


def equal(a, b):
    """Compare two byte strings in time that does not depend on where they differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def derive(secret, label, length=32, mac=hmac_sha256):
    """HKDF (RFC 5869) with SHA-256, an empty salt and label as the info: one purpose key from the secret.

    mac(key, msg) is HMAC-SHA256 (this module's by default).
    """
    prk = mac(b"\x00" * 32, secret)
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = mac(prk, block + label + bytes((counter,)))
        out += block
        counter += 1
    return out[:length]


def truncate(digest, digits):
    """HOTP dynamic truncation (RFC 4226 section 5.3) of an HMAC digest to a decimal code."""
    offset = digest[len(digest) - 1] & 0x0F
    value = (
        ((digest[offset] & 0x7F) << 24)
        | (digest[offset + 1] << 16)
        | (digest[offset + 2] << 8)
        | digest[offset + 3]
    )
    return value % (10**digits)


def counter_bytes(counter):
    """The 8-byte big-endian counter that HOTP and TOTP hash."""
    out = bytearray(8)
    for i in range(8):
        out[7 - i] = (counter >> (8 * i)) & 0xFF
    return bytes(out)


def hotp(key, counter, digits=8, hash_new=None):
    """HOTP value of counter under key (RFC 4226), SHA-256 unless another hash is passed."""
    return truncate(hmac_digest(key, counter_bytes(counter), hash_new), digits)


def hexlify(data):
    """Lowercase hex of data (binascii.hexlify returns bytes on both interpreters; this returns str)."""
    digits = "0123456789abcdef"
    out = []
    for b in data:
        out.append(digits[b >> 4])
        out.append(digits[b & 15])
    return "".join(out)
