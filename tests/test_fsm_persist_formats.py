"""A handset updated from older firmware keeps everything: states saved in formats 1 and 2 load, convert and are
saved in the current format, and the identity they held moves to its own store, once."""

import struct

from fsm import persist, records
from fsm.machine import Interlock
from storage.memory import MemoryLog, MemoryState
from tests.fsm_handset import QuietBoard as _Board

SECRET = bytes(range(32))


def old_state(m, fmt):
    """The state of Interlock m as the firmware of format 1 or 2 saved it: the identity in bytes 4..39, and
    (format 1) no retest deadline. This is that firmware's layout, kept here to test the migration."""
    buf = bytearray(360 if fmt == 1 else 364)
    flags = (1 if m.vlock else 0) | (2 if m.secret else 0) | (4 if m.retest_pending else 0) | (
        8 if m.alarm else 0) | (16 if m.state_lock else 0) | (32 if m.engine_saved else 0) | (
        64 if m.provisioned_before else 0)
    struct.pack_into(">2sBBI32sBBBBBBBB", buf, 0, b"IS", fmt, flags, m.device_id, m.secret or bytes(32),
                     m.lock_cause, m.violations, m.codes_used, m.code_fails, m.temp_kind, 0, 0, 0)
    struct.pack_into(">IIIIIHHHH", buf, 48, m.lockout_id, m.recall_deadline, m.temp_until, m.code_counter,
                     m.code_wait_until, m.payment_due, m.service_due, m.inspection_due, m.module_expiry)
    struct.pack_into(">IIIIIIIII", buf, 76, m.desired_version, m.last_command_seq, m.last_alive, m.last_sync,
                     m.restart_until, m.expected_module, m.log.next_seq(), m.module_serial, m.policy.version)
    if fmt == 1:
        struct.pack_into(">III", buf, 112, m.fail_streak, m.fail_lock_end, m.retest_due)
        off = 124
    else:
        struct.pack_into(">IIII", buf, 112, m.fail_streak, m.fail_lock_end, m.retest_due, m.retest_deadline)
        off = 128
    for t in m.abort_times:
        struct.pack_into(">I", buf, off, t)
        off += 4
    for v in m.policy.values()[:49]:  # the policy values those formats had
        struct.pack_into(">i", buf, off, v)
        off += 4
    assert off == len(buf)
    return bytes(buf)


WALL = 91_000_000
KEPT = ("vlock", "lock_cause", "lockout_id", "violations", "recall_deadline", "temp_until", "temp_kind",
        "codes_used", "code_fails", "code_counter", "code_wait_until", "payment_due", "service_due",
        "inspection_due", "module_expiry", "module_serial", "expected_module", "desired_version",
        "last_command_seq", "last_sync", "restart_until", "retest_pending", "retest_due", "fail_streak",
        "fail_lock_end", "provisioned_before", "device_id", "secret")


def _before():
    """A handset of older firmware in the middle of things: a violation lockout with a retest pending, counters,
    a temporary lock, a code wait, dates, a policy of the companion's."""
    m = Interlock(_Board(), MemoryLog(), MemoryState())
    m.device_id, m.secret, m.provisioned_before = 4711, SECRET, True
    m.vlock, m.lock_cause, m.lockout_id, m.violations, m.recall_deadline = True, 3, 812, 2, WALL + 86400
    m.temp_until, m.temp_kind, m.codes_used, m.code_fails, m.code_counter = WALL + 300, 1, 1, 4, 7
    m.code_wait_until, m.payment_due, m.service_due, m.inspection_due = WALL + 60, 1060, 1070, 1080
    m.module_expiry, m.module_serial, m.expected_module, m.desired_version = 1400, 5150, 5150, 9
    m.last_command_seq, m.last_sync, m.restart_until, m.retest_pending = 33, WALL - 500, 0, True
    m.retest_due, m.fail_streak, m.fail_lock_end, m.last_alive = 0, 2, WALL - 100, WALL - 20
    m.abort_times[0], m.abort_times[1] = WALL - 50, WALL - 40
    m.retest_deadline = WALL + 100
    assert m.policy.apply({"version": 12, "fail_brac": 30, "recall_s": 7200}) is None
    return m


def _boot(data, store=None):
    store = store if store is not None else MemoryState()
    store.save(data)
    m = Interlock(_Board(), MemoryLog(), store)
    m.boot(0, WALL)
    return m, store


def test_format_1_state_loads_converts_and_saves_the_current_format():
    """Lockouts, counters, dates, policy and the pending retest of a format-1 state all come back (no state lock,
    no lost obligation); the retest that format had no deadline for gets its window from the boot; the state
    is saved in the current format at once and loads again the same."""
    old = _before()
    m, store = _boot(old_state(old, 1))
    assert not m.state_lock
    for name in KEPT:
        assert getattr(m, name) == getattr(old, name), name
    assert list(m.abort_times) == list(old.abort_times)
    assert m.policy.to_dict() == old.policy.to_dict()
    assert m.retest_deadline == WALL + m.policy.retest_window_s  # the window format-1 firmware gave after a cut
    saved = store.load()
    assert len(saved) == persist.SIZE and saved[2] == persist.FORMAT and SECRET not in saved
    again, _ = _boot(saved, store)
    for name in KEPT + ("retest_deadline",):
        assert getattr(again, name) == getattr(m, name), name


def test_format_2_state_keeps_its_retest_deadline():
    """Format 2 kept the deadline: it stays as it was."""
    old = _before()
    m, store = _boot(old_state(old, 2))
    assert not m.state_lock and m.retest_deadline == WALL + 100
    for name in KEPT:
        assert getattr(m, name) == getattr(old, name), name
    assert store.load()[2] == persist.FORMAT


class CountingIdentity(MemoryState):
    """A memory store counting identity writes."""

    def __init__(self):
        super().__init__()
        self.identity_saves = 0

    def save_identity(self, data):
        self.identity_saves += 1
        super().save_identity(data)


def test_identity_in_an_older_state_moves_to_its_own_store_once():
    """A format-2 state holding the identity: the boot writes it to the identity store and saves a state without
    it; a second boot reads it from the identity store and writes nothing to it; a corrupt state then still
    has it."""
    old = _before()
    store = CountingIdentity()
    m, store = _boot(old_state(old, 2), store)
    assert persist.unpack_identity(store.load_identity()) == (4711, SECRET)
    assert SECRET not in store.load() and store.identity_saves == 1
    m2 = Interlock(_Board(), m.log, store)
    m2.boot(0, WALL + 30)
    assert (m2.device_id, m2.secret) == (4711, SECRET) and store.identity_saves == 1
    store.save(b"\x00" * persist.SIZE)  # the state is damaged
    m3 = Interlock(_Board(), m.log, store)
    m3.boot(0, WALL + 60)
    assert m3.state_lock and (m3.device_id, m3.secret) == (4711, SECRET) and m3.keys() is not None


def test_provisioning_writes_the_identity_store():
    """Provisioning writes the identity to its own store before the state; unusable identity bytes are refused."""
    store = MemoryState()
    m = Interlock(_Board(), MemoryLog(), store)
    m.boot(0, WALL)
    assert m.provision(0, 99, SECRET)
    assert persist.unpack_identity(store.load_identity()) == (99, SECRET)
    assert SECRET not in store.load()
    good = store.load_identity()
    for bad in (None, good[:-1], b"XX" + good[2:], good[:2] + b"\x07" + good[3:],
                persist.pack_identity(0, SECRET)):
        assert persist.unpack_identity(bad) is None
    logged = [m.log.read(s) for s in range(1, m.log.next_seq())]
    assert any(r[2] == records.SERVICE and r[3] == records.SVC_PROVISION and r[4] == 1 for r in logged)


def test_unusable_states_of_every_format_are_refused():
    """A state of a format with the wrong length, or of an unknown format, does not load (the caller fails safe)."""
    old = _before()
    m = Interlock(_Board(), MemoryLog(), MemoryState())
    for data in (old_state(old, 1) + b"\x00" * 4, old_state(old, 2)[:-4], b"IS\x04" + old_state(old, 2)[3:],
                 b"IS\x00" + old_state(old, 2)[3:]):
        assert persist.unpack(data, m) == -1
        assert m.device_id == 0 and not m.vlock  # nothing was loaded


def format_3_state(m):
    """The state of Interlock m as the firmware of format 3 saved it: 28 reserved bytes after the technician
    policy count, and the 49 policy values that SPEC had then (kept here to test the migration)."""
    cur = bytes(persist.pack(m))
    head = bytearray(cur[:persist._ABORTS_AT + 40])
    head[2] = 3
    head[12:16] = b"\x00" * 4  # format 4 keeps the start-up failure there; format 3 reserved it
    values = b"".join(struct.pack(">i", v) for v in m.policy.values()[:49])
    return bytes(head) + values


def test_format_3_state_loads_with_the_state_rule_values_at_their_defaults():
    """A format-3 state loads everything it held; the policy values appended since (state rules) keep today's
    behaviour (their defaults); the boot saves format 4, which keeps them and a pending start-up failure."""
    from fsm.policy import Policy

    old = _before()
    old.device_id, old.secret = 0, None
    old.startup_fail_at = WALL - 30
    data = format_3_state(old)
    assert len(data) == 364
    m, store = _boot(data)
    assert not m.state_lock and m.startup_fail_at == 0
    for name in KEPT:
        if name not in ("device_id", "secret"):
            assert getattr(m, name) == getattr(old, name), name
    fresh = Policy()
    for name in ("retest_redemand", "temp_lock_repeat", "retest_next_from", "startup_fail_s", "startup_fail_vio",
                 "outage_grace_days"):
        assert getattr(m.policy, name) == getattr(fresh, name), name
    assert m.policy.fail_brac == 30 and m.policy.version == 12
    saved = store.load()
    assert saved[2] == persist.FORMAT == 4 and len(saved) == persist.SIZE
    assert m.policy.apply({"version": 13, "startup_fail_s": 600, "temp_lock_repeat": 3}) is None
    m.startup_fail_at = WALL + 5
    again = Interlock(_Board(), MemoryLog(), MemoryState())
    assert persist.unpack(bytes(persist.pack(m)), again) >= 0
    assert again.startup_fail_at == WALL + 5
    assert again.policy.startup_fail_s == 600 and again.policy.temp_lock_repeat == 3
    assert persist.unpack(data[:-4], again) == -1 and persist.unpack(b"IS\x05" + data[3:], again) == -1


def test_a_format_4_state_saved_before_a_policy_value_was_appended_loads_it_at_its_default():
    """Format 4's length follows SPEC: a state saved by firmware whose SPEC ended at outage_grace_days (55 values)
    loads, and startup_fail_now (appended since) keeps today's behaviour; a state longer than SPEC, or cut
    inside a value, is refused."""
    from fsm.policy import Policy

    old = _before()
    assert old.policy.apply({"version": 20, "startup_fail_s": 600, "startup_fail_now": 1}) is None
    full = bytes(persist.pack(old))
    assert len(full) == persist.SIZE
    first = full[:persist._SIZE_V4]  # what the first format-4 firmware wrote (the same head, 55 values)
    again = Interlock(_Board(), MemoryLog(), MemoryState())
    assert persist.unpack(first, again) >= 0
    assert again.policy.startup_fail_s == 600 and again.policy.version == 20
    assert again.policy.startup_fail_now == Policy().startup_fail_now == 0
    assert persist.unpack(full + b"\0\0\0\0", again) == -1
    assert persist.unpack(full[:-2], again) == -1
    assert persist.unpack(first[:-4], again) == -1
