"""Example tests of what a new handset instance starts from (Interlock.__init__) and of its saves: the state is
saved only when something in it changed, into the one buffer the handset allocated; a state saved by a first boot
holds no abort times; the identity and the keys it gives come back after a reboot, also from a state of an older
format that held the identity itself."""

from fsm import menu, persist, records, states
from fsm.inputs import Inputs
from fsm.machine import Interlock
from host_sim.world import default_module
from interlock import crypto
from storage.memory import MemoryLog, MemoryState
from tests.fsm_handset import QuietBoard as _Board
from tests.test_fsm_persist_formats import _before, old_state

RTC = 90_000_000  # device time at the first boot (2026-11-07)
TICK = 1_000_000
SECRET = bytes(range(32))


class KeptState(MemoryState):
    """A state store that keeps what every save was handed (the object itself, not a copy)."""

    def __init__(self):
        super().__init__()
        self.handed = []

    def save(self, data):
        super().save(data)
        self.handed.append(data)


def _inputs(rtc=RTC):
    inp = Inputs()
    inp.rtc = rtc
    inp.module_present = True
    inp.module = default_module(start_wall=RTC)
    inp.cell_temp = 355
    return inp


def _booted(state):
    m = Interlock(_Board(), MemoryLog(), state)
    m.boot(TICK, RTC)
    return m


def test_idle_polls_that_change_nothing_persistent_do_not_save_the_state():
    """Rule 6 of machine.py (the state is saved once, when anything persistent changed) and HANDSET.md's power row:
    the state survives a cut, but a flash write per poll would wear the part out. With the key off and nothing
    happening, polls after the first (which sees the module come in) write nothing; the heartbeat goes to its own
    small record (`stamp`), not into the state."""
    state = KeptState()
    m = _booted(state)
    inp = _inputs()
    m.step(TICK, inp)
    saves = len(state.handed)
    for i in range(1, 11):
        inp.rtc = RTC + 5 * i
        m.step(TICK + 5000 * i, inp)
    assert len(state.handed) == saves


def test_every_save_packs_the_state_into_the_one_buffer_the_handset_allocated():
    """STYLE.md: buffers are allocated once, in the constructor, and nothing is allocated on the per-poll path.
    Each save hands the store the same buffer (persist.pack fills it in place); the store copies what it keeps."""
    state = KeptState()
    m = _booted(state)
    inp = _inputs()
    m.step(TICK, inp)  # the module comes in: saved
    inp.ignition = True
    m.step(TICK + 1000, inp)  # the key on: a test starts, saved
    assert len(state.handed) >= 3
    first = state.handed[0]
    assert isinstance(first, bytearray) and len(first) == persist.SIZE
    assert all(buf is first for buf in state.handed)


def test_a_first_boot_saves_a_state_with_no_abort_times():
    """A handset that never saw an abort keeps no abort times: the ring in the state saved by the first boot (and
    on the first poll) is all zero, as a technician reading the state back would expect."""
    state = MemoryState()
    m = _booted(state)
    again = Interlock(_Board(), MemoryLog(), MemoryState())
    assert persist.unpack(state.load(), again) > 0
    assert list(again.abort_times) == [0] * 10
    m.step(TICK, _inputs())
    assert persist.unpack(state.load(), again) > 0
    assert list(again.abort_times) == [0] * 10


def test_a_rebooted_handset_authenticates_with_the_keys_of_its_secret():
    """The identity lives in its own store: after a reboot the handset reads its secret back and the sync, unlock
    and technician keys it derives are those of that secret (the companion signs with them)."""
    state = MemoryState()
    m = _booted(state)
    assert m.provision(TICK, 4711, SECRET)
    want = (crypto.derive(SECRET, crypto.LABEL_SYNC), crypto.derive(SECRET, crypto.LABEL_UNLOCK),
            crypto.derive(SECRET, crypto.LABEL_TECH))
    assert m.keys() == want
    again = Interlock(_Board(), m.log, state)
    again.boot(TICK, RTC + 30)
    assert (again.device_id, again.secret) == (4711, SECRET)
    assert again.keys() == want


def test_an_identity_held_by_a_format_2_state_is_written_to_the_identity_store_at_boot():
    """persist.py: a handset updated from firmware of format 1 or 2 kept its identity in the state; the boot moves
    it to the identity store (the state it saves leaves it out), so the next boot still has it."""
    state = MemoryState()
    state.save(old_state(_before(), 2))
    m = Interlock(_Board(), MemoryLog(), state)
    m.boot(0, 91_000_000)
    assert persist.unpack_identity(state.load_identity()) == (4711, SECRET)
    assert SECRET not in state.load()
    again = Interlock(_Board(), m.log, state)
    again.boot(0, 91_000_030)
    assert (again.device_id, again.secret) == (4711, SECRET)


def test_a_charge_at_the_first_poll_with_the_engine_input_off_is_not_a_running_engine_at_once():
    """ENGINE_SENSE_HOLD_MS: an engine input that reads off while the supply charges is taken for a cut sense wire
    only after the charge has been watched that long from the engine's stop. A handset booted into a pending
    retest (the engine stopped before the cut) with the key on, the engine input off and the supply charging (a
    charger on the battery) has watched nothing yet: the retest goes on, no ENGINE record says the engine runs."""
    log, state = MemoryLog(), MemoryState()
    m = Interlock(_Board(), log, state)
    m.boot(TICK, RTC)
    m.retest_pending = True
    m.retest_deadline = RTC + m.policy.retest_window_s
    m._dirty = True
    m._flush()
    again = Interlock(_Board(), log, state)
    again.boot(TICK, RTC + 5)
    start = log.next_seq()
    inp = _inputs(RTC + 5)
    inp.ignition = True
    inp.charging = True
    again.step(TICK, inp)
    got = [log.read(s)[2] for s in range(start, log.next_seq())]
    assert records.IGNITION in got and records.ENGINE not in got
    assert not again._engine and again.retest_pending


def test_the_first_boots_saved_state_holds_nothing_but_the_boot_time():
    """HANDSET.md's power row and rule 6 of machine.py: a first boot (no saved state, an empty log) saves a state
    before its first record, so a cut right after it is not taken as a corrupt state. That state is what the next
    boot starts from, so it must say that nothing has happened yet: no lockout (cause, number), no code wait, no
    temporary mode, no module seen, no sync, no free-restart window, no retest scheduled or due, no alarm, no
    engine, no failed-test streak or its lock, no analysis in progress, no token clock lead and no service-port
    login waits. Only the heartbeat (last_alive) is set: to the boot's clock."""
    state = MemoryState()
    _booted(state)
    saved = Interlock(_Board(), MemoryLog(), MemoryState())
    assert persist.unpack(state.load(), saved) > 0
    assert saved.last_alive == RTC
    for name in ("lock_cause", "lockout_id", "temp_kind", "code_wait_until", "module_serial", "module_expiry",
                 "last_sync", "restart_until", "retest_due", "retest_deadline", "fail_streak", "fail_lock_end",
                 "token_lead", "login_wait_line", "login_wait_net"):
        assert getattr(saved, name) == 0, name
    for name in ("vlock", "retest_pending", "alarm_at_save", "state_lock", "engine_saved", "provisioned_before",
                 "analyzing"):
        assert getattr(saved, name) is False, name


def test_the_first_boot_logs_its_boot_and_nothing_that_a_cut_left():
    """HANDSET.md's power row: a boot books what the power cut before it interrupted (a drive, a retest, an analysis
    of a drawn sample: FAULT ANALYSIS_LOST and a failed start test). A first boot had no cut: its log holds the BOOT
    record (gap 0: the clock at the boot is its first sign of life; not a missing or corrupt state) and the entry
    into the key-off state, nothing else (no lost analysis, no fail lock, no power gap)."""
    m = _booted(MemoryState())
    kept = [m.log.read(s) for s in range(1, m.log.next_seq())]
    assert [r[2:] for r in kept] == [(records.BOOT, menu.FIRMWARE_VERSION, 0, 0, 0),
                                     (records.STATE, states.S_OFF, 0, 0, 0)]
    assert not m.analyzing and not m.fail_lock_end


def test_a_charge_at_the_boot_into_a_pending_retest_is_not_taken_for_a_running_engine():
    """HANDSET.md's engine-sense row: with the key on and the engine input off, only a charge watched for
    ENGINE_SENSE_HOLD_MS (after the engine input went off under a running engine, or after a held engine's charge
    went) or a start seen on the supply counts as a running engine. A handset that boots into a pending retest with
    the key on, its engine off at the save and now, and the supply charging (a charger on the battery) has watched
    nothing yet: its first poll resumes the retest and books no engine start (no ENGINE record)."""
    state = MemoryState()
    log = MemoryLog()
    first = Interlock(_Board(), log, state)
    first.boot(TICK, RTC)
    first.retest_pending = True  # a retest asked for, then the engine stalled with the key on, then the cut
    first.retest_deadline = RTC + 300
    first._dirty = True
    first._flush()
    m = Interlock(_Board(), log, state)
    m.boot(TICK, RTC + 10)
    seq = log.next_seq()
    inp = _inputs(RTC + 10)
    inp.ignition = True
    inp.charging = True
    m.step(TICK + 1000, inp)
    kinds = [log.read(s)[2] for s in range(seq, log.next_seq())]
    assert records.IGNITION in kinds and records.ENGINE not in kinds
    assert m.retest_pending and not m._engine
    for i in range(2, 9):  # nor later: no engine was held, so no charge back is watched (a charger is no start)
        m.step(TICK + 1000 * i, inp)
    kinds = [log.read(s)[2] for s in range(seq, log.next_seq())]
    assert records.ENGINE not in kinds and records.BYPASS not in kinds and not m._engine
