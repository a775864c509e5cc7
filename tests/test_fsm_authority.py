"""What authenticated callers may change, through fsm.authority, on a simulated handset."""

from fsm import authority, module, records
from host_sim.handset import SimHandset, sim_secret


def _sim():
    sim = SimHandset()
    sim.world.key(True)
    sim.run(200)
    return sim


def test_calibration_is_written_to_the_module_and_survives_reinsertion_and_reboot():
    """A technician's two-point calibration goes into the module's EEPROM, so it travels with the module."""
    sim = _sim()
    fsm = sim.fsm
    assert fsm.technician(sim.ticks(), 9, records.SVC_CALIBRATE, 40, 15000, 82) == authority.APPLIED
    image = module.parse(sim.world.module)
    assert (image.zero_area, image.ref_area, image.ref_brac) == (40, 15000, 82)
    sim.run(500)
    assert fsm._module.ref_area == 15000
    data = sim.world.module
    sim.world.remove_module()
    sim.run(500)
    sim.world.insert_raw_module(data)
    sim.power_cut()
    sim.power_on()
    sim.run(500)
    assert sim.fsm._module.ref_area == 15000 and sim.fsm._module.ref_brac == 82


def test_calibration_without_a_module_or_with_nonsense_points_is_refused():
    """No module, or a reference point not above the zero point: refused, nothing written."""
    sim = _sim()
    before = sim.world.module
    assert sim.fsm.technician(sim.ticks(), 9, records.SVC_CALIBRATE, 500, 400, 80) == authority.REFUSED
    assert sim.world.module == before
    sim.world.remove_module()
    sim.run(500)
    assert sim.fsm.technician(sim.ticks(), 9, records.SVC_CALIBRATE, 0, 16000, 80) == authority.REFUSED


def test_commands_apply_once_in_sequence_order():
    """A command seq applies once; an older or equal seq is stale; a clear for another lockout is refused."""
    sim = _sim()
    fsm = sim.fsm
    assert fsm.apply_command(sim.ticks(), 1, authority.CMD_SERVICE_EXTEND, 3) == authority.APPLIED
    assert fsm.apply_command(sim.ticks(), 1, authority.CMD_SERVICE_EXTEND, 3) == authority.STALE
    fsm.vlock, fsm.lockout_id = True, 40
    assert fsm.apply_command(sim.ticks(), 2, authority.CMD_CLEAR, 41) == authority.REFUSED
    assert fsm.vlock
    assert fsm.apply_command(sim.ticks(), 3, authority.CMD_CLEAR, 40) == authority.APPLIED
    assert not fsm.vlock
    assert fsm.apply_command(sim.ticks(), 4, 99, 0) == authority.REFUSED
    assert fsm.last_command_seq == 4


def test_desired_state_version_only_goes_up():
    """A desired-state document with an old version changes nothing."""
    sim = _sim()
    fsm = sim.fsm
    assert fsm.set_desired(sim.ticks(), 5, 1100, 1200, 0, 0) == 5
    assert fsm.set_desired(sim.ticks(), 4, 1, 1, 1, 0) == 5
    assert (fsm.payment_due, fsm.service_due, fsm.inspection_due) == (1100, 1200, 0)


def test_refused_policy_is_logged_and_changes_nothing():
    """A policy push that fails validation leaves every number alone and is logged as refused."""
    sim = _sim()
    fsm = sim.fsm
    before = fsm.policy.to_dict()
    assert not fsm.apply_policy(sim.ticks(), {"version": 9, "fail_brac": 0}, records.SRC_REMOTE)
    assert fsm.policy.to_dict() == before
    last = fsm.log.read(fsm.log.next_seq() - 1)
    assert last[2] == records.POLICY and last[3] == 0


def test_provisioning_happens_once():
    """A provisioned handset refuses a second secret."""
    sim = _sim()
    assert sim.fsm.secret == sim_secret(1001)
    assert not sim.fsm.provision(sim.ticks(), 1001, sim_secret(7))
    assert sim.fsm.secret == sim_secret(1001)


def test_a_clear_for_a_lockout_already_cleared_is_stale_not_applied():
    """A remote clear that arrives after a code cleared its lockout reports stale, so the portal does not say
    the clear was applied."""
    sim = _sim()
    fsm = sim.fsm
    fsm.vlock, fsm.lockout_id = True, 40
    fsm.clear_violation(records.SRC_CODE, 1)
    assert fsm.apply_command(sim.ticks(), 1, authority.CMD_CLEAR, 40) == authority.STALE
    assert fsm.last_command_seq == 1
