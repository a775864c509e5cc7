"""SMP interlock group (100): technician login, status, calibration, module, service record, lockout clear,
policy, clock, provisioning, logout.

Every change goes through the state machine's technician API, which checks it and logs it; the technician's
id travels with it. Refusals are SMP v2 errors of this group (v1 clients get the nearest common code).
"""

from micropython import const

from fsm import authority, records
from interlock.smpgroup import (  # noqa: F401  (the group's numbers, shared with the technician tool)
    AUTH,
    CALIBRATE,
    CLEAR,
    CLOCK,
    ERR_BAD_TOKEN,
    ERR_EXPIRED,
    ERR_NO_CHALLENGE,
    ERR_PROVISIONED,
    ERR_REFUSED,
    ERR_TOKEN_TOO_LONG,
    ERR_UNKNOWN,
    ERR_UNPROVISIONED,
    LOGOUT,
    MODULE,
    POLICY,
    PROVISION,
    SERVICE,
    STATUS,
)
from service import auth, smp

V1_MAP = {
    ERR_REFUSED: smp.EBADSTATE, ERR_EXPIRED: smp.EACCESSDENIED, ERR_BAD_TOKEN: smp.EACCESSDENIED,
    ERR_NO_CHALLENGE: smp.EACCESSDENIED, ERR_TOKEN_TOO_LONG: smp.EACCESSDENIED,
    ERR_UNPROVISIONED: smp.EACCESSDENIED, ERR_PROVISIONED: smp.EBADSTATE,
}

_LOGIN_RC = {
    auth.R_EXPIRED: ERR_EXPIRED, auth.R_BAD_MAC: ERR_BAD_TOKEN, auth.R_NO_CHALLENGE: ERR_NO_CHALLENGE,
    auth.R_TOO_LONG: ERR_TOKEN_TOO_LONG, auth.R_UNPROVISIONED: ERR_UNPROVISIONED,
}

# SERVICE record actions (a=) for technician changes made outside `technician()`; b = technician id
SVC_POLICY = records.SVC_POLICY
SVC_CLOCK = records.SVC_CLOCK
SVC_RESET = records.SVC_RESET

_READS = (AUTH, STATUS, POLICY, CLOCK)
_WRITES = (AUTH, CALIBRATE, MODULE, SERVICE, CLEAR, POLICY, CLOCK, PROVISION, LOGOUT)
_U32 = const(0xFFFFFFFF)
_I32 = const(0x7FFFFFFF)  # signed 32-bit fields: calibration areas on the module, technician ids in the log
_U16 = const(0xFFFF)  # days are stored as unsigned 16-bit fields
WALL_MAX = const(0x7FFFFFFF)  # the clock fits a log record's signed 32-bit field (until 2092)


def known(op, cmd):
    """True for the commands this group serves with that op."""
    return cmd in (_READS if op == smp.OP_READ else _WRITES)


def open_while_unprovisioned(svc, cmd):
    """Provisioning needs no session while the handset has no key (nobody could log in)."""
    return cmd == PROVISION and svc.handset.secret is None


def _int(req, key, lo=0, hi=_U32, default=None):
    """req[key] when it is an int in lo..hi (default when absent), else None."""
    v = req.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
        return None
    return v


def _applied(rc):
    return {} if rc == authority.APPLIED else smp.group_err(ERR_REFUSED)


def set_clock(svc, sess, now_ms, wall, reply):
    """Set the device clock for the session's technician (also used by the OS group's datetime write)."""
    svc.handset.set_time(now_ms, wall, records.SRC_TECH)
    svc.logged(sess, SVC_CLOCK, wall)
    return reply


def _login(svc, sess, now_ms, req):
    tech_id = _int(req, "tech_id", 1, _I32)  # logged in signed 32-bit record fields: a larger id would be clamped
    expires = _int(req, "expires")
    mac = req.get("mac")
    if tech_id is None or expires is None or not isinstance(mac, bytes):
        return smp.EINVAL
    if svc.login_held(now_ms, sess.peer):
        # failed logins before this one: the answer is not even checked until the wait is over
        sess.end()  # the challenge is used up, as by any answer
        svc.refused(now_ms, tech_id, auth.R_BACKOFF)
        return smp.EBUSY
    h = svc.handset
    keys = h.keys()
    tech_key = keys[2] if keys is not None else None
    reason = sess.login(now_ms, svc.token_wall(now_ms), tech_key, h.device_id, tech_id, expires, mac)
    if reason == 0 or reason == auth.R_BAD_MAC:
        svc.login_result(now_ms, reason == 0, sess.peer)  # only a checked MAC is a guess worth pacing
    if reason:
        svc.refused(now_ms, tech_id, reason)
        return smp.group_err(_LOGIN_RC.get(reason, ERR_UNKNOWN))
    svc.logged(sess, records.SVC_LOGIN, expires)
    return {"tech_id": tech_id, "expires": expires}


def handle(svc, sess, now_ms, op, cmd, req):
    """Serve one interlock group request (see known()) for the connection's session sess."""
    h = svc.handset
    tech = sess.tech_id
    if cmd == AUTH:
        if op == smp.OP_READ:
            return {"nonce": sess.challenge(now_ms)}
        return _login(svc, sess, now_ms, req)
    if cmd == STATUS:
        return {"status": h.status()}
    if cmd == CALIBRATE:
        zero, ref, brac = _int(req, "zero", 0, _I32), _int(req, "ref", 0, _I32), _int(req, "brac", 1, 1000)
        if zero is None or ref is None or brac is None or ref <= zero:
            return smp.EINVAL
        return _applied(h.technician(now_ms, tech, records.SVC_CALIBRATE, zero, ref, brac))
    if cmd == MODULE:
        serial, expiry = _int(req, "serial", 1), _int(req, "expiry", 1, _U16)
        if serial is None or expiry is None:
            return smp.EINVAL
        return _applied(h.technician(now_ms, tech, records.SVC_MODULE, serial, expiry))
    if cmd == SERVICE:
        due = _int(req, "due", 1, _U16, h.wall // 86400 + h.policy.service_days)
        if due is None:
            return smp.EINVAL
        rc = h.technician(now_ms, tech, records.SVC_RECORD, due)
        # the day the handset recorded (a day not after today is replaced by the policy interval)
        return {"due": h.service_due} if rc == authority.APPLIED else smp.group_err(ERR_REFUSED)
    if cmd == CLEAR:
        lockout = _int(req, "lockout_id", 0, _U32, 0)
        if lockout is None:
            return smp.EINVAL
        return _applied(h.technician(now_ms, tech, authority.TECH_CLEAR, lockout))
    if cmd == POLICY:
        if op == smp.OP_READ:
            return {"policy": h.policy.to_dict()}
        values = req.get("policy")
        if not isinstance(values, dict):
            return smp.EINVAL
        if not h.apply_policy(now_ms, values, records.SRC_TECH):
            return smp.group_err(ERR_REFUSED)
        svc.logged(sess, SVC_POLICY, h.policy.local)
        return {"policy_version": h.policy.version, "policy_local": h.policy.local}
    if cmd == CLOCK:
        if op == smp.OP_READ:
            return {"wall": h.wall}
        wall = _int(req, "wall", 1, WALL_MAX)
        if wall is None:
            return smp.EINVAL
        return set_clock(svc, sess, now_ms, wall, {"wall": wall})
    if cmd == PROVISION:
        device_id = _int(req, "device_id", 1)
        secret = req.get("secret")
        if device_id is None or not isinstance(secret, bytes) or len(secret) != 32:
            return smp.EINVAL
        if h.secret is not None:
            return smp.group_err(ERR_PROVISIONED)
        if h.provisioned_before:
            # no key, but it had one (its saved state was lost): refused, and logged as paced as any refusal
            # (this request needs no session, so one record per attempt would let anyone fill the log)
            svc.refused(now_ms, 0, auth.R_PROVISIONED, smp.G_INTERLOCK, cmd)
            return smp.group_err(ERR_PROVISIONED)
        if not h.provision(now_ms, device_id, secret):
            return smp.group_err(ERR_PROVISIONED)
        return {"device_id": device_id}
    # LOGOUT: this connection's session only
    sess.end()
    return {}
