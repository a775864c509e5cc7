"""Example tests of the boot (Interlock.boot): a state missing or corrupt, a cut inside the first boot, the gap and
a flat battery, what a cut left owed, a pending retest of a format-1 state, and the first heartbeat."""

import pytest

from fsm import menu, persist, records
from fsm.inputs import Inputs
from fsm.machine import BROWNOUTS_EXCUSED, S_RETEST, Interlock
from host_sim.world import default_module
from storage.memory import MemoryLog, MemoryState
from tests.fsm_handset import QuietBoard as _Board
from tests.test_fsm_persist_formats import old_state

RTC = 90_000_000  # device time at the first boot (2026-11-07)
TICK = 1_000_000
HOUR = 3600


class _Cut(Exception):
    """The power went: the firmware stops where it is."""


class CutLog(MemoryLog):
    """A log whose power goes right after it has committed a record of the type `cut_after` (once)."""

    def __init__(self):
        super().__init__()
        self.cut_after = None

    def append(self, wall, rtype, a=0, b=0, c=0, photo=0):
        seq = super().append(wall, rtype, a, b, c, photo)
        if rtype == self.cut_after:
            self.cut_after = None
            raise _Cut()
        return seq


class StampState(MemoryState):
    """A state store that keeps every heartbeat stamp."""

    def __init__(self):
        super().__init__()
        self.stamps = []

    def stamp(self, wall):
        super().stamp(wall)
        self.stamps.append(wall)


def _inputs(rtc=RTC, ignition=False, engine=False):
    inp = Inputs()
    inp.rtc = rtc
    inp.module_present = True
    inp.module = default_module(start_wall=RTC)
    inp.cell_temp = 355
    inp.ignition = ignition
    inp.engine = engine
    return inp


def _first_boot(log=None, state=None):
    """A handset booted for the first time on an empty log and state, and polled once: (log, state)."""
    log = log if log is not None else MemoryLog()
    state = state if state is not None else MemoryState()
    m = Interlock(_Board(), log, state)
    m.boot(TICK, RTC)
    m.step(TICK, _inputs())
    return log, state


def _since(log, start):
    return [log.read(s)[2:6] for s in range(start, log.next_seq())]


# ---- a state missing or corrupt -----------------------------------------------------------------

@pytest.mark.parametrize("damage", ["missing", "unreadable"])
def test_a_state_lost_beside_a_log_locks_for_service_and_says_so_in_its_records(damage):
    """HANDSET.md, safety invariant 6: lockouts and counters survive any power cut, so a state that is gone (the
    log holds records: this is no first boot) or that does not parse fails safe: locked for service (LOCKOUT
    a=LOCK_STATE b=0 c=0, until cleared), and the BOOT record says the state was missing or corrupt (c=1)."""
    log, state = _first_boot()
    state._data = None if damage == "missing" else b"\xff" * 40
    start = log.next_seq()
    m = Interlock(_Board(), log, state)
    m.boot(TICK, RTC + 30)
    got = _since(log, start)
    assert got[:2] == [(records.BOOT, menu.FIRMWARE_VERSION, -1, 1), (records.LOCKOUT, records.LOCK_STATE, 0, 0)]
    assert m.state_lock


def test_a_cut_right_after_the_first_boot_record_leaves_no_corrupt_state():
    """The first boot saves a state before its first record: a cut right after the BOOT record (before the
    boot's last save) leaves a state to load, so the next boot is an ordinary one (BOOT c=0, no LOCK_STATE)."""
    log, state = CutLog(), MemoryState()
    log.cut_after = records.BOOT
    with pytest.raises(_Cut):
        Interlock(_Board(), log, state).boot(TICK, RTC)
    assert log.next_seq() == 2
    m = Interlock(_Board(), log, state)
    m.boot(TICK, RTC + 5)
    got = _since(log, 2)
    assert got[0] == (records.BOOT, menu.FIRMWARE_VERSION, 5, 0)
    assert not any(r[0] == records.LOCKOUT for r in got)
    assert not m.state_lock


# ---- the gap and a flat battery ----------------------------------------------------------------

def test_a_boot_told_nothing_of_a_flat_battery_books_a_long_gap_as_a_power_cut():
    """HANDSET.md, power: a long gap is a violation. boot's battery_failed says the supply sagged away before
    it; left out, there was no such sag, and a gap of an hour is a POWER_GAP record and a violation."""
    log, state = _first_boot()
    start = log.next_seq()
    Interlock(_Board(), log, state).boot(TICK, RTC + HOUR)
    got = _since(log, start)
    assert any(r[0] == records.POWER_GAP for r in got)
    assert [r[1] for r in got if r[0] == records.VIOLATION] == [records.VIO_POWER_CUT]


def test_a_flat_battery_excuses_one_gap_per_service_period_and_the_state_counts_it_once():
    """A gap after the supply sagged away is logged (POWER_GAP) but excused BROWNOUTS_EXCUSED (1) times: the
    excuse is counted in the saved state as one, and the next such gap is a violation."""
    assert BROWNOUTS_EXCUSED == 1
    log, state = _first_boot()
    start = log.next_seq()
    m = Interlock(_Board(), log, state)
    m.boot(TICK, RTC + HOUR, battery_failed=True)
    got = _since(log, start)
    assert any(r[0] == records.POWER_GAP for r in got)
    assert not any(r[0] == records.VIOLATION for r in got)
    assert m.brownouts == 1
    saved = Interlock(_Board(), MemoryLog(), MemoryState())
    assert persist.unpack(state.load(), saved) > 0 and saved.brownouts == 1
    start = log.next_seq()
    Interlock(_Board(), log, state).boot(TICK, RTC + 3 * HOUR, battery_failed=True)
    assert [r[1] for r in _since(log, start) if r[0] == records.VIOLATION] == [records.VIO_POWER_CUT]


# ---- what a cut left owed ------------------------------------------------------------------------

def test_a_service_code_cut_before_its_extension_is_booked_as_the_codes_at_boot():
    """An accepted service code (CODE a=1 b=2) whose extension the cut came before: the boot extends the service
    and its SERVICE record names the code as the source (a=SVC_EXTEND b=SRC_CODE c=code_service_days), as the
    extension right after the code does."""
    log, state = _first_boot()
    log.append(RTC + 1, records.CODE, 1, 2, 1, 0)  # the cut came right after it
    start = log.next_seq()
    m = Interlock(_Board(), log, state)
    m.boot(TICK, RTC + 5)
    ext = [r for r in _since(log, start) if r[0] == records.SERVICE]
    assert ext == [(records.SERVICE, records.SVC_EXTEND, records.SRC_CODE, m.policy.code_service_days)]
    assert m.code_counter == 2


# ---- a pending retest of a format-1 state ------------------------------------------------------

def test_a_retest_pending_in_a_format_1_state_gets_a_whole_window_from_the_boot():
    """A state of format 1 (older firmware) kept no retest deadline: the pending retest gets the window that
    firmware gave after a cut, retest_window_s from the boot. Resumed with the engine running, it is not missed
    in that window's last second and is missed when it runs out (RETEST a=RT_MISSED)."""
    log, state = _first_boot()
    old = Interlock(_Board(), log, MemoryState())
    assert persist.unpack(state.load(), old) > 0
    old.retest_pending = old.engine_saved = True
    state.save(old_state(old, 1))
    boot_wall = RTC + 20
    m = Interlock(_Board(), log, state)
    m.boot(TICK, boot_wall)
    window = m.policy.retest_window_s
    start = log.next_seq()
    inp = _inputs(rtc=0, ignition=True, engine=True)
    inp.charging = True
    m.step(TICK, inp)
    assert m.state == S_RETEST
    m.step(TICK + (window - 1) * 1000, inp)
    assert m.wall == boot_wall + window - 1
    assert not any(r[0] == records.RETEST and r[1] == records.RT_MISSED for r in _since(log, start))
    m.step(TICK + window * 1000, inp)
    assert any(r[0] == records.RETEST and r[1] == records.RT_MISSED for r in _since(log, start))


# ---- the first heartbeat -----------------------------------------------------------------------

def test_the_first_heartbeat_after_a_boot_comes_alive_s_after_it():
    """The boot itself saves device time as the last sign of life; the heartbeat (a stamp) follows every alive_s
    from it, the first alive_s after the boot, not at the first poll."""
    log, state = MemoryLog(), StampState()
    m = Interlock(_Board(), log, state)
    m.boot(TICK, RTC)
    alive = m.policy.alive_s
    inp = _inputs(rtc=0)
    for s in range(alive):
        m.step(TICK + s * 1000, inp)
    assert state.stamps == []
    m.step(TICK + alive * 1000, inp)
    assert state.stamps == [RTC + alive]
