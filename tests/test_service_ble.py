"""The service port over BLE (firmware/service/ble.py) through an in-process GATT link that enforces the ATT
MTU (host_sim/ble_link.py): the technician's real client on smpclient's BLE transport (bleak stood in for, no
radio here), the same sessions and rules as serial, a session bound to its connection and ended with it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from host_sim.ble_link import GattLink, MtuError, patch_smpclient
from service import cbor, smp
from service.ble import IDLE_MS, LOGIN_MS, MAX_MTU, MIN_MTU, Link
from technician import client as tc
from technician import protocol as p
from tests.service_sim import Bench


def rc(answer: bytes) -> int:
    """The error code of an SMP answer packet, v1 or v2 (0 for a success)."""
    body = cbor.decode(answer[smp.HEADER:])
    return body["err"]["rc"] if "err" in body else body.get("rc", 0)


@pytest.fixture()
def bench() -> Bench:
    return Bench(lockout=False)


def connector(b: Bench, mtu: int, links: list[GattLink]):
    def connect(address: str) -> GattLink:
        link = GattLink(b.svc, b.sim.ticks, mtu)
        links.append(link)
        return link

    return connect


async def session(b: Bench, mtu: int, links: list[GattLink], work) -> Any:
    """Connect the technician's client over BLE, run work(client), disconnect."""
    client = tc.make_client(ble="interlock-1001", timeout=2.0)
    with patch_smpclient(connector(b, mtu, links)):
        await tc.connect(client, "interlock-1001")
        try:
            return await work(client)
        finally:
            await client.disconnect()


@pytest.mark.parametrize("mtu", [MIN_MTU, 185, MAX_MTU])
def test_technician_logs_in_and_downloads_the_whole_log_over_ble(bench, mtu):
    """Login, status and the whole log file through smpclient's BLE transport: every write and notification
    within MTU - 3 bytes, answers spread over many notifications, the bytes equal to the log's export."""
    links: list[GattLink] = []
    tok = bench.token()

    async def work(client):
        await tc.login(client, tok)
        status = await tc.call(client, p.Status())
        data = await tc.download(client, tc.LOG_FILE)
        return status, data

    status, data = asyncio.run(session(bench, mtu, links, work))
    assert status.status["device_id"] == bench.h.device_id
    assert data == bench.log.export_read(0, bench.log.export_size())
    link = links[0]
    assert max(link.notifications) == min(link.chunk_size, max(link.notifications)) <= mtu - 3
    assert len(link.notifications) > link.writes  # answers longer than one notification were cut up
    assert not link.connected  # the client's disconnect dropped the link


def test_session_is_bound_to_its_ble_connection_and_ends_with_it(bench):
    """A session opened over one connection is refused on another one and on the serial line; when its link
    drops the handset ends it, so a reconnecting central must log in again."""
    links: list[GattLink] = []
    tok = bench.token()

    async def first(client):
        await tc.login(client, tok)
        other = GattLink(bench.svc, bench.sim.ticks, MAX_MTU)  # a second central, connected meanwhile
        assert rc(b"".join(other.write(p.Status().BYTES))) == smp.EACCESSDENIED
        assert rc(bench.raw(p.Status().BYTES)) == smp.EACCESSDENIED  # the serial line
        return await tc.call(client, p.Status())

    assert asyncio.run(session(bench, MAX_MTU, links, first)).status["device_id"] == bench.h.device_id

    async def again(client):
        with pytest.raises(tc.ServiceError, match="EACCESSDENIED"):
            await tc.call(client, p.Status())
        return True

    assert asyncio.run(session(bench, MAX_MTU, links, again))


def test_link_loss_mid_session_ends_the_session(bench):
    """The link drops without a disconnect from the client (out of range): the session is gone."""
    link = GattLink(bench.svc, bench.sim.ticks, MAX_MTU)
    nonce = p.ChallengeResponse.loads(b"".join(link.write(p.Challenge().BYTES))).nonce
    tok = bench.token()
    ok = b"".join(link.write(p.Login(tech_id=tok.tech_id, expires=tok.expires, mac=tok.answer(nonce)).BYTES))
    assert rc(ok) == 0
    assert bench.svc.session_for(link.peer).tech_id == tok.tech_id
    link.drop()
    assert bench.svc.session_for(link.peer) is None
    with pytest.raises(ConnectionError):
        link.write(p.Status().BYTES)


def test_writes_over_the_mtu_are_refused_by_the_link(bench):
    link = GattLink(bench.svc, bench.sim.ticks, MIN_MTU)
    with pytest.raises(MtuError):
        link.write(bytes(21))


def test_reassembly_takes_any_cut_of_the_request(bench):
    """A request cut anywhere, even inside its header, one byte per write, gives one answer; two requests in
    one write give two."""
    link = Link(bench.svc, "peer-a", MIN_MTU)
    req = p.Challenge().BYTES
    got = []
    for i in range(len(req)):
        got += link.written(bench.now, req[i:i + 1])
    assert len(got) == 1 and p.ChallengeResponse.loads(got[0]).nonce
    assert len(link.written(bench.now, req + req)) == 2
    assert all(len(c) <= MIN_MTU - 3 for c in link.chunks(got[0]))


def test_oversize_request_gets_msgsize_and_a_stale_half_packet_is_dropped(bench):
    link = Link(bench.svc, "peer-b", MAX_MTU)
    head = bytes((0x08 | smp.OP_READ, 0, 0x10, 0x00, 0, 0, 1, 0))  # 4096 bytes of payload announced
    rsp = []
    rsp += link.written(bench.now, head)
    for _ in range(4096 // 200):
        rsp += link.written(bench.now, bytes(200))
    rsp += link.written(bench.now, bytes(4096 % 200))
    assert len(rsp) == 1 and rsp[0][:1] == bytes((0x08 | smp.OP_READ + 1,))
    assert rc(rsp[0]) == smp.EMSGSIZE
    # half a request, then nothing for longer than STALE_MS: the next write starts a new packet
    req = p.Challenge().BYTES
    assert link.written(bench.now, req[:5]) == []
    bench.run(4000)
    assert len(link.written(bench.now, req)) == 1


def login_over(bench: Bench, link: GattLink) -> None:
    nonce = p.ChallengeResponse.loads(b"".join(link.write(p.Challenge().BYTES))).nonce
    tok = bench.token()
    assert rc(b"".join(link.write(p.Login(tech_id=tok.tech_id, expires=tok.expires,
                                          mac=tok.answer(nonce)).BYTES))) == 0
    assert bench.svc.session_for(link.peer).tech_id == tok.tech_id


def test_idle_connection_with_a_session_is_disconnected_after_the_idle_timeout(bench):
    """A logged-in central that sends nothing for IDLE_MS (the session idle timeout, as on serial) is
    disconnected by the handset: the session ends with the connection. Each write restarts the timer."""
    link = GattLink(bench.svc, bench.sim.ticks, 185)
    login_over(bench, link)
    bench.run(IDLE_MS - 5000)
    assert not link.poll()
    assert rc(b"".join(link.write(p.Status().BYTES))) == 0  # a request: the idle time starts over
    bench.run(IDLE_MS - 5000)
    assert not link.poll() and link.connected
    bench.run(5000)
    assert link.poll()
    assert not link.connected and bench.svc.session_for(link.peer) is None
    with pytest.raises(ConnectionError):
        link.write(p.Status().BYTES)


def test_connection_that_never_logs_in_is_disconnected_however_much_it_writes(bench):
    """A central holding the board's one BLE connection without a session (echo or challenges every few
    seconds, never a login) is disconnected LOGIN_MS after it connected; a login within it keeps it."""
    squatter = GattLink(bench.svc, bench.sim.ticks, MIN_MTU)
    for _ in range(LOGIN_MS // 10000 - 1):
        squatter.write(p.Challenge().BYTES)
        bench.run(10000)
        assert not squatter.poll()
    bench.run(10000)
    assert squatter.poll() and not squatter.connected
    tech = GattLink(bench.svc, bench.sim.ticks, MAX_MTU)
    bench.run(LOGIN_MS - 10000)
    login_over(bench, tech)
    bench.run(20000)
    assert not tech.poll() and tech.connected


def test_client_over_ble_sees_the_idle_disconnect(bench):
    """Through smpclient's BLE transport: after the idle timeout the handset drops the link, the client is told,
    and the session is gone for a reconnecting central."""
    links: list[GattLink] = []
    tok = bench.token()

    async def work(client):
        await tc.login(client, tok)
        bench.run(IDLE_MS)
        assert links[0].poll()
        assert bench.svc.session_for(links[0].peer) is None
        return True

    assert asyncio.run(session(bench, MAX_MTU, links, work))

    async def again(client):
        with pytest.raises(tc.ServiceError, match="EACCESSDENIED"):
            await tc.call(client, p.Status())
        return True

    assert asyncio.run(session(bench, MAX_MTU, links, again))


class _End(Exception):
    """Ends the board task in the test (its advertising is called a second time)."""


def test_board_task_disconnects_an_idle_connection_and_ends_its_session(bench, monkeypatch):
    """service.ble.serve, the board's aioble task, over stand-ins for aioble and bluetooth: a technician logs
    in over the connection, then sends nothing; at IDLE_MS the task disconnects the central itself and the
    session is gone (the radio is the only part not run here)."""
    import sys
    import types

    from service import ble

    now = [bench.now]
    start = now[0]
    notified: list[bytes] = []
    tok = bench.token()

    class Conn:
        mtu = MAX_MTU
        connected = True
        disconnects = 0

        def is_connected(self):
            return self.connected

        async def disconnect(self, timeout_ms=2000):
            self.disconnects += 1
            self.connected = False

    conn = Conn()
    script = ["challenge", "login"]

    class Char:
        def __init__(self, *a, **kw):
            pass

        async def written(self, timeout_ms=None):
            if script:
                step = script.pop(0)
                if step == "challenge":
                    return conn, p.Challenge().BYTES
                nonce = p.ChallengeResponse.loads(b"".join(notified)).nonce
                del notified[:]
                return conn, p.Login(tech_id=tok.tech_id, expires=tok.expires, mac=tok.answer(nonce)).BYTES
            now[0] += timeout_ms  # nothing written: the wait runs out
            if now[0] - start > 2 * ble.IDLE_MS:
                raise AssertionError("the idle connection was never disconnected")
            raise TimeoutError

        def notify(self, c, data):
            notified.append(bytes(data))

    adverts = []

    async def advertise(interval_us, name=None, services=None, timeout_ms=None):
        adverts.append(name)
        if len(adverts) > 1:
            raise _End
        return conn

    fake_aioble = types.SimpleNamespace(Service=lambda uuid: object(), Characteristic=Char, advertise=advertise,
                                        register_services=lambda *s: None, config=lambda **kw: None)
    fake_bt = types.SimpleNamespace(UUID=lambda s: s)
    monkeypatch.setitem(sys.modules, "aioble", fake_aioble)
    monkeypatch.setitem(sys.modules, "bluetooth", fake_bt)
    monkeypatch.setattr(asyncio, "sleep_ms", lambda ms: asyncio.sleep(0), raising=False)
    sessions = []

    def alive():
        sess = bench.svc.session_for(conn)
        sessions.append((now[0], sess.tech_id if sess is not None else 0))

    with pytest.raises(_End):
        asyncio.run(ble.serve(bench.svc, lambda: now[0], alive, "interlock-1001"))
    logged_in = [t for t, tech in sessions if tech == tok.tech_id]
    assert logged_in, "the login over the connection did not open a session"
    assert conn.disconnects == 1 and not conn.connected
    # disconnected within one wait (ADV_WAIT_MS) of the idle limit, not before it
    assert ble.IDLE_MS <= now[0] - logged_in[0] <= ble.IDLE_MS + ble.ADV_WAIT_MS
    assert bench.svc.session_for(conn) is None
