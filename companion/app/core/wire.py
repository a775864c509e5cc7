"""The companion's side of the sync wire format (firmware/sync/wire.py defines it; the tests check that both
sides sign and verify each other's messages byte for byte). Uses the standard library's HMAC for speed."""

import hashlib
import hmac
import json
from typing import Any

PATH = "/api/v1/sync"
H_DEVICE = "x-device-id"
H_TIME = "x-timestamp"
H_NONCE = "x-nonce"
H_DIGEST = "x-content-sha256"
H_SIG = "x-signature"

KIND_CLEAR = "clear"
KIND_SERVICE = "service_extend"
KIND_TIME = "time_set"
KIND_POLICY = "policy"
KINDS = (KIND_CLEAR, KIND_SERVICE, KIND_TIME, KIND_POLICY)

RC_APPLIED = 1
RC_STALE = 2
RC_REFUSED = 3
RC_EXPIRED = 4


def digest(body: bytes) -> str:
    """Lowercase hex SHA-256 of body."""
    return hashlib.sha256(body).hexdigest()


def request_mac(key: bytes, method: str, path: str, device_id: int, ts: int, nonce: str, body_digest: str) -> str:
    """Hex HMAC a handset puts on a request."""
    msg = "\n".join(("Q1", method, path, str(device_id), str(ts), nonce, body_digest)).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def response_mac(key: bytes, device_id: int, nonce: str, status: int, body: bytes) -> str:
    """Hex HMAC the companion puts on a response to the request that carried nonce."""
    msg = "\n".join(("R1", str(device_id), nonce, str(status), digest(body))).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def canon_arg(arg: Any) -> str:
    """A command argument as its MAC covers it."""
    if isinstance(arg, dict):
        return ",".join(k + "=" + str(int(arg[k])) for k in sorted(arg))
    return str(int(arg))


def command_mac(key: bytes, device_id: int, cid: int, seq: int, kind: str, arg: Any, expires: int) -> str:
    """Hex MAC of one command."""
    msg = "|".join(("C1", str(device_id), str(cid), str(seq), kind, canon_arg(arg), str(expires))).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def encode(value: Any) -> bytes:
    """Compact JSON with sorted keys (the same bytes as the firmware's encoder for the same value)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def equal(a: str, b: str) -> bool:
    """Constant-time comparison of two hex strings."""
    return hmac.compare_digest(a.encode(), b.lower().encode())
