"""Power cut at every program/erase of a storage workload on littlefs: nothing committed is ever lost.

The workload drives the storage API the way the firmware does (drives, failed tests, lockouts, unlock codes,
clears, state saves, acknowledgements that free segments). For every N from 1 to the workload's total number
of flash program+erase operations, a fresh copy of the same formatted chip loses power at the N-th operation
(that operation is torn: half its bytes land), the chip is remounted, the log and the state are reopened, and:
every record whose append had returned is there and unchanged, the chain verifies, sequence numbers are gapless
from the oldest held record, nothing unacknowledged was freed, the acknowledged seq did not go back, the state
is exactly the last completed save or the one in flight, and the log takes a new record afterwards.
"""

import random

import pytest

from fsm import records as R
from host_sim.flash import LfsFlash, SimFlash
from interlock import record
from storage.log import FlashLog
from storage.state import FileState, PairState, _pack

SEG = 6  # small segments so the workload rotates and frees many times
BLOCKS = 48


class Trace:
    """What the workload saw complete, stamped with the chip's operation count at that moment."""

    def __init__(self, dev):
        self.dev = dev
        self.records = []  # (ops_after, seq, tuple)
        self.saves = []  # (ops_before, ops_after, data)
        self.acks = []  # (ops_before, ops_after, seq)


def _state_bytes(lock, violations, used_codes, gen):
    """State bytes as a state machine would hand them over: lockout, counters, used codes (length varies)."""
    body = bytes([lock, violations]) + gen.to_bytes(4, "little") + bytes(used_codes)
    return body + b"\x5a" * (gen % 7)


def workload(log, state, tr, drives=14):
    """Drives with tests, a failure and lockout, unlock codes and clears, state saves and acks."""
    rnd = random.Random(7)
    wall = 86400 * 100
    lock = 0
    violations = 0
    used = []
    gen = 0

    def rec(rtype, a=0, b=0, c=0, photo=0):
        seq = log.append(wall, rtype, a, b, c, photo)
        tr.records.append((tr.dev.ops, seq, (seq, wall, rtype, a, b, c, photo)))

    def save():
        nonlocal gen
        gen += 1
        data = _state_bytes(lock, violations, used, gen)
        before = tr.dev.ops
        state.save(data)
        tr.saves.append((before, tr.dev.ops, data))

    for d in range(drives):
        wall += 3600 * 5
        rec(R.IGNITION, 1)
        rec(R.TEST_REQUEST, 1, photo=d * 3 + 1)
        brac = rnd.choice((0, 0, 5, 31))
        verdict = R.FAIL if brac >= 20 else (R.WARN if brac >= 10 else R.PASS)
        rec(R.RESULT, brac, verdict, 1)
        if verdict == R.FAIL:
            lock = R.LOCK_TEMP
            rec(R.LOCKOUT, R.LOCK_TEMP, 300, 1)
            save()
            wall += 400
            lock = 0
            rec(R.CLEAR, R.LOCK_TEMP, R.SRC_TIMER, 0)
            save()
            continue
        rec(R.ENGINE, 1)
        wall += 600
        rec(R.TEST_REQUEST, 2)
        if d % 4 == 3:
            rec(R.RETEST, R.RT_MISSED)
            violations += 1
            lock = R.LOCK_VIOLATION
            rec(R.VIOLATION, R.VIO_MISSED_RETEST, violations, wall + 5 * 86400)
            rec(R.LOCKOUT, R.LOCK_VIOLATION, 0, R.VIO_MISSED_RETEST)
            save()
            code = 40 + d
            rec(R.CODE, 1, 1, code)
            used.append(code)
            lock = 0
            rec(R.CLEAR, R.LOCK_VIOLATION, R.SRC_CODE, code)
            save()
        else:
            rec(R.RESULT, 3, R.PASS, 2)
            rec(R.RETEST, R.RT_PASS)
        wall += 1200
        rec(R.ENGINE, 0)
        rec(R.IGNITION, 0)
        if d % 3 == 2:
            seq = log.next_seq() - 1 - rnd.randrange(4)
            before = tr.dev.ops
            log.acknowledge(seq, wall)
            tr.acks.append((before, tr.dev.ops, seq))
            rec(R.SYNC, 1, seq)
            save()


def _base_image(pair):
    """A formatted chip with an empty log and state, and the operation count of the workload on it."""
    fl = LfsFlash.fresh(BLOCKS)
    FlashLog(fl, seg_records=SEG, retention=0)
    image = fl.dev.image()
    return image


def _open(fl, pair):
    """Log and state as the firmware opens them at boot."""
    st = PairState(fl) if pair else FileState(fl)
    return FlashLog(fl, seg_records=SEG, retention=0), st


def _run(image, cut_at, pair, torn=True):
    """Run the workload on a copy of image with the power cut at operation cut_at (0 = never)."""
    dev = SimFlash(image=image, cut_at=cut_at, torn=torn)
    fl = LfsFlash(dev)
    tr = Trace(dev)
    log, st = _open(fl, pair)
    st.load()
    try:
        workload(log, st, tr)
        finished = True
    except OSError:
        finished = False
    return dev, tr, finished


def check_after_cut(dev, tr, cut, pair):
    """Remount the chip as it was left at the cut and check every storage promise; returns the log.

    tr is the trace of the uncut reference run: the workload is deterministic, so up to the cut the cut run
    made the same operations, and the reference tells what was in flight when the power went.
    """
    fl = LfsFlash(SimFlash(image=dev.image()))
    log, st = _open(fl, pair)
    done = cut - 1  # operations that completed before the torn one
    committed = [r for r in tr.records if r[0] <= done]
    ok, last, _h, bad = log.verify()
    assert ok, f"chain broken at seq {bad} after a cut at op {cut}"
    last_committed = committed[-1][1] if committed else 0
    assert log.next_seq() - 1 in (last_committed, last_committed + 1), "lost or invented records"
    acked_done = max([a[2] for a in tr.acks if a[1] <= done] or [0])
    acked_max = max([a[2] for a in tr.acks if a[0] < cut] or [0])
    assert acked_done <= log.acked() <= max(acked_max, acked_done)
    assert log.first_seq() <= log.acked() + 1, "an unacknowledged record was freed"
    for _ops, seq, want in committed:
        if seq >= log.first_seq():
            assert log.read(seq) == want, f"record {seq} changed by a cut at op {cut}"
    if log.next_seq() - 1 == last_committed + 1:  # the append in flight landed whole: it must be the right one
        inflight = [r for r in tr.records if r[1] == last_committed + 1]
        assert log.read(last_committed + 1) == inflight[0][2]
    saved = [s for s in tr.saves if s[1] <= done]
    allowed = [saved[-1][2] if saved else None]
    nxt = [s for s in tr.saves if s[1] > done and s[0] < cut]
    if nxt:
        allowed.append(nxt[0][2])
    got = st.load()
    assert got in allowed, f"state after a cut at op {cut} is neither the old nor the new copy"
    seq = log.append(999999, R.BOOT, 1, -1, 0)  # the log goes on after recovery
    assert seq == last + 1 and log.verify()[0]
    return log


@pytest.mark.parametrize("pair", [False, True], ids=["rename-state", "pair-state"])
def test_every_cut_point_keeps_committed_records_and_state(pair, capsys):
    """A power cut at any program or erase of the workload loses no committed record and no state."""
    image = _base_image(pair)
    dev, tr, finished = _run(image, 0, pair)
    assert finished
    total = dev.ops
    assert len(tr.records) > 100 and len(tr.acks) >= 3 and len(tr.saves) >= 8
    assert total > 300
    exercised = 0
    for cut in range(1, total + 1):
        dev, tr2, finished = _run(image, cut, pair)
        assert not finished and dev.dead, f"the cut at op {cut} did not stop the workload"
        assert tr2.records == [r for r in tr.records if r[0] < cut]  # same run as the reference up to the cut
        check_after_cut(dev, tr, cut, pair)
        exercised += 1
    with capsys.disabled():
        kind = "pair" if pair else "rename"
        print(f"\npower-cut test ({kind}): {exercised} cut points exercised of {total} program/erase operations, "
              f"{len(tr.records)} records")
    assert exercised == total


def test_untorn_cuts_also_hold():
    """A cut that drops the operation entirely (rather than tearing it) is survived at every point too."""
    image = _base_image(False)
    dev, tr, _ = _run(image, 0, False)
    total = dev.ops
    for cut in range(1, total + 1):
        dev, _tr2, _ = _run(image, cut, False, torn=False)
        check_after_cut(dev, tr, cut, False)


class TwoStepState(FileState):
    """A deliberately wrong store: writes the copy in place in two committed halves (the checker must see it)."""

    def save(self, data):
        """Overwrite in place with a sync between the halves."""
        self._gen = max(self._gen, 0) + 1
        buf = bytes(_pack(self._gen, data))
        f = self.flash.open(self.path, "wb")
        try:
            f.write(buf[: len(buf) // 2])
            f.flush()
            f.write(buf[len(buf) // 2:])
        finally:
            f.close()


def test_checker_catches_a_non_atomic_state_write():
    """The old-or-new check fails for a store that can be left half-written (so its passes mean something)."""
    image = LfsFlash.fresh(BLOCKS).dev.image()

    def run(cut):
        dev = SimFlash(image=image, cut_at=cut)
        st = TwoStepState(LfsFlash(dev))
        saves = []
        try:
            for i in range(4):
                data = b"state %d " % i * (3 + i)
                before = dev.ops
                st.save(data)
                saves.append((before, dev.ops, data))
        except OSError:
            pass
        return dev, saves

    total = run(0)[0].ops
    broken = 0
    for cut in range(1, total + 1):
        dev, saves = run(cut)
        got = FileState(LfsFlash(SimFlash(image=dev.image()))).load()
        done = [s[2] for s in saves if s[1] <= cut - 1]
        allowed = (done[-1] if done else None, b"state %d " % len(done) * (3 + len(done)))
        if got not in allowed:
            broken += 1
    assert broken > 0


def test_records_are_bit_identical_to_the_encoder():
    """The records on the chip after the workload are exactly record.encode() of what was appended."""
    image = _base_image(False)
    dev, tr, _ = _run(image, 0, False)
    log, _st = _open(LfsFlash(SimFlash(image=dev.image())), False)
    first = log.first_seq()
    prev = log.export_read(8, 32)
    data = log.raw(first, log.next_seq() - first)
    for i, (_ops, _seq, want) in enumerate(r for r in tr.records if r[1] >= first):
        enc = record.encode(prev, *want[:7])
        assert data[i * record.SIZE:(i + 1) * record.SIZE] == enc
        prev = record.chain(prev, enc)


@pytest.mark.parametrize("torn", [True, False], ids=["torn", "dropped"])
def test_journal_replay_rebuilds_exactly_the_chip_a_real_cut_leaves(torn):
    """Replaying operations 1..N-1 and tearing N gives the same bytes as a chip that lost power at N."""
    from host_sim.flash import apply, tear

    image = _base_image(False)
    dev0 = SimFlash(image=image)
    dev0.journal = []
    workload_dev = dev0
    tr = Trace(workload_dev)
    fl = LfsFlash(workload_dev)
    log, st = _open(fl, False)
    st.load()
    workload(log, st, tr)
    journal = dev0.journal
    assert len(journal) == dev0.ops
    cur = bytearray(image)
    checked = 0
    for cut in range(1, len(journal) + 1):
        if cut % 9 == 1 or cut == len(journal):
            dev, _tr, _ = _run(image, cut, False, torn=torn)
            rebuilt = bytearray(cur)
            if torn:
                tear(rebuilt, journal[cut - 1])
            assert bytes(rebuilt) == dev.image(), f"cut {cut}"
            checked += 1
        apply(cur, journal[cut - 1])
    assert bytes(cur) == dev0.image() and checked > 50
