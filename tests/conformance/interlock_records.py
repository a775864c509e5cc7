"""Encode a deterministic set of log records, chain them, verify them: prints hex so both interpreters agree."""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import binascii

from interlock import record


def _vals(i):
    """Field values for record i: a spread over every width, sign and saturation case."""
    a = (i * 7919) % 100000 - 50000
    b = -1 if i % 5 == 0 else i * 1000003
    c = (i * 2654435761) & 0xFFFFFFFF
    photo = 0 if i % 3 else i * 17
    if i == 13:
        a = 1 << 40
        b = -(1 << 40)
        photo = -5
    return 1000000 + i * 37, (i % 25) + 1, a, b, c, photo


def main():
    """Print each record's hex and chain hash, then the verify() result."""
    h = record.GENESIS
    print("genesis", binascii.hexlify(record.GENESIS).decode())
    buf = bytearray()
    for i in range(1, 41):
        wall, rtype, a, b, c, photo = _vals(i)
        enc = record.encode(h, i, wall, rtype, a, b, c, photo)
        h = record.chain(h, enc)
        buf.extend(enc)
        print(i, binascii.hexlify(enc).decode(), binascii.hexlify(h).decode()[:16], record.decode(enc))
    ok, last, lh, bad = record.verify(buf, record.GENESIS, 1)
    print("verify", ok, last, binascii.hexlify(lh).decode(), bad)
    buf[5 * record.SIZE + 9] ^= 0x40
    print("edited", record.verify(buf, record.GENESIS, 1)[0:2], record.verify(buf, record.GENESIS)[3])
    print("header", binascii.hexlify(record.header(1, record.GENESIS)).decode())


main()
