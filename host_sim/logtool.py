"""The log reader: `python -m host_sim log IMAGE [--json] [--raw]`.

Reads the event log out of a flash image (a littlefs image as `host_sim.flash` writes it or as dumped from a
board's `vfs` partition), or with --raw out of a service-port export (interlock.record.HEADER then records).
Checks every record's CRC, the hash chain and the sequence, and prints the records as a table (type names
from fsm.records.NAMES) or as JSON lines. Every problem is reported with where it is: segment file, byte offset
in the file, byte offset in the image, and the seq. A single changed byte inside a record is pinpointed: the
reader finds the one byte value that makes the record's CRC and the next record's chain link agree again, and
names the byte, its field, the value found and the value the chain expects.

Exit status: 0 the log verifies, 1 problems found (listed), 2 the input cannot be read at all.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

import host_sim  # noqa: F401  (firmware on sys.path)
from fsm.records import NAMES
from interlock import record

SIZE = record.SIZE
EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
# byte ranges of the record fields (see storage/record.py)
FIELDS = ((0, 4, "seq"), (4, 8, "wall"), (8, 12, "a"), (12, 16, "b"), (16, 20, "c"), (20, 24, "photo"),
          (24, 25, "type"), (25, 26, "version"), (26, 28, "flags"), (28, 36, "link"), (36, 40, "crc"))


def field_of(pos: int) -> str:
    """Name of the record field that holds byte pos."""
    for lo, hi, name in FIELDS:
        if lo <= pos < hi:
            return name
    return "?"


class Segment:
    """One run of records with its header: a segment file, or the whole of an export."""

    def __init__(self, name: str, data: bytes, base: int) -> None:
        self.name = name
        self.data = data
        self.base = base  # offset of data[0] in the input image/file, -1 when unknown


def repair_one_byte(rec: bytes, prev_hash: bytes | None, next_link: bytes | None):
    """(pos, found, expected) when exactly one changed byte explains the damage, else None."""
    found = []
    buf = bytearray(rec)
    for pos in range(SIZE):
        orig = buf[pos]
        for v in range(256):
            if v == orig:
                continue
            buf[pos] = v
            if record.check(buf) == record.OK:
                if prev_hash is not None and bytes(buf[28:36]) != prev_hash[:record.LINK]:
                    continue
                if next_link is not None and prev_hash is not None and \
                        record.chain(prev_hash, bytes(buf))[:record.LINK] != next_link:
                    continue
                found.append((pos, orig, v))
                if len(found) > 1:
                    return None
        buf[pos] = orig
    return found[0] if found else None


class Reader:
    """Walks segments in order, verifying, collecting records and problems."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.problems: list[dict] = []
        self.hash: bytes | None = None
        self.next_seq = 0
        self.first_seq = 0

    def problem(self, seg: Segment, off: int, seq: int, what: str, **more) -> None:
        """Note one problem with its position."""
        p = {"problem": what, "file": seg.name, "offset": off,
             "image_offset": seg.base + off if seg.base >= 0 else None, "seq": seq}
        p.update(more)
        self.problems.append(p)

    def segment(self, seg: Segment) -> None:
        """Verify one segment: header against the chain so far, then every record."""
        data = seg.data
        try:
            first, prev = record.parse_header(data)
        except ValueError:
            self.problem(seg, 0, self.next_seq, "bad segment header")
            self.hash = None
            return
        if self.hash is None:
            if self.records or self.problems:
                pass  # resynchronise on this header after damage
            else:
                self.first_seq = first
            self.hash = prev
        elif prev != self.hash:
            self.problem(seg, 8, first, "segment header does not continue the chain")
            self.hash = prev
        if self.next_seq and first != self.next_seq:
            self.problem(seg, 4, first, f"sequence gap: expected {self.next_seq}, segment starts at {first}")
        self.next_seq = first
        n = (len(data) - record.HEADER_SIZE) // SIZE
        if (len(data) - record.HEADER_SIZE) % SIZE:
            self.problem(seg, record.HEADER_SIZE + n * SIZE, first + n, "segment ends inside a record")
        for i in range(n):
            off = record.HEADER_SIZE + i * SIZE
            rec = bytes(data[off:off + SIZE])
            nxt = bytes(data[off + SIZE + 28:off + SIZE + 36]) if i + 1 < n else None
            self.one(seg, off, rec, nxt)

    def one(self, seg: Segment, off: int, rec: bytes, next_link: bytes | None) -> None:
        """Verify and collect one record."""
        seq_expected = self.next_seq
        why = record.check(rec)
        status = "ok"
        if why == record.OK and self.hash is not None and rec[28:36] != self.hash[:record.LINK]:
            why = record.BAD_LINK
        if why != record.OK:
            fix = repair_one_byte(rec, self.hash, next_link)
            if fix is not None:
                pos, was, want = fix
                self.problem(seg, off + pos, seq_expected, "edited byte", reason=record.REASONS[why],
                             record_offset=pos, field=field_of(pos), found=was, expected=want)
                status = f"EDITED byte {pos} ({field_of(pos)})"
                fixed = bytearray(rec)
                fixed[pos] = want
                chain_rec = bytes(fixed)
            else:
                self.problem(seg, off, seq_expected, record.REASONS[why])
                status = "BAD: " + record.REASONS[why]
                chain_rec = None
        else:
            chain_rec = rec
        seq, wall, rtype, a, b, c, photo, flags, _link = record.fields(rec)
        if status == "ok" and seq != seq_expected:
            self.problem(seg, off, seq_expected, f"sequence gap: expected {seq_expected}, found {seq}")
            status = "BAD: sequence"
        if chain_rec is not None and self.hash is not None:
            self.hash = record.chain(self.hash, chain_rec)
        else:
            self.hash = None  # unknown until the next segment header
        self.next_seq = seq_expected + 1
        self.records.append({
            "seq": seq, "wall": wall, "time": (EPOCH + datetime.timedelta(seconds=wall)).strftime("%Y-%m-%d %H:%M:%S"),
            "type": rtype, "name": NAMES.get(rtype, f"?{rtype}"), "a": a, "b": b, "c": c, "photo": photo,
            "flags": flags, "status": status, "file": seg.name, "offset": off,
            "image_offset": seg.base + off if seg.base >= 0 else None})


def segments_from_image(image: bytes, root: str = "/log") -> tuple[list[Segment], int]:
    """The log's segment files out of a littlefs image, and the acknowledged seq (0 = none)."""
    from host_sim.flash import LfsFlash, SimFlash

    fl = LfsFlash(SimFlash(image=image))
    names = sorted(n for n in fl.listdir(root) if len(n) == 8 and all(ch in "0123456789abcdef" for ch in n))
    segs = []
    for n in names:
        data = fl.read(root + "/" + n)
        if len(data) < record.HEADER_SIZE + SIZE:
            continue  # created by an interrupted rotation, never written: mount removes it
        segs.append(Segment(root + "/" + n, data, image.find(data) if len(data) >= 64 else -1))
    acked = 0
    if fl.stat(root + "/ack") == 8:
        raw = fl.read(root + "/ack")
        v, w = int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")
        if v ^ w == 0xFFFFFFFF:
            acked = v
    return segs, acked


def read_log(data: bytes, raw: bool) -> tuple[Reader, int]:
    """Verify a whole image or export; the reader and the acknowledged seq."""
    if raw:
        segs, acked = [Segment("export", data, 0)], -1
    else:
        segs, acked = segments_from_image(data)
    rd = Reader()
    for seg in segs:
        rd.segment(seg)
    return rd, acked


def main(argv: list[str] | None = None) -> int:
    """`log IMAGE [--json] [--raw]`: print and verify a log; exit 0 ok, 1 problems, 2 unreadable."""
    ap = argparse.ArgumentParser(prog="python -m host_sim log", description="Read and verify the event log.")
    ap.add_argument("image", help="flash image (littlefs), or with --raw a service-port export")
    ap.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    ap.add_argument("--raw", action="store_true", help="input is an export: record header then records")
    args = ap.parse_args(argv)
    try:
        with open(args.image, "rb") as f:
            data = f.read()
    except OSError as e:
        print(f"log: cannot read {args.image}: {e.strerror}", file=sys.stderr)
        return 2
    try:
        rd, acked = read_log(data, args.raw)
    except (OSError, ValueError) as e:
        print(f"log: {args.image} is not a readable flash image: {e}", file=sys.stderr)
        return 2
    summary = {"records": len(rd.records), "first": rd.records[0]["seq"] if rd.records else None,
               "last": rd.records[-1]["seq"] if rd.records else None, "acked": acked if acked >= 0 else None,
               "problems": len(rd.problems), "chain_ok": not rd.problems,
               "head": rd.hash.hex() if rd.hash is not None else None}
    out = sys.stdout
    if args.json:
        for r in rd.records:
            out.write(json.dumps(r) + "\n")
        for p in rd.problems:
            out.write(json.dumps(p) + "\n")
        out.write(json.dumps({"summary": summary}) + "\n")
    else:
        out.write(f"{'seq':>8}  {'time (UTC)':<19}  {'type':<12}  {'a':>11}  {'b':>11}  {'c':>11}  {'photo':>8}  status\n")
        for r in rd.records:
            out.write(f"{r['seq']:8d}  {r['time']:<19}  {r['name']:<12}  {r['a']:11d}  {r['b']:11d}  {r['c']:11d}  "
                      f"{r['photo']:8d}  {r['status']}\n")
        verdict = "verifies" if summary["chain_ok"] else "BROKEN"
        out.write(f"{summary['records']} records, seq {summary['first']}..{summary['last']}, "
                  f"acknowledged up to {summary['acked']}, chain {verdict}\n")
        for p in rd.problems:
            where = f"{p['file']}+{p['offset']}"
            if p["image_offset"] is not None:
                where += f" (image offset {p['image_offset']} / 0x{p['image_offset']:x})"
            extra = ""
            if p["problem"] == "edited byte":
                extra = (f": byte {p['record_offset']} of the record ({p['field']}) is 0x{p['found']:02x}, "
                         f"the chain says 0x{p['expected']:02x}")
            print(f"log: seq {p['seq']} at {where}: {p['problem']}{extra}", file=sys.stderr)
    return 1 if rd.problems else 0


if __name__ == "__main__":
    sys.exit(main())
