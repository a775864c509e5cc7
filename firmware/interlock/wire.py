"""The sync wire format, defined once for both sides: request signing, response and command MACs, JSON.

A request is `POST /api/v1/sync` with a JSON body and five headers: device id, timestamp (device seconds),
nonce (hex), the body's SHA-256 (hex) and an HMAC-SHA256 under the handset's sync key over

    "Q1" LF method LF path LF device_id LF timestamp LF nonce LF body_sha256_hex

The companion answers with a JSON body and `x-signature` = HMAC-SHA256(sync key,
"R1" LF device_id LF request_nonce LF status LF body_sha256_hex): binding the request nonce means a recorded
response cannot be replayed to a later request. Each command in a response also carries its own MAC over
"C1|device|id|seq|kind|arg|expires" so that a command moved to another device or altered is refused.
Bodies are built with `encode`, which sorts keys, so both interpreters produce the same bytes.
"""

import hashlib
import json

from . import crypto
from .const import const

VERSION = const(1)
PATH = "/api/v1/sync"
METHOD = "POST"

H_DEVICE = "x-device-id"
H_TIME = "x-timestamp"
H_NONCE = "x-nonce"
H_DIGEST = "x-content-sha256"
H_SIG = "x-signature"
CONTENT_TYPE = "application/json"

# Command kinds as they travel; the client maps them onto fsm.machine.CMD_*.
KIND_CLEAR = "clear"  # arg = lockout id
KIND_SERVICE = "service_extend"  # arg = days
KIND_TIME = "time_set"  # arg = device seconds
KIND_POLICY = "policy"  # arg = {name: int, ..., "version": n}
KINDS = (KIND_CLEAR, KIND_SERVICE, KIND_TIME, KIND_POLICY)

# Command results the handset reports back in "acks": [[seq, rc], ...]: the state machine's outcome
# (fsm.authority APPLIED, STALE, REFUSED: 0..2) plus one, and the expiry the client decides itself.
RC_APPLIED = const(1)
RC_STALE = const(2)
RC_REFUSED = const(3)
RC_EXPIRED = const(4)

# Why a response or command was refused: records.SYNC c= with a = fsm.authority.SYNC_REFUSED.
WHY_SIGNATURE = const(1)  # response signature wrong (forged, altered, or replayed to another request)
WHY_MALFORMED = const(2)  # signed but not a response we understand
WHY_FORGED = const(3)  # a command's MAC does not verify
WHY_DEVICE = const(4)  # a command for another device
WHY_EXPIRED = const(5)  # a command past its expiry
WHY_LATE = const(6)  # an answer that arrived after the client's timeout (held back on the way)


def digest(body):
    """Lowercase hex SHA-256 of body (bytes)."""
    return crypto.hexlify(hashlib.sha256(body).digest())


def request_string(method, path, device_id, ts, nonce, body_digest):
    """The bytes a request signature covers."""
    return ("Q1\n" + method + "\n" + path + "\n" + str(device_id) + "\n" + str(ts) + "\n" + nonce + "\n"
            + body_digest).encode()


def sign_request(key, device_id, ts, nonce, body, method=METHOD, path=PATH):
    """The authentication headers (a dict) for a request with this body."""
    d = digest(body)
    mac = crypto.hmac_sha256(key, request_string(method, path, device_id, ts, nonce, d))
    return {
        H_DEVICE: str(device_id),
        H_TIME: str(ts),
        H_NONCE: nonce,
        H_DIGEST: d,
        H_SIG: crypto.hexlify(mac),
        "content-type": CONTENT_TYPE,
    }


def response_string(device_id, nonce, status, body_digest):
    """The bytes a response signature covers."""
    return ("R1\n" + str(device_id) + "\n" + nonce + "\n" + str(status) + "\n" + body_digest).encode()


def sign_response(key, device_id, nonce, status, body):
    """Hex signature of a response to the request that carried nonce."""
    return crypto.hexlify(crypto.hmac_sha256(key, response_string(device_id, nonce, status, digest(body))))


def verify_response(key, device_id, nonce, status, headers, body):
    """True when headers carry the companion's signature of this response to our request."""
    sig = headers.get(H_SIG)
    if not sig:
        return False
    want = sign_response(key, device_id, nonce, status, body)
    return crypto.equal(want.encode(), str(sig).lower().encode())


def canon_arg(arg):
    """A command argument as the string its MAC covers: an int, or sorted name=value pairs."""
    if isinstance(arg, dict):
        parts = []
        for k in sorted(arg):
            parts.append(k + "=" + str(int(arg[k])))
        return ",".join(parts)
    return str(int(arg))


def command_string(device_id, cid, seq, kind, arg, expires):
    """The bytes a command MAC covers."""
    return ("C1|" + str(device_id) + "|" + str(cid) + "|" + str(seq) + "|" + kind + "|" + canon_arg(arg) + "|"
            + str(expires)).encode()


def command_mac(key, device_id, cid, seq, kind, arg, expires):
    """Hex MAC of one command."""
    return crypto.hexlify(crypto.hmac_sha256(key, command_string(device_id, cid, seq, kind, arg, expires)))


def check_command(key, device_id, cmd):
    """True when cmd (a dict from a response) is well formed, for this device, and its MAC verifies."""
    try:
        if int(cmd["device_id"]) != device_id or cmd["kind"] not in KINDS:
            return False
        want = command_mac(key, device_id, int(cmd["id"]), int(cmd["seq"]), cmd["kind"], cmd["arg"],
                           int(cmd["expires"]))
        return crypto.equal(want.encode(), str(cmd["mac"]).lower().encode())
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def encode(value):
    """JSON text of value (None, bool, int, str, list, tuple, dict) with sorted keys and no spaces."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join([encode(v) for v in value]) + "]"
    if isinstance(value, dict):
        return "{" + ",".join([json.dumps(k) + ":" + encode(value[k]) for k in sorted(value)]) + "}"
    raise ValueError("cannot encode")


def decode(body):
    """The JSON value in body (bytes or str); ValueError when it is not JSON."""
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode()
    return json.loads(body)
