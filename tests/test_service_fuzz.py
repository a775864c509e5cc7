"""Random bytes and damaged frames on the service port never crash the firmware or change the handset."""

import functools
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smpclient.requests.os_management import EchoWrite

from fsm import records
from service import cbor, frame, smp
from technician import protocol as p
from tests.service_sim import Bench

_STABLE = ("log_next_seq",)


@functools.lru_cache(maxsize=1)
def bench():
    return Bench()


def snapshot(b):
    st_ = b.h.status()
    return {k: v for k, v in st_.items() if k not in _STABLE}


def check_unchanged(b, before, mark):
    assert snapshot(b) == before
    assert b.tech_id == 0 and b.svc.faults == 0
    for r in b.since(mark):  # the only records allowed: refusals of requests made without a session
        assert (r[2], r[3]) == (records.SERVICE, records.SVC_LOGIN_REFUSED), r


def wire(packet):
    return b"".join(frame.encode(packet))


def echo_works(b):
    out = []
    frame.Decoder(4096).feed(b"".join(b.svc.feed(b.now, b"\n" + wire(EchoWrite(d="ok").BYTES))), out)
    return out and out[-1][0] == 0 and cbor.decode(out[-1][1][8:]) == {"r": "ok"}


settings_ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(st.binary(max_size=600))
@settings_
def test_random_bytes(data):
    """Random bytes are dropped or answered with an error; the handset is unchanged and still answers."""
    b = bench()
    before, mark = snapshot(b), b.log.next_seq()
    b.svc.feed(b.now, data)
    check_unchanged(b, before, mark)
    assert echo_works(b)


headers = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
                    st.integers(0, 255), st.integers(0, 255))
payloads = st.binary(max_size=200) | st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63) | st.binary(max_size=40)
                                                     | st.text(max_size=10), max_size=5).map(cbor.encode)


@given(headers, payloads, st.booleans())
@settings_
def test_well_framed_random_requests(head, payload, honest_length):
    """Frames with a valid CRC but random headers and payloads get an error or nothing, never a change."""
    b = bench()
    b0, flags, length, group, seq, cmd = head
    if honest_length:
        length = len(payload)
    packet = struct.pack(">BBHHBB", b0, flags, length, group, seq, cmd) + payload
    before, mark = snapshot(b), b.log.next_seq()
    lines = b.svc.feed(b.now, wire(packet))
    out = []
    frame.Decoder(4096).feed(b"".join(lines), out)
    for kind, rsp in out:
        assert kind == 0
        version, op, _f, n, g, s, c = smp.parse_header(rsp)
        assert op in (smp.OP_READ_RSP, smp.OP_WRITE_RSP) and (g, s, c) == (group, seq, cmd)
        body = cbor.decode(rsp[8:])
        assert isinstance(body, dict)
    check_unchanged(b, before, mark)


@given(st.integers(0, 10_000), st.integers(0, 7), st.sampled_from(["flip", "drop", "dup", "cut"]))
@settings_
def test_damaged_frames(pos, bit, how):
    """A real request damaged on the wire (bit flip, lost, doubled or cut bytes) never changes the handset."""
    b = bench()
    good = bytearray(wire(p.Clear().BYTES) + wire(p.ClockWrite(wall=5).BYTES))
    i = pos % len(good)
    if how == "flip":
        good[i] ^= 1 << bit
    elif how == "drop":
        del good[i]
    elif how == "dup":
        good.insert(i, good[i])
    else:
        del good[i:]
    before, mark = snapshot(b), b.log.next_seq()
    b.svc.feed(b.now, bytes(good))
    check_unchanged(b, before, mark)
    assert echo_works(b)
