"""Example tests of the state machine's long timers and module edges (fsm/machine.py: `_long_timers`,
`_module_edge`): the heartbeat of a state store that keeps no stamps, the service lock of a log about to fill, and
which module changes the log records."""

from fsm import authority, records
from fsm.inputs import Inputs
from fsm.machine import POLL_IDLE, S_OFF, S_SERVICE_LOCK, Interlock
from host_sim import scenario
from host_sim.handset import SimHandset
from host_sim.world import default_module
from interlock import timebase
from storage.memory import MemoryLog, MemoryState


def _records(log, rtype, since=1):
    """(a, b, c) of each held record of this type from sequence number `since` on."""
    out = []
    for seq in range(max(since, log.first_seq()), log.next_seq()):
        rec = log.read(seq)
        if rec is not None and rec[2] == rtype:
            out.append(rec[3:6])
    return out


def _scenario_on(sim, text):
    """Scenario lines run on this SimHandset; the expectations that failed."""
    sc = scenario.Scenario("unit")
    sc.sim = sim
    sc.run_text(text)
    return sc.failures


class _StateWithoutStamps:
    """A state store with the StateStore interface of storage/__init__.py and nothing more: no `stamp`, so the
    heartbeat is kept in the saved state."""

    def __init__(self):
        self._inner = MemoryState()

    def load(self):
        return self._inner.load()

    def save(self, data):
        self._inner.save(data)

    def load_identity(self):
        return self._inner.load_identity()

    def save_identity(self, data):
        self._inner.save_identity(data)


def test_a_store_without_stamps_saves_the_heartbeat_so_a_short_cut_after_hours_idle_is_no_violation():
    """Power: the boot measures the gap from the last heartbeat, and a long gap is a violation (HANDSET.md). With a
    state store that keeps no separate stamp the heartbeat (every alive_s) saves the state, so a one-minute cut
    after three idle hours is measured as about a minute: no POWER_GAP, no violation."""
    sim = SimHandset(state=_StateWithoutStamps())
    failures = _scenario_on(sim, """
wait 3h
power cut
wait 1m
power on
expect no-log POWER_GAP
expect no-log VIOLATION
""")
    assert not failures, "\n".join(failures)
    gap = _records(sim.log, records.BOOT)[-1][1]  # BOOT b: the gap since the last heartbeat
    assert 60 <= gap <= 60 + sim.fsm.policy.alive_s + POLL_IDLE // 1000 + 1


def test_a_log_about_to_fill_locks_for_service_until_the_companion_acknowledges_it():
    """Records: when the log is about to fill with unacknowledged records the handset locks out for service rather
    than lose evidence (HANDSET.md). The lock is logged once (STORAGE a=1) when the log reaches its reserve, shows
    SERVICE REQUIRED / LOG FULL at ignition on with the relay off, and ends, logged once (STORAGE a=0), when the
    companion acknowledges the records: the next key-on asks for a test."""
    log = MemoryLog(capacity=80, reserve=30)
    sim = SimHandset(log=log)
    for _ in range(20):
        if log.nearly_full():
            break
        assert _records(log, records.STORAGE) == []
        assert not _scenario_on(sim, "key on\nwait 2s\nkey off\nwait 2s")
    assert log.nearly_full()
    failures = _scenario_on(sim, """
wait 10s
key on
wait 1m
expect state SERVICE_LOCK
expect display "SERVICE REQUIRED" "LOG FULL"
expect relay off
key off
wait 1m
""")
    assert not failures, "\n".join(failures)
    assert _records(log, records.STORAGE) == [(1, 0, 0)]
    log.acknowledge(log.next_seq() - 1)  # the companion holds every record
    since = log.next_seq()
    failures = _scenario_on(sim, """
wait 10s
key on
wait-for "BLOW" within 10s
""")
    assert not failures, "\n".join(failures)
    assert _records(log, records.STORAGE, since) == [(0, 0, 0)]
    assert sim.fsm.state != S_SERVICE_LOCK


def test_a_calibration_is_no_module_change_with_the_engine_off_or_running():
    """Module: removed while the engine runs, logged as tamper (HANDSET.md); a technician's calibration is no
    removal: the module stays in its slot and the runtime reads back what was written (the same serial). Neither a
    calibration with the key off nor one while the engine runs logs a MODULE record or a violation."""
    sim = SimHandset()
    sim.run(1000)
    since = sim.log.next_seq()
    assert sim.fsm.technician(sim.ticks(), 9, records.SVC_CALIBRATE, 40, 15000, 82) == authority.APPLIED
    sim.run(20000)
    assert _records(sim.log, records.MODULE, since) == []
    assert sim.fsm.state == S_OFF
    failures = _scenario_on(sim, """
key on
wait-for "BLOW" within 10s
blow brac=0
wait-for "START" within 15s
crank
expect display "DRIVE SAFELY"
""")
    assert not failures, "\n".join(failures)
    since = sim.log.next_seq()
    assert sim.fsm.technician(sim.ticks(), 9, records.SVC_CALIBRATE, 40, 16000, 82) == authority.APPLIED
    failures = _scenario_on(sim, """
wait 5s
expect engine on
expect display "DRIVE SAFELY" ""
""")
    assert not failures, "\n".join(failures)
    assert _records(sim.log, records.MODULE, since) == []
    assert _records(sim.log, records.VIOLATION, since) == []
    assert sim.fsm._module.ref_area == 16000 and sim.fsm.module_serial == 1001


class _Board:
    """A board that does nothing."""

    def __getattr__(self, name):
        return lambda *a: 0


def test_a_module_swapped_for_another_between_two_polls_is_a_removal_then_an_insertion():
    """Module change is recorded (HANDSET.md): a poll that finds another module (another serial) in place of the
    one the last poll saw, with no poll between that found the slot empty, logs the old one's removal, then the new
    one's insertion, and keeps the new serial."""
    log = MemoryLog()
    m = Interlock(_Board(), log, MemoryState(), seed=3)
    inp = Inputs()
    inp.rtc = 90_000_000
    inp.module_present = True
    inp.module = default_module(serial=1001, start_wall=inp.rtc)
    now = 1000
    m.boot(now, inp.rtc)
    m.step(now, inp)
    since = log.next_seq()
    inp.module = default_module(serial=2002, expiry_day=inp.rtc // timebase.DAY + 200, start_wall=inp.rtc)
    m.step(now + 5000, inp)
    day = inp.rtc // timebase.DAY
    assert _records(log, records.MODULE, since) == [
        (records.MOD_REMOVED, 1001, day + 365), (records.MOD_INSERTED, 2002, day + 200)]
    assert (m.module_serial, m.module_expiry) == (2002, day + 200)


def test_a_module_other_than_the_one_a_technician_named_is_logged_as_unexpected():
    """Module change is recorded (HANDSET.md): after a technician names the module to expect (SVC_MODULE), an
    inserted module with another serial is logged as unexpected (MODULE a=MOD_UNEXPECTED b=its serial c=the
    expected one), right after its insertion; the expected module is not."""
    sim = SimHandset()
    sim.run(1000)
    fsm = sim.fsm
    assert fsm.technician(sim.ticks(), 77, records.SVC_MODULE, 2002, fsm.wall // timebase.DAY + 30) == \
        authority.APPLIED
    day = sim.world.rtc_now() // timebase.DAY
    since = sim.log.next_seq()
    assert not _scenario_on(sim, "module remove\nwait 10s\nmodule insert serial=2003\nwait 10s")
    assert _records(sim.log, records.MODULE, since) == [
        (records.MOD_REMOVED, 1001, day + 365), (records.MOD_INSERTED, 2003, day + 365),
        (records.MOD_UNEXPECTED, 2003, 2002)]
    since = sim.log.next_seq()
    assert not _scenario_on(sim, "module remove\nwait 10s\nmodule insert serial=2002\nwait 10s")
    assert _records(sim.log, records.MODULE, since) == [
        (records.MOD_REMOVED, 2003, day + 365), (records.MOD_INSERTED, 2002, day + 365)]
