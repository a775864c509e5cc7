"""A small CBOR codec (RFC 8949) for SMP payloads, written for MicroPython.

Encodes None, bool, int (-2**64 .. 2**64-1), bytes, str, list/tuple and dict in the canonical form
(shortest heads, map keys sorted by their encoding, shorter first): the same bytes as
`cbor2.dumps(value, canonical=True)` and as the `smp` package's requests. Decodes those plus floats, undefined and indefinite-length
items; rejects tags, reserved values, trailing bytes, nesting deeper than `_DEPTH` and more than `_ITEMS` items
(strings' chunks included), raising `CborError`. Nothing here raises anything else on bad input.
"""

import struct

from micropython import const

_DEPTH = const(16)
# items one decode may build: a request needs about 110 at most (a policy push naming every number), while a
# couple of kilobytes of one-byte items would take 70-100 kB of a board's heap once built
_ITEMS = const(256)
_MAX64 = 0xFFFFFFFFFFFFFFFF


class CborError(ValueError):
    """The bytes are not CBOR this codec accepts."""


class Undefined:
    """The CBOR `undefined` simple value (decoded, never produced by the firmware)."""

    def __repr__(self):
        return "undefined"


UNDEFINED = Undefined()


def _head(out, major, n):
    """Append a major type and argument in the shortest form."""
    m = major << 5
    if n < 24:
        out.append(m | n)
    elif n < 0x100:
        out.append(m | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(m | 25)
        out.extend(struct.pack(">H", n))
    elif n < 0x100000000:
        out.append(m | 26)
        out.extend(struct.pack(">I", n))
    else:
        out.append(m | 27)
        out.extend(struct.pack(">II", n >> 32, n & 0xFFFFFFFF))


def encode_into(out, value, depth=0):
    """Append the CBOR encoding of value to the bytearray out."""
    if depth > _DEPTH:
        raise CborError("nesting too deep")
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if value >= 0:
            if value > _MAX64:
                raise CborError("integer out of range")
            _head(out, 0, value)
        else:
            n = -1 - value
            if n > _MAX64:
                raise CborError("integer out of range")
            _head(out, 1, n)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _head(out, 2, len(value))
        out.extend(value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        _head(out, 3, len(raw))
        out.extend(raw)
    elif isinstance(value, (list, tuple)):
        _head(out, 4, len(value))
        for item in value:
            encode_into(out, item, depth + 1)
    elif isinstance(value, dict):
        # keys in canonical order (shorter encoding first, then bytewise), because MicroPython's dicts do not
        # keep insertion order: the same map gives the same bytes on both interpreters
        keys = list(value)
        pairs = []
        for i in range(len(keys)):
            kb = bytearray()
            encode_into(kb, keys[i], depth + 1)
            pairs.append((len(kb), bytes(kb), i))
        pairs.sort()
        _head(out, 5, len(pairs))
        for _n, kb, i in pairs:
            out.extend(kb)
            encode_into(out, value[keys[i]], depth + 1)
    else:
        raise CborError("cannot encode this type")


def encode(value):
    """The CBOR encoding of value as bytes."""
    out = bytearray()
    encode_into(out, value)
    return bytes(out)


def _half(h):
    """Value of an IEEE 754 half-precision float given as a 16-bit integer."""
    sign = -1.0 if h & 0x8000 else 1.0
    exp = (h >> 10) & 0x1F
    frac = h & 0x3FF
    if exp == 0:
        return sign * frac * 2.0**-24
    if exp == 31:
        return sign * float("inf") if frac == 0 else float("nan")
    return sign * (1024 + frac) * 2.0 ** (exp - 25)


class _Reader:
    """Cursor over the input bytes; every read is bounds-checked."""

    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.left = _ITEMS  # items (and string chunks) still allowed

    def count(self):
        """One more item built; CborError past the budget."""
        self.left -= 1
        if self.left < 0:
            raise CborError("too many items")

    def take(self, n):
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise CborError("truncated")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def byte(self):
        if self.pos >= len(self.data):
            raise CborError("truncated")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def arg(self, info):
        """The argument that follows an initial byte with additional information info."""
        if info < 24:
            return info
        if info == 24:
            return self.byte()
        if info == 25:
            return struct.unpack(">H", self.take(2))[0]
        if info == 26:
            return struct.unpack(">I", self.take(4))[0]
        if info == 27:
            hi, lo = struct.unpack(">II", self.take(8))
            return (hi << 32) | lo
        raise CborError("reserved additional information")


_BREAK = object()


def utf8_valid(b):
    """True when the bytes b are well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points
    above U+10FFFF). MicroPython's decode lets those through and CPython's does not: checked here, both
    interpreters give the same answer."""
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= c <= 0xDF:
            k = 1
        elif 0xE0 <= c <= 0xEF:
            k = 2
            if c == 0xE0:
                lo = 0xA0  # shorter forms are overlong
            elif c == 0xED:
                hi = 0x9F  # U+D800..U+DFFF are surrogates
        elif 0xF0 <= c <= 0xF4:
            k = 3
            if c == 0xF0:
                lo = 0x90
            elif c == 0xF4:
                hi = 0x8F  # above U+10FFFF
        else:
            return False
        if i + k >= n or not lo <= b[i + 1] <= hi:
            return False
        for j in range(i + 2, i + k + 1):
            if not 0x80 <= b[j] <= 0xBF:
                return False
        i += k + 1
    return True


def _string(r, major, info, depth):
    """A byte or text string, definite or indefinite (chunks of the same major type; a text string's chunks
    are each whole UTF-8, RFC 8949 3.2.3)."""
    if info == 31:
        parts = []
        while True:
            ib = r.byte()
            if ib == 0xFF:
                break
            if ib >> 5 != major or (ib & 31) == 31:
                raise CborError("bad string chunk")
            r.count()
            chunk = bytes(r.take(r.arg(ib & 31)))
            if major == 3 and not utf8_valid(chunk):
                raise CborError("invalid utf-8")
            parts.append(chunk)
        raw = b"".join(parts)
    else:
        raw = bytes(r.take(r.arg(info)))
        if major == 3 and not utf8_valid(raw):
            raise CborError("invalid utf-8")
    if major == 3:
        try:
            return raw.decode("utf-8")
        except UnicodeError:
            raise CborError("invalid utf-8") from None
    return raw


def _item(r, depth):
    """Decode one data item at the cursor."""
    if depth > _DEPTH:
        raise CborError("nesting too deep")
    r.count()
    ib = r.byte()
    major = ib >> 5
    info = ib & 31
    if major == 0:
        return r.arg(info)
    if major == 1:
        return -1 - r.arg(info)
    if major == 2 or major == 3:
        return _string(r, major, info, depth)
    if major == 4:
        out = []
        if info == 31:
            while True:
                v = _item(r, depth + 1)
                if v is _BREAK:
                    return out
                out.append(v)
        n = r.arg(info)
        if n > len(r.data) - r.pos:
            raise CborError("truncated")
        for _ in range(n):
            v = _item(r, depth + 1)
            if v is _BREAK:
                raise CborError("unexpected break")
            out.append(v)
        return out
    if major == 5:
        out = {}
        n = -1 if info == 31 else r.arg(info)
        if n > (len(r.data) - r.pos) // 2:
            raise CborError("truncated")
        while n != 0:
            k = _item(r, depth + 1)
            if k is _BREAK:
                if n < 0:
                    return out
                raise CborError("unexpected break")
            if isinstance(k, (list, dict)):
                raise CborError("unhashable map key")
            v = _item(r, depth + 1)
            if v is _BREAK:
                raise CborError("unexpected break")
            out[k] = v
            n -= 1
        return out
    if major == 6:
        raise CborError("tags are not supported")
    # major 7: simple values and floats
    if info == 20:
        return False
    if info == 21:
        return True
    if info == 22:
        return None
    if info == 23:
        return UNDEFINED
    if info == 25:
        return _half(struct.unpack(">H", r.take(2))[0])
    if info == 26:
        return struct.unpack(">f", r.take(4))[0]
    if info == 27:
        return struct.unpack(">d", r.take(8))[0]
    if info == 31:
        return _BREAK
    raise CborError("unsupported simple value")


def decode(data):
    """The value encoded by data (bytes); CborError if it is not exactly one well-formed item."""
    r = _Reader(data)
    v = _item(r, 0)
    if v is _BREAK:
        raise CborError("unexpected break")
    if r.pos != len(data):
        raise CborError("trailing bytes")
    return v
