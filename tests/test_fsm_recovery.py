"""Boot after damage: a corrupt state stays locked across reboots, keeps what the log proves, refuses takeover."""

from fsm import menu, records, states
from fsm.machine import Interlock
from host_sim.handset import sim_secret
from host_sim.scenario import Scenario
from storage.memory import MemoryLog, MemoryState
from tests.test_fsm_init import _Board

_LOCKED = """
policy recall_s=3600
key on
wait-for "BLOW" within 10s
hotwire
key off
wait 2h
key on
expect display "VIOLATION" "LOCKOUT"
key off
power cut
"""


def _corrupted():
    sc = Scenario("recovery")
    sc.run_text(_LOCKED)
    sc.sim.state._data = b"\xff" * 40  # the stored state is unreadable (worn block, bit rot, tamper)
    return sc


def test_corrupt_state_locks_for_service_across_reboots():
    """A corrupt state shows SERVICE REQUIRED, and still does after further power cycles."""
    sc = _corrupted()
    sc.run_text('power on\nkey on\nexpect display "SERVICE REQUIRED" "CALL SERVICE"\nkey off\npower cut\n'
                'wait 5s\npower on\nkey on\nexpect display "SERVICE REQUIRED" "CALL SERVICE"\nexpect relay off\n')
    assert not sc.failures, sc.failures
    assert sc.sim.fsm.state_lock


def test_corrupt_state_keeps_what_the_log_proves():
    """The violation lockout and its id, the violation count and the used-code counter come back from the log."""
    sc = Scenario("recovery")
    sc.run_text(_LOCKED.replace("key off\npower cut\n", "press OK\ncode clear\nwait 4s\nhotwire\nkey off\n"
                                "wait 2h\nkey on\nkey off\npower cut\n"))
    before = sc.sim.fsm if sc.sim.fsm is not None else None
    assert before is None  # power is cut
    sc.sim.state._data = b"\x00" * 10
    sc.run_text("power on\n")
    fsm = sc.sim.fsm
    assert fsm.vlock and fsm.lockout_id > 0
    assert fsm.code_counter == 2  # counter 1 was used before the damage
    assert fsm.state_lock
    lockouts = [fsm.log.read(s) for s in range(1, fsm.log.next_seq())]
    assert any(r[2] == records.LOCKOUT and r[3] == records.LOCK_STATE for r in lockouts)


def test_corrupt_state_keeps_the_identity_and_refuses_a_new_secret():
    """The identity has its own store: a corrupt state leaves the device id and the secret as they were, and a
    new secret is refused."""
    sc = _corrupted()
    sc.run_text("power on\n")
    fsm = sc.sim.fsm
    assert fsm.state_lock and fsm.device_id == sc.sim.device_id and fsm.secret == sim_secret(sc.sim.device_id)
    assert not fsm.provision(sc.sim.ticks(), 4242, sim_secret(4242))
    assert fsm.secret == sim_secret(sc.sim.device_id)


def test_corrupt_state_and_identity_refuse_a_new_secret():
    """A handset that was provisioned once cannot be provisioned again when its state and its identity are
    both lost (the log proves the provisioning)."""
    sc = _corrupted()
    sc.sim.state._identity = b"\xff" * 40
    sc.run_text("power on\n")
    fsm = sc.sim.fsm
    assert fsm.secret is None
    assert not fsm.provision(sc.sim.ticks(), 4242, sim_secret(4242))
    assert fsm.secret is None
    last = fsm.log.read(fsm.log.next_seq() - 1)
    assert last[2] == records.SERVICE and last[3] == records.SVC_PROVISION and last[4] == 0


def test_corrupt_state_over_an_empty_log_books_no_gap_and_no_lost_analysis():
    """HANDSET.md's power row: a boot books what the cut before it interrupted, measured from the last sign of life
    the handset kept. A state found corrupt over an empty log (a new log part, or one erased) keeps no such sign:
    the boot's gap is unknown (BOOT b=-1, c=1), no power gap is booked (nothing proves one), and no analysis was
    under way at the cut (nothing says one was): the handset locks for service (LOCKOUT LOCK_STATE) and nothing
    more."""
    state = MemoryState()
    state.save(b"\xff" * 40)  # unreadable, and no heartbeat stamp was ever written
    fsm = Interlock(_Board(), MemoryLog(), state)
    fsm.boot(1_000_000, 90_000_000)
    kept = [fsm.log.read(s)[2:] for s in range(fsm.log.first_seq(), fsm.log.next_seq())]
    assert fsm.state_lock
    assert kept == [(records.BOOT, menu.FIRMWARE_VERSION, -1, 1, 0), (records.LOCKOUT, records.LOCK_STATE, 0, 0, 0),
                    (records.STATE, states.S_OFF, 0, 0, 0)]
