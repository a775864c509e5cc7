"""Sessions belong to the connection that opened them: another UDP peer (or the serial line) can neither use
nor end them, and a flood of peers cannot grow the server's memory or push a live session out."""

import socket
import struct

import cbor2
import pytest

from host_sim.pty_port import UdpService
from service import smp
from service.server import BACKOFF_MS, LINE, MAX_PEERS
from technician import protocol as p
from tests.service_sim import Bench, rc

A = ("10.0.0.1", 40001)
B = ("10.0.0.2", 40001)
A_OTHER_PORT = ("10.0.0.1", 40002)


def ask(b, request, peer):
    """One typed request from `peer`; its parsed response or error."""
    raw = b.svc.handle(b.now, request.BYTES, peer)
    assert raw is not None
    for cls in (request._Response, request._ErrorV1, request._ErrorV2):
        try:
            return cls.loads(raw)
        except Exception:  # noqa: BLE001,S112 -- try the next shape
            continue
    raise AssertionError(raw)


def login(b, peer, tok=None):
    tok = tok or b.token()
    c = ask(b, p.Challenge(), peer)
    return ask(b, p.Login(tech_id=tok.tech_id, expires=tok.expires, mac=tok.answer(c.nonce)), peer)


def test_another_peer_can_neither_use_nor_end_a_session():
    """After A logs in, B's status, clear, logout and bad login are refused, and A's session goes on."""
    b = Bench()
    assert login(b, A).tech_id == 17
    lockout_id = b.h.status()["lockout_id"]
    assert rc(ask(b, p.Status(), B)) == smp.EACCESSDENIED
    assert rc(ask(b, p.Clear(lockout_id=lockout_id), B)) == smp.EACCESSDENIED
    assert rc(ask(b, p.Clear(lockout_id=lockout_id), A_OTHER_PORT)) == smp.EACCESSDENIED
    assert rc(ask(b, p.Logout(), B)) == smp.EACCESSDENIED
    assert rc(login(b, B, b.token(device_id=b.h.device_id + 1))) == p.InterlockErr.BAD_TOKEN
    assert rc(ask(b, p.Status(), LINE)) == smp.EACCESSDENIED
    assert b.h.status()["lockout"] is True
    assert ask(b, p.Status(), A).status["lockout"] is True  # A is still logged in
    assert b.svc.session_for(A).tech_id == 17 and b.svc.session_for(B).tech_id == 0


def test_challenges_are_per_peer():
    """B asking for a challenge does not spoil A's open challenge, and B cannot answer A's."""
    b = Bench()
    tok = b.token()
    ca = ask(b, p.Challenge(), A)
    ask(b, p.Challenge(), B)
    answer = p.Login(tech_id=tok.tech_id, expires=tok.expires, mac=tok.answer(ca.nonce))
    assert rc(ask(b, answer, B)) == p.InterlockErr.BAD_TOKEN  # B's own challenge differs
    b.run(BACKOFF_MS)  # the port waits after B's failure
    assert ask(b, answer, A).tech_id == 17


def test_a_flood_of_peers_is_bounded_and_spares_live_sessions():
    """A thousand addresses asking for challenges use at most MAX_PEERS slots and never end A's session; when
    every slot holds a live session a new peer is told BUSY."""
    b = Bench()
    login(b, A)
    for i in range(1000):
        ask(b, p.Challenge(), ("10.1.%d.%d" % (i // 250, i % 250), 5000))
    assert len(b.svc.sessions) == MAX_PEERS
    assert ask(b, p.Status(), A).status
    for i in range(MAX_PEERS - 1):
        assert login(b, ("10.2.0.%d" % i, 6000)).tech_id == 17
    assert rc(ask(b, p.Challenge(), B)) == smp.EBUSY
    assert rc(ask(b, p.Status(), B)) == smp.EACCESSDENIED
    assert ask(b, p.Status(), A).status
    ask(b, p.Logout(), A)
    assert len(ask(b, p.Challenge(), B).nonce) == 16  # a slot without a live session is reused


@pytest.fixture
def udp():
    """The simulated handset's SMP server on a UDP socket (an ephemeral port), and the bench behind it."""
    b = Bench()
    with UdpService(b.h, b.log, clock=b.sim.ticks, port=0, service=b.svc) as server:
        yield b, server
    assert server.crashed is None


def udp_request(sock, addr, request):
    sock.sendto(request.BYTES, addr)
    data, _ = sock.recvfrom(4096)
    return cbor2.loads(data[8:])


def test_udp_session_is_bound_to_the_peer_address(udp):
    """Over real UDP sockets: a second socket gets ACCESSDENIED for status and clear while the first is logged
    in, and its bad login leaves the first socket's session open."""
    b, server = udp
    lockout_id = b.h.status()["lockout_id"]
    tok = b.token()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET,
                                                                            socket.SOCK_DGRAM) as other:
        a.settimeout(5)
        other.settimeout(5)
        nonce = udp_request(a, server.address, p.Challenge())["nonce"]
        assert udp_request(a, server.address, p.Login(tech_id=17, expires=tok.expires,
                                                      mac=tok.answer(nonce)))["tech_id"] == 17
        assert udp_request(other, server.address, p.Status()) == {"rc": smp.EACCESSDENIED}
        assert udp_request(other, server.address, p.Clear(lockout_id=lockout_id)) == {"rc": smp.EACCESSDENIED}
        nonce = udp_request(other, server.address, p.Challenge())["nonce"]
        bad = udp_request(other, server.address, p.Login(tech_id=17, expires=tok.expires, mac=bytes(32)))
        assert bad == {"err": {"group": p.GROUP_ID, "rc": p.InterlockErr.BAD_TOKEN}}
        assert udp_request(a, server.address, p.Status())["status"]["lockout"] is True
    assert b.h.status()["lockout"] is True
    assert b.svc.faults == 0


def test_a_packet_above_buf_size_is_refused_on_every_transport():
    """A UDP (or BLE) packet longer than the buf_size the port announces gets MSGSIZE and is not acted on, as
    an oversize serial frame is: a logged-in policy push padded past the limit changes nothing."""
    b = Bench()
    login(b, A)
    version = b.h.policy.version
    pad = "x" * 2100
    for body in ({"d": "hi", "pad": pad}, {"policy": {"version": version + 1, "fail_brac": 30}, "pad": pad}):
        cmd = 0 if "d" in body else p.Cmd.POLICY
        group = smp.G_OS if "d" in body else smp.G_INTERLOCK
        payload = cbor2.dumps(body)
        packet = struct.pack(">BBHHBB", (smp.V2 << 3) | smp.OP_WRITE, 0, len(payload), group, 5, cmd) + payload
        assert len(packet) > b.svc.limit
        rsp = b.svc.handle(b.now, packet, A)
        assert rsp[4:8] == packet[4:8] and cbor2.loads(rsp[8:]) == {"rc": smp.EMSGSIZE}
    assert b.h.policy.version == version
