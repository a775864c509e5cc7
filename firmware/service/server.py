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
Every change a technician makes is logged with the technician's id. Failed logins make the port wait before
it checks the next answer (doubling per failure, capped), for every connection: brute force is paced.
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
        # the token clock: device time that never goes back (a technician's clock set cannot extend a token)
        self._floor = handset.wall if handset is not None else 0
        self._floor_tick = 0
        self._floor_started = False
        self._clock_sets = handset.clock_sets if handset is not None else 0  # the handset's clock sets seen
        # failed-login pacing, for the whole port (a UDP attacker can change address at will)
        self._fails = 0
        self._hold_from = 0
        self._hold_ms = 0
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

    def _oversize(self, head):
        self.errors += 1
        version, op, flags, _n, group, seq, cmd = smp.parse_header(head)
        if op != smp.OP_READ and op != smp.OP_WRITE:
            return None
        return smp.response_into(self._tx, version, op, flags, group, seq, cmd, {"rc": smp.EMSGSIZE})

    # ----- timers

    def token_wall(self, now_ms):
        """Device time for token expiry: the handset's clock, but never earlier than it has been, run on by
        the ticks since (a clock set back by a technician does not give a token back its time). A clock set
        by the companion (signed server time) is taken as it is, back too: the tokens are the companion's, and
        its time is how a clock a technician set far ahead by mistake comes right."""
        h = self.handset
        wall = h.wall
        if h.clock_sets != self._clock_sets:
            self._clock_sets = h.clock_sets
            if h.clock_source == records.SRC_REMOTE:
                self._floor = wall
                self._floor_tick = now_ms
        if not self._floor_started:
            self._floor_started = True
            self._floor_tick = now_ms
        el = timebase.diff(now_ms, self._floor_tick)
        if el >= 1000:
            s = el // 1000
            self._floor += s
            self._floor_tick = timebase.add(self._floor_tick, s * 1000)
        elif el < 0:
            self._floor_tick = now_ms
        if wall >= self._floor:
            # follow the handset's clock while it is not behind (its seconds tick on the same ticks)
            self._floor = wall
            self._floor_tick = now_ms
        return self._floor

    def poll(self, now_ms):
        """Run the timers: sessions and unanswered challenges expire, the token clock runs, a finished refusal
        window writes its count. Returns the token clock (see token_wall)."""
        tw = self.token_wall(now_ms)
        for s in self.sessions:
            if s.tech_id:
                s.active(now_ms, tw)
            s.forget_stale_challenge(now_ms)
        if self._window >= 0 and timebase.diff(now_ms, self._window) >= REFUSAL_WINDOW_MS:
            self._write_count()
            self._window = -1
        return tw

    def login_held(self, now_ms):
        """True while the port waits after failed logins (answers are refused unchecked)."""
        return self._hold_ms > 0 and timebase.diff(now_ms, self._hold_from) < self._hold_ms

    def login_result(self, now_ms, ok):
        """Count a checked login answer: a failure makes the port wait longer, a success ends the wait."""
        if ok:
            self._fails = 0
            self._hold_ms = 0
            return
        self._fails += 1
        hold = BACKOFF_MS
        for _ in range(self._fails - 1):
            hold *= 2
            if hold >= BACKOFF_MAX_MS:
                hold = BACKOFF_MAX_MS
                break
        self._hold_ms = hold
        self._hold_from = now_ms

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
