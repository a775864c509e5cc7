"""SMP messages of the handset's interlock group (100), typed for `smp` and `smpclient`.

Each request class names its success response and its v1/v2 errors, as smpclient expects. The group, the
command ids and the error codes are interlock.smpgroup's, which the handset serves (firmware/service/ilgroup.py).
"""

from __future__ import annotations

from enum import IntEnum, unique
from typing import Any, ClassVar

from smp import error as smperr
from smp import header as smphdr
from smp import message as smpmsg
from smp.header import GroupIdField

from interlock import smpgroup as g

GROUP_ID = g.GROUP


@unique
class Cmd(IntEnum):
    """Command ids of the interlock group."""

    AUTH = g.AUTH
    STATUS = g.STATUS
    CALIBRATE = g.CALIBRATE
    MODULE = g.MODULE
    SERVICE = g.SERVICE
    CLEAR = g.CLEAR
    POLICY = g.POLICY
    CLOCK = g.CLOCK
    PROVISION = g.PROVISION
    LOGOUT = g.LOGOUT


@unique
class InterlockErr(IntEnum):
    """The interlock group's own error codes (SMP v2 `err.rc`)."""

    OK = g.ERR_OK
    UNKNOWN = g.ERR_UNKNOWN
    REFUSED = g.ERR_REFUSED
    EXPIRED = g.ERR_EXPIRED
    BAD_TOKEN = g.ERR_BAD_TOKEN
    NO_CHALLENGE = g.ERR_NO_CHALLENGE
    TOKEN_TOO_LONG = g.ERR_TOKEN_TOO_LONG
    UNPROVISIONED = g.ERR_UNPROVISIONED
    PROVISIONED = g.ERR_PROVISIONED


class InterlockErrorV1(smperr.ErrorV1):
    """SMP v1 error of the interlock group."""

    _GROUP_ID: ClassVar[GroupIdField] = GROUP_ID


class InterlockErrorV2(smperr.ErrorV2[InterlockErr]):
    """SMP v2 error of the interlock group."""

    _GROUP_ID: ClassVar[GroupIdField] = GROUP_ID


class _Group:
    _GROUP_ID: ClassVar[GroupIdField] = GROUP_ID
    _ErrorV1 = InterlockErrorV1
    _ErrorV2 = InterlockErrorV2


# ----- responses


class ChallengeResponse(smpmsg.ReadResponse):
    """A fresh 16-byte nonce to answer with the token key."""

    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Cmd.AUTH
    nonce: bytes


class LoginResponse(smpmsg.WriteResponse):
    """The session is open for this technician until `expires` (device seconds)."""

    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Cmd.AUTH
    tech_id: int
    expires: int


class StatusResponse(smpmsg.ReadResponse):
    """The handset's reported state."""

    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Cmd.STATUS
    status: dict[str, Any]


class _Empty(smpmsg.WriteResponse):
    _GROUP_ID = GROUP_ID


class CalibrateResponse(_Empty):
    """Calibration applied."""

    _COMMAND_ID = Cmd.CALIBRATE


class ModuleResponse(_Empty):
    """Module recorded."""

    _COMMAND_ID = Cmd.MODULE


class ServiceResponse(smpmsg.WriteResponse):
    """Service visit recorded; the next one is due on device day `due`."""

    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Cmd.SERVICE
    due: int


class ClearResponse(_Empty):
    """Lockout cleared."""

    _COMMAND_ID = Cmd.CLEAR


class PolicyReadResponse(smpmsg.ReadResponse):
    """The policy in force."""

    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Cmd.POLICY
    policy: dict[str, int]


class PolicyWriteResponse(smpmsg.WriteResponse):
    """The companion's policy version in force and the technician changes made on top of it."""

    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Cmd.POLICY
    policy_version: int
    policy_local: int = 0


class ClockReadResponse(smpmsg.ReadResponse):
    """The handset's device time."""

    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Cmd.CLOCK
    wall: int


class ClockWriteResponse(smpmsg.WriteResponse):
    """The device time just set."""

    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Cmd.CLOCK
    wall: int


class ProvisionResponse(smpmsg.WriteResponse):
    """The handset now has its key and this device id."""

    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Cmd.PROVISION
    device_id: int


class LogoutResponse(_Empty):
    """The session is closed."""

    _COMMAND_ID = Cmd.LOGOUT


# ----- requests (smpclient SMPRequest: request + its response and errors)


class Challenge(_Group, smpmsg.ReadRequest):
    """Ask for a login challenge."""

    _COMMAND_ID = Cmd.AUTH
    _Response = ChallengeResponse


class Login(_Group, smpmsg.WriteRequest):
    """Answer the challenge: mac = HMAC-SHA256(token_key, b"TA" + nonce)."""

    _COMMAND_ID = Cmd.AUTH
    _Response = LoginResponse
    tech_id: int
    expires: int
    mac: bytes


class Status(_Group, smpmsg.ReadRequest):
    """Read the handset's reported state."""

    _COMMAND_ID = Cmd.STATUS
    _Response = StatusResponse


class Calibrate(_Group, smpmsg.WriteRequest):
    """Two-point calibration: counts at zero alcohol and at a reference gas of `brac` (thousandths g/dL)."""

    _COMMAND_ID = Cmd.CALIBRATE
    _Response = CalibrateResponse
    zero: int
    ref: int
    brac: int


class Module(_Group, smpmsg.WriteRequest):
    """Install or replace the sensor module: its serial and expiry (device day)."""

    _COMMAND_ID = Cmd.MODULE
    _Response = ModuleResponse
    serial: int
    expiry: int


class Service(_Group, smpmsg.WriteRequest):
    """Record a service visit; `due` (device day) of the next one, or the policy interval when omitted."""

    _COMMAND_ID = Cmd.SERVICE
    _Response = ServiceResponse
    due: int | None = None


class Clear(_Group, smpmsg.WriteRequest):
    """Clear the lockout whose id the status shows (0, or absent, for a state lock with no violation lockout)."""

    _COMMAND_ID = Cmd.CLEAR
    _Response = ClearResponse
    lockout_id: int | None = None


class PolicyRead(_Group, smpmsg.ReadRequest):
    """Read the policy in force."""

    _COMMAND_ID = Cmd.POLICY
    _Response = PolicyReadResponse


class PolicyWrite(_Group, smpmsg.WriteRequest):
    """Apply policy numbers (name -> int) on top of the companion's policy; all or nothing. A "version", if
    given, must be the companion version in force: a technician never takes a version."""

    _COMMAND_ID = Cmd.POLICY
    _Response = PolicyWriteResponse
    policy: dict[str, int]


class ClockRead(_Group, smpmsg.ReadRequest):
    """Read the device time."""

    _COMMAND_ID = Cmd.CLOCK
    _Response = ClockReadResponse


class ClockWrite(_Group, smpmsg.WriteRequest):
    """Set the device time (device seconds since 2024-01-01T00:00Z)."""

    _COMMAND_ID = Cmd.CLOCK
    _Response = ClockWriteResponse
    wall: int


class Provision(_Group, smpmsg.WriteRequest):
    """Give an unprovisioned handset its device id and 32-byte secret."""

    _COMMAND_ID = Cmd.PROVISION
    _Response = ProvisionResponse
    device_id: int
    secret: bytes


class Logout(_Group, smpmsg.WriteRequest):
    """End the session."""

    _COMMAND_ID = Cmd.LOGOUT
    _Response = LogoutResponse


def header_group(frame: bytes) -> int:
    """The group id in an SMP packet's header (for diagnostics)."""
    return smphdr.Header.loads(frame[: smphdr.Header.SIZE]).group_id
