"""The log is the write-ahead record: booting on any older saved state and the whole log rebuilds the lockouts,
counters, used codes, due dates and pending retest the handset had (what a power cut before a save would leave)."""

import copy

import pytest

from fsm.machine import Interlock
from host_sim import scenario
from storage.memory import MemoryState
from tests.fsm_handset import QuietBoard as _Board
from tests.interpreters import ROOT

# what the log replay must rebuild
REPLAYED = ("vlock", "lockout_id", "lock_cause", "violations", "recall_deadline", "temp_until", "fail_streak",
            "fail_lock_end", "code_counter", "codes_used", "code_fails", "code_wait_until", "retest_pending",
            "engine_saved", "provisioned_before", "abort_times", "service_due", "inspection_due",
            "payment_due", "startup_fail_at")


class SnapshotState(MemoryState):
    """A state store that keeps every save."""

    def __init__(self):
        super().__init__()
        self.saves = []

    def save(self, data):
        """Keep a copy of every save."""
        super().save(data)
        self.saves.append(bytes(data))


def _values(m):
    out = {name: getattr(m, name) for name in REPLAYED}
    out["abort_times"] = list(m.abort_times)
    out["temp_kind"] = m.temp_kind if m.temp_until else 0
    out["retest_deadline"] = m.retest_deadline if m.retest_pending else 0
    return out


@pytest.mark.parametrize("name", ["violations_per_service_period", "code_single_use", "fail_lockouts", "aborts",
                                  "retest_missed", "clear_remote", "retest_window_survives_power_cuts",
                                  "code_refusals", "boundary_aborts", "service_code_moves_inspection",
                                  "payment_lock", "service_visit_keeps_lockout"])
def test_booting_on_an_older_state_replays_the_log(name):
    """From each earlier save, the boot rebuilds the same lockouts, counters and codes from the log."""
    state = SnapshotState()
    sc = scenario.Scenario(name, storage=(None, state))
    sc.run_text((ROOT / "tests" / "scenarios" / (name + ".scn")).read_text())
    final = sc.sim.fsm
    want = _values(final)
    wall = final.wall
    checked = 0
    for old in state.saves[::max(1, len(state.saves) // 8)]:
        log = copy.deepcopy(sc.sim.log)
        store = MemoryState()
        store._data = old
        store._stamp = wall  # the heartbeat just before the cut: no long-gap violation
        m = Interlock(_Board(), log, store)
        m.boot(0, wall)
        got = _values(m)
        assert got == want, "booting on save %d of %d: %s" % (state.saves.index(old), len(state.saves), {
            k: (got[k], want[k]) for k in got if got[k] != want[k]})
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("name", ["fail_lockouts", "boundary_temp_lock", "boundary_fail_window",
                                  "violations_per_service_period",
                                  "code_refusals", "aborts"])
def test_each_save_is_what_the_log_replay_rebuilds_from_the_one_before(name):
    """Booting on one save and the log up to the next save rebuilds what the next save holds."""
    from fsm import persist

    state = SnapshotState()
    sc = scenario.Scenario(name, storage=(None, state))
    sc.run_text((ROOT / "tests" / "scenarios" / (name + ".scn")).read_text())
    log = sc.sim.log
    compared = 0
    for old, new in zip(state.saves, state.saves[1:], strict=False):
        after = Interlock(_Board(), log, MemoryState())
        upto = persist.unpack(new, after)
        if upto <= persist.unpack(old, Interlock(_Board(), log, MemoryState())):
            continue  # nothing logged between the two saves
        cut = copy.deepcopy(log)
        del cut._records[upto - cut._first:]
        store = MemoryState()
        store._data = old
        store._stamp = after.last_alive
        m = Interlock(_Board(), cut, store)
        m.boot(0, after.last_alive)
        want, got = _values(after), _values(m)
        for k in ("engine_saved", "retest_deadline"):
            del want[k], got[k]  # the live machine saves these from inputs the log records only in part
        assert got == want, {k: (got[k], want[k]) for k in got if got[k] != want[k]}
        compared += 1
    assert compared >= 5


@pytest.mark.parametrize("name, action", [("clear_by_code", 1), ("service_code_moves_inspection", 2)])
def test_a_cut_right_after_an_accepted_code_does_not_spend_it_for_nothing(name, action):
    """A cut after the CODE record of an accepted code and before what the code does (the CLEAR or the SERVICE
    extension record, and the save) leaves the code used: the boot must do what it was accepted for."""
    from fsm import persist
    from fsm import records as R

    state = SnapshotState()
    sc = scenario.Scenario(name, storage=(None, state))
    sc.run_text((ROOT / "tests" / "scenarios" / (name + ".scn")).read_text())
    assert not sc.failures
    log = sc.sim.log
    code_seq = next(s for s in range(log.first_seq(), log.next_seq())
                    if log.read(s)[2] == R.CODE and log.read(s)[3] == 1 and log.read(s)[4] == action)
    done = log.read(code_seq + 1)
    assert done[2] == (R.CLEAR if action == 1 else R.SERVICE)  # what the code did comes next
    old = [s for s in state.saves if persist.unpack(s, Interlock(_Board(), log, MemoryState())) <= code_seq][-1]
    before = Interlock(_Board(), log, MemoryState())
    persist.unpack(old, before)
    cut = copy.deepcopy(log)
    del cut._records[code_seq + 1 - cut._first:]
    store = MemoryState()
    store._data = old
    store._stamp = done[1]
    m = Interlock(_Board(), cut, store)
    m.boot(0, done[1])
    assert m.code_counter == log.read(code_seq)[5] + 1  # the code is used
    if action == 1:
        assert before.vlock and not m.vlock, "the code was spent and the lockout is still in force"
        assert any(cut.read(s)[2:6] == (R.CLEAR, R.LOCK_VIOLATION, R.SRC_CODE, log.read(code_seq)[5])
                   for s in range(code_seq + 1, cut.next_seq())), "no CLEAR naming the code's counter"
    else:
        days = m.policy.code_service_days
        assert m.inspection_due == max(before.inspection_due, done[1] // 86400) + days, "the extension was lost"
        assert any(cut.read(s)[2] == R.SERVICE and cut.read(s)[3] == R.SVC_EXTEND
                   for s in range(code_seq + 1, cut.next_seq()))


@pytest.mark.parametrize("count, locked", [(2, False), (3, True)])
def test_a_cut_between_a_violation_and_its_lockout_still_locks_out(count, locked):
    """A cut after the VIOLATION record that reaches the limit and before its LOCKOUT record: the boot locks
    out for that violation's cause. One below the limit (the second violation, cut at the same place) does
    not lock."""
    from fsm import persist
    from fsm import records as R

    state = SnapshotState()
    sc = scenario.Scenario("violations_immediate", storage=(None, state))
    sc.run_text((ROOT / "tests" / "scenarios" / "violations_immediate.scn").read_text())
    assert not sc.failures
    log = sc.sim.log
    vio_seq = next(s for s in range(log.first_seq(), log.next_seq())
                   if log.read(s)[2] == R.VIOLATION and log.read(s)[4] == count)
    vio = log.read(vio_seq)
    old = [s for s in state.saves if persist.unpack(s, Interlock(_Board(), log, MemoryState())) <= vio_seq][-1]
    cut = copy.deepcopy(log)
    del cut._records[vio_seq + 1 - cut._first:]
    store = MemoryState()
    store._data = old
    store._stamp = vio[1]
    m = Interlock(_Board(), cut, store)
    m.boot(0, vio[1])
    assert m.violations == count
    assert m.vlock is locked
    if locked:
        assert m.lock_cause == vio[3]
        assert cut.read(m.lockout_id)[2:4] == (R.LOCKOUT, R.LOCK_VIOLATION)


def _boot_and_poll(save, log, wall, ignition=False):
    """Boot on `save` with a copy of `log` (the heartbeat just before the cut), poll once with the key as
    given: the records the boot and the poll log (without their times) and the replayed values."""
    from fsm.inputs import Inputs

    log = copy.deepcopy(log)
    store = MemoryState()
    store._data = save
    store._stamp = wall
    m = Interlock(_Board(), log, store)
    start = log.next_seq()
    m.boot(0, wall)
    inp = Inputs()
    inp.rtc = wall
    inp.ignition = ignition
    m.step(500, inp)
    logged = [log.read(s)[2:6] for s in range(start, log.next_seq())]
    return logged, _values(m)


def _older_saves_agree(text, pick, ignition=False):
    """Run `text`; booting on each save that `pick` (given the saved machine) selects, with the whole log, and
    polling once logs the same records and rebuilds the same values as booting on the newest save: what a cut
    after a record and before its save leaves is what the log says. Returns the number of saves compared and
    the records of the newest one's boot."""
    from fsm import persist

    state = SnapshotState()
    sc = scenario.Scenario("older_saves", storage=(None, state))
    sc.run_text(text)
    assert not sc.failures, sc.failures
    log = sc.sim.log
    wall = sc.sim.fsm.wall
    want = _boot_and_poll(state.saves[-1], log, wall, ignition)
    compared = 0
    for i, old in enumerate(state.saves[:-1]):
        saved = Interlock(_Board(), log, MemoryState())
        persist.unpack(old, saved)
        if not pick(saved):
            continue
        got = _boot_and_poll(old, log, wall, ignition)
        assert got == want, "booting on save %d of %d: %s" % (i, len(state.saves), got[0])
        compared += 1
    return compared, want[0]


def test_an_alarm_logged_after_the_save_is_not_booked_again_as_a_refused_retest():
    """A missed retest sounds the alarm (ALARM a=1); a cut before the save that holds the alarm, then the key
    off: the boot ends the alarm as the newest save would (ALARM a=0), with no refused-retest violation."""
    from fsm import records as R

    n, logged = _older_saves_agree(
        'key on\nwait-for "BLOW" within 10s\nblow\nwait-for "START" within 15s\ncrank\n'
        'wait-for "RETEST - BLOW" within 16m\nwait 6m\nexpect horn on\nexpect log VIOLATION a=1 b=1\n',
        lambda saved: saved.retest_pending and not saved.alarm_at_save)
    assert n >= 1
    assert (R.ALARM, 0, 0, 0) in logged
    assert not any(r[0] == R.VIOLATION for r in logged)


@pytest.mark.parametrize("ending", ["wait-for \"START\" within 15s\n",  # the RESULT ends the analysis
                                    "key off\nwait 5s\n",  # ... also with the key off
                                    "module remove\nwait 2s\n",  # the module leaving (MODULE, STATE) ends it
                                    "unplug\nwait 2s\nplug\nwait 2s\n"])  # so does the handset unplugged
def test_an_analysis_that_ended_after_the_save_is_not_booked_as_cut_short(ending):
    """A save taken while a sample was analysed, then the analysis ended (a result, the key off or the module
    pulled) before the cut: the boot does not book the sample as lost to the cut (FAULT a=3) or lock for it."""
    from fsm import records as R

    n, logged = _older_saves_agree(
        'key on\nwait-for "BLOW" within 10s\nblow\nexpect display "ANALYZING"\n' + ending,
        lambda saved: saved.analyzing)
    assert n >= 1
    assert not any(r[0] == R.FAULT and r[1] == 3 for r in logged)


def test_provisioning_logged_after_the_save_is_replayed_and_nothing_else_counts_as_one():
    """A provisioning (SERVICE SVC_PROVISION b=1) logged after the save marks the handset provisioned once at
    boot (a second secret is refused); a refused provisioning (b=0) and other records with b=1 do not."""
    from fsm import records as R
    from host_sim.handset import sim_secret
    from storage.memory import MemoryLog

    def fresh():
        store = SnapshotState()
        log = MemoryLog()
        m = Interlock(_Board(), log, store)
        m.boot(0, 1000)
        return m, log, store

    # refused provisioning, then a reboot (BOOT b=1: a 1 s gap) and a retest request (RETEST b=1)
    m, log, store = fresh()
    first = store.saves[0]
    assert not m.provision(0, 0, b"short")
    m._log(R.RETEST, 0, 1, R.RQ_POWER_CUT)
    m._log(R.BOOT, 1, 1, 0)
    m._log(R.SERVICE, R.SVC_EXTEND + 100, 1, 0)  # a service record of no known kind
    again = Interlock(_Board(), log, MemoryState())
    again.store._data = first
    again.store._stamp = 1000
    again.boot(0, 1000)
    assert again.provisioned_before is False
    assert again.provision(0, 77, sim_secret(77))
    # provisioned after the save: the boot knows it, and a second secret is refused
    m, log, store = fresh()
    first = store.saves[0]
    assert m.provision(0, 77, sim_secret(77))
    again = Interlock(_Board(), log, MemoryState())
    again.store._data = first
    again.store._stamp = 1000
    again.boot(0, 1000)
    assert again.provisioned_before is True
    assert not again.provision(0, 78, sim_secret(78))


@pytest.mark.parametrize("which", [1, 2])
def test_a_due_date_the_companion_moved_after_the_save_is_replayed(which):
    """The companion's desired state moved the service (INSPECTION a=3 c=1) or inspection (c=2) due day after
    the save: the boot moves that date, and only that one."""
    from storage.memory import MemoryLog

    store = SnapshotState()
    log = MemoryLog()
    m = Interlock(_Board(), log, store)
    m.boot(0, 1000)
    first = store.saves[0]
    service, inspection = m.service_due, m.inspection_due
    m.set_desired(0, 1, m.payment_due, service + 40 if which == 1 else service,
                  inspection + 50 if which == 2 else inspection, m.expected_module)
    again = Interlock(_Board(), log, MemoryState())
    again.store._data = first
    again.store._stamp = 1000
    again.boot(0, 1000)
    assert (again.service_due, again.inspection_due) == (m.service_due, m.inspection_due)
    assert (again.service_due, again.inspection_due) != (service, inspection)


def test_the_replay_reads_each_record_once():
    """The replay walks the log forward, one record at a time, and stops at its end."""
    from fsm import records as R
    from storage.memory import MemoryLog

    class CountingLog(MemoryLog):
        def __init__(self):
            super().__init__()
            self.reads = {}

        def read(self, seq):
            self.reads[seq] = self.reads.get(seq, 0) + 1
            if self.reads[seq] > 2:
                raise AssertionError("record %d read again and again" % seq)
            return super().read(seq)

    store = SnapshotState()
    log = CountingLog()
    m = Interlock(_Board(), log, store)
    m.boot(0, 1000)
    first = store.saves[0]
    for i in range(5):
        m._log(R.ABORT, 0, i, 0)
    log.reads.clear()
    again = Interlock(_Board(), log, MemoryState())
    again.store._data = first
    again.store._stamp = 1000
    again.boot(0, 1000)
    replayed = [s for s in log.reads if s >= 1]
    assert max(log.reads.values()) == 1
    assert len(replayed) >= 5


# a failed start test (.045 against the default fail point .020) that opens the start-up failure window
_STARTUP_FAIL = ('policy startup_fail_s=600 temp_lock_s=120\n'
                 'key on\nwait-for "BLOW" within 10s\nblow brac=.045\nwait-for "FAIL" within 10s\n')
_AFTER_LOCK = 'wait-for "BLOW" within 140s\n'
_LOST = 'blow brac=.080\nexpect display "ANALYZING"\nmodule remove\nexpect log FAULT a=3 b=1 c=6\n'


@pytest.mark.parametrize("text, pick, pending", [
    # the fail itself: the boot opens the window at the fail's time
    (_STARTUP_FAIL, lambda saved: saved.policy.startup_fail_s and not saved.startup_fail_at, True),
    # a pass after it, reading above startup_excuse_brac (0 here): the window ends as with any pass
    (_STARTUP_FAIL + _AFTER_LOCK + 'blow brac=.005\nwait-for "PASS" within 10s\n',
     lambda saved: saved.startup_fail_at, False),
    # a failed test at startup_excuse_brac itself (TN 1340-03-06-.13: .020 fails, and excuses the earlier fail)
    (_STARTUP_FAIL.replace("startup_fail_s=600", "startup_fail_s=600 startup_excuse_brac=20") + _AFTER_LOCK
     + 'blow brac=.020\nwait-for "FAIL" within 10s\nexpect log RESULT a=20 b=3 c=1\n',
     lambda saved: saved.startup_fail_at, False),
    # the start-up failure booked (STARTUP_FAIL) after the window: nothing pending any more
    (_STARTUP_FAIL + 'key off\nwait 11m\nexpect log STARTUP_FAIL b=600\n', lambda saved: saved.startup_fail_at,
     False),
    # a start test's analysis lost (the module pulled) counts as a failed test and opens the window
    (_STARTUP_FAIL.split("blow")[0] + _LOST, lambda saved: saved.policy.startup_fail_s and not saved.startup_fail_at,
     True),
    # ... and with a fail already pending, it keeps that fail's window (it excuses nothing)
    (_STARTUP_FAIL + _AFTER_LOCK + _LOST, lambda saved: saved.analyzing, True),
], ids=["fail", "pass", "excused", "booked", "lost", "lost-while-pending"])
def test_a_start_test_logged_after_the_save_is_replayed_for_the_start_up_failure_rule(text, pick, pending):
    """startup_fail_s (MI R 257.301a(j), IN 260 IAC 3-2-1(3)(C), TN 1340-03-06-.13): a failed start test opens the
    start-up failure window, a pass (or a test at or below startup_excuse_brac) ends it, its STARTUP_FAIL record
    ends it too. A cut after such a record and before its save: the boot rebuilds the pending fail (the time the
    STARTUP_FAIL record is booked with and names) as the newest save holds it. (Saves from before the policy set
    the rule are not compared: the policy itself is not replayed from the log.)"""
    from fsm import persist

    n, _logged = _older_saves_agree(text, pick)
    assert n >= 1
    state = SnapshotState()
    sc = scenario.Scenario("older_saves", storage=(None, state))
    sc.run_text(text)
    newest = Interlock(_Board(), sc.sim.log, MemoryState())
    persist.unpack(state.saves[-1], newest)
    assert bool(newest.startup_fail_at) is pending


def test_only_a_start_test_s_lost_analysis_is_replayed_as_a_failed_start_test():
    """FAULT a=3 (FAULT_ANALYSIS_LOST) b=1 is a start test's analysis lost: the boot opens the start-up failure
    window for it. The other faults (a retest's lost analysis, b=2; a warm-up timeout) open none."""
    from fsm import records as R
    from fsm.policy import Policy
    from storage.memory import MemoryLog

    policy = Policy()
    assert policy.apply({"version": 1, "startup_fail_s": 600}) is None
    store = SnapshotState()
    log = MemoryLog()
    m = Interlock(_Board(), log, store, policy)
    m.boot(0, 1000)
    first = store.saves[-1]

    def booted():
        again = Interlock(_Board(), log, MemoryState())
        again.store._data = first
        again.store._stamp = 1000
        again.boot(0, 1000)
        return again.startup_fail_at

    m._log(R.FAULT, R.FAULT_ANALYSIS_LOST, 2, 6)
    m._log(R.FAULT, R.FAULT_WARMUP, 150, 1)
    m._log(R.FAULT, R.FAULT_RUNTIME, 0, 0)
    assert booted() == 0
    m.wall = 1100
    m._log(R.FAULT, R.FAULT_ANALYSIS_LOST, 1, 6)
    assert booted() == 1100


def test_a_clear_logged_after_the_save_leaves_no_restart_at_any_device_time():
    """A violation lockout's clear (CLEAR a=LOCK_VIOLATION) logged after the save, then a cut: the boot ends the
    lockout with no free restart, as the clear itself does (HANDSET.md: after a clear a breath test is still
    required), whatever device time a signed clock set brings next, even its first second (2024-01-01 00:00:00)."""
    from fsm import persist
    from fsm import records as R
    from fsm.inputs import Inputs
    from fsm.machine import S_TEST
    from host_sim.world import default_module

    state = SnapshotState()
    sc = scenario.Scenario("clear_tech", storage=(None, state))
    sc.run_text((ROOT / "tests" / "scenarios" / "clear_tech.scn").read_text())
    assert not sc.failures
    log = sc.sim.log
    clear_seq = next(s for s in range(log.first_seq(), log.next_seq())
                     if log.read(s)[2:4] == (R.CLEAR, R.LOCK_VIOLATION))
    old = [s for s in state.saves if persist.unpack(s, Interlock(_Board(), log, MemoryState())) <= clear_seq][-1]
    before = Interlock(_Board(), log, MemoryState())
    persist.unpack(old, before)
    assert before.vlock
    cut = copy.deepcopy(log)
    del cut._records[clear_seq + 1 - cut._first:]
    wall = log.read(clear_seq)[1]
    store = MemoryState()
    store._data = old
    store._stamp = wall
    m = Interlock(_Board(), cut, store)
    m.boot(0, wall)
    assert not m.vlock
    m.set_time(0, 0, R.SRC_REMOTE)
    inp = Inputs()
    inp.module_present = True
    inp.module = default_module(start_wall=wall)
    inp.cell_temp = 355
    inp.ignition = True
    m.step(500, inp)
    assert m.state == S_TEST
