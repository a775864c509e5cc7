"""The service-port SMP server: framing in, sessions per connection, access rules, group dispatch, framing out.

Serial: `take(data)` consumes received bytes and `next_line(now_ms)` gives the wire lines to send, one at a
time, handling each request when the answer before it is out (`feed` does both, returning a list).
`handle(now_ms, packet, peer)` takes one SMP packet from the connection `peer` (BLE and UDP carry packets
with no framing: the UDP source address, the BLE connection handle) and returns the response packet or None.
`poll(now_ms)` runs the timers (session expiry, the token clock, the refusal summary) and must be called
regularly, at least every few seconds; the service task does it on every turn. Time comes in as an argument
(ticks in ms); the handset is the state machine object (fsm.machine.Interlock API) and `log` the event log
with export_size() and export_read(off, n).

Sessions: each connection has its own (auth.Session), found by its peer id; the serial line is the peer LINE.
A request never reads, uses or ends another connection's session. At most MAX_PEERS connections are tracked:
a new one takes a free slot, else the least recently heard one without a live session; when every slot holds
a live session it gets BUSY for a challenge (a flood of addresses cannot grow memory or end a session).

Access: without a session only echo, MCUmgr parameters and the authentication exchange answer (and
provisioning while the handset has no key yet); everything else gets ACCESSDENIED and a log record.
Every change a technician makes is logged with the technician's id.

Failed logins make the port wait before it checks the next answer (doubling per failure, capped). There are
two waits: the serial cable's, and one shared by every network peer (UDP, BLE). A network peer cannot be held
to a wait of its own (a UDP sender picks any source address, a BLE central reconnects), so they share one; and
no network flood may keep the technician at the cable from logging in (TRUST.md: the serial port is the
service port, BLE and UDP come where the board has them), so the cable waits only for its own failures.
Brute force stays paced on both: at most two checked answers per BACKOFF_MAX_MS in all, against a 256-bit
key. The wait levels are kept in the saved state (written when a level changes, at most LEVELS times in a
row of failures, not once per attempt), so cutting the power does not start the waiting over: after a boot
the wait a level stands for runs again from the first poll.
"""

from micropython import const

from fsm import records
from interlock import timebase
from service import auth, cbor, fsgroup, ilgroup, osgroup, smp
from service.frame import OVERSIZE, Decoder, Encoder

BUF_SIZE = const(2048)  # decoded reassembly buffer (MCUmgr buf_size): frame length + packet + CRC
MAX_PEERS = const(4)  # connections with their own session state (the line, BLE, a few UDP peers)
LINE = None  # the peer id of the serial line
_MAX_PENDING = const(4)  # requests queued behind the answer being sent; more are dropped (flood)
DISCONNECT_MS = const(500)  # the cable must be gone this long before the session ends (debounce)
REFUSALS_PER_WINDOW = const(8)  # refusal records per window; more are counted, not logged one by one
# at most REFUSALS_PER_WINDOW + 2 records a window, however the refusals come: 240 a day, 7,200 in the 30 days
# the log keeps acknowledged records (capacity 40,400), so a flood of refusals cannot bring the storage lock
REFUSAL_WINDOW_MS = const(3600000)
BACKOFF_MS = const(1000)  # wait after the first failed login; doubles with each further failure
BACKOFF_MAX_MS = const(30000)  # the longest wait: about two answers a minute are checked in a brute force
LEVELS = const(6)  # failures counted: from the 6th on the wait is BACKOFF_MAX_MS (1, 2, 4, 8, 16, 30 s)
_CABLE = const(0)  # wait index of the serial line
_NET = const(1)  # wait index shared by every other peer

# (group, command) pairs open without a session
_OPEN = ((smp.G_OS, osgroup.ECHO), (smp.G_OS, osgroup.PARAMS), (smp.G_INTERLOCK, ilgroup.AUTH))


class Service:
    """One service port: its decoder, a session per connection, the port-wide login pacing and its handlers."""

    def __init__(self, handset, log, entropy, buf_size=BUF_SIZE, firmware="interlock"):
        self.handset = handset
        self.log = log
        self.buf_size = buf_size
        self.limit = buf_size - 4  # largest SMP packet, in and out
        self.firmware = firmware
        self.sessions = [auth.Session(entropy) for _ in range(MAX_PEERS)]
        self.decoder = Decoder(self.limit)
        self.encoder = Encoder(self.limit)
        self._tx = bytearray(self.limit + 64)  # every response is built here (its allocation is reused)
        self.reset_requested = False  # set by OS reset; the runtime resets after the reply is sent
        self._pending = []
        self._gone_at = -1  # tick when the cable went away; -1 = connected
        self._gone = False  # the disconnect has ended the session
        # failed-login pacing: the cable's and the network peers' (see the module text); the levels saved in
        # the state come back, and their waits start at the first poll
        self._fails = [0, 0]
        if handset is not None:
            self._fails[_CABLE] = min(handset.login_wait_line, LEVELS)
            self._fails[_NET] = min(handset.login_wait_net, LEVELS)
        self._hold_from = [-1, -1]  # tick the wait started; -1 = starts at the next poll
        self._hold_ms = [_wait(self._fails[0]), _wait(self._fails[1])]
        # refusal logging: REFUSALS_PER_WINDOW records a window, then a count
        self._window = -1  # tick the refusal window started; -1 = none yet
        self._refusals = 0
        self._counting = False  # this window's flood is being counted (its first record is written)
        self._suppressed = 0  # refusals counted and not yet written
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
                rsp = self._respond(now_ms, packet, LINE)
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
        """Report the serial cable's state; a disconnect longer than DISCONNECT_MS ends the line's session."""
        if connected:
            self._gone_at = -1
            self._gone = False
            return
        if self._gone_at < 0:
            self._gone_at = now_ms
        elif not self._gone and timebase.diff(now_ms, self._gone_at) >= DISCONNECT_MS:
            self._gone = True  # once per disconnect: session, challenge and partial input all go
            self.disconnected(LINE)
            self.decoder.reset()
            del self._pending[:]

    def disconnected(self, peer):
        """The connection `peer` is gone (cable out, BLE link lost): its session ends and its slot is free."""
        for s in self.sessions:
            if s.used and s.peer == peer:
                s.release()

    def end_session(self):
        """End every session now (reset), writing any refusal count not yet in the log first."""
        self._write_count()
        for s in self.sessions:
            s.release()

    def session_for(self, peer=LINE):
        """The session state of connection `peer`, or None while the port tracks no such connection."""
        for s in self.sessions:
            if s.used and s.peer == peer:
                return s
        return None

    def oversize(self, head):
        """The answer (bytes) to a packet longer than the port takes, from its header alone (BLE, UDP)."""
        rsp = self._oversize(head)
        return None if rsp is None else bytes(rsp)

    def _oversize(self, head):
        self.errors += 1
        version, op, flags, _n, group, seq, cmd = smp.parse_header(head)
        if op != smp.OP_READ and op != smp.OP_WRITE:
            return None
        return smp.response_into(self._tx, version, op, flags, group, seq, cmd, {"rc": smp.EMSGSIZE})

    # ----- timers

    def token_wall(self, now_ms):
        """Device time for token expiry: the handset's clock, never earlier than it was before a technician set
        it back, across resets and power cuts too (the state machine keeps it: token_wall()). A clock set by
        the companion (signed server time) is taken as it is, back too: the tokens are the companion's, and its
        time is how a clock a technician set far ahead by mistake comes right."""
        return self.handset.token_wall(now_ms)

    def poll(self, now_ms):
        """Run the timers: sessions and unanswered challenges expire, the token clock runs, a finished refusal
        window writes its count. Returns the token clock (see token_wall)."""
        tw = self.token_wall(now_ms)
        for i in range(2):
            if self._hold_from[i] < 0:
                self._hold_from[i] = now_ms
            elif self._hold_ms[i] and timebase.diff(now_ms, self._hold_from[i]) >= self._hold_ms[i]:
                # over (the level stays): kept, the wait would look fresh again when the ticks came round
                self._hold_ms[i] = 0
        for s in self.sessions:
            if s.tech_id:
                s.active(now_ms, tw)
            s.forget_stale_challenge(now_ms)
        if self._window >= 0 and timebase.diff(now_ms, self._window) >= REFUSAL_WINDOW_MS:
            self._write_count()
            self._window = -1
        return tw

    def login_held(self, now_ms, peer=LINE):
        """True while `peer`'s side of the port (the cable, or the network) waits after failed logins (answers
        are refused unchecked)."""
        i = _CABLE if peer is LINE else _NET
        if self._hold_from[i] < 0:
            self._hold_from[i] = now_ms
        return self._hold_ms[i] > 0 and timebase.diff(now_ms, self._hold_from[i]) < self._hold_ms[i]

    def login_result(self, now_ms, ok, peer=LINE):
        """Count a checked login answer from `peer`: a failure makes its side wait longer, a success ends the
        wait. A changed level is saved with the state."""
        i = _CABLE if peer is LINE else _NET
        fails = 0 if ok else self._fails[i] + 1
        if fails > LEVELS:
            fails = LEVELS
        self._hold_ms[i] = _wait(fails)
        self._hold_from[i] = now_ms
        if fails != self._fails[i]:
            self._fails[i] = fails
            self.handset.set_login_waits(self._fails[_CABLE], self._fails[_NET])

    # ----- packet side (any transport)

    def handle(self, now_ms, packet, peer=LINE):
        """The response packet (bytes) for one SMP request packet from connection `peer`, or None when it gets
        no answer (BLE, UDP)."""
        rsp = self._respond(now_ms, packet, peer)
        return None if rsp is None else bytes(rsp)

    def _respond(self, now_ms, packet, peer):
        """The response in the reusable transmit buffer, or None."""
        if len(packet) < smp.HEADER:
            self.errors += 1
            return None
        version, op, flags, length, group, seq, cmd = smp.parse_header(packet)
        if op != smp.OP_READ and op != smp.OP_WRITE:
            self.errors += 1
            return None  # a response or a reserved op: answering could start a loop between two servers
        tx = self._tx
        if len(packet) > self.limit:
            # above the buf_size the port announces: refused on every transport, as the serial decoder does
            self.errors += 1
            return smp.response_into(tx, version, op, flags, group, seq, cmd, {"rc": smp.EMSGSIZE})
        if version > smp.V2:
            return smp.response_into(tx, smp.V2, op, flags, group, seq, cmd, {"rc": smp.ETOONEW})
        try:
            result = self._dispatch(now_ms, peer, op, group, cmd, length, packet)
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

    def _session(self, now_ms, peer, tw):
        """The connection's session slot: its own, a free one, or the stalest one without a live session."""
        spare = None
        for s in self.sessions:
            if s.used:
                if s.peer == peer:
                    return s
            elif spare is None:
                spare = s
        if spare is None:
            for s in self.sessions:
                if not s.active(now_ms, tw) and not s.open_challenge(now_ms) and (
                        spare is None or timebase.diff(s.last, spare.last) < 0):
                    spare = s
        if spare is None:
            for s in self.sessions:
                if not s.active(now_ms, tw) and (spare is None or timebase.diff(s.last, spare.last) < 0):
                    spare = s
        if spare is not None:
            spare.take(peer, now_ms)
        return spare

    def _dispatch(self, now_ms, peer, op, group, cmd, length, packet):
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
        tw = self.poll(now_ms)
        sess = self._session(now_ms, peer, tw)
        if sess is None:
            # every slot holds a live session of another connection: nothing is stored for this one
            if group == smp.G_INTERLOCK and cmd == ilgroup.AUTH:
                return smp.EBUSY
            if (group, cmd) not in _OPEN:
                self.refused(now_ms, 0, auth.R_DENIED, group, cmd)
                return smp.EACCESSDENIED
            return handler.handle(self, None, now_ms, op, cmd, req)
        live = sess.active(now_ms, tw)  # before touch(): a request does not revive an idle session
        sess.touch(now_ms)
        if not live and (group, cmd) not in _OPEN:
            if not (group == smp.G_INTERLOCK and ilgroup.open_while_unprovisioned(self, cmd)):
                self.refused(now_ms, 0, auth.R_DENIED, group, cmd)
                return smp.EACCESSDENIED
        return handler.handle(self, sess, now_ms, op, cmd, req)

    # ----- logging helpers for the groups

    def logged(self, sess, action, value=0):
        """Log a technician action (fsm.records.SERVICE) with the session's technician id."""
        self.handset.record(records.SERVICE, action, sess.tech_id if sess is not None else 0, value)

    def refused(self, now_ms, tech_id, reason, group=0, cmd=0):
        """Log a refusal: REFUSALS_PER_WINDOW a window one by one, then a record saying the rest are counted
        (written at once, so a power cut cannot hide the flood) and, when the window ends, their number."""
        if self._window < 0 or timebase.diff(now_ms, self._window) >= REFUSAL_WINDOW_MS:
            self._write_count()
            self._window = now_ms
            self._refusals = 0
            self._counting = False
        if self._refusals < REFUSALS_PER_WINDOW:
            self._refusals += 1
            self.handset.record(records.SERVICE, records.SVC_LOGIN_REFUSED, tech_id,
                                auth.refusal_value(reason, group, cmd))
        elif not self._counting:
            self._counting = True
            self.handset.record(records.SERVICE, records.SVC_LOGIN_REFUSED, 1, auth.refusal_value(auth.R_SUPPRESSED))
        else:
            self._suppressed += 1

    def _write_count(self):
        """Write the refusals counted and not yet logged (b = how many), if any."""
        if self._suppressed:
            self.handset.record(records.SERVICE, records.SVC_LOGIN_REFUSED, self._suppressed,
                                auth.refusal_value(auth.R_SUPPRESSED))
            self._suppressed = 0


def _wait(fails):
    """The wait after `fails` failed logins in a row: none, then BACKOFF_MS doubling up to BACKOFF_MAX_MS."""
    if fails <= 0:
        return 0
    hold = BACKOFF_MS
    for _ in range(fails - 1):
        hold *= 2
        if hold >= BACKOFF_MAX_MS:
            return BACKOFF_MAX_MS
    return hold
