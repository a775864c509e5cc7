"""The state-rule policy values (fsm/policy.py, appended for the jurisdiction presets) across power cuts and
syncs: what the scenarios (rule_*.scn) do not show."""

from fsm import records
from host_sim import scenario


def _run(text):
    sc = scenario.Scenario("state-rules")
    sc.run_text(text)
    assert not sc.failures, sc.failures
    return sc.sim


def _logged(sim, rtype):
    return [sim.log.read(s) for s in range(sim.log.first_seq(), sim.log.next_seq())
            if sim.log.read(s) is not None and sim.log.read(s)[2] == rtype]


def test_a_pending_start_up_failure_survives_a_power_cut():
    """Cutting the power after a failed start test does not dodge the start-up failure: it is booked once the
    window is over, after the boot."""
    sim = _run('''policy startup_fail_s=600 startup_fail_vio=1
key on
wait-for "BLOW" within 10s
blow brac=.045
wait-for "FAIL" within 10s
key off
power cut
wait 20m
power on
wait 10s
''')
    got = _logged(sim, records.STARTUP_FAIL)
    assert len(got) == 1 and got[0][4] == 600 and got[0][5] == 1
    assert any(r[3] == records.VIO_FAILED_START for r in _logged(sim, records.VIOLATION))
    assert sim.fsm.startup_fail_at == 0


def test_a_pending_start_up_failure_is_rebuilt_from_the_log_when_the_save_was_lost():
    """The failed result is logged before the state is saved: with the saved state from before it (the cut came
    between the record and the save), the boot replays the RESULT record and the booking still comes."""
    sim = _run('''policy startup_fail_s=600
key on
wait-for "BLOW" within 10s
''')
    before = bytes(sim.state.load())
    sc = scenario.Scenario("more")
    sc.sim = sim
    sc.run_text('''blow brac=.045
wait-for "FAIL" within 10s
''')
    assert sim.fsm.startup_fail_at
    sim.power_cut()
    sim.state.save(before)  # the save after the RESULT record never happened
    sc.run_text('''power on
wait 10s
''')
    assert sim.fsm.startup_fail_at and not _logged(sim, records.STARTUP_FAIL)
    sc.run_text("wait 11m")
    assert not sc.failures, sc.failures
    assert len(_logged(sim, records.STARTUP_FAIL)) == 1


def test_outage_grace_ends_with_a_sync_that_came_after_the_due_day():
    """The grace is for a handset that could not hear of a payment: once a sync came after the due day, the
    payment lock applies at once."""
    sim = _run('''date 2026-11-22 08:00
policy payment_lock=1 outage_grace_days=5
desired payment=2026-11-20
key on
wait-for "BLOW" within 10s
key off
''')
    sim.fsm.last_sync = sim.fsm.wall  # a sync today (after the due day), with the due date still unpaid
    sc = scenario.Scenario("after-sync")
    sc.sim = sim
    sc.run_text('''key on
expect state PAYMENT
''')
    assert not sc.failures, sc.failures
