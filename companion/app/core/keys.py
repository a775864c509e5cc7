"""Handset secrets: CSPRNG generation, AES-256-GCM encryption at rest under a rotating master key, and the
purpose keys of the shared contract (interlock.crypto, interlock.token) computed with the standard library's
HMAC, for speed."""

import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from interlock import crypto, token
from interlock.crypto import LABEL_SYNC, LABEL_TECH, LABEL_UNLOCK  # noqa: F401  (used through this module)

SECRET_BYTES = 32


def mac(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 by the standard library: the `mac` the interlock functions take."""
    return hmac.digest(key, msg, "sha256")


def new_secret() -> bytes:
    """A fresh 256-bit handset secret from the operating system's CSPRNG."""
    return os.urandom(SECRET_BYTES)


def derive(secret: bytes, label: bytes, length: int = 32) -> bytes:
    """HKDF (RFC 5869), SHA-256, empty salt, label as info: one purpose key from the handset secret."""
    return bytes(crypto.derive(secret, label, length, mac))


def _aad(device_id: int, kid: str) -> bytes:
    # binds the ciphertext to its handset and key id: a row copied onto another handset does not decrypt
    return b"interlock secret v1|" + struct.pack(">I", device_id) + b"|" + kid.encode()


def encrypt_secret(secret: bytes, device_id: int, kid: str, master: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext) of secret under the master key kid."""
    nonce = os.urandom(12)
    return nonce, AESGCM(master).encrypt(nonce, secret, _aad(device_id, kid))


def decrypt_secret(nonce: bytes, ciphertext: bytes, device_id: int, kid: str, master: bytes) -> bytes:
    """The handset secret; raises cryptography's InvalidTag on a wrong key or a tampered row."""
    return AESGCM(master).decrypt(nonce, ciphertext, _aad(device_id, kid))


def tech_token_key(tech_key: bytes, device_id: int, tech_id: int, expires: int) -> bytes:
    """The technician token key (interlock.token.token_key)."""
    return bytes(token.token_key(tech_key, device_id, tech_id, expires, mac))
