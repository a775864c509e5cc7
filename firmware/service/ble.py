"""The service port over BLE: MCUmgr's SMP GATT service, with the same server, sessions and rules as serial.

GATT: the standard SMP service 8D53DC1D-1DB7-4CD3-868B-8A527460AA84 with one characteristic
DA2E7828-FBCE-4E01-AE9E-261174997C48: the technician's tool writes requests to it (write without response),
the handset answers in notifications; no framing beyond SMP's own header, whose length says where a packet
ends. A request may come in several writes and an answer goes out in several notifications, each at most the
connection's ATT MTU less 3 bytes (20 until the central negotiates more).

`Link` is one connection's part, pure (ticks and bytes in, packets and chunks out): it reassembles written
chunks into SMP packets, hands each to the Service as the connection's own peer (so a session opened over this
connection is usable only over it, `Service.disconnected` ends it when the link drops), cuts answers at the MTU,
and says when the connection has gone idle: with a live session, after IDLE_MS without a write (the session's
own idle timeout, as on serial: TRUST.md); without one, LOGIN_MS after it connected or its session ended,
written to or not (the board serves one central at a time, so a central that never logs in must not hold the
port). The board then disconnects it, which ends its session like any drop. `serve` is the board's aioble task around it (compiled here, run only on a board with a radio; the
simulator drives `Link` through an in-process GATT link that enforces the MTU, host_sim/ble_link.py).
"""

from micropython import const

from interlock import timebase
from service import auth, smp

SERVICE_UUID = "8D53DC1D-1DB7-4CD3-868B-8A527460AA84"
CHARACTERISTIC_UUID = "DA2E7828-FBCE-4E01-AE9E-261174997C48"
ATT_HEADER = const(3)  # a notification or write carries at most MTU - 3 bytes of value
MIN_MTU = const(23)  # BLE's default ATT MTU
MAX_MTU = const(247)  # what the board offers (a 244-byte value per notification)
STALE_MS = const(3000)  # a packet not completed within this is dropped (the client gave up on it)
ADV_INTERVAL_US = const(250000)
ADV_WAIT_MS = const(2000)  # advertising restarts this often, so the task reports progress while nobody connects
IDLE_MS = auth.IDLE_MS  # a connection with a session and no write for this long is disconnected
LOGIN_MS = const(60000)  # a connection without a live session is disconnected this long after connecting


class Link:
    """One BLE connection to the service port: reassembly in, answers out at the connection's MTU."""

    def __init__(self, service, peer, mtu=MIN_MTU, now_ms=0):
        self.service = service
        self.peer = peer
        self.mtu = MIN_MTU
        self.set_mtu(mtu)
        self._buf = bytearray(service.limit)
        self._have = 0  # bytes of the packet in _buf (or counted past it, when oversize)
        self._want = 0  # its whole length, once the header is in
        self._since = 0
        self._heard = now_ms  # tick of the last write (or of the connection)
        self._live = now_ms  # tick it connected or last had a live session

    def set_mtu(self, mtu):
        """The ATT MTU the link negotiated (clamped to what BLE and the board allow)."""
        self.mtu = MIN_MTU if not mtu or mtu < MIN_MTU else MAX_MTU if mtu > MAX_MTU else mtu

    def chunk_size(self):
        """Bytes of value per notification (and the most a write may carry)."""
        return self.mtu - ATT_HEADER

    def written(self, now_ms, data):
        """A write from the central; the answers (bytes) to every packet it completed, in order."""
        out = []
        self._heard = now_ms
        if self._have and timebase.diff(now_ms, self._since) > STALE_MS:
            self._have = self._want = 0  # a half packet the client abandoned
        buf = self._buf
        limit = len(buf)
        i = 0
        n = len(data)
        while i < n:
            if self._have == 0:
                self._since = now_ms
            if self._want == 0:
                take = smp.HEADER - self._have
                if take > n - i:
                    take = n - i
                buf[self._have:self._have + take] = data[i:i + take]
                self._have += take
                i += take
                if self._have < smp.HEADER:
                    break
                self._want = smp.HEADER + ((buf[2] << 8) | buf[3])
            take = self._want - self._have
            if take > n - i:
                take = n - i
            end = self._have + take
            if end <= limit:
                buf[self._have:end] = data[i:i + take]
            self._have = end
            i += take
            if self._have == self._want:
                if self._want > limit:
                    rsp = self.service.oversize(bytes(buf[:smp.HEADER]))
                else:
                    rsp = self.service.handle(now_ms, bytes(buf[:self._want]), self.peer)
                self._have = self._want = 0
                if rsp is not None:
                    out.append(rsp)
        return out

    def chunks(self, rsp):
        """The notifications that carry the answer rsp."""
        size = self.chunk_size()
        view = memoryview(rsp)
        return [view[i:i + size] for i in range(0, len(rsp), size)]

    def idle(self, now_ms):
        """True when the connection should be ended: no write for IDLE_MS with a session, or none opened (or
        kept) within LOGIN_MS."""
        sess = self.service.session_for(self.peer)
        if sess is not None and sess.tech_id:
            self._live = now_ms
            return timebase.diff(now_ms, self._heard) >= IDLE_MS
        return timebase.diff(now_ms, self._live) >= LOGIN_MS

    def closed(self):
        """The link dropped: the connection's session ends, its half packet goes."""
        self._have = self._want = 0
        self.service.disconnected(self.peer)


def gatt():
    """Register the SMP GATT service with the BLE stack (aioble); its UUID and its characteristic."""
    import aioble
    import bluetooth

    uuid = bluetooth.UUID(SERVICE_UUID)
    svc = aioble.Service(uuid)
    char = aioble.Characteristic(svc, bluetooth.UUID(CHARACTERISTIC_UUID), write_no_response=True, notify=True,
                                 capture=True)
    aioble.register_services(svc)
    aioble.config(mtu=MAX_MTU)
    return uuid, char


async def serve(service, clock, alive=None, name="interlock"):
    """The board's BLE service port, forever: advertise, serve one central at a time, end its session when
    it goes. alive() (the supervisor's) is called at least every ADV_WAIT_MS."""
    import asyncio

    import aioble

    uuid, char = gatt()
    while True:
        if alive is not None:
            alive()
        try:
            conn = await aioble.advertise(ADV_INTERVAL_US, name=name, services=[uuid], timeout_ms=ADV_WAIT_MS)
        except asyncio.TimeoutError:
            continue
        link = Link(service, conn, conn.mtu, clock())
        try:
            while conn.is_connected():
                if alive is not None:
                    alive()
                if link.idle(clock()):
                    # idle: the session ends with the connection (finally below), even if the stack is slow to
                    # confirm the disconnect
                    try:
                        await conn.disconnect()
                    except Exception:  # noqa: BLE001
                        pass
                    break
                try:
                    got = await char.written(timeout_ms=ADV_WAIT_MS)
                except asyncio.TimeoutError:
                    continue
                if got is None or got[0] is not conn:
                    continue
                link.set_mtu(conn.mtu)
                for rsp in link.written(clock(), got[1]):
                    for part in link.chunks(rsp):
                        char.notify(conn, part)
                        await asyncio.sleep_ms(0)
        finally:
            link.closed()
