"""Technician tokens: the key the companion hands a technician for one handset, and the login answer.

token_key = HMAC-SHA256(tech_key, "TT" | device_id u32 | tech_id u32 | expires u32), big-endian, where tech_key
is the handset's technician key (crypto.LABEL_TECH) and expires is in device seconds. The technician answers a
login challenge nonce with HMAC-SHA256(token_key, "TA" | nonce) and never holds the handset's keys; the handset
recomputes token_key from its own key, so a token for another handset gives a wrong answer.
"""

import struct

from . import crypto

KEY_BYTES = 32  # a token key is one SHA-256 output


def key_message(device_id, tech_id, expires):
    """The bytes a token key's HMAC covers."""
    return b"TT" + struct.pack(">III", device_id, tech_id, expires)


def answer_message(nonce):
    """The bytes a login answer's HMAC covers."""
    return b"TA" + nonce


def token_key(tech_key, device_id, tech_id, expires, mac=crypto.hmac_sha256):
    """The per-token key the companion hands to a technician (mac as in crypto.derive)."""
    return mac(tech_key, key_message(device_id, tech_id, expires))


def answer(token_key_bytes, nonce, mac=crypto.hmac_sha256):
    """The MAC a technician sends back for a challenge nonce (mac as in crypto.derive)."""
    return mac(token_key_bytes, answer_message(nonce))
