"""Every numeric argument of every service-port command at the limits of its type, while logged in: each is
either applied (and the state still saves) or refused with an error that changes nothing in RAM or flash."""

import struct

import cbor2
import pytest
from smpclient.requests.file_management import FileDownload

from service import cbor, smp
from technician import protocol as p
from tests.service_sim import Bench, saved, visible

# integers at and around the edges of every width a field may be stored in
EDGES = (-(2**64), -(2**63) - 1, -(2**63), -(2**31) - 1, -(2**31), -1, 0, 1, 2**8 - 1, 2**15 - 1, 2**15,
         2**16 - 1, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64)
NOT_INTS = (True, False, None, 1.5, "1", b"\x01", [1], {"a": 1})
VALUES = EDGES + NOT_INTS

def packet(group, cmd, body, op=smp.OP_WRITE):
    payload = cbor2.dumps(body)
    return struct.pack(">BBHHBB", (smp.V2 << 3) | op, 0, len(payload), group, 7, cmd) + payload


def ensure_login(b):
    """Log in again if a previous value ended the session (a clock set past the token, for example)."""
    if b.tech_id:
        return
    b.run(60_000)  # past any failed-login back-off
    rsp = b.login(b.token())
    assert getattr(rsp, "tech_id", None) == 17, rsp


def send(b, group, cmd, body, op=smp.OP_WRITE):
    """One request inside a session; (response map, changed) with the safety checks applied."""
    ensure_login(b)
    before_saved, before_seen = saved(b), visible(b)
    policy_before = b.h.policy.values()
    rsp = b.raw(packet(group, cmd, body, op))
    assert b.svc.faults == 0, body
    body_rsp = cbor.decode(rsp[8:])
    after_saved = saved(b)  # the next state save must not raise
    if "rc" in body_rsp or "err" in body_rsp:
        assert after_saved == before_saved, body
        assert visible(b) == before_seen, body
        assert b.h.policy.values() == policy_before, body
        return body_rsp, False
    return body_rsp, True


def fields(name, value, base):
    out = dict(base)
    out[name] = value
    return out


@pytest.fixture
def bench():
    b = Bench()
    yield b
    assert b.svc.faults == 0


def test_calibrate_limits(bench):
    """Calibration counts beyond a signed 32-bit field or the BrAC range are refused without a fault."""
    b = bench
    base = {"zero": 120, "ref": 2200, "brac": 80}
    for name in base:
        for v in VALUES:
            rsp, changed = send(b, smp.G_INTERLOCK, p.Cmd.CALIBRATE, fields(name, v, base))
            if changed:
                assert isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**31 - 1, (name, v)


def test_module_limits(bench):
    """A module serial must fit 32 bits and its expiry a 16-bit day; anything else changes nothing."""
    b = bench
    base = {"serial": 9001, "expiry": b.h.wall // 86400 + 300}
    for name in base:
        for v in VALUES:
            _rsp, changed = send(b, smp.G_INTERLOCK, p.Cmd.MODULE, fields(name, v, base))
            if changed:
                assert isinstance(v, int) and 0 < v <= (2**32 - 1 if name == "serial" else 2**16 - 1), (name, v)
                if name == "serial":
                    assert b.h.expected_module == v


def test_service_due_limits(bench):
    """A service due day must fit the 16-bit day field."""
    b = bench
    for v in VALUES:
        rsp, changed = send(b, smp.G_INTERLOCK, p.Cmd.SERVICE, {"due": v})
        if changed:
            assert isinstance(v, int) and 0 < v <= 2**16 - 1 and b.h.service_due == rsp["due"], v


def test_clock_limits(bench):
    """A clock set must fit the log's signed 32-bit time; the OS datetime write checks the same range."""
    b = bench
    start = b.h.wall
    for v in VALUES:
        _rsp, changed = send(b, smp.G_INTERLOCK, p.Cmd.CLOCK, {"wall": v})
        if changed:
            assert isinstance(v, int) and 0 < v <= 2**31 - 1 and b.h.wall == v, v
    for text in ("2092-01-19T03:14:07", "2092-01-19T03:14:08", "2023-12-31T23:59:59", "9999-12-31T23:59:59",
                 "0000-01-01T00:00:00", "2024-01-01T00:00:01"):
        send(b, smp.G_OS, 4, {"datetime": text})
    send(b, smp.G_INTERLOCK, p.Cmd.CLOCK, {"wall": start})


def test_policy_limits(bench):
    """A technician's policy never takes a version: whatever "version" it names, the companion's stays, only the
    one in force (or none) is accepted, and the companion's next policy still applies afterwards. (Before, a
    push of version 2**32-1 took the last version and no companion policy could ever apply again.)"""
    from fsm import records

    b = bench
    version = b.h.policy.version
    local = b.h.policy.local
    for v in VALUES:
        _rsp, changed = send(b, smp.G_INTERLOCK, p.Cmd.POLICY, {"policy": {"version": v}})
        assert b.h.policy.version == version, v
        if changed:
            local += 1
            assert v == version and type(v) is int and b.h.policy.local == local, v
    _rsp, changed = send(b, smp.G_INTERLOCK, p.Cmd.POLICY, {"policy": {"fail_brac": 30}})
    assert changed and b.h.policy.version == version and b.h.policy.local == local + 1
    assert b.h.status()["policy_local"] == local + 1
    # the companion's next version applies over the technician's changes and ends their count
    assert b.h.apply_policy(b.now, {"version": version + 1, "warn_brac": 12}, records.SRC_REMOTE)
    assert (b.h.policy.version, b.h.policy.local, b.h.policy.warn_brac) == (version + 1, 0, 12)


def test_policy_value_limits():
    """Every policy number at the limits of its type: only values inside its range are applied."""
    from fsm import policy

    b = Bench(lockout=False)
    for name, _default, lo, hi in policy.SPEC:
        for v in VALUES + (lo, hi, lo - 1, hi + 1):
            _rsp, changed = send(b, smp.G_INTERLOCK, p.Cmd.POLICY, {"policy": {name: v}})
            if changed:
                assert isinstance(v, int) and lo <= v <= hi and getattr(b.h.policy, name) == v, (name, v)
    assert b.svc.faults == 0


def test_clear_limits(bench):
    """A clear names a lockout id that fits 32 bits; a wrong or malformed one clears nothing."""
    b = bench
    current = b.h.lockout_id
    for v in VALUES:
        if v == current:
            continue
        _rsp, changed = send(b, smp.G_INTERLOCK, p.Cmd.CLEAR, {"lockout_id": v})
        assert not changed, v
    assert b.h.vlock


def test_download_offset_limits(bench):
    """A download offset at any integer limit is answered with data or an error, never a fault."""
    b = bench
    for v in VALUES:
        send(b, smp.G_FS, 0, {"off": v, "name": "/log/events.bin"}, op=smp.OP_READ)
        send(b, smp.G_FS, 0, {"off": v, "name": "/state.json"}, op=smp.OP_READ)
    assert b.req(FileDownload(off=0, name="/state.json")).len > 0


def test_login_limits():
    """Technician ids and token expiries at every limit: malformed ones are EINVAL and end no session."""
    b = Bench(lockout=False)
    for name in ("tech_id", "expires"):
        for v in VALUES:
            b.run(60_000)
            ensure_login(b)
            nonce = cbor.decode(b.raw(packet(smp.G_INTERLOCK, p.Cmd.AUTH, {}, smp.OP_READ))[8:])["nonce"]
            body = {"tech_id": 17, "expires": b.token().expires, "mac": bytes(32)}
            body[name] = v
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**32 - 1:
                from technician.token import mint

                tok = mint(b.h.keys()[2], b.h.device_id, body["tech_id"] or 1, body["expires"])
                body["mac"] = tok.answer(nonce)
            b.raw(packet(smp.G_INTERLOCK, p.Cmd.AUTH, body))
            assert b.svc.faults == 0
            saved(b)


def test_provision_limits():
    """A device id must fit 32 bits and be above 0; a refused provisioning leaves the handset blank."""
    for v in VALUES:
        b = Bench(lockout=False, provision=False)
        rsp = cbor.decode(b.raw(packet(smp.G_INTERLOCK, p.Cmd.PROVISION, {"device_id": v, "secret": bytes(32)}))[8:])
        assert b.svc.faults == 0
        if "device_id" in rsp:
            assert isinstance(v, int) and 0 < v <= 2**32 - 1 and b.h.device_id == v
        else:
            assert b.h.secret is None
        saved(b)
