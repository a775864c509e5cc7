"""The event log on flash: hash-chained records (interlock.record) in segment files on littlefs.

Layout under `root` (default /log):
    /log/0000002f    a segment: record.HEADER (first seq 0x2f, chain hash before it), then its records back to
                     back; at most seg_records records, so a full segment is one 4096-byte flash block
    /log/ack         the highest acknowledged seq (u32) and its bitwise complement, written temp-then-rename

Why it survives a power cut at any instant: on littlefs a file's new content becomes visible only at close,
in one commit, so an append is all or nothing. A new segment is written whole (header and first record) in one
write; a cut between its creation and that write leaves an empty file, which mount removes (it held nothing
that append had reported). Freeing deletes whole segment files, oldest first.

Space: records are freed only when acknowledged by the companion AND older than `retention` seconds of device
time, and never the newest segment (it carries the chain head). Budget (2 MiB `vfs` partition = 512 blocks):
capacity 40,400 records = 400 one-block segments, leaving 112 blocks for the firmware files, littlefs metadata
and copy-on-write. A year of a typical program (4 drives a day of 25 records, syncs, service) is about 37,700
records; tests/test_storage_budget.py writes one into a 2 MiB image: 432 of 512 blocks, 38 of them firmware.
nearly_full() turns true `reserve` records before capacity so the lockout and the service visit still log.
"""

from micropython import const

from interlock import record

_SIZE = const(40)
_HDR = const(40)
_DAY = const(86400)


def _name(root, first):
    """Segment file path for a segment starting at seq first."""
    return "%s/%08x" % (root, first)  # noqa: UP031  (MicroPython style: no f-strings in firmware)


class FlashLog:
    """EventLog (see storage/__init__.py) on the flash verbs of drivers/flash.py."""

    def __init__(self, flash, root="/log", seg_records=101, capacity=40400, reserve=200, retention=30 * _DAY):
        self.flash = flash
        self.root = root
        self.seg_records = seg_records
        self.capacity = capacity
        self.reserve = reserve
        self.retention = retention
        self._rec = bytearray(_SIZE)  # one encoded record, reused by every append
        self._first = bytearray(_HDR + _SIZE)  # header + first record of a new segment
        self._ackbuf = bytearray(8)
        self._segs = []  # first seq of each held segment, oldest first
        self._next = 1
        self._hash = record.GENESIS
        self._count = 0  # records in the newest segment
        self._path = ""
        self._acked = 0
        self._wall = 0  # newest wall seen: the clock retention is measured against
        self._xfirst = 0  # export pinned to this first seq
        self._xhdr = b""
        self.mount()

    # -- recovery --------------------------------------------------------------------------------

    def mount(self):
        """Find the segments, drop an empty one a power cut left, and rebuild the chain head and counts."""
        fl = self.flash
        fl.mkdir(self.root)
        segs = []
        for n in fl.listdir(self.root):
            if len(n) == 8:
                try:
                    segs.append(int(n, 16))
                except ValueError:
                    pass
            elif n.endswith(".tmp"):
                fl.remove(self.root + "/" + n)
        segs.sort()
        while segs and fl.stat(_name(self.root, segs[-1])) < _HDR + _SIZE:
            fl.remove(_name(self.root, segs.pop()))  # created, never written: holds no committed record
        self._segs = segs
        if not segs:
            self._next, self._hash, self._count, self._path = 1, record.GENESIS, 0, ""
        else:
            path = _name(self.root, segs[-1])
            data = fl.read(path)
            first, h = record.parse_header(data)
            n = (len(data) - _HDR) // _SIZE
            off = _HDR
            for _ in range(n):
                h = record.chain(h, data, off)
                off += _SIZE
            self._next, self._hash, self._count, self._path = first + n, h, n, path
            if n:
                self._wall = record.fields(data, _HDR + (n - 1) * _SIZE)[1]
        self._acked = self._load_ack()
        if segs and self._acked < segs[0] - 1:
            self._acked = segs[0] - 1  # freed segments were acknowledged
        if self._acked > self._next - 1:
            self._acked = self._next - 1

    def _load_ack(self):
        """Acknowledged seq from the ack file, 0 when missing or damaged."""
        path = self.root + "/ack"
        if self.flash.stat(path) != 8:
            return 0
        n = self.flash.readinto(path, 0, self._ackbuf)
        b = self._ackbuf
        v = b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24
        w = b[4] | b[5] << 8 | b[6] << 16 | b[7] << 24
        if n != 8 or v ^ w != 0xFFFFFFFF:
            return 0
        return v

    # -- the EventLog interface -------------------------------------------------------------------

    def append(self, wall, rtype, a=0, b=0, c=0, photo=0):
        """Commit one record and return its seq; OSError (nothing changed) when the flash refuses."""
        if not 0 <= rtype <= 255:
            raise ValueError("record type out of range")
        seq = self._next
        if not self._segs or self._count >= self.seg_records:
            buf = self._first
            buf[0:4] = record.MAGIC
            buf[4] = seq & 0xFF
            buf[5] = (seq >> 8) & 0xFF
            buf[6] = (seq >> 16) & 0xFF
            buf[7] = (seq >> 24) & 0xFF
            buf[8:40] = self._hash
            record.encode_into(buf, _HDR, self._hash, seq, wall, rtype, a, b, c, photo)
            path = _name(self.root, seq)
            self.flash.write(path, buf)
            self._segs.append(seq)
            self._path = path
            self._count = 1
            self._hash = record.chain(self._hash, buf, _HDR)
            rotated = True
        else:
            record.encode_into(self._rec, 0, self._hash, seq, wall, rtype, a, b, c, photo)
            self.flash.append(self._path, self._rec)
            self._count += 1
            self._hash = record.chain(self._hash, self._rec)
            rotated = False
        self._next = seq + 1
        if wall > self._wall:
            self._wall = wall
        if rotated and len(self._segs) > 1:
            self._free()
        return seq

    def next_seq(self):
        """Sequence number the next record will get."""
        return self._next

    def acknowledge(self, seq, now=-1):
        """The companion holds every record up to seq: persist that, then free what retention allows."""
        if seq > self._next - 1:
            seq = self._next - 1
        if now > self._wall:
            self._wall = now
        if seq > self._acked:
            b = self._ackbuf
            w = seq ^ 0xFFFFFFFF
            for i in range(4):
                b[i] = (seq >> (8 * i)) & 0xFF
                b[4 + i] = (w >> (8 * i)) & 0xFF
            tmp = self.root + "/ack.tmp"
            self.flash.write(tmp, b)
            self.flash.rename(tmp, self.root + "/ack")
            self._acked = seq
        self._free()

    def acked(self):
        """Highest acknowledged sequence number (0 = none)."""
        return self._acked

    def nearly_full(self):
        """True when records that may not be freed yet leave fewer than `reserve` of the capacity."""
        limit = self.capacity - self.reserve
        if not self._segs or self._next - self._segs[0] < limit:
            return False
        if self._next - 1 - self._acked >= limit:
            return True
        self._free()  # retention may have passed since the last free: rare, only near capacity
        return self._next - self._segs[0] >= limit

    def read(self, seq):
        """(seq, wall, rtype, a, b, c, photo) of a held record, or None (freed, not written, or damaged)."""
        buf = self.raw(seq, 1)
        if len(buf) != _SIZE or record.check(buf) != record.OK:
            return None
        return record.decode(buf)

    # -- beyond the interface: sync upload, service download, maintenance -------------------------

    def first_seq(self):
        """Oldest held seq (next_seq() when the log is empty)."""
        return self._segs[0] if self._segs else self._next

    def head(self):
        """(next_seq, chain hash of the newest record) -- the hash the companion should end up with."""
        return self._next, self._hash

    def raw(self, seq, count):
        """The encoded bytes of up to count held records from seq on (fewer at the end; b"" when none)."""
        segs = self._segs
        if not segs or seq < segs[0] or seq >= self._next or count <= 0:
            return b""
        if seq + count > self._next:
            count = self._next - seq
        out = bytearray(count * _SIZE)
        mv = memoryview(out)
        i = self._find(seq)
        pos = 0
        while count > 0:
            first = segs[i]
            end = segs[i + 1] if i + 1 < len(segs) else self._next
            k = min(count, end - seq)
            got = self.flash.readinto(_name(self.root, first), _HDR + (seq - first) * _SIZE, mv[pos:pos + k * _SIZE])
            if got != k * _SIZE:
                return bytes(out[:pos + got])
            pos += k * _SIZE
            seq += k
            count -= k
            i += 1
        return out

    def _find(self, seq):
        """Index of the segment holding seq (binary search)."""
        segs = self._segs
        lo, hi = 0, len(segs) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if segs[mid] <= seq:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def free(self, now=-1):
        """Delete segments that are acknowledged and past retention at device time now; count freed."""
        if now > self._wall:
            self._wall = now
        return self._free()

    def _free(self):
        """Delete the oldest segments while they are wholly acknowledged and past retention."""
        n = 0
        segs = self._segs
        while len(segs) > 1:
            last = segs[1] - 1
            if last > self._acked:
                break
            if self.retention > 0:
                buf = self.raw(last, 1)
                if len(buf) == _SIZE and self._wall - record.fields(buf)[1] < self.retention:
                    break
            self.flash.remove(_name(self.root, segs[0]))
            segs.pop(0)
            n += 1
        return n

    def export_size(self):
        """Bytes of the service-port export (header + every held record); pins its start for export_read."""
        if not self._segs:
            self._xfirst = self._next
            self._xhdr = record.header(self._next, self._hash)
        else:
            self._xfirst = self._segs[0]
            self._xhdr = self.flash.read(_name(self.root, self._xfirst), 0, _HDR)
        return _HDR + (self._next - self._xfirst) * _SIZE

    def export_read(self, off, n):
        """Up to n bytes at off of the export pinned by export_size(); b"" past the end or once freed."""
        if off < 0 or n < 0:
            raise ValueError("negative offset or length")
        if not self._xhdr:
            self.export_size()
        out = b""
        if off < _HDR:
            out = self._xhdr[off:min(_HDR, off + n)]
            n -= len(out)
            off = _HDR
        if n <= 0:
            return out
        rel = off - _HDR
        seq = self._xfirst + rel // _SIZE
        if seq >= self._next or (self._segs and seq < self._segs[0]):
            return out
        skip = rel % _SIZE
        data = self.raw(seq, (skip + n + _SIZE - 1) // _SIZE)
        return out + bytes(data[skip:skip + n])

    def verify(self):
        """Check every held segment: (ok, last_seq, last_hash, bad_seq) with bad_seq 0 when ok."""
        h = None
        last = 0
        for i, first in enumerate(self._segs):
            data = self.flash.read(_name(self.root, first))
            try:
                hfirst, prev = record.parse_header(data)
            except ValueError:
                return False, last, h, first
            if h is None:
                h = prev
            if hfirst != first or prev != h:
                return False, last, h, first
            ok, last, h, bad = record.verify(memoryview(data)[_HDR:], h, first)
            if not ok:
                return False, last, h, first + bad
            end = self._segs[i + 1] if i + 1 < len(self._segs) else self._next
            if last != end - 1:
                return False, last, h, last + 1
        if h is None:
            h = record.GENESIS
        return True, last, h, 0
