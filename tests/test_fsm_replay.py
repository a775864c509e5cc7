"""The log is the write-ahead record: booting on any older saved state and the whole log rebuilds the lockouts,
counters, used codes, due dates and pending retest the handset had (what a power cut before a save would leave)."""

import copy

import pytest

from fsm.machine import Interlock
from host_sim import scenario
from storage.memory import MemoryState
from tests.interpreters import ROOT

# what the log replay must rebuild
REPLAYED = ("vlock", "lockout_id", "lock_cause", "violations", "recall_deadline", "temp_until", "fail_streak",
            "fail_lock_end", "code_counter", "codes_used", "code_fails", "code_wait_until", "retest_pending",
            "engine_saved", "provisioned_before", "abort_times", "service_due", "inspection_due",
            "payment_due")


class SnapshotState(MemoryState):
    """A state store that keeps every save."""

    def __init__(self):
        super().__init__()
        self.saves = []

    def save(self, data):
        """Keep a copy of every save."""
        super().save(data)
        self.saves.append(bytes(data))


class _Board:
    def __getattr__(self, name):
        return lambda *a: 0


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
