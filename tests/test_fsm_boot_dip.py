"""Example tests of the boot after a power cut inside a charge dip: an engine held by its charge (its sense wire cut,
ENGINE a=1 b=1) when the state was saved, and at the first poll the key on, the engine input off and no charge (a
load at idle pulled the alternator's output down as the power went). The saved state keeps the hold (persist.F_HELD),
so the boot takes the engine as held and running, in a charge loss that began at the boot; an engine whose sense
wire worked at the save stopped in the cut, as before."""

from fsm import persist, records
from fsm.machine import (
    ENGINE_CHARGE_LOSS_MS,
    ENGINE_SENSE_HOLD_MS,
    S_DRIVING,
    S_RESTART,
    S_RETEST,
    S_TEST,
    Interlock,
)
from interlock import timebase
from storage.memory import MemoryState
from tests.fsm_handset import Handset
from tests.test_fsm_persist_formats import old_state


def _driving(sense_cut=True, mended=False):
    """A handset driving on; its engine-sense wire cut (the engine held by its charge: ENGINE a=1 b=1), and then
    mended if `mended`; then 1 s into a charge dip."""
    h = Handset()
    h.to_driving()
    if sense_cut:
        h.inp.engine = False
        h.poll(1000, n=5)
        assert h.records(records.ENGINE)[-1][1:3] == (1, 1) and h.fsm.state == S_DRIVING
        if mended:
            h.inp.engine = True
            h.poll()
    h.inp.charging = False
    h.poll(1000)
    assert h.fsm.state == S_DRIVING
    return h


def _cut(h, cut_s):
    """The power goes for cut_s and comes back with the key on, the engine input off and no charge; the handset
    boots on its log and state and is polled once. Returns the log position of the boot."""
    since = h.log.next_seq()
    wall = h.fsm.wall
    h.now = timebase.add(h.now, cut_s * 1000)
    h.fsm = Interlock(h.board, h.log, h.store, seed=3)
    h.fsm.boot(h.now, wall + cut_s)
    h.inp.rtc = 0  # (no reading: device time runs from the boot's)
    h.inp.ignition, h.inp.engine, h.inp.charging = True, False, False
    h.poll()
    return since


def _engine(h, since):
    return [r[1:3] for r in h.records(records.ENGINE, since)]


def test_the_saved_state_says_whether_the_engine_ran_held_by_its_charge():
    """The hold is in the saved state from the poll that takes it, and leaves it when the sense wire reads again."""
    h = Handset()
    h.to_driving()
    assert not _loaded(h).held_saved
    h.inp.engine = False
    h.poll(1000, n=5)
    assert _loaded(h).held_saved and _loaded(h).engine_saved
    h.inp.engine = True  # the wire mended: no record, but the state is saved
    h.poll()
    assert not _loaded(h).held_saved and _loaded(h).engine_saved


def _loaded(h):
    m = Interlock(h.board, h.log, MemoryState())
    assert persist.unpack(h.store.load(), m) > 0
    return m


def test_a_held_engine_whose_charge_comes_back_within_the_loss_time_after_a_blip_drives_on():
    """Held at the save, a short cut in a dip: the drive resumes (ENGINE a=1 b=1, DRIVING, the retest schedule
    kept); a charge back before ENGINE_CHARGE_LOSS_MS from the boot is the dip ridden out: no stop, no start test."""
    h = _driving()
    due = h.fsm.retest_due
    since = _cut(h, 2)
    assert _engine(h, since) == [(1, 1)]
    assert h.fsm.state == S_DRIVING and h.fsm.retest_due == due
    h.poll(1000, n=ENGINE_CHARGE_LOSS_MS // 1000 - 1)
    h.inp.charging = True
    h.poll(1000, n=10)
    assert _engine(h, since) == [(1, 1)]
    assert h.fsm.state == S_DRIVING and h.fsm._engine
    assert h.records(records.TEST_REQUEST, since) == []


def test_a_held_engine_whose_charge_stays_gone_stops_and_its_charge_back_is_a_restart():
    """Held at the save, a short cut in a dip that lasts: ENGINE_CHARGE_LOSS_MS from the boot the held engine stops
    (ENGINE a=0, the free restart); the charge that comes back with the key on and holds ENGINE_SENSE_HOLD_MS is the
    engine started again in the free restart (ENGINE a=1 b=1, DRIVING, no bypass), so the retests go on."""
    h = _driving()
    since = _cut(h, 2)
    h.poll(1000, n=ENGINE_CHARGE_LOSS_MS // 1000 - 1)
    assert _engine(h, since) == [(1, 1)] and h.fsm.state == S_DRIVING
    h.poll(1000)
    assert _engine(h, since) == [(1, 1), (0, 0)]
    assert h.fsm.state == S_RESTART and h.fsm.restart_until
    h.inp.charging = True
    h.poll(1000, n=ENGINE_SENSE_HOLD_MS // 1000 + 1)
    assert _engine(h, since) == [(1, 1), (0, 0), (1, 1)]
    assert h.records(records.BYPASS, since) == []
    assert h.fsm.state == S_DRIVING and h.fsm.retest_due


def test_a_held_engine_after_a_long_cut_in_a_dip_is_asked_a_retest_at_once():
    """Held at the save, a cut longer than the free restart: the engine runs on held, and the drive the cut
    interrupted is asked a retest at once (RETEST c=RQ_POWER_CUT), not a start test."""
    h = _driving()
    since = _cut(h, h.fsm.policy.free_restart_s + 60)
    assert _engine(h, since) == [(1, 1)]
    assert [r[1:4] for r in h.records(records.RETEST, since)] == [(0, 1, records.RQ_POWER_CUT)]
    assert h.fsm.state == S_RETEST and h.fsm._engine
    assert h.records(records.TEST_REQUEST, since)[0][1] == 2  # the retest's request, no start test


def test_an_engine_sensed_at_the_save_stopped_in_the_cut():
    """The sense wire worked at the save (never cut, or cut and mended): an engine input off with no charge at the
    boot is an engine that stopped in the cut, as before: no ENGINE record, a start test is asked."""
    for h in (_driving(sense_cut=False), _driving(mended=True)):
        since = _cut(h, 2)
        assert _engine(h, since) == []
        assert h.fsm.state == S_TEST and not h.fsm._engine
        h.poll(1000, n=10)
        assert _engine(h, since) == [] and h.fsm.state == S_TEST


def test_a_hold_logged_but_not_yet_saved_is_replayed_from_the_log():
    """The log is the write-ahead record: a cut right after the hold's record (ENGINE a=1 b=1), before the poll's save,
    leaves a state without it; the boot replays the record, so the engine is held at the boot as if it had been
    saved."""
    h = Handset()
    h.to_driving()
    h.inp.engine = False
    since = h.log.next_seq()
    for _ in range(10):
        before = h.store.load()
        h.poll(1000)
        if (1, 1) in _engine(h, since):
            break
    assert _engine(h, since) == [(0, 0), (1, 1)]
    h.store._data = before  # the cut came between the record and the save
    assert not _loaded(h).held_saved
    since = _cut(h, 2)
    assert _engine(h, since) == [(1, 1)] and h.fsm.state == S_DRIVING


def test_older_formats_do_not_read_their_identity_flag_as_a_hold():
    """Bit F_HELD was F_PROVISIONED in formats 1 and 2 (a secret in bytes 4..39): it says nothing of an engine
    there. Formats 3 and 4 never set it before, and keep the hold in it now."""
    h = _driving()
    m = h.fsm
    assert m.held_saved and m.engine_saved
    m.secret = bytes(32)
    for fmt in (1, 2):
        data = old_state(m, fmt)
        assert data[3] & persist.F_HELD
        got = Interlock(h.board, h.log, MemoryState())
        assert persist.unpack(data, got) > 0
        assert not got.held_saved and got.engine_saved
    got = Interlock(h.board, h.log, MemoryState())
    assert persist.unpack(persist.pack(m), got) > 0
    assert got.held_saved



def test_a_boot_on_a_corrupt_state_saves_a_hold_only_from_the_log():
    """A state that does not parse keeps nothing of an engine: the boot that finds it corrupt (locked for service)
    rebuilds what the log holds, and with no engine ever logged its own save (all a second cut before the first
    poll leaves) holds no hold."""
    h = Handset()
    assert h.records(records.ENGINE) == []
    h.store._data = b"\xff" * 40
    h.fsm = Interlock(h.board, h.log, h.store, seed=3)
    h.fsm.boot(timebase.add(h.now, 2000), h.fsm.wall + 2)
    assert h.fsm.state_lock
    assert not h.store.load()[3] & persist.F_HELD
    assert not _loaded(h).held_saved and not _loaded(h).engine_saved
