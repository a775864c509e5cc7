"""HMAC, HKDF, HOTP and unlock codes on both interpreters: the output must be byte-identical."""

try:
    import host_sim  # noqa: F401
except ImportError:
    pass

from interlock import codes, crypto

print(crypto.hexlify(crypto.hmac_sha256(b"\x0b" * 20, b"Hi There")))
print(crypto.hexlify(crypto.hmac_sha256(b"Jefe", b"what do ya want for nothing?")))
for t in (59, 1111111109, 1111111111, 1234567890, 2000000000, 20000000000):
    print(t, crypto.hotp(b"12345678901234567890123456789012", t // 30, 8))
secret = bytes(range(32))
for label in (crypto.LABEL_SYNC, crypto.LABEL_UNLOCK, crypto.LABEL_TECH):
    print(label.decode(), crypto.hexlify(crypto.derive(secret, label)))
for counter in range(1, 6):
    print(counter, codes.code_for(crypto.derive(secret, crypto.LABEL_UNLOCK), 1001, 1, counter, 500000 + counter))
