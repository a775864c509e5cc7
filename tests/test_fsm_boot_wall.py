"""Example tests of the first poll after a boot (what a cut drive, retest or alarm means), of device time and the
RTC (machine.py rule 1), and of the earlier of the service and inspection dates."""

import pytest

from fsm import persist, records
from fsm.inputs import Inputs
from fsm.machine import S_DRIVING, S_RETEST, Interlock
from host_sim import scenario
from host_sim.world import default_module
from storage.memory import MemoryLog, MemoryState
from tests.fsm_handset import QuietBoard as _Board

RTC = 90_000_000  # device time at the first boot (2026-11-07)
TICK = 1_000_000


def _run(text):
    """A scenario run from these lines (the default set-up: provisioned, a module in)."""
    sc = scenario.Scenario("unit")
    sc.run_text(text)
    return sc


def _records(sc, rtype, since=1):
    log = sc.sim.log
    return [log.read(s) for s in range(since, log.next_seq()) if log.read(s)[2] == rtype]


def _inputs():
    inp = Inputs()
    inp.rtc = RTC
    inp.module_present = True
    inp.module = default_module(start_wall=RTC)
    inp.cell_temp = 355
    return inp


# ---- the first poll after a boot ----------------------------------------------------------------

_RETEST_ASKED = """
key on
wait-for "BLOW" within 10s
blow
wait-for "START" within 15s
crank
wait-for "RETEST - BLOW" within 16m
"""


def test_a_retest_prompt_whose_key_went_off_during_a_power_cut_is_a_refusal():
    """HANDSET.md, missed or failed retest: ignition off during a retest prompt is a refusal, logged (RETEST a=5)
    and a violation (VIOLATION a=7). A power cut does not hide it: the handset powers up with the key off and
    books the refusal on its first poll; the retest is over (the next key-on is a start test, and a later
    power-up with the key off books nothing again)."""
    sc = _run(_RETEST_ASKED + """
wait 1m
power cut
key off
wait 30s
mark
power on
wait 1s
expect log RETEST a=5
expect log VIOLATION a=7 b=1
expect state OFF
""")
    assert not sc.failures, "\n".join(sc.failures)
    assert not sc.sim.fsm.retest_pending
    sc.run_text("""
mark
power cut
wait 5s
power on
wait 1s
expect no-log RETEST
expect no-log VIOLATION
key on
wait-for "BLOW" within 10s
expect state TEST
""")
    assert not sc.failures, "\n".join(sc.failures)


def test_an_alarm_cut_by_a_power_cut_with_the_key_off_ends_and_stays_ended():
    """HANDSET.md: the missed-retest alarm runs until a passing retest or ignition off. A power cut with the key
    turned off in it ends the alarm (ALARM a=0 on the first poll) and the retest, booked once (the missed retest
    was the violation, the key-off is no refusal), and saved so by that poll (machine.py rule 6), even when nothing
    else in it saves (the module was pulled during the cut too: no module edge): a second cut right after brings
    back neither the retest nor a refusal."""
    sc = _run(_RETEST_ASKED + """
wait 6m
expect horn on
expect log VIOLATION a=1 b=1
power cut
key off
module remove
wait 30s
mark
power on
wait 1s
expect log ALARM a=0
expect no-log RETEST a=5
expect no-log VIOLATION
expect horn off
""")
    assert not sc.failures, "\n".join(sc.failures)
    fsm = sc.sim.fsm
    assert not fsm.retest_pending
    saved = Interlock(_Board(), MemoryLog(), MemoryState())
    assert persist.unpack(fsm.store.load(), saved) > 0
    assert not saved.retest_pending
    sc.run_text("""
mark
power cut
wait 5s
power on
wait 1s
expect no-log RETEST
expect no-log VIOLATION
expect state OFF
""")
    assert not sc.failures, "\n".join(sc.failures)


@pytest.mark.parametrize("key", ["off", "on"])
def test_an_alarm_cut_by_a_power_cut_is_still_known_after_a_cut_before_the_first_poll(key):
    """One retest, one violation: the boot saves the state before its first poll decides what the cut alarm
    means, and that save still says the alarm sounded. A second cut in between (a crank's brown-out resets the
    handset at once) leaves it as the first cut did: with the key off the alarm ends (ALARM a=0, no refusal),
    with it on the alarm sounds on and the retest stays missed; no second violation either way."""
    sc = _run(_RETEST_ASKED + """
wait 6m
expect horn on
expect log VIOLATION a=1 b=1
power cut
key %s
wait 30s
""" % key)
    assert not sc.failures, "\n".join(sc.failures)
    sc.sim.power_on()
    sc.sim.power_cut()  # before the first poll
    sc.run_text("""
wait 5s
mark
power on
wait 1s
expect no-log RETEST a=5
expect no-log RETEST a=4
expect no-log VIOLATION
expect horn %s
""" % key)
    assert not sc.failures, "\n".join(sc.failures)

def test_a_retest_resumed_after_a_cut_logs_an_engine_run_by_its_charge():
    """The engine-sense wire cut during a retest prompt, then a power cut: the boot finds the alternator still
    charging, so the engine runs whatever its sense wire reads, and the resumed retest's ENGINE record says so
    (b=1, as every engine taken as running by the charge is logged)."""
    sc = _run(_RETEST_ASKED + """
wait 30s
engine-sense cut
wait 5s
expect log ENGINE a=1 b=1
mark
power cut
wait 20s
power on
wait 1s
expect log ENGINE a=1 b=1
expect state RETEST
expect engine on
""")
    assert not sc.failures, "\n".join(sc.failures)


def _driving():
    """A handset polled with hand-set inputs through a passed start test and a crank into DRIVING, then cut:
    (log, state, inputs, the device time its next boot measures the gap from)."""
    log, state = MemoryLog(), MemoryState()
    m = Interlock(_Board(), log, state, seed=3)
    inp = _inputs()
    now = TICK
    m.boot(now, inp.rtc)
    m.step(now, inp)
    inp.ignition = True
    inp.flow, inp.breath_temp = 400, 340
    for _ in range(101):
        now += 50
        m.step(now, inp)
    inp.flow, inp.breath_temp = 0, 200
    for _ in range(400):
        now += 50
        m.step(now, inp)
        if m._relay:
            break
    inp.engine = True
    now += 50
    m.step(now, inp)
    assert m.state == S_DRIVING and m._restart_allowed()
    return log, state, inp, m.last_alive


@pytest.mark.parametrize("gap, resumed", [(0, True), (1, True), (119, True), (120, False), (121, False)])
def test_a_drive_cut_by_a_power_cut_resumes_unasked_only_inside_the_free_restart_window(gap, resumed):
    """HANDSET.md, free restart (2 min): a drive that a power cut interrupted resumes without a retest when the
    gap (from the last heartbeat) is shorter than free_restart_s, from 0 s up; from free_restart_s on, a retest is
    asked at once (RETEST c=RQ_POWER_CUT)."""
    log, state, inp, alive = _driving()
    m = Interlock(_Board(), log, state, seed=4)
    start = log.next_seq()
    now = TICK + 10_000_000
    inp.rtc = alive + gap
    m.boot(now, inp.rtc)
    m.step(now + 50, inp)
    got = [log.read(s) for s in range(start, log.next_seq())]
    assert [r[4] for r in got if r[2] == records.BOOT] == [gap]
    asked = [r for r in got if r[2] == records.RETEST and r[4] == 1]
    if resumed:
        assert m.state == S_DRIVING and not asked
    else:
        assert m.state == S_RETEST and [r[5] for r in asked] == [records.RQ_POWER_CUT]


# ---- device time and the RTC --------------------------------------------------------------------

def _clocked(delta, seconds=7):
    """A booted handset whose RTC reads `delta` s off device time at a poll `seconds` after the boot: (the
    machine, its board, the log's next sequence number before that poll)."""
    board = _Board()
    log = MemoryLog()
    m = Interlock(board, log, MemoryState())
    inp = _inputs()
    m.boot(TICK, RTC)
    m.step(TICK, inp)
    board.clock_sets.clear()
    start = log.next_seq()
    inp.rtc = RTC + seconds + delta
    m.step(TICK + seconds * 1000, inp)
    assert m.wall == RTC + seconds
    return m, board, start


@pytest.mark.parametrize("delta, logged, set_back", [
    (0, False, False), (1, False, False), (-1, False, False),
    (2, False, True), (-2, False, True),
    (120, False, True), (-120, False, True),
    (121, True, True), (-121, True, True),
])
def test_an_rtc_off_device_time_is_set_back_and_logged_past_the_tolerance(delta, logged, set_back):
    """HANDSET.md, clock: a large jump without an authenticated source is logged. machine.py rule 1: an RTC more
    than clock_tolerance_s (120 s) off device time is a CLOCK a=2 record (b: how far off) and is written back; one
    that is 2 s to 120 s off either way is written back unlogged; one second off is no disagreement (the RTC is
    read about once a second and device time counts whole seconds) and is left alone."""
    m, board, start = _clocked(delta)
    clock = [m.log.read(s) for s in range(start, m.log.next_seq()) if m.log.read(s)[2] == records.CLOCK]
    assert clock == ([(start, m.wall, records.CLOCK, 2, delta, 0, 0)] if logged else [])
    assert board.clock_sets == ([m.wall] if set_back else [])


def test_a_tick_counter_that_goes_back_counts_no_time_and_counts_on_from_there():
    """Device time never goes back with the tick counter: a poll whose tick is earlier than the last counted
    second adds nothing, and seconds count on from that tick."""
    m = Interlock(_Board(), MemoryLog(), MemoryState())
    inp = _inputs()
    inp.rtc = 0  # no RTC reading: device time from the tick counter alone
    m.boot(TICK, RTC)
    m.step(TICK + 5000, inp)
    assert m.wall == RTC + 5
    m.step(TICK + 3000, inp)
    assert m.wall == RTC + 5
    m.step(TICK + 3999, inp)
    assert m.wall == RTC + 5
    m.step(TICK + 4000, inp)
    assert m.wall == RTC + 6


# ---- service and inspection dates ---------------------------------------------------------------

def test_the_inspection_due_before_the_service_is_the_one_reminded_shown_and_locked():
    """HANDSET.md, service / inspection: reminders 7 days ahead, a lockout when overdue past grace. With both
    dates set, the earlier one counts, here the inspection (due 2026-11-25, the service 2026-12-20): the key-on
    logs its reminder, the screen shows its days, and on its day INSPECTION DUE locks."""
    sc = _run("""
date 2026-11-22 08:00
desired service=2026-12-20 inspection=2026-11-25
mark
key on
expect log INSPECTION a=1 b=%d
wait-for "BLOW" within 10s
expect display "BLOW" "SERVICE IN 3D"
key off
tech time 2026-11-25 09:00
key on
expect display "INSPECTION DUE" "CALL SERVICE"
expect relay off
""" % scenario.day("2026-11-25"))
    assert not sc.failures, "\n".join(sc.failures)
