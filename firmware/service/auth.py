"""Technician sessions on the service port: challenge-response with the handset's technician key.

The companion gives a technician a token for one handset: (device_id, tech_id, expires) and its token key
(interlock.token). To log in, the client asks for a challenge (a fresh 16-byte nonce, usable once) and answers
(tech_id, expires, interlock.token.answer(token_key, nonce)). The handset recomputes the token key from its own
technician key and device id, so a token for another handset simply gives a wrong MAC.

A session belongs to the connection that opened it (the serial line, one UDP peer, one BLE connection):
the server keeps one `Session` per connection and never lets another connection use or end it.
A session ends on logout, idle timeout, token expiry, disconnect and reset. Token expiry is checked against
two clocks the token holder cannot move: the lifetime left at login, counted down in ticks, and the
server's token clock (device time that a technician's clock change never sets back, see server.py).
"""

from micropython import const

from interlock import crypto, timebase, token

NONCE_LEN = const(16)
CHALLENGE_MS = const(30000)  # a challenge must be answered within this
IDLE_MS = const(600000)  # a session with no request for this long ends
MAX_TOKEN_S = const(30 * 86400)  # tokens are short-lived: a longer one is refused
_LOST_MS = const(3600000)  # a tick this far behind the last one seen means the ticks wrapped unseen

# refusal reasons: the c field of a SERVICE / SVC_LOGIN_REFUSED record (high byte), see refusal_value
R_EXPIRED = const(1)  # token expired against the handset's token clock
R_BAD_MAC = const(2)  # wrong MAC: wrong token key, or a token for another handset
R_NO_CHALLENGE = const(3)  # no fresh challenge: never asked, already used (replay) or too old
R_TOO_LONG = const(4)  # token lifetime above MAX_TOKEN_S
R_UNPROVISIONED = const(5)  # the handset has no key yet
R_DENIED = const(6)  # a request that needs a session arrived without one
R_SUPPRESSED = const(7)  # b = number of refusals not logged one by one (flood)
R_BACKOFF = const(8)  # a login answer during the wait after failed logins: not even checked
R_PROVISIONED = const(9)  # provisioning a handset that had a key (its saved state was lost)


def refusal_value(reason, group=0, cmd=0):
    """The c value logged with a refusal: reason, and for a denied request its SMP group and command."""
    return (reason << 24) | ((group & 0xFFFF) << 8) | (cmd & 0xFF)


class Session:
    """One connection's login state: its owner, the open challenge, the session and its download (ticks in ms)."""

    def __init__(self, entropy):
        self._entropy = entropy  # entropy(n) -> n random bytes (the board's TRNG)
        self.used = False  # the slot belongs to a connection
        self.peer = None  # that connection's transport id
        self.last = 0  # tick of its last request (the idle timer, and which slot to reuse first)
        self._nonce = None
        self._nonce_at = 0
        self.tech_id = 0  # 0 = no session
        self.expires = 0
        self._left_s = 0  # token lifetime left, counted down in ticks from the login
        self._carry_ms = 0
        self._seen = 0  # tick the countdown last ran
        self.download = None  # (name, size, snapshot bytes or None) of the download in progress
        self.dl_start = 0  # the offset it started at
        self.dl_next = 0  # the end of what it has served so far

    def take(self, peer, now_ms):
        """Give the slot to a new connection, with nothing carried over from the last one."""
        self.end()
        self.used = True
        self.peer = peer
        self.last = now_ms

    def release(self):
        """Free the slot (its connection is gone)."""
        self.end()
        self.used = False
        self.peer = None

    def end(self):
        """End the session and forget any open challenge and download."""
        self.tech_id = 0
        self.expires = 0
        self._left_s = 0
        self._nonce = None
        self.download = None

    def active(self, now_ms, token_wall):
        """True while a session is open; ends it on idle timeout or token expiry (either clock)."""
        if not self.tech_id:
            return False
        el = timebase.diff(now_ms, self._seen)
        idle = timebase.diff(now_ms, self.last)
        if el < -_LOST_MS or idle < -_LOST_MS:
            # far in the past: more than half a tick period went by unseen, so the time left is unknown
            self.end()
            return False
        if el > 0:  # (a caller's slightly older tick counts nothing)
            el += self._carry_ms
            self._left_s -= el // 1000
            self._carry_ms = el % 1000
            self._seen = now_ms
        if self._left_s <= 0 or token_wall >= self.expires or idle >= IDLE_MS:
            self.end()
            return False
        return True

    def open_challenge(self, now_ms):
        """True while a challenge waits for its answer."""
        return self._nonce is not None and timebase.diff(now_ms, self._nonce_at) < CHALLENGE_MS

    def forget_stale_challenge(self, now_ms):
        """Drop a challenge that can no longer be answered: ticks wrap, and one kept past half a tick period
        (about 6 days) would look fresh again."""
        if self._nonce is not None and timebase.diff(now_ms, self._nonce_at) >= CHALLENGE_MS:
            self._nonce = None

    def touch(self, now_ms):
        """A request from this connection: restart the idle timer."""
        self.last = now_ms

    def challenge(self, now_ms):
        """A fresh nonce; any earlier one is no longer valid."""
        self._nonce = bytes(self._entropy(NONCE_LEN))
        self._nonce_at = now_ms
        return self._nonce

    def login(self, now_ms, token_wall, tech_key, device_id, tech_id, expires, mac):
        """0 and a new session when the answer is right, else a refusal reason (R_*)."""
        nonce = self._nonce
        self.end()  # single-use challenge; a login attempt ends any session before it
        if tech_key is None:
            return R_UNPROVISIONED
        if nonce is None or timebase.diff(now_ms, self._nonce_at) >= CHALLENGE_MS:
            return R_NO_CHALLENGE
        want = token.answer(token.token_key(tech_key, device_id, tech_id, expires), nonce)
        if not crypto.equal(want, mac):
            return R_BAD_MAC
        if expires <= token_wall:
            return R_EXPIRED
        if expires - token_wall > MAX_TOKEN_S:
            return R_TOO_LONG
        self.tech_id = tech_id
        self.expires = expires
        self._left_s = expires - token_wall
        self._carry_ms = 0
        self._seen = now_ms
        self.last = now_ms
        return 0
