"""The flash event log: append, rotation, acknowledgement, retention, capacity, export, recovery."""

import struct

import pytest

from fsm import records as R
from host_sim.flash import LfsFlash, SimFlash
from interlock import record
from storage import memory
from storage.log import FlashLog

DAY = 86400


def _log(fl=None, **kw):
    fl = fl or LfsFlash.fresh(64)
    kw.setdefault("seg_records", 5)
    kw.setdefault("retention", 0)
    return FlashLog(fl, **kw)


def _reopen(log, **kw):
    """The same chip after a reboot: a new mount of a copy of its image."""
    kw.setdefault("seg_records", log.seg_records)
    kw.setdefault("retention", log.retention)
    kw.setdefault("capacity", log.capacity)
    kw.setdefault("reserve", log.reserve)
    return FlashLog(LfsFlash(SimFlash(image=log.flash.dev.image())), **kw)


def test_append_returns_gapless_seqs_and_reads_back():
    """Appends get 1, 2, 3... and read() returns exactly the committed values."""
    log = _log()
    for i in range(13):
        assert log.append(500 + i, R.RESULT, i, -i, i * i, i) == i + 1
    assert log.next_seq() == 14
    assert log.read(7) == (7, 506, R.RESULT, 6, -6, 36, 6)
    assert log.read(0) is None and log.read(14) is None


def test_segments_rotate_and_every_one_is_a_header_plus_records():
    """A full segment starts a new file named by its first seq; each file is a header and its records."""
    log = _log()
    for i in range(12):
        log.append(i, R.STATE, i)
    names = sorted(log.flash.listdir("/log"))
    assert names == ["00000001", "00000006", "0000000b"]
    data = log.flash.read("/log/00000006")
    assert len(data) == 40 + 5 * 40 and record.parse_header(data)[0] == 6
    assert log.verify()[:2] == (True, 12)


def test_behaves_like_the_memory_log():
    """FlashLog and MemoryLog give the same answers for the same calls (the interface contract)."""
    fl, mem = _log(capacity=30, reserve=5), memory.MemoryLog(capacity=30, reserve=5)
    for i in range(27):
        assert fl.append(i, R.STATE, i, 0, 0, 0) == mem.append(i, R.STATE, i, 0, 0, 0)
        if i % 7 == 6:
            fl.acknowledge(i - 2)
            mem.acknowledge(i - 2)
        assert fl.next_seq() == mem.next_seq() and fl.acked() == mem.acked()
        assert fl.nearly_full() == mem.nearly_full()
    for seq in range(fl.acked() + 1, fl.next_seq()):  # unacknowledged records: both hold them
        assert fl.read(seq) == mem.read(seq) is not None


def test_acknowledge_frees_only_whole_acknowledged_segments():
    """Segments go only when every record in them is acknowledged; the newest segment always stays."""
    log = _log()
    for i in range(23):
        log.append(i, R.STATE)
    log.acknowledge(9)
    assert log.first_seq() == 6 and log.acked() == 9
    log.acknowledge(10)
    assert log.first_seq() == 11
    log.acknowledge(23)
    assert log.first_seq() == 21 and log.read(23) is not None
    assert log.verify()[0]


def test_retention_keeps_acknowledged_records_until_old_enough():
    """Acknowledged records stay until retention has passed on the device clock."""
    log = _log(retention=7 * DAY)
    for i in range(12):
        log.append(1000 + i, R.STATE)
    log.acknowledge(12, now=1000 + 6 * DAY)
    assert log.first_seq() == 1
    assert log.free(now=1000 + 7 * DAY + 4) == 1 and log.first_seq() == 6
    assert log.free(now=1000 + 7 * DAY + 100) == 1 and log.first_seq() == 11


def test_acknowledge_never_goes_back_or_beyond_the_log():
    """An old acknowledgement changes nothing; one past the newest record stops at the newest."""
    log = _log()
    for i in range(4):
        log.append(i, R.STATE)
    log.acknowledge(3)
    log.acknowledge(2)
    assert log.acked() == 3
    log.acknowledge(99)
    assert log.acked() == 4


def test_nearly_full_when_unacknowledged_records_reach_capacity_minus_reserve():
    """nearly_full() turns true at capacity - reserve unacknowledged records and false after an ack."""
    log = _log(capacity=40, reserve=10)
    for i in range(29):
        log.append(i, R.STATE)
        assert not log.nearly_full()
    log.append(29, R.STATE)
    assert log.nearly_full()
    for i in range(15):  # the lockout and service visit still log: nothing is refused
        log.append(30 + i, R.STATE)
    assert log.nearly_full() and log.next_seq() == 46
    log.acknowledge(45)
    assert not log.nearly_full() and log.first_seq() == 41


def test_nearly_full_counts_records_held_by_retention():
    """Acknowledged records that retention still holds count toward capacity until they may go."""
    log = _log(capacity=20, reserve=5, retention=DAY)
    for _i in range(16):
        log.append(100, R.STATE)
    log.acknowledge(16, now=100)
    assert log.nearly_full()
    log.append(100 + DAY + 1, R.STATE)
    assert not log.nearly_full()


def test_state_after_reboot_is_the_same():
    """A remount finds the same next seq, chain head, acknowledged seq and records."""
    log = _log()
    for i in range(17):
        log.append(i, R.CODE, 1, 2, i)
    log.acknowledge(7)
    again = _reopen(log)
    assert again.head() == log.head() and again.acked() == 7 and again.first_seq() == 6
    assert again.append(99, R.BOOT) == 18 and again.verify()[:2] == (True, 18)


def test_empty_segment_left_by_a_cut_is_dropped_at_mount():
    """A segment file created but never written (cut during rotation) is removed, not counted."""
    log = _log()
    for i in range(5):
        log.append(i, R.STATE)
    log.flash.write("/log/00000006", b"")
    again = _reopen(log)
    assert again.next_seq() == 6 and "00000006" not in again.flash.listdir("/log")
    assert again.append(1, R.BOOT) == 6 and again.verify()[0]


def test_damaged_ack_file_means_nothing_acknowledged_beyond_what_was_freed():
    """A corrupt ack file is ignored: only records already freed count as acknowledged."""
    log = _log()
    for i in range(12):
        log.append(i, R.STATE)
    log.acknowledge(6)
    log.flash.write("/log/ack", b"\x01\x02\x03\x04\x05\x06\x07\x08")
    assert _reopen(log).acked() == 5


def test_export_is_header_and_held_records_in_any_chunking():
    """export_read() returns the header then the held records, whatever the chunk size."""
    log = _log()
    for i in range(14):
        log.append(i, R.STATE, i)
    log.acknowledge(6)
    size = log.export_size()
    assert size == 40 + (15 - 6) * 40
    whole = log.export_read(0, size)
    first, prev = record.parse_header(whole)
    assert first == 6 and record.verify(whole[40:], prev, 6)[:2] == (True, 14)
    for chunk in (1, 7, 39, 40, 41, 128):
        assert b"".join(log.export_read(o, chunk) for o in range(0, size, chunk)) == whole
    assert log.export_read(size, 10) == b"" and log.export_read(size + 100, 10) == b""


def test_raw_gives_encoded_records_for_upload():
    """raw() returns encoded records that verify against the hash before them."""
    log = _log()
    for i in range(11):
        log.append(i, R.STATE, i)
    data = log.raw(1, 100)
    assert len(data) == 11 * 40 and record.verify(data, record.GENESIS, 1)[:2] == (True, 11)
    assert log.raw(12, 1) == b"" and log.raw(0, 1) == b"" and log.raw(3, 0) == b""


def test_full_flash_refuses_with_oserror_and_keeps_the_log_intact():
    """When the filesystem is full, append raises OSError and changes nothing already committed."""
    fl = LfsFlash.fresh(8)
    log = FlashLog(fl, seg_records=101, retention=0)
    n = 0
    with pytest.raises(OSError):
        for n in range(5000):
            log.append(n, R.STATE)
    committed = log.next_seq() - 1
    assert committed > 0
    again = _reopen(log)
    assert again.next_seq() - 1 == committed and again.verify()[0]


def test_edited_segment_fails_verify():
    """verify() finds a record edited on flash."""
    log = _log()
    for i in range(9):
        log.append(i, R.STATE, i)
    data = bytearray(log.flash.read("/log/00000006"))
    data[40 + 40 + 9] ^= 1
    log.flash.write("/log/00000006", bytes(data))
    assert log.verify()[::3] == (False, 7)


def test_bad_input_is_refused_and_changes_nothing():
    """A record type out of range, a non-integer value or a negative export offset is refused cleanly."""
    log = _log()
    log.append(1, R.BOOT)
    head = log.head()
    with pytest.raises(ValueError):
        log.append(2, 300)
    with pytest.raises((TypeError, ValueError, struct.error)):
        log.append(2, R.STATE, None)
    with pytest.raises(ValueError):
        log.export_read(-1, 10)
    assert log.head() == head and _reopen(log).head() == head and log.verify()[:2] == (True, 1)
