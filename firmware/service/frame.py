"""SMP serial framing ("SMP over console"): lines with markers, base64, a length and CRC16-XMODEM.

A packet travels as the bytes `len(2, big-endian) packet crc16(2)`, base64-encoded and cut into lines. The
first line starts with 0x06 0x09, each further line with 0x04 0x14; every line ends with a newline, is at
most 127 bytes and its base64 decodes on its own. The CRC covers the packet only; the length counts the
packet plus the CRC. The decoder reassembles frames from any byte stream (console text, noise and partial
frames are dropped) without ever holding more than `limit` decoded bytes.
"""

import binascii

from micropython import const

LINE_MAX = const(127)
_B64_PER_LINE = const(124)  # largest multiple of 4 that fits a line with marker and newline
_RAW_PER_LINE = const(93)  # bytes that 124 base64 characters carry

# what Decoder.feed reports besides complete packets
BAD_CRC = const(1)
BAD_LINE = const(2)  # marker out of place, base64 invalid, line too long, length inconsistent
OVERSIZE = const(3)  # declared length above the limit; the header is kept if the CRC was right


def _table():
    t = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t.append(c & 0xFFFF)
    return tuple(t)


_CRC = _table()


def crc16(data, crc=0):
    """CRC-16/XMODEM of data (poly 0x1021, init 0, no reflection), continuing from crc."""
    t = _CRC
    for b in data:
        crc = ((crc << 8) & 0xFF00) ^ t[((crc >> 8) ^ b) & 0xFF]
    return crc


def _b64_table():
    ok = bytearray(256)
    for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/":
        ok[c] = 1
    return bytes(ok)


_B64OK = _b64_table()


def b64_valid(s):
    """True when s is strict base64: a multiple of 4 long, alphabet only, '=' only as final padding."""
    n = len(s)
    if n == 0 or n & 3:
        return False
    pad = 0
    if s[n - 1] == 61:
        pad = 2 if s[n - 2] == 61 else 1
    ok = _B64OK
    for i in range(n - pad):
        if not ok[s[i]]:
            return False
    return True


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64_into(src, i, end, out, o):
    """Base64 of src[i:end] written into out at o (no allocation); returns the end offset in out."""
    a = _ALPHABET
    while i + 3 <= end:
        v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2]
        out[o] = a[v >> 18]
        out[o + 1] = a[(v >> 12) & 63]
        out[o + 2] = a[(v >> 6) & 63]
        out[o + 3] = a[v & 63]
        i += 3
        o += 4
    r = end - i
    if r:
        v = src[i] << 16
        if r == 2:
            v |= src[i + 1] << 8
        out[o] = a[v >> 18]
        out[o + 1] = a[(v >> 12) & 63]
        out[o + 2] = a[(v >> 6) & 63] if r == 2 else 61
        out[o + 3] = 61
        o += 4
    return o


class Encoder:
    """Turns one SMP packet at a time into wire lines, in buffers allocated once."""

    def __init__(self, limit):
        self._raw = bytearray(limit + 4)  # length, packet, CRC
        self._line = bytearray(LINE_MAX)
        self._mv = memoryview(self._line)
        self._n = 0
        self._pos = 0

    def load(self, packet):
        """Start sending packet (at most limit bytes); its lines then come from line()."""
        n = len(packet)
        raw = self._raw
        raw[0] = (n + 2) >> 8
        raw[1] = (n + 2) & 0xFF
        raw[2:n + 2] = packet
        crc = crc16(packet)
        raw[n + 2] = crc >> 8
        raw[n + 3] = crc & 0xFF
        self._n = n + 4
        self._pos = 0

    def line(self):
        """The next wire line (a view valid until the next call), or None once the packet is out."""
        pos = self._pos
        if pos >= self._n:
            return None
        out = self._line
        out[0] = 0x06 if pos == 0 else 0x04
        out[1] = 0x09 if pos == 0 else 0x14
        end = pos + _RAW_PER_LINE
        if end > self._n:
            end = self._n
        k = b64_into(self._raw, pos, end, out, 2)
        out[k] = 10
        self._pos = end
        return self._mv[:k + 1]


def encode(packet):
    """The wire lines (a list of bytes, each at most 127 long) that carry one SMP packet."""
    enc = Encoder(len(packet))
    enc.load(packet)
    lines = []
    while True:
        line = enc.line()
        if line is None:
            return lines
        lines.append(bytes(line))


def wire_size(packet_len):
    """Bytes on the wire for one SMP packet of packet_len bytes."""
    raw = packet_len + 4
    nlines = (raw + _RAW_PER_LINE - 1) // _RAW_PER_LINE
    return ((raw + 2) // 3) * 4 + 3 * nlines


class Decoder:
    """Reassembles SMP packets from serial bytes; feed() returns what completed."""

    def __init__(self, limit):
        self.limit = limit  # largest packet accepted (SMP header + CBOR)
        self._line = bytearray(LINE_MAX + 1)
        self._n = 0
        self._skip = False  # inside an overlong line: drop until newline
        self._prev = 0
        self._frame = bytearray(limit + 2)
        self._have = 0  # decoded bytes of the current frame, length field included
        self._want = -1  # declared length (packet + CRC); -1 = no frame in progress
        self._crc = 0
        self._tail = 0
        self._head = bytearray(8)
        self.dropped = 0  # frames or lines thrown away, for diagnostics

    def reset(self):
        """Forget any partial line and frame (disconnect)."""
        self._n = 0
        self._skip = False
        self._prev = 0
        self._want = -1

    def feed(self, data, out):
        """Consume bytes; append (kind, packet) to out: kind 0 with a packet, or BAD_CRC/BAD_LINE/OVERSIZE."""
        line = self._line
        prev = self._prev
        for b in data:
            n = self._n
            # a marker always starts a new line, so noise before it cannot hide a frame
            if (b == 0x09 and prev == 0x06) or (b == 0x14 and prev == 0x04):
                line[0] = prev
                line[1] = b
                self._n = 2
                self._skip = False
            elif b == 10:
                if not self._skip and n >= 2:
                    self._line_done(n, out)
                self._n = 0
                self._skip = False
            elif self._skip:
                pass
            elif n >= LINE_MAX - 1:
                # overlong line: drop it and the frame it belongs to
                self._skip = True
                self._n = 0
                if self._want >= 0 or (line[0] == 0x06 and line[1] == 0x09):
                    self._bad(out)
            else:
                line[n] = b
                self._n = n + 1
            prev = b
        self._prev = prev

    def _bad(self, out):
        self._want = -1
        self.dropped += 1
        out.append((BAD_LINE, None))

    def _line_done(self, n, out):
        line = self._line
        start = line[0] == 0x06 and line[1] == 0x09
        cont = line[0] == 0x04 and line[1] == 0x14
        if not start and not cont:
            return  # console text
        body = memoryview(line)[2:n]
        if not b64_valid(body):
            self._bad(out)
            return
        try:
            raw = binascii.a2b_base64(body)
        except ValueError:
            self._bad(out)
            return
        pos = 0
        if start:
            if len(raw) < 2:
                self._bad(out)
                return
            self._want = (raw[0] << 8) | raw[1]
            self._have = 2
            self._crc = 0
            self._tail = 0
            pos = 2
            if self._want < 10:  # an SMP header and a CRC at least
                self._bad(out)
                return
        elif self._want < 0:
            self.dropped += 1
            return  # continuation of a frame we never saw start
        self._take(raw, pos, out)

    def _take(self, raw, pos, out):
        """Add decoded bytes raw[pos:] to the current frame; finish it when complete."""
        want = self._want
        got = self._have - 2  # bytes of packet + CRC so far
        if got + len(raw) - pos > want:
            self._bad(out)
            return
        # the CRC runs over the packet only; the last two bytes are the received CRC
        crc_end = want - 2
        crc = self._crc
        tail = self._tail
        frame = self._frame
        keep = len(frame)
        head = self._head
        t = _CRC
        for i in range(pos, len(raw)):
            b = raw[i]
            if got < crc_end:
                crc = ((crc << 8) & 0xFF00) ^ t[((crc >> 8) ^ b) & 0xFF]
                if got < 8:
                    head[got] = b
            if got < keep:
                frame[got] = b
            tail = ((tail << 8) | b) & 0xFFFF
            got += 1
        self._crc = crc
        self._tail = tail
        self._have = got + 2
        if got < want:
            return
        self._want = -1
        if tail != crc:
            self.dropped += 1
            out.append((BAD_CRC, None))
            return
        if crc_end > self.limit:
            # too big to keep, but the CRC proves the header: the caller can answer MSGSIZE
            self.dropped += 1
            out.append((OVERSIZE, bytes(head)))
            return
        out.append((0, bytes(frame[:crc_end])))
