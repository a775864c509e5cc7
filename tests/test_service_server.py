"""The service-port SMP server in process, on the simulated handset: access rules, login, groups, errors."""

import datetime
import json
import struct

import pytest
from smpclient.requests.file_management import FileDownload, FileHashChecksum, FileStatus, FileUpload
from smpclient.requests.os_management import (
    DateTimeRead,
    DateTimeWrite,
    EchoWrite,
    MCUMgrParametersRead,
    OSApplicationInfoRead,
    ResetWrite,
)

from fsm import authority, records
from service import auth, cbor, frame, ilgroup, smp
from service.server import (
    BACKOFF_MAX_MS,
    BACKOFF_MS,
    BUF_SIZE,
    DISCONNECT_MS,
    REFUSAL_WINDOW_MS,
    REFUSALS_PER_WINDOW,
    Service,
)
from technician import protocol as p
from technician.client import check_log
from technician.token import mint
from tests.service_sim import Bench, Counter, locked_sim, rc

EPOCH = datetime.datetime(2024, 1, 1)


@pytest.fixture
def b():
    bench = Bench()
    yield bench
    assert bench.svc.faults == 0  # no handler ever raised


PROTECTED = [p.Status(), p.Calibrate(zero=1, ref=2, brac=80), p.Module(serial=5, expiry=900), p.Service(),
             p.Clear(), p.PolicyRead(), p.PolicyWrite(policy={"version": 9}), p.ClockRead(), p.ClockWrite(wall=5),
             p.Logout(), FileDownload(off=0, name="/log/events.bin"), FileStatus(name="/state.json"),
             DateTimeRead(), DateTimeWrite(datetime="2026-01-01T00:00:00"), ResetWrite(),
             OSApplicationInfoRead(), p.Provision(device_id=5, secret=bytes(32))]


def test_open_commands_answer_without_a_session(b):
    """Echo, MCUmgr parameters and the challenge answer without logging in, and log nothing."""
    mark = b.log.next_seq()
    assert b.req(EchoWrite(d="hello")).r == "hello"
    params = b.req(MCUMgrParametersRead())
    assert (params.buf_size, params.buf_count) == (BUF_SIZE, 1)
    assert len(b.req(p.Challenge()).nonce) == 16
    assert b.since(mark) == []


@pytest.mark.parametrize("request_", PROTECTED, ids=lambda r: type(r).__name__)
def test_everything_else_is_refused_and_logged_without_a_session(b, request_):
    """Without a session every other command gets ACCESSDENIED, changes nothing, and is logged."""
    before = b.h.status()
    mark = b.log.next_seq()
    rsp = b.req(request_)
    assert rc(rsp) == smp.EACCESSDENIED
    assert b.svc.reset_requested is False
    after = b.h.status()
    assert {k: v for k, v in after.items() if k != "log_next_seq"} == \
        {k: v for k, v in before.items() if k != "log_next_seq"}
    [(_s, _w, rtype, action, tech, c, _ph)] = b.since(mark)
    assert (rtype, action, tech) == (records.SERVICE, records.SVC_LOGIN_REFUSED, 0)
    assert c == auth.refusal_value(auth.R_DENIED, request_.header.group_id, request_.header.command_id)


def test_login_opens_a_session_and_is_logged(b):
    """A right answer opens a session; the login is logged with the technician id and the token expiry."""
    tok = b.token(tech_id=31)
    rsp = b.login(tok)
    assert (rsp.tech_id, rsp.expires) == (31, tok.expires)
    assert b.req(p.Status()).status["lockout"] is True
    assert (records.SERVICE, records.SVC_LOGIN, 31, tok.expires) in [r[2:6] for r in b.records()]


def test_technician_ids_are_logged_exactly(b):
    """The largest technician id the log's signed 32-bit field holds logs in and is logged as itself; a larger
    one is refused (EINVAL) before anything is logged, never logged as another technician's id."""
    top = 2**31 - 1
    b.login(b.token(tech_id=top))
    mark = b.log.next_seq()
    b.req(p.Service())
    assert [r[4] for r in b.since(mark) if r[2] == records.SERVICE] == [top]
    b.req(p.Logout())
    for tech_id in (2**31, 3_000_000_000, 2**32 - 1):
        mark = b.log.next_seq()
        assert rc(b.login(b.token(tech_id=tech_id))) == smp.EINVAL
        assert b.since(mark) == [] and b.tech_id == 0


def test_expired_token_is_refused_and_logged(b):
    """A token that expired by the handset's own clock is refused (EXPIRED) and logged."""
    mark = b.log.next_seq()
    assert rc(b.login(b.token(ttl=-1))) == p.InterlockErr.EXPIRED
    assert rc(b.req(p.Status())) == smp.EACCESSDENIED
    assert b.refusals(mark)[0][4:6] == (17, auth.refusal_value(auth.R_EXPIRED))


def test_token_for_another_handset_is_refused(b):
    """A token minted for another device id, or from another handset's key, gives BAD_TOKEN, logged."""
    mark = b.log.next_seq()
    assert rc(b.login(b.token(device_id=b.h.device_id + 1))) == p.InterlockErr.BAD_TOKEN
    other, _ = locked_sim(lockout=False, device_id=2002)
    b.run(BACKOFF_MS)  # the wait after a failed login
    assert rc(b.login(b.token(key=other.fsm.keys()[2]))) == p.InterlockErr.BAD_TOKEN
    assert [r[5] >> 24 for r in b.refusals(mark)] == [auth.R_BAD_MAC, auth.R_BAD_MAC]
    assert rc(b.req(p.Status())) == smp.EACCESSDENIED


def test_replayed_answer_is_refused(b):
    """An answer works once: replaying it gives NO_CHALLENGE, and after a new challenge BAD_TOKEN."""
    tok = b.token()
    c = b.req(p.Challenge())
    login = p.Login(tech_id=tok.tech_id, expires=tok.expires, mac=tok.answer(c.nonce))
    assert b.req(login).tech_id == tok.tech_id
    b.req(p.Logout())
    assert rc(b.req(login)) == p.InterlockErr.NO_CHALLENGE
    b.req(p.Challenge())
    assert rc(b.req(login)) == p.InterlockErr.BAD_TOKEN
    assert rc(b.req(p.Status())) == smp.EACCESSDENIED


def test_challenge_expires(b):
    """A challenge answered too late is refused."""
    tok = b.token(ttl=7200)
    c = b.req(p.Challenge())
    b.run(auth.CHALLENGE_MS)
    assert rc(b.req(p.Login(tech_id=tok.tech_id, expires=tok.expires, mac=tok.answer(c.nonce)))) == \
        p.InterlockErr.NO_CHALLENGE


def test_unanswered_challenge_stays_dead_when_the_tick_counter_comes_round():
    """A challenge left unanswered is dead once its 30 s are over, also a whole tick period (about 12 days)
    later, when the tick counter reads what it read when the challenge was given."""
    from interlock import timebase

    b = Bench(lockout=False)
    tok = b.token(ttl=20 * 86400)
    t0 = b.now
    nonce = cbor.decode(b.svc.handle(t0, _packet(0, 100, 0, body=b"\xa0"))[8:])["nonce"]
    for s in range(0, 600, 5):  # the service task polls on every turn
        b.svc.poll(timebase.add(t0, s * 1000))
    login = cbor.encode({"tech_id": tok.tech_id, "expires": tok.expires, "mac": tok.answer(nonce)})
    rsp = b.svc.handle(timebase.add(t0, 10), _packet(2, 100, 0, body=login))  # t0 + 2**30 ms + 10 ms
    assert cbor.decode(rsp[8:]) == {"err": {"group": 100, "rc": p.InterlockErr.NO_CHALLENGE}}
    assert b.tech_id == 0


def test_overlong_token_is_refused(b):
    """A token valid for longer than the handset accepts is refused."""
    assert rc(b.login(b.token(ttl=auth.MAX_TOKEN_S + 10))) == p.InterlockErr.TOKEN_TOO_LONG


def test_session_ends_on_idle_token_expiry_disconnect_reset_and_logout(b):
    """A session ends after idling, when its token expires, on disconnect, on reset and on logout."""
    b.login(b.token(ttl=7200))
    b.run(auth.IDLE_MS - 1000)
    assert b.req(p.Status())  # activity keeps it open
    b.run(auth.IDLE_MS)
    assert rc(b.req(p.Status())) == smp.EACCESSDENIED

    b.login(b.token(ttl=100))
    b.run(101_000)
    assert rc(b.req(p.Status())) == smp.EACCESSDENIED

    b.login()
    b.svc.link(b.now, False)
    b.run(DISCONNECT_MS - 100)
    b.svc.link(b.now, False)
    b.svc.link(b.now, True)  # a blip shorter than the debounce keeps the session
    assert b.req(p.Status()).status
    b.svc.link(b.now, False)
    b.run(DISCONNECT_MS)
    b.svc.link(b.now, False)
    assert rc(b.req(p.Status())) == smp.EACCESSDENIED

    b.login()
    assert b.req(ResetWrite()) is not None and b.svc.reset_requested
    b.svc.end_session()  # what the task does once the reply is on the wire
    assert rc(b.req(p.Status())) == smp.EACCESSDENIED

    b.login()
    b.req(p.Logout())
    assert rc(b.req(p.Status())) == smp.EACCESSDENIED


def test_technician_actions_change_the_handset_and_are_logged_with_the_id(b):
    """Calibrate, module, service, clear, policy and clock change the handset; each record names the tech."""
    b.login(b.token(tech_id=44))
    mark = b.log.next_seq()
    b.req(p.Calibrate(zero=120, ref=2200, brac=80))
    b.req(p.Module(serial=9001, expiry=b.h.wall // 86400 + 300))
    due = b.req(p.Service()).due
    assert due == b.h.wall // 86400 + b.h.policy.service_days == b.h.status()["service_due"]
    assert b.h.status()["violations"] == 0
    lock_id = b.h.status()["lockout_id"]
    b.req(p.Clear(lockout_id=lock_id))
    assert b.h.status()["lockout"] is False
    local = b.h.policy.local
    got = b.req(p.PolicyWrite(policy={"fail_brac": 25}))
    assert (got.policy_version, got.policy_local) == (0, local + 1)  # the companion's version stays
    assert b.req(p.PolicyRead()).policy["fail_brac"] == 25 == b.h.policy.fail_brac
    target = b.h.wall + 60
    assert b.req(p.ClockWrite(wall=target)).wall == target
    got = [(r[2], r[3], r[4]) for r in b.since(mark)]
    for action in (records.SVC_CALIBRATE, records.SVC_MODULE, records.SVC_RECORD, ilgroup.SVC_POLICY,
                   ilgroup.SVC_CLOCK):
        assert (records.SERVICE, action, 44) in got
    assert (records.CLEAR, records.LOCK_VIOLATION, records.SRC_TECH) in got
    assert any(r[2] == records.CLEAR and r[5] == 44 for r in b.since(mark))


def test_clear_must_name_the_current_lockout(b):
    """A technician clear naming no lockout, another lockout or a malformed id clears nothing; the right id clears."""
    b.login()
    lock_id = b.h.status()["lockout_id"]
    assert lock_id
    before = b.h.status()
    for other in (None, 0, lock_id - 1, lock_id + 1, 2**32 - 1):
        assert rc(b.req(p.Clear(lockout_id=other))) == p.InterlockErr.REFUSED, other
    assert rc(b.req(p.Clear(lockout_id=2**32))) == smp.EINVAL
    assert {k: v for k, v in b.h.status().items() if k != "log_next_seq"} == \
        {k: v for k, v in before.items() if k != "log_next_seq"}
    b.req(p.Clear(lockout_id=lock_id))
    assert b.h.status()["lockout"] is False
    assert rc(b.req(p.Clear(lockout_id=lock_id))) == p.InterlockErr.REFUSED  # already cleared


def test_refused_changes_are_group_errors(b):
    """What the state machine refuses is REFUSED (v2) and changes nothing; bad arguments are EINVAL."""
    b.login()
    b.req(p.Clear(lockout_id=b.h.status()["lockout_id"]))
    before = b.h.status()
    assert rc(b.req(p.Clear())) == p.InterlockErr.REFUSED
    assert rc(b.req(p.PolicyWrite(policy={"version": 1}))) == p.InterlockErr.REFUSED  # not the one in force
    assert rc(b.req(p.PolicyWrite(policy={"no_such_rule": 1}))) == p.InterlockErr.REFUSED
    assert rc(b.req(p.Module(serial=77, expiry=1))) == p.InterlockErr.REFUSED  # expiry in the past
    assert rc(b.req(p.Calibrate(zero=500, ref=100, brac=80))) == smp.EINVAL
    assert rc(b.req(p.Module(serial=0, expiry=5))) == smp.EINVAL
    assert rc(b.req(p.ClockWrite(wall=2**31))) == smp.EINVAL
    after = b.h.status()
    assert {k: v for k, v in after.items() if k != "log_next_seq"} == \
        {k: v for k, v in before.items() if k != "log_next_seq"}


def test_provisioning_only_while_unprovisioned():
    """An unprovisioned handset takes its key without a session, once; after that provisioning is refused."""
    b = Bench(lockout=False, provision=False)
    assert b.h.secret is None
    assert rc(b.login(mint(bytes(32), 0, 1, b.h.wall + 60))) == p.InterlockErr.UNPROVISIONED
    assert b.req(p.Provision(device_id=77, secret=bytes(range(32)))).device_id == 77
    assert (b.h.device_id, b.h.secret) == (77, bytes(range(32)))
    assert rc(b.req(p.Provision(device_id=78, secret=bytes(32)))) == smp.EACCESSDENIED
    b.login()
    assert rc(b.req(p.Provision(device_id=78, secret=bytes(32)))) == p.InterlockErr.PROVISIONED
    assert b.h.device_id == 77


def test_refused_provisioning_of_a_handset_that_had_a_key_is_paced_in_the_log():
    """A handset whose saved state was lost has no key but had one: provisioning it is refused without a session,
    and a flood of such attempts writes no more records than any other refused request."""
    b = Bench(lockout=False)
    b.sim.power_cut()
    b.sim.state._data = b"not a saved state"  # the saved state is gone
    b.sim.state._identity = b"not an identity"  # and so is the identity (device id and key)
    b.sim.power_on()
    b.svc = Service(b.sim.fsm, b.log, Counter())
    assert b.h.secret is None and b.h.provisioned_before and b.h.state_lock
    mark = b.log.next_seq()
    for _ in range(100):
        assert rc(b.req(p.Provision(device_id=5, secret=bytes(32)))) == p.InterlockErr.PROVISIONED
    assert b.h.secret is None and b.h.device_id == 0
    assert b.log.next_seq() - mark <= REFUSALS_PER_WINDOW + 2
    assert b.refusals(mark)[0][5] >> 24 == auth.R_PROVISIONED


def test_log_download_fills_the_buffer_and_verifies(b):
    """The log downloads in answers that fill buf_size, logs the download with the tech id, and verifies."""
    for i in range(150):
        b.h.record(records.RESULT, i, records.PASS, 1)
    b.login(b.token(tech_id=5))
    first = b.req(FileDownload(off=0, name="/log/events.bin"))
    data = bytearray(first.data)
    sizes = [len(first.smp_data)]
    while len(data) < first.len:
        r = b.req(FileDownload(off=len(data), name="/log/events.bin"))
        assert r.off == len(data)
        data += r.data
        sizes.append(len(r.smp_data))
    assert BUF_SIZE - 4 - 45 <= max(sizes) <= BUF_SIZE - 4
    check = check_log(bytes(data))
    assert check.ok and check.first == b.log.first_seq() and check.last == b.log.next_seq() - 1
    assert (records.SERVICE, records.SVC_DOWNLOAD, 5) in [r[2:5] for r in check.records]
    assert b.req(FileStatus(name="/log/events.bin")).len == b.log.export_size()


def test_state_view_is_read_only_json(b):
    """/state.json is the status as JSON; uploads, unknown files and bad offsets are refused."""
    b.login()
    r = b.req(FileDownload(off=0, name="/state.json"))
    assert json.loads(r.data) == json.loads(json.dumps(b.h.status())) and r.len == len(r.data)
    assert rc(b.req(FileUpload(off=0, name="/state.json", data=b"{}", len=2))) == 15  # READ_ONLY_FILESYSTEM
    assert rc(b.req(FileDownload(off=0, name="/etc/passwd"))) == 3  # FILE_NOT_FOUND
    assert rc(b.req(FileDownload(off=10**6, name="/state.json"))) == 12  # OFFSET_LARGER_THAN_FILE
    assert rc(b.req(FileHashChecksum(name="/state.json"))) == smp.ENOTSUP


def test_os_group_datetime_info_and_reset(b):
    """Datetime reads and sets the device clock (logged with the tech); info names the firmware; reset answers."""
    b.login(b.token(tech_id=8))
    expect = EPOCH + datetime.timedelta(seconds=b.h.wall)
    assert b.req(DateTimeRead()).datetime == expect.isoformat()
    mark = b.log.next_seq()
    target = (expect + datetime.timedelta(minutes=30)).replace(microsecond=0)
    local = (target + datetime.timedelta(hours=1)).isoformat() + "+01:00"
    b.req(DateTimeWrite(datetime=local))
    assert b.h.wall == int((target - EPOCH).total_seconds())
    assert (records.SERVICE, ilgroup.SVC_CLOCK, 8, b.h.wall) in [r[2:6] for r in b.since(mark)]
    assert rc(b.req(DateTimeWrite(datetime="2026-02-30T00:00:00"))) == smp.EINVAL
    assert rc(b.req(DateTimeWrite(datetime="yesterday"))) == smp.EINVAL
    assert b.req(OSApplicationInfoRead(format="s")).output == "interlock"
    assert rc(b.req(OSApplicationInfoRead(format="x"))) == 2  # OS_MGMT INVALID_FORMAT
    assert b.req(ResetWrite()) is not None and b.svc.reset_requested


def test_datetime_takes_ascii_digits_only(b):
    """A datetime written with other Unicode digits is EINVAL and sets nothing, on CPython as on MicroPython
    (whose str.isdigit knows only ASCII): the simulator accepts what the board accepts."""
    b.login()
    wall = b.h.wall
    for text in ("\u0662\u0660\u0662\u0666-01-01T00:00:00", "2026-01-01T00:00:00.\u0665",
                 "2026-01-01T00:00:00+\u0660\u0661:00", "2026-\uff11\uff12-01T00:00:00"):
        assert rc(b.req(DateTimeWrite(datetime=text))) == smp.EINVAL, text
    assert b.h.wall - wall < 5


def _packet(op, group, cmd, body=b"\xa0", version=1, seq=3, length=None):
    n = len(body) if length is None else length
    return struct.pack(">BBHHBB", (version << 3) | op, 0, n, group, seq, cmd) + body


def test_protocol_errors(b):
    """Unknown groups/commands: NOTSUP; bad length or CBOR: EINVAL; newer version: TOO_NEW; responses: no answer."""
    mark = b.log.next_seq()
    assert cbor.decode(b.raw(_packet(0, 77, 0))[8:]) == {"rc": smp.ENOTSUP}
    assert cbor.decode(b.raw(_packet(0, 0, 99))[8:]) == {"rc": smp.ENOTSUP}
    assert cbor.decode(b.raw(_packet(2, 0, 0, length=5))[8:]) == {"rc": smp.EINVAL}
    assert cbor.decode(b.raw(_packet(2, 0, 0, body=b"\x81\x01"))[8:]) == {"rc": smp.EINVAL}
    assert cbor.decode(b.raw(_packet(2, 0, 0, body=b"\xa1\x61"))[8:]) == {"rc": smp.EINVAL}
    assert cbor.decode(b.raw(_packet(2, 0, 0, version=2))[8:]) == {"rc": smp.ETOONEW}
    assert b.raw(_packet(1, 0, 0)) is None and b.raw(_packet(3, 0, 0)) is None and b.raw(b"\x00") is None
    rsp = b.raw(_packet(2, 0, 0, body=b"\xa1\x61d\x63abc", seq=201))
    assert rsp[6] == 201 and rsp[0] == (1 << 3) | 3 and cbor.decode(rsp[8:]) == {"r": "abc"}
    assert b.since(mark) == []


def test_requests_of_thousands_of_tiny_items_are_refused_before_they_are_built(b):
    """A request of a couple of kilobytes made of thousands of one-byte items (on MicroPython about 70-100 kB of
    heap once built) is EINVAL; a policy push naming every policy number still decodes and applies."""
    from fsm import policy

    n = 2000
    for junk in (bytes([0x99, n >> 8, n & 255]) + b"\x80" * n, bytes([0x99, n >> 8, n & 255]) + b"\x40" * n,
                 b"\x5f" + b"\x40" * n + b"\xff", b"\x9f" + b"\xa0" * n + b"\xff"):
        body = b"\xa2" + cbor.encode("d") + cbor.encode("hi") + cbor.encode("x") + junk
        assert cbor.decode(b.raw(_packet(2, 0, 0, body=body))[8:]) == {"rc": smp.EINVAL}
    b.login()
    push = {"version": b.h.policy.version}
    push.update({name: getattr(b.h.policy, name) for name in policy.NAMES})
    local = b.h.policy.local
    assert b.req(p.PolicyWrite(policy=push)).policy_local == b.h.policy.local == local + 1


def test_v1_requests_get_v1_errors(b):
    """An SMP v1 client gets {"rc": n}, the nearest common code for the group's own errors."""
    tok = b.token(ttl=-5)
    c = b.req(p.Challenge())
    login = cbor.encode({"tech_id": tok.tech_id, "expires": tok.expires, "mac": tok.answer(c.nonce)})
    rsp = b.raw(_packet(2, 100, 0, body=login, version=0))
    assert rsp[0] == 3 and cbor.decode(rsp[8:]) == {"rc": smp.EACCESSDENIED}


def test_oversize_frame_gets_msgsize(b):
    """A frame above buf_size is dropped with an MSGSIZE answer that carries its sequence number."""
    big = EchoWrite(d="x" * 3000)
    lines = b.svc.feed(b.now, b"".join(frame.encode(big.BYTES)))
    out = []
    frame.Decoder(10000).feed(b"".join(lines), out)
    [(kind, rsp)] = out
    assert kind == 0 and rsp[6] == big.header.sequence
    assert cbor.decode(rsp[8:]) == {"rc": smp.EMSGSIZE}


def test_refusal_flood_is_rate_limited(b):
    """A flood of denied requests logs a bounded number of records, then how many were not logged."""
    mark = b.log.next_seq()
    for _ in range(100):
        b.req(p.Status())
    assert len(b.refusals(mark)) == REFUSALS_PER_WINDOW + 1
    b.run(REFUSAL_WINDOW_MS + 1000)
    b.req(p.Status())
    summaries = [r for r in b.refusals(mark) if r[5] >> 24 == auth.R_SUPPRESSED]
    assert [r[4] for r in summaries] == [1, 100 - REFUSALS_PER_WINDOW - 1]


def test_refusal_flood_is_on_flash_at_once_and_counted_without_another_refusal(b):
    """The first refusal past the limit writes a record at once (a power cut cannot hide the flood); the
    window's count is written when the window ends, with no further refusal needed, and a reset writes it too."""
    mark = b.log.next_seq()
    for _ in range(REFUSALS_PER_WINDOW + 1):
        b.req(p.Status())
    [started] = [r for r in b.refusals(mark) if r[5] >> 24 == auth.R_SUPPRESSED]
    assert started[4] == 1
    for _ in range(40):
        b.req(p.Status())
    b.run(REFUSAL_WINDOW_MS)
    b.svc.poll(b.now)  # the service task polls on every turn
    assert [r[4] for r in b.refusals(mark) if r[5] >> 24 == auth.R_SUPPRESSED] == [1, 40]
    mark = b.log.next_seq()
    for _ in range(REFUSALS_PER_WINDOW + 6):
        b.req(p.Status())
    b.svc.end_session()  # what the task does before a reset
    assert [r[4] for r in b.refusals(mark) if r[5] >> 24 == auth.R_SUPPRESSED] == [1, 5]


def test_a_day_of_refusals_cannot_fill_the_log(b):
    """A day of denied requests, however they are spread, writes few enough records that the 30 days the log
    keeps acknowledged records could not bring the storage lock: under a fifth of the log's capacity."""
    from interlock import timebase

    mark = b.log.next_seq()
    t = b.now
    for i in range(86400 // 30):  # one every 30 s (120 an hour), from changing addresses
        t = timebase.add(t, 30_000)
        b.svc.poll(t)
        b.svc.handle(t, p.Status().BYTES, ("10.9.%d.%d" % (i // 250 % 250, i % 250), 9))
    written = b.log.next_seq() - mark
    assert written * 30 < b.log.capacity // 5, written


def test_failed_logins_make_the_port_wait_before_checking_another_answer(b):
    """After a wrong answer the port checks no answer, not even a right one, until its wait is over; the
    answers refused unchecked are logged; a right answer after the wait logs in and ends the waiting."""
    bad = b.token(device_id=b.h.device_id + 1)
    mark = b.log.next_seq()
    assert rc(b.login(bad)) == p.InterlockErr.BAD_TOKEN
    assert rc(b.login()) == smp.EBUSY
    b.run(BACKOFF_MS // 2)
    assert rc(b.login()) == smp.EBUSY and b.tech_id == 0
    b.run(BACKOFF_MS // 2)
    assert b.login().tech_id == 17
    assert [r[5] >> 24 for r in b.refusals(mark)] == [auth.R_BAD_MAC, auth.R_BACKOFF, auth.R_BACKOFF]
    b.req(p.Logout())
    assert rc(b.login(bad)) == p.InterlockErr.BAD_TOKEN
    b.run(BACKOFF_MS)  # a success reset the count: one failure waits BACKOFF_MS again
    assert b.login().tech_id == 17


def test_failed_login_wait_doubles_to_its_cap(b):
    """Consecutive wrong answers wait 1, 2, 4, ... s, never more than BACKOFF_MAX_MS: a brute force gets a few
    answers a minute checked, however fast it sends."""
    bad = b.token(device_id=b.h.device_id + 1)
    checked = []
    start = b.sim.world.t
    while b.sim.world.t - start < 600_000:
        r = rc(b.login(bad))
        if r != smp.EBUSY:
            assert r == p.InterlockErr.BAD_TOKEN
            checked.append(b.sim.world.t - start)
        b.run(100)
    gaps = [y - x for x, y in zip(checked, checked[1:], strict=False)]
    doubling = [min(BACKOFF_MS << i, BACKOFF_MAX_MS) for i in range(len(gaps))]
    assert all(want <= got <= want + 200 for want, got in zip(doubling, gaps, strict=True)), (gaps, doubling)
    assert len(checked) <= 600_000 // BACKOFF_MAX_MS + 6


def test_token_cannot_outlive_its_lifetime_by_setting_the_clock_back(b):
    """A session ends when its token's lifetime has passed in ticks, though its technician set the clock back a
    day; the same token cannot log in again afterwards, nor after another day back."""
    tok = b.token(ttl=3600)
    b.login(tok)
    assert b.req(p.ClockWrite(wall=b.h.wall - 86400)).wall
    for _ in range(11):  # keep it from idling out
        b.run(300_000)
        assert b.req(p.Status()).status
    b.run(300_000)
    assert rc(b.req(p.Status())) == smp.EACCESSDENIED
    assert b.h.wall < tok.expires  # the handset's clock alone would still accept the token
    assert rc(b.login(tok)) == p.InterlockErr.EXPIRED
    b.run(BACKOFF_MAX_MS)
    later = b.token(ttl=600)
    b.login(later)
    b.req(p.ClockWrite(wall=b.h.wall - 86400))
    b.req(p.Logout())
    b.run(700_000)
    assert rc(b.login(later)) == p.InterlockErr.EXPIRED


def test_clock_set_far_ahead_by_mistake_stops_no_login_once_the_companion_corrects_it(b):
    """A technician sets the clock a year ahead by mistake; once the companion's signed time sets it right, a
    fresh token logs in again (the token clock follows the companion's time, not only a rising clock)."""
    b.login()
    real = b.h.wall
    b.req(p.ClockWrite(wall=real + 365 * 86400))
    b.run(1000)
    b.svc.poll(b.now)  # the service task polls on every turn
    b.h.set_time(b.now, real + 1, records.SRC_REMOTE)  # the next sync applies the companion's time
    b.run(1000)
    fresh = mint(b.h.keys()[2], b.h.device_id, 21, b.h.wall + 3600)  # what the companion issues now
    assert b.login(fresh).tech_id == 21


def test_log_download_from_any_offset_is_logged(b):
    """A download that starts at offset 1 (or any offset) writes a download record with the tech id; asking
    for the next chunk of the same download does not write another."""
    for i in range(100):
        b.h.record(records.RESULT, i, records.PASS, 1)
    for start in (1, 40, 2004):
        b.login(b.token(tech_id=6))
        mark = b.log.next_seq()
        first = b.req(FileDownload(off=start, name="/log/events.bin"))
        assert first.off == start and first.data
        b.req(FileDownload(off=start + len(first.data), name="/log/events.bin"))
        b.req(FileDownload(off=start, name="/log/events.bin"))  # the first chunk again (a lost answer)
        got = [r[2:5] for r in b.since(mark)]
        assert got == [(records.SERVICE, records.SVC_DOWNLOAD, 6)], (start, got)
        b.req(FileDownload(off=first.off + 10**5, name="/log/events.bin"))  # beyond the end: nothing logged
        assert [r[2:5] for r in b.since(mark)] == got
        b.req(p.Logout())


def test_constants_match_the_client_package():
    """The handset serves, and the technician package speaks, every command and error of interlock.smpgroup."""
    from interlock import smpgroup

    assert smp.G_INTERLOCK == p.GROUP_ID == smpgroup.GROUP
    names = {n for n in dir(smpgroup) if n.isupper() and n != "GROUP"}
    assert {c.name for c in p.Cmd} | {"ERR_" + e.name for e in p.InterlockErr} == names
    for cmd in p.Cmd:
        assert getattr(ilgroup, cmd.name) == cmd.value == getattr(smpgroup, cmd.name)
    for err in p.InterlockErr:
        assert err.value == getattr(smpgroup, "ERR_" + err.name)
    assert authority.APPLIED != authority.REFUSED


def test_each_challenge_is_fresh():
    """Every challenge is a new nonce from the entropy source, and the one before it no longer works."""
    b = Bench(lockout=False)
    tok = b.token()
    first = b.req(p.Challenge()).nonce
    second = b.req(p.Challenge()).nonce
    assert first != second and len(first) == len(second) == auth.NONCE_LEN
    assert rc(b.req(p.Login(tech_id=tok.tech_id, expires=tok.expires, mac=tok.answer(first)))) == \
        p.InterlockErr.BAD_TOKEN
    c = Counter()
    assert c(16) != c(16)


def test_requests_queue_is_bounded(b):
    """A burst of requests queues at most a few behind the answer being sent; the rest are dropped."""
    burst = b"".join(b"".join(frame.encode(EchoWrite(d=str(i)).BYTES)) for i in range(50))
    b.svc.take(burst)
    lines = []
    while (line := b.svc.next_line(b.now)) is not None:
        lines.append(bytes(line))
    out = []
    frame.Decoder(4096).feed(b"".join(lines), out)
    assert [cbor.decode(pkt[8:])["r"] for _k, pkt in out] == ["0", "1", "2", "3"]
    assert b.req(EchoWrite(d="after")).r == "after"


def reboot(b):
    """What an OS reset does on the board: the reply went out, sessions end, the handset restarts and the task
    builds a new server."""
    b.svc.end_session()
    b.sim.power_cut()
    b.sim.run(100)
    b.sim.power_on()
    b.svc = Service(b.sim.fsm, b.log, Counter())


def test_clock_set_back_then_reset_keeps_the_clock_and_charges_no_violation():
    """A technician sets the clock back and resets the handset before its next heartbeat: it boots on the clock
    that was set, with no clock jump, power gap or violation charged to the driver."""
    b = Bench(lockout=False)
    b.run(5 * 60_000)  # heartbeats have been written at the old time
    b.login()
    target = b.h.wall - 3600
    assert b.req(p.ClockWrite(wall=target)).wall == target
    b.run(2000)
    assert b.req(ResetWrite()) is not None and b.svc.reset_requested
    mark = b.log.next_seq()
    reboot(b)
    b.run(1000)
    assert target <= b.h.wall <= target + 10
    assert b.h.violations == 0 and b.h.recall_deadline == 0
    got = [r[2] for r in b.since(mark)]
    assert records.POWER_GAP not in got and records.VIOLATION not in got and records.CLOCK not in got, got
