"""The service port's CBOR codec on a fixed spread of values: the same bytes and the same decoded values on
CPython and MicroPython, and the same errors for malformed input."""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import binascii

from service import cbor

_x = [2463534242]


def rnd(n):
    """A fixed xorshift sequence: 0 <= value < n."""
    x = _x[0]
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    _x[0] = x
    return x % n


def value(depth):
    """A pseudo-random CBOR-encodable value."""
    k = rnd(9 if depth < 3 else 6)
    if k == 0:
        return None
    if k == 1:
        return rnd(2) == 1
    if k == 2:
        return rnd(30) - 10
    if k == 3:
        return (rnd(0x10000) << 48 | rnd(0x10000) << 32 | rnd(0x10000) << 16 | rnd(0x10000)) >> rnd(64)
    if k == 4:
        return -1 - (rnd(0x10000) << rnd(48))
    if k == 5:
        return bytes(rnd(256) for _ in range(rnd(30)))
    if k == 6:
        return "".join(chr(97 + rnd(26)) for _ in range(rnd(30))) + ("\u00e9" if rnd(3) == 0 else "")
    if k == 7:
        return [value(depth + 1) for _ in range(rnd(5))]
    out = {}
    for _ in range(rnd(5)):
        out["k" + str(rnd(100))] = value(depth + 1)
    return out


def show(v):
    """repr that is the same on both interpreters (dicts printed in insertion order)."""
    if isinstance(v, dict):
        return "{" + ", ".join(sorted(show(k) + ": " + show(x) for k, x in v.items())) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    if isinstance(v, bytes):
        return "h'" + binascii.hexlify(v).decode() + "'"
    if isinstance(v, str):
        return "t'" + binascii.hexlify(v.encode()).decode() + "'"  # repr escapes differ between interpreters
    return repr(v)


def main():
    """Encode, decode and re-encode a spread of values; decode malformed inputs."""
    for i in range(300):
        v = value(0)
        enc = cbor.encode(v)
        back = cbor.decode(enc)
        print(i, binascii.hexlify(enc).decode(), back == v, cbor.encode(back) == enc)
    for hexed in ("", "18", "5affffffff", "c100", "1c", "ff", "0102", "9bffffffffffffffff", "a18001",
                  "81" * 40 + "00", "f820", "5f6161ff", "9f0102ff", "bf616101ff", "5f42010243030405ff", "f7",
                  "f93c00", "fa3fc00000", "fb400921fb54442d18", "a2616101616102", "98ff" + "80" * 255,
                  "990100" + "80" * 256, "5f" + "40" * 300 + "ff", "62c0af", "63eda080", "64f4908080", "62c328",
                  "63e282ac", "64f09f9880", "7f61e26282acff", "7f62e28261acff"):
        try:
            print(hexed[:16], len(hexed), "->", show(cbor.decode(binascii.unhexlify(hexed)))[:40])
        except cbor.CborError as e:
            print(hexed[:16], len(hexed), "-> CborError", e)


main()
