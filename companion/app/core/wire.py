"""The companion's side of the sync wire format. interlock.wire defines it (headers, kinds, result codes, the
bytes each MAC covers); this module signs and checks those bytes with the standard library's HMAC, for speed."""

import hashlib
import hmac
import json
from typing import Any

from interlock.wire import (  # noqa: F401  (the contract's names, used through this module)
    H_DEVICE,
    H_DIGEST,
    H_NONCE,
    H_SIG,
    H_TIME,
    KIND_CLEAR,
    KIND_POLICY,
    KIND_SERVICE,
    KIND_TIME,
    KINDS,
    METHOD,
    PATH,
    RC_APPLIED,
    RC_EXPIRED,
    RC_REFUSED,
    RC_STALE,
    VERSION,
    canon_arg,
    command_string,
    request_string,
    response_string,
)


def digest(body: bytes) -> str:
    """Lowercase hex SHA-256 of body."""
    return hashlib.sha256(body).hexdigest()


def request_mac(key: bytes, method: str, path: str, device_id: int, ts: int, nonce: str, body_digest: str) -> str:
    """Hex HMAC a handset puts on a request."""
    return hmac.new(key, request_string(method, path, device_id, ts, nonce, body_digest), hashlib.sha256).hexdigest()


def response_mac(key: bytes, device_id: int, nonce: str, status: int, body: bytes) -> str:
    """Hex HMAC the companion puts on a response to the request that carried nonce."""
    return hmac.new(key, response_string(device_id, nonce, status, digest(body)), hashlib.sha256).hexdigest()


def command_mac(key: bytes, device_id: int, cid: int, seq: int, kind: str, arg: Any, expires: int) -> str:
    """Hex MAC of one command."""
    return hmac.new(key, command_string(device_id, cid, seq, kind, arg, expires), hashlib.sha256).hexdigest()


def encode(value: Any) -> bytes:
    """interlock.wire.encode's bytes (sorted keys, no spaces) by the json module, for speed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def equal(a: str, b: str) -> bool:
    """Constant-time comparison of two hex strings."""
    return hmac.compare_digest(a.encode(), b.lower().encode())
