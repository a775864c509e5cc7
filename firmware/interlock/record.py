"""Log record encoding, CRC and SHA-256 hash chain: the one definition the handset and the companion share.

A record is (seq, wall, rtype, a, b, c, photo), all integers. On flash and on the wire it is SIZE (40) bytes,
little-endian (struct format `<IIiiiIBBH8sI`):

    off  size  field
      0     4  seq      u32, gapless from 1
      4     4  wall     u32, device seconds since 2024-01-01T00:00Z
      8     4  a        i32
     12     4  b        i32
     16     4  c        i32
     20     4  photo    u32 (0 = no photo)
     24     1  rtype    u8, fsm.records type
     25     1  version  u8, VERSION (1)
     26     2  flags    u16: bit 0..3 set when a, b, c, photo did not fit and were saturated (never silent)
     28     8  link     the first 8 bytes of the chain hash of the previous record (GENESIS for seq 1)
     36     4  crc      CRC-32 (binascii.crc32, zlib polynomial) of bytes 0..35

The chain: hash(n) = SHA-256(hash(n-1) || the 40 encoded bytes of record n), hash(0) = GENESIS. The CRC finds a
damaged record on its own; the link finds an edit that fixed up the CRC (record n+1's link no longer matches);
the companion, which holds the chain hash of the last record it acknowledged, finds a rewrite of the whole tail.

A segment file (and the service-port export) starts with a HEADER of the same size:

      0     4  magic    b"ILG1"
      4     4  first    u32, seq of the first record that follows
      8    32  prev     full chain hash of the record before `first` (GENESIS when first == 1)

followed by records first, first+1, ... back to back.
"""

import binascii
import hashlib
import struct

from .const import const

SIZE = const(40)
HEADER_SIZE = const(40)
VERSION = const(1)
LINK = const(8)
MAGIC = b"ILG1"
FMT = "<IIiiiIBBH8s"
_BODY = const(36)  # bytes covered by the CRC
_I32MIN = const(-0x80000000)
_I32MAX = const(0x7FFFFFFF)
_U32MAX = const(0xFFFFFFFF)

# Chain start: a label's hash, so a log can never be mistaken for one of another format.
GENESIS = hashlib.sha256(b"interlock event log v1").digest()

# Decode and verify reasons (bad_reason): why a record was refused.
OK = const(0)
BAD_LENGTH = const(1)  # buffer ends inside a record
BAD_CRC = const(2)  # bytes do not match their CRC (damage or an edit)
BAD_VERSION = const(3)  # unknown format version
BAD_LINK = const(4)  # link does not match the previous record's hash (an edit with a fixed-up CRC)
BAD_SEQ = const(5)  # sequence number is not the previous one plus one

REASONS = ("ok", "truncated record", "CRC mismatch", "unknown version", "hash chain broken", "sequence gap")


def _sat(v, lo, hi):
    """v clamped to lo..hi (callers flag the clamp)."""
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


def encode_into(buf, off, prev_hash, seq, wall, rtype, a, b, c, photo):
    """Encode one record into buf at off (no allocation besides the CRC int)."""
    flags = 0
    if not _I32MIN <= a <= _I32MAX:
        a = _sat(a, _I32MIN, _I32MAX)
        flags |= 1
    if not _I32MIN <= b <= _I32MAX:
        b = _sat(b, _I32MIN, _I32MAX)
        flags |= 2
    if not _I32MIN <= c <= _I32MAX:
        c = _sat(c, _I32MIN, _I32MAX)
        flags |= 4
    if not 0 <= photo <= _U32MAX:
        photo = _sat(photo, 0, _U32MAX)
        flags |= 8
    if not 0 <= seq <= _U32MAX:
        raise ValueError("seq out of range")
    if not 0 <= wall <= _U32MAX:
        wall = _sat(wall, 0, _U32MAX)  # a clock before 2024 or after 2160: keep the record, pin the time
    # "8s" takes the first 8 bytes of the 32-byte hash: no slice to allocate
    struct.pack_into(FMT, buf, off, seq, wall, a, b, c, photo, rtype & 0xFF, VERSION, flags, prev_hash)
    mv = memoryview(buf)
    struct.pack_into("<I", buf, off + _BODY, binascii.crc32(mv[off:off + _BODY]))


def encode(prev_hash, seq, wall, rtype, a=0, b=0, c=0, photo=0):
    """The SIZE encoded bytes of one record whose predecessor has chain hash prev_hash."""
    buf = bytearray(SIZE)
    encode_into(buf, 0, prev_hash, seq, wall, rtype, a, b, c, photo)
    return bytes(buf)


def check(buf, off=0):
    """Why the record at off is bad on its own (BAD_LENGTH, BAD_CRC, BAD_VERSION), or OK."""
    if len(buf) - off < SIZE or off < 0:
        return BAD_LENGTH
    mv = memoryview(buf)
    crc = struct.unpack_from("<I", buf, off + _BODY)[0]
    if binascii.crc32(mv[off:off + _BODY]) != crc:
        return BAD_CRC
    if buf[off + 25] != VERSION:
        return BAD_VERSION
    return OK


def decode(buf, off=0):
    """(seq, wall, rtype, a, b, c, photo) of the record at off; ValueError when it is truncated or damaged."""
    why = check(buf, off)
    if why != OK:
        raise ValueError(REASONS[why])
    seq, wall, a, b, c, photo, rtype, _v, _f, _l = struct.unpack_from(FMT, buf, off)
    return (seq, wall, rtype, a, b, c, photo)


def fields(buf, off=0):
    """(seq, wall, rtype, a, b, c, photo, flags, link) without any check (for readers that report damage)."""
    seq, wall, a, b, c, photo, rtype, _v, flags, link = struct.unpack_from(FMT, buf, off)
    return (seq, wall, rtype, a, b, c, photo, flags, link)


def chain(prev_hash, encoded, off=0):
    """The chain hash after the SIZE encoded bytes at off: SHA-256(prev_hash || record)."""
    h = hashlib.sha256(prev_hash)
    if off == 0 and len(encoded) == SIZE:
        h.update(encoded)
    else:
        h.update(memoryview(encoded)[off:off + SIZE])
    return h.digest()


def header(first, prev_hash):
    """The HEADER_SIZE bytes that start a segment or an export whose first record is `first`."""
    buf = bytearray(HEADER_SIZE)
    buf[0:4] = MAGIC
    struct.pack_into("<I", buf, 4, first)
    buf[8:40] = prev_hash
    return bytes(buf)


def parse_header(buf, off=0):
    """(first, prev_hash) of a header at off; ValueError when it is not one."""
    if len(buf) - off < HEADER_SIZE or bytes(buf[off:off + 4]) != MAGIC:
        raise ValueError("not a log header")
    return struct.unpack_from("<I", buf, off + 4)[0], bytes(buf[off + 8:off + 40])


def verify(records_bytes, prev_hash, first_seq=0):
    """Check back-to-back records: (ok, last_seq, last_hash, bad_index).

    prev_hash is the chain hash before the first record (GENESIS for seq 1). first_seq, when not 0, is the
    seq the first record must have. Stops at the first bad record: bad_index is its index (-1 when ok),
    last_seq and last_hash describe the last good record (0 and prev_hash when none). See verify_reason.
    """
    ok, last_seq, last_hash, bad, _why = verify_reason(records_bytes, prev_hash, first_seq)
    return ok, last_seq, last_hash, bad


def verify_reason(records_bytes, prev_hash, first_seq=0):
    """verify() plus the reason code of the first bad record (OK when none)."""
    n = len(records_bytes)
    last_seq = first_seq - 1 if first_seq else 0
    h = prev_hash
    i = 0
    off = 0
    while off < n:
        why = check(records_bytes, off)
        if why == OK:
            seq = struct.unpack_from("<I", records_bytes, off)[0]
            if bytes(records_bytes[off + 28:off + 36]) != h[:LINK]:
                why = BAD_LINK
            elif (i > 0 or first_seq) and seq != last_seq + 1:
                why = BAD_SEQ
        if why != OK:
            return False, last_seq, h, i, why
        last_seq = seq
        h = chain(h, records_bytes, off)
        i += 1
        off += SIZE
    return True, last_seq, h, -1, OK
