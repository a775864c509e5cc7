"""Serial framing of the service port: lines, markers, base64, length, CRC16 and reassembly."""

import base64
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from smp import packet as smppacket

from service import frame

LIMIT = 2044


def decode_all(data, limit=LIMIT, step=None):
    d = frame.Decoder(limit)
    out = []
    if step is None:
        d.feed(data, out)
    else:
        for i in range(0, len(data), step):
            d.feed(data[i:i + step], out)
    return out


def smp_decode(lines):
    dec = smppacket.decode()
    next(dec)
    for line in lines:
        try:
            dec.send(line)
        except StopIteration as e:
            return e.value
    raise AssertionError("incomplete")


def test_crc_check_value():
    """CRC-16/XMODEM of "123456789" is 0x31C3."""
    assert frame.crc16(b"123456789") == 0x31C3


@given(st.binary(min_size=8, max_size=LIMIT))
@settings(max_examples=150)
def test_encoding_matches_smp_package(pkt):
    """Our lines are byte for byte the smp package's (128-byte line convention), each at most 127 bytes."""
    lines = frame.encode(pkt)
    assert lines == list(smppacket.encode(pkt, line_length=128))
    assert all(len(line) <= 127 for line in lines)
    assert sum(map(len, lines)) == frame.wire_size(len(pkt))
    assert smp_decode(lines) == pkt


@given(st.binary(min_size=8, max_size=LIMIT), st.integers(min_value=1, max_value=300),
       st.sampled_from([60, 123, 127, 128]))
@settings(max_examples=150)
def test_reassembles_client_frames_fed_in_any_pieces(pkt, step, line_length):
    """Frames the smp package encodes with any line length reassemble, whatever the read sizes."""
    wire = b"".join(smppacket.encode(pkt, line_length=line_length)) if line_length <= 128 else b""
    if not wire:
        return
    if max(len(x) for x in smppacket.encode(pkt, line_length=line_length)) > 127:
        return
    assert decode_all(wire, step=step) == [(0, pkt)]


@given(st.lists(st.binary(min_size=8, max_size=300), min_size=1, max_size=5),
       st.binary(max_size=40).filter(lambda b: b"\x06\x09" not in b and b"\x04\x14" not in b))
@settings(max_examples=100)
def test_console_noise_between_frames_is_ignored(pkts, noise):
    """Text and noise before or between frames do not hide the frames."""
    wire = b""
    for p in pkts:
        wire += noise + b"\n" + b"".join(frame.encode(p)) + noise
    got = [p for kind, p in decode_all(wire) if kind == 0]
    assert got == pkts


def test_bad_crc_is_reported_and_dropped():
    """A frame whose CRC does not match yields BAD_CRC and no packet."""
    pkt = b"\x02\x00\x00\x00\x00\x00\x01\x00"
    raw = struct.pack(">H", len(pkt) + 2) + pkt + struct.pack(">H", frame.crc16(pkt) ^ 1)
    wire = b"\x06\x09" + base64.b64encode(raw) + b"\n"
    assert decode_all(wire) == [(frame.BAD_CRC, None)]


def test_oversize_frame_reports_only_its_header():
    """A frame longer than the limit is not kept; its CRC-proven header comes back for an MSGSIZE answer."""
    pkt = b"\x02\x00\x10\x00\x00\x00\x05\x00" + bytes(4096)
    out = decode_all(b"".join(frame.encode(pkt)), limit=2044)
    assert out == [(frame.OVERSIZE, pkt[:8])]
    bad = bytearray(b"".join(frame.encode(pkt)))
    bad[-3] ^= 1  # damage the CRC area
    assert decode_all(bytes(bad), limit=2044)[0][0] in (frame.BAD_CRC, frame.BAD_LINE)


def test_malformed_lines_are_dropped():
    """Invalid base64, overlong lines, short lengths, excess bytes and stray continuations give no packet."""
    good = frame.encode(b"\x02\x00\x00\x00\x00\x00\x01\x00")[0]
    cases = [
        b"\x06\x09AB!D\n",  # not base64
        b"\x06\x09ABC\n",  # not a multiple of 4
        b"\x06\x09" + b"A" * 200 + b"\n",  # longer than 127 bytes
        b"\x06\x09" + base64.b64encode(b"\x00\x03abc") + b"\n",  # length below header + CRC
        b"\x04\x14" + base64.b64encode(b"x" * 12) + b"\n",  # continuation with no start
        b"\x06\x09" + base64.b64encode(b"\x00\x0a" + b"y" * 20) + b"\n",  # more bytes than declared
    ]
    for wire in cases:
        assert all(kind != 0 for kind, _ in decode_all(wire)), wire
        # and the decoder is ready for the next good frame
        assert decode_all(wire + good)[-1] == (0, b"\x02\x00\x00\x00\x00\x00\x01\x00")


def test_a_new_start_abandons_a_partial_frame():
    """A start marker in the middle of a frame starts over with the new frame."""
    big = frame.encode(bytes(range(200)))
    small = frame.encode(b"\x02\x00\x00\x00\x00\x00\x01\x00")
    out = decode_all(big[0] + small[0])
    assert out == [(0, b"\x02\x00\x00\x00\x00\x00\x01\x00")]


@given(st.binary(max_size=2000))
@settings(max_examples=300)
def test_random_bytes_never_raise(data):
    """Any byte stream is consumed without an exception and yields only well-formed reports."""
    for kind, pkt in decode_all(data, step=37):
        assert kind in (0, frame.BAD_CRC, frame.BAD_LINE, frame.OVERSIZE)
        if kind == 0:
            assert 8 <= len(pkt) <= LIMIT
