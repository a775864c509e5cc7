"""SMP serial framing of the service port: CRC16, line encoding and reassembly of clean, noisy and damaged
streams give the same bytes and reports on CPython and MicroPython."""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import binascii

from service import frame

_x = [88172645]


def rnd(n):
    """A fixed xorshift sequence: 0 <= value < n."""
    x = _x[0]
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    _x[0] = x
    return x % n


def blob(n):
    return bytes(rnd(256) for _ in range(n))


def feed(data, step, limit=600):
    """Reports of a decoder fed data in pieces of step bytes."""
    d = frame.Decoder(limit)
    out = []
    for i in range(0, len(data), step):
        d.feed(data[i:i + step], out)
    return [(k, binascii.hexlify(p).decode() if p else None) for k, p in out]


def main():
    """Print CRCs, encodings and decoder reports."""
    print("crc check", hex(frame.crc16(b"123456789")))
    for n in (0, 1, 2, 3, 91, 92, 93, 94, 200):
        print("crc", n, frame.crc16(bytes(range(n % 256)) * (n // 256 + 1)))
    for n in (8, 20, 89, 90, 91, 92, 185, 186, 500):
        pkt = blob(n)
        lines = frame.encode(pkt)
        print("enc", n, len(lines), frame.wire_size(n), [len(x) for x in lines])
        print("   ", binascii.hexlify(b"".join(lines)[:60]).decode())
        print("dec", feed(b"".join(lines), 1 + rnd(130)) == [(0, binascii.hexlify(pkt).decode())])
    # noise and damage
    good = b"".join(frame.encode(b"\x02\x00\x00\x01\x00\x00\x07\x00\xa0"))
    big = b"".join(frame.encode(b"\x02\x00\x03\x00\x00\x00\x08\x00" + bytes(700)))
    cases = [
        b"hello console\r\n" + good,
        good[:40] + good,
        b"\x06\x09AB!D\n" + good,
        b"\x06\x09" + b"A" * 200 + b"\n" + good,
        b"\x04\x14AAAA\n" + good,
        big + good,
        good[:-3] + bytes([good[-3] ^ 1]) + good[-2:] + good,
    ]
    for i, data in enumerate(cases):
        print("case", i, feed(data, 7))
    for i in range(40):
        noise = blob(rnd(300))
        print("noise", i, [k for k, _ in feed(noise + good, 1 + rnd(50))])


main()
