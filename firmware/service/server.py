"""The service-port SMP server: framing in, access rules, group dispatch, framing out.

Serial: `take(data)` consumes received bytes and `next_line(now_ms)` gives the wire lines to send, one at a
time, handling each request when the answer before it is out (`feed` does both, returning a list).
`handle(now_ms, packet)` takes one SMP packet (BLE and UDP carry packets with no framing) and returns the
response packet or None. Time comes in as an argument (ticks in ms); the handset is the state machine
object (fsm.machine.Interlock API) and `log` the event log with export_size() and export_read(off, n).

Access: without a session only echo, MCUmgr parameters and the authentication exchange answer (and
provisioning while the handset has no key yet); everything else gets ACCESSDENIED and a log record.
Every change a technician makes is logged with the technician's id.
"""

from micropython import const

from fsm import records, timebase
from service import auth, cbor, fsgroup, ilgroup, osgroup, smp
from service.frame import OVERSIZE, Decoder, Encoder

BUF_SIZE = const(2048)  # decoded reassembly buffer (MCUmgr buf_size): frame length + packet + CRC
_MAX_PENDING = const(4)  # requests queued behind the answer being sent; more are dropped (flood)
DISCONNECT_MS = const(500)  # the cable must be gone this long before the session ends (debounce)
_REFUSALS_PER_WINDOW = const(8)  # refusal records per window; more are counted, not logged one by one
_REFUSAL_WINDOW_MS = const(60000)

# (group, command) pairs open without a session
_OPEN = ((smp.G_OS, osgroup.ECHO), (smp.G_OS, osgroup.PARAMS), (smp.G_INTERLOCK, ilgroup.AUTH))


class Service:
    """One service port: its decoder, its technician session and its handlers."""

    def __init__(self, handset, log, entropy, buf_size=BUF_SIZE, firmware="interlock"):
        self.handset = handset
        self.log = log
        self.buf_size = buf_size
        self.limit = buf_size - 4  # largest SMP packet, in and out
        self.firmware = firmware
        self.auth = auth.Auth(entropy)
        self.decoder = Decoder(self.limit)
        self.encoder = Encoder(self.limit)
        self._tx = bytearray(self.limit + 64)  # every response is built here (its allocation is reused)
        self.reset_requested = False  # set by OS reset; the runtime resets after the reply is sent
        self.download = None  # (name, length, snapshot bytes or None) of the download in progress
        self._pending = []
        self._gone_at = -1  # tick when the cable went away; -1 = connected
        self._gone = False  # the disconnect has ended the session
        self._window = -1  # tick the refusal window started; -1 = none yet
        self._refusals = 0
        self._suppressed = 0
        self.errors = 0  # malformed or refused frames, for diagnostics
        self.faults = 0  # exceptions caught around a handler (a bug: never expected)

    # ----- transport side (serial)

    def take(self, data):
        """Consume serial bytes; complete requests wait for next_line()."""
        pending = self._pending
        self.decoder.feed(data, pending)
        if len(pending) > _MAX_PENDING:
            self.errors += len(pending) - _MAX_PENDING
            del pending[_MAX_PENDING:]

    def next_line(self, now_ms):
        """The next wire line to send (a view, valid until the next call), or None when all is answered.

        Requests are handled one at a time, each when the answer before it is out, in buffers allocated once.
        """
        while True:
            line = self.encoder.line()
            if line is not None:
                return line
            if not self._pending:
                return None
            kind, packet = self._pending.pop(0)
            if kind == 0:
                rsp = self._respond(now_ms, packet)
            elif kind == OVERSIZE:
                rsp = self._oversize(packet)
            else:
                self.errors += 1
                rsp = None  # bad CRC or framing: nothing in it can be trusted, not even the sequence
            if rsp is not None:
                self.encoder.load(rsp)

    def feed(self, now_ms, data):
        """take() and every line next_line() then gives, as a list of bytes (for hosts and tests)."""
        self.take(data)
        lines = []
        while True:
            line = self.next_line(now_ms)
            if line is None:
                return lines
            lines.append(bytes(line))

    def link(self, now_ms, connected):
        """Report the port's connection state; a disconnect longer than DISCONNECT_MS ends the session."""
        if connected:
            self._gone_at = -1
            self._gone = False
            return
        if self._gone_at < 0:
            self._gone_at = now_ms
        elif not self._gone and timebase.diff(now_ms, self._gone_at) >= DISCONNECT_MS:
            self._gone = True  # once per disconnect: session, challenge and partial input all go
            self.end_session()
            self.decoder.reset()
            del self._pending[:]

    def end_session(self):
        """End the session now (disconnect, reset, logout, a new login)."""
        self.auth.end()
        self.download = None

    def _oversize(self, head):
        self.errors += 1
        version, op, flags, _n, group, seq, cmd = smp.parse_header(head)
        if op != smp.OP_READ and op != smp.OP_WRITE:
            return None
        return smp.response_into(self._tx, version, op, flags, group, seq, cmd, {"rc": smp.EMSGSIZE})

    # ----- packet side (any transport)

    def handle(self, now_ms, packet):
        """The response packet (bytes) for one SMP request packet, or None when it gets no answer (BLE, UDP)."""
        rsp = self._respond(now_ms, packet)
        return None if rsp is None else bytes(rsp)

    def _respond(self, now_ms, packet):
        """The response in the reusable transmit buffer, or None."""
        if len(packet) < smp.HEADER:
            self.errors += 1
            return None
        version, op, flags, length, group, seq, cmd = smp.parse_header(packet)
        if op != smp.OP_READ and op != smp.OP_WRITE:
            self.errors += 1
            return None  # a response or a reserved op: answering could start a loop between two servers
        tx = self._tx
        if version > smp.V2:
            return smp.response_into(tx, smp.V2, op, flags, group, seq, cmd, {"rc": smp.ETOONEW})
        try:
            result = self._dispatch(now_ms, version, op, group, cmd, length, packet)
        except Exception:  # noqa: BLE001 -- a bug must not take the port down; the tests require faults == 0
            self.faults += 1
            result = smp.EUNKNOWN
        if isinstance(result, dict):
            try:
                smp.response_into(tx, version, op, flags, group, seq, cmd, result)
                if len(tx) <= self.limit:
                    return tx
            except cbor.CborError:
                pass
            result = smp.EMSGSIZE
        if result != smp.OK:
            self.errors += 1
        v1_map = ilgroup.V1_MAP if group == smp.G_INTERLOCK else fsgroup.V1_MAP if group == smp.G_FS else None
        return smp.response_into(tx, version, op, flags, group, seq, cmd,
                                 smp.error_body(version, group, result, v1_map))

    def _dispatch(self, now_ms, version, op, group, cmd, length, packet):
        if length != len(packet) - smp.HEADER:
            return smp.EINVAL
        if group == smp.G_OS:
            handler = osgroup
        elif group == smp.G_FS:
            handler = fsgroup
        elif group == smp.G_INTERLOCK:
            handler = ilgroup
        else:
            return smp.ENOTSUP
        if not handler.known(op, cmd):
            return smp.ENOTSUP
        try:
            req = cbor.decode(memoryview(packet)[smp.HEADER:]) if length else {}
        except cbor.CborError:
            return smp.EINVAL
        if not isinstance(req, dict):
            return smp.EINVAL
        wall = self.handset.wall
        if not self.auth.active(now_ms, wall) and (group, cmd) not in _OPEN:
            if not (group == smp.G_INTERLOCK and ilgroup.open_while_unprovisioned(self, cmd)):
                self.refused(now_ms, 0, auth.R_DENIED, group, cmd)
                return smp.EACCESSDENIED
        elif self.auth.tech_id:
            self.auth.touch(now_ms)
        return handler.handle(self, now_ms, op, cmd, req)

    # ----- logging helpers for the groups

    def logged(self, action, value=0):
        """Log a technician action (fsm.records.SERVICE) with the session's technician id."""
        self.handset.record(records.SERVICE, action, self.auth.tech_id, value)

    def refused(self, now_ms, tech_id, reason, group=0, cmd=0):
        """Log a refusal, at most _REFUSALS_PER_WINDOW a minute so a flood cannot fill the log."""
        if self._window < 0 or timebase.diff(now_ms, self._window) >= _REFUSAL_WINDOW_MS:
            if self._suppressed:
                self.handset.record(records.SERVICE, records.SVC_LOGIN_REFUSED, self._suppressed,
                                    auth.refusal_value(auth.R_SUPPRESSED))
            self._window = now_ms
            self._refusals = 0
            self._suppressed = 0
        if self._refusals >= _REFUSALS_PER_WINDOW:
            self._suppressed += 1
            return
        self._refusals += 1
        self.handset.record(records.SERVICE, records.SVC_LOGIN_REFUSED, tech_id,
                            auth.refusal_value(reason, group, cmd))
