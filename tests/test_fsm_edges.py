"""Example tests of the state machine's input edges (fsm/machine.py `_edges`, `_engine_sense`, `_handle`): a module
that is not latched or is swapped between two polls, a key turned off and on while the engine runs, an engine-sense
wire cut under a running engine against the supply's charge, the heater's switching, and a retest failed after the key went off during its
analysis."""

from fsm import persist, records
from fsm.machine import (
    S_DRIVING,
    S_MODULE_EXP,
    S_NO_MODULE,
    S_OFF,
    S_RESTART,
    S_RETEST,
    S_TEST,
    Interlock,
)
from host_sim import scenario
from host_sim.world import default_module
from interlock import timebase
from storage.memory import MemoryLog, MemoryState
from tests.fsm_handset import Handset as _Handset
from tests.fsm_handset import QuietBoard as _Board


def test_a_module_that_is_not_latched_is_not_in():
    """Module: absent or not locked: INSERT MODULE, no test possible (HANDSET.md). A module whose data the inputs
    still hold counts only while it is latched (module_present): until then the key-on shows INSERT MODULE and no
    MODULE record is logged; latched, it is inserted (MODULE a=1) and the test is asked for."""
    h = _Handset(latched=False)
    h.inp.ignition = True
    h.poll()
    assert h.fsm.state == S_NO_MODULE
    assert h.records(records.MODULE) == []
    h.inp.module_present = True
    h.poll()
    assert [r[1:3] for r in h.records(records.MODULE)] == [(records.MOD_INSERTED, h.inp.module.serial)]
    assert h.fsm.state == S_TEST


def test_a_module_swapped_between_two_polls_is_logged_and_its_expiry_applies():
    """Module change is logged (HANDSET.md), and an expired module shows MODULE EXP, no test possible. Another
    module in the inputs at the next poll, with no poll between that saw the slot empty, is a removal of the old one
    and an insertion of the new one, and the new one's expiry day is the one that counts."""
    h = _Handset()
    old = h.inp.module
    since = h.log.next_seq()
    h.inp.module = default_module(serial=old.serial + 1, expiry_day=h.fsm.wall // timebase.DAY)
    h.poll()
    assert [r[1:3] for r in h.records(records.MODULE, since)] == [
        (records.MOD_REMOVED, old.serial), (records.MOD_INSERTED, old.serial + 1)]
    h.inp.ignition = True
    h.poll()
    assert h.fsm.state == S_MODULE_EXP


def test_a_key_turned_off_and_on_and_off_again_while_the_engine_runs_is_logged_at_each_key_off():
    """Every input edge is logged. The ignition input reading off while the engine runs counts as on until the
    engine stops, and each such key-off is logged (IGNITION a=0 b=1): one turned back on and off again while the
    engine still runs is logged again; the key-off itself (IGNITION a=0) comes when the engine stops."""
    h = _Handset()
    h.to_driving()
    since = h.log.next_seq()
    h.inp.ignition = False
    h.poll()
    h.inp.ignition = True
    h.poll()
    h.inp.ignition = False
    h.poll()
    assert h.fsm.state == S_DRIVING
    h.inp.engine = h.inp.charging = False
    h.poll()
    assert [r[1:3] for r in h.records(records.IGNITION, since)] == [(0, 1), (0, 1), (0, 0)]
    assert h.fsm.state == S_OFF


def test_a_charge_that_comes_back_after_a_stall_is_not_an_engine():
    """An engine input that reads off while the supply still charges is watched for ENGINE_SENSE_HOLD_MS (a sense
    wire cut under a running engine). A stall ends the watch when the charge ends; a charge that comes back later
    without a crank's sag (a charger clamped on) is no engine: no ENGINE record, the free restart goes on."""
    h = _Handset()
    h.to_driving()
    h.inp.engine = False  # a stall: the supply's reading is the previous poll's, so the charge shows once more
    h.poll()
    assert h.fsm.state == S_RESTART
    h.inp.charging = False
    h.poll()
    since = h.log.next_seq()
    h.inp.charging = True
    h.poll(1000, n=10)
    assert h.records(records.ENGINE, since) == []
    assert h.fsm.state == S_RESTART


def test_a_held_engine_rides_out_a_dip_and_a_charge_back_after_its_stop_is_a_restart():
    """A sense wire cut under a running engine: the engine counts as running (ENGINE a=1 b=1) until its charge has
    been gone ENGINE_CHARGE_LOSS_MS, so a dip under a load at idle is no stop (no ENGINE record). Gone that long, the
    engine is stopped (ENGINE a=0, the free restart); a charge that comes back with the key still on and holds
    ENGINE_SENSE_HOLD_MS is the engine started again (ENGINE a=1 b=1): in the free restart the drive goes on, no
    bypass. (Before, the first poll without a charge stopped it, and a charge back was never watched: the car drove
    on with no retests.)"""
    h = _Handset()
    h.to_driving()
    since = h.log.next_seq()
    h.inp.engine = False
    h.poll(1000, n=5)
    assert [r[1:3] for r in h.records(records.ENGINE, since)] == [(0, 0), (1, 1)]
    assert h.fsm.state == S_DRIVING
    since = h.log.next_seq()
    h.inp.charging = False
    h.poll(1000, n=3)  # gone 2 s
    h.inp.charging = True
    h.poll()
    assert h.records(records.ENGINE, since) == []
    assert h.fsm.state == S_DRIVING
    h.inp.charging = False
    h.poll(1000, n=4)  # gone 3 s
    assert [r[1:3] for r in h.records(records.ENGINE, since)] == [(0, 0)]
    assert h.fsm.state == S_RESTART
    since = h.log.next_seq()
    h.inp.charging = True
    h.poll(1000, n=4)  # back 3 s
    assert h.records(records.ENGINE, since) == []
    h.poll(1000)
    assert [r[1:3] for r in h.records(records.ENGINE, since)] == [(1, 1)]
    assert h.records(records.BYPASS, since) == []
    assert h.fsm.state == S_DRIVING
    h.inp.charging = False
    h.poll()  # and the engine held again rides out a dip as before
    assert [r[1:3] for r in h.records(records.ENGINE, since)] == [(1, 1)]
    assert h.fsm.state == S_DRIVING


def test_a_held_engine_takes_back_the_free_restart_in_the_saved_state_and_asks_a_due_retest_at_once():
    """Rolling retest while the engine runs. A sense wire cut under the running engine, its input off 2 s before the
    retest is due: the stall it looks like opens the free restart (RESTART), and when the charge has held
    ENGINE_SENSE_HOLD_MS the engine counts as running again, with no free restart left in the saved state (the
    engine did not stop), and the retest, due by then, is asked for in that same poll."""
    h = _Handset(retest_first_min_s=60, retest_first_max_s=60)
    h.to_driving()
    due = h.fsm.retest_due
    while h.fsm.wall < due - 2:
        h.poll(1000)
    assert h.fsm.wall == due - 2 and h.fsm.state == S_DRIVING
    h.inp.engine = False
    h.poll(1000)
    assert h.fsm.state == S_RESTART
    h.poll(1000, n=3)
    since = h.log.next_seq()
    h.poll(1000)
    ((held, a, b, _c),) = h.records(records.ENGINE, since)
    assert (a, b) == (1, 1)
    assert h.fsm.state == S_RETEST
    assert [r[0] for r in h.records(records.RETEST, since)] == [held]
    saved = Interlock(_Board(), MemoryLog(), MemoryState())
    assert persist.unpack(h.store.load(), saved) >= 0
    assert saved.restart_until == 0


def test_the_heater_is_switched_when_what_is_wanted_changes_only():
    """The heater keeps the cell warm whenever a test may come (ignition on), by bang-bang regulation around the
    target with a band (breath.heater_wanted): the board's heater is told on when the cell is below the target, off
    at the band's top and with the key off, and told nothing while what is wanted stays as it is (in the band it
    stays as it was)."""
    h = _Handset()
    h.inp.ignition = True
    for temp, polls in ((340, 3), (355, 3), (360, 3), (355, 3), (340, 2)):
        h.inp.cell_temp = temp
        h.poll(n=polls)
    assert h.board.heaters == [True, False, True]
    h.inp.ignition = False
    h.poll(n=3)
    assert h.board.heaters == [True, False, True, False]


def test_a_retest_failed_after_the_key_went_off_during_its_analysis_leaves_the_handset_off():
    """A drawn sample's analysis runs to its result, booked like any other, even when the key goes off during it; a
    retest is failed (RETEST a=3), not refused, and then the key-off takes effect: OFF, dark, no alarm, the next
    key-on asks for a start test."""
    sc = scenario.Scenario("unit")
    sc.run_text("""
policy retest_first_min_s=60 retest_first_max_s=60
key on
wait-for "BLOW" within 10s
blow
wait-for "START" within 15s
crank
wait-for "RETEST - BLOW" within 2m
stall
blow brac=.050
expect display "ANALYZING"
key off
mark
wait 15s
expect log RETEST a=3
expect no-log RETEST a=5
expect state OFF
expect display "" ""
expect horn off
key on
wait-for "BLOW" within 10s
expect state TEST
""")
    assert not sc.failures, "\n".join(sc.failures)


def test_the_engine_sensed_again_ends_the_watch_on_a_held_engine_and_its_dip():
    """The watch on a held engine's charge ends when its sense wire reads the engine again: after a restart seen on
    the input, a stall and a charger clamped on with the key still on are no engine (no ENGINE record, the free
    restart goes on); and a dip that the sense ended does not count for the next hold: a sense wire cut again under
    the running engine holds it again (ENGINE a=1 b=1), and its first poll without a charge is no stop."""
    h = _Handset()
    h.to_driving()
    h.inp.engine = False
    h.poll(1000, n=5)
    h.inp.charging = False
    h.poll(1000, n=4)
    assert h.fsm.state == S_RESTART
    h.inp.engine = h.inp.charging = True  # a restart in the free restart, the wire mended
    h.poll()
    assert h.fsm.state == S_DRIVING
    h.inp.engine = False  # a stall: the charge shows once more
    h.poll()
    h.inp.charging = False
    h.poll()
    assert h.fsm.state == S_RESTART
    since = h.log.next_seq()
    h.inp.charging = True  # a charger
    h.poll(1000, n=10)
    assert h.records(records.ENGINE, since) == []
    assert h.fsm.state == S_RESTART
    h.inp.engine = True  # a restart, then the wire cut again during a dip
    h.poll()
    assert h.fsm.state == S_DRIVING
    h.inp.engine = False
    h.poll(1000, n=5)
    h.inp.charging = False
    h.poll(1000, n=2)
    h.inp.engine = h.inp.charging = True
    h.poll()
    since = h.log.next_seq()
    h.inp.engine = False
    h.poll(1000, n=5)
    assert [r[1:3] for r in h.records(records.ENGINE, since)] == [(0, 0), (1, 1)]
    h.inp.charging = False
    h.poll()
    assert [r[1:3] for r in h.records(records.ENGINE, since)] == [(0, 0), (1, 1)]
    assert h.fsm.state == S_DRIVING


def test_a_crank_seen_on_the_supply_while_a_charge_back_is_watched_is_a_start_and_the_next_watch_starts_afresh():
    """A held engine stopped (its charge gone 3 s), then a crank in the free restart with the sense wire still cut:
    the charge after the starter's sag is watched, and the start's signature on the supply (inp.supply_start) comes
    first: a start seen from the supply (ENGINE a=1 b=2), the drive goes on. When that engine's charge is gone in
    turn, a charge back is watched for ENGINE_SENSE_HOLD_MS from its own return, not from the crank's."""
    h = _Handset()
    h.to_driving()
    h.inp.engine = False
    h.poll(1000, n=5)
    h.inp.charging = False
    h.poll(1000, n=4)
    assert h.fsm.state == S_RESTART
    since = h.log.next_seq()
    h.inp.charging = True
    h.poll(1000, n=2)
    h.inp.supply_start = True
    h.poll()
    h.inp.supply_start = False
    assert [r[1:3] for r in h.records(records.ENGINE, since)] == [(1, 2)]
    assert h.fsm.state == S_DRIVING
    h.inp.charging = False
    h.poll(1000, n=4)
    assert h.fsm.state == S_RESTART
    since = h.log.next_seq()
    h.inp.charging = True
    h.poll(1000, n=4)
    assert h.records(records.ENGINE, since) == []
    h.poll(1000)
    assert [r[1:3] for r in h.records(records.ENGINE, since)] == [(1, 1)]
    assert h.fsm.state == S_DRIVING


def test_the_first_charge_loss_of_a_start_seen_on_the_supply_is_timed_from_its_own_first_poll():
    """An engine that was never sensed, started with its sense wire cut (the supply's crank then charge,
    ENGINE a=1 b=2), whose charge is gone again at the very next poll: that loss is timed from that poll like any
    other held engine's. Gone 2 s it is a dip (no stop); gone ENGINE_CHARGE_LOSS_MS the engine stops (ENGINE a=0),
    not sooner and not never."""
    for gone_ms, stops in ((2000, False), (4000, True)):
        h = _Handset()
        h.poll(60_000, n=10)  # parked a while: the tick counter far from any value a hold could start from
        h.inp.ignition = True
        h.poll()
        h.inp.charging = h.inp.supply_start = True
        h.poll()
        assert h.fsm._engine_held == 2
        h.inp.supply_start = False
        since = h.log.next_seq()
        h.inp.charging = False
        h.poll(1000, n=gone_ms // 1000)
        stopped = [r[1:3] for r in h.records(records.ENGINE, since)]
        assert stopped == ([(0, 0)] if stops else []), (gone_ms, stopped)
