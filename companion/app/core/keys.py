"""Handset secrets: CSPRNG generation, AES-256-GCM encryption at rest under a rotating master key, and the
purpose-key derivation (HKDF-SHA256, the same bytes as the firmware's `fsm.crypto.derive`)."""

import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Same labels as firmware/fsm/crypto.py; a test compares both derivations byte for byte.
LABEL_SYNC = b"interlock sync v1"
LABEL_UNLOCK = b"interlock unlock v1"
LABEL_TECH = b"interlock technician v1"

SECRET_BYTES = 32


def new_secret() -> bytes:
    """A fresh 256-bit handset secret from the operating system's CSPRNG."""
    return os.urandom(SECRET_BYTES)


def derive(secret: bytes, label: bytes, length: int = 32) -> bytes:
    """HKDF (RFC 5869), SHA-256, empty salt, label as info: one purpose key from the handset secret."""
    prk = hmac.new(b"\x00" * 32, secret, hashlib.sha256).digest()
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + label + bytes((counter,)), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


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
    """The technician token key: HMAC-SHA256(tech key, "TT" | device u32 | tech u32 | expires u32)."""
    msg = b"TT" + struct.pack(">III", device_id, tech_id, expires)
    return hmac.new(tech_key, msg, hashlib.sha256).digest()
