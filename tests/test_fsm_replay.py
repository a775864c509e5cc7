"""The log is the write-ahead record: booting on any older saved state and the whole log rebuilds the lockouts,
counters, used codes and pending retest the handset had (what a power cut before a save would leave)."""

import copy

import pytest

from fsm.machine import Interlock
from host_sim import scenario
from storage.memory import MemoryState
from tests.interpreters import ROOT

# what the log replay must rebuild
REPLAYED = ("vlock", "lockout_id", "lock_cause", "violations", "recall_deadline", "temp_until", "fail_streak",
            "fail_lock_end", "code_counter", "codes_used", "code_fails", "code_wait_until", "retest_pending",
            "engine_saved", "provisioned_before", "abort_times")


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
                                  "code_refusals", "boundary_aborts"])
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
