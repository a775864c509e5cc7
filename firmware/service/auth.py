"""Technician sessions on the service port: challenge-response with the handset's technician key.

The companion gives a technician a token for one handset: (device_id, tech_id, expires) and
token_key = HMAC(tech_key, "TT" || device_id || tech_id || expires) (three big-endian u32). The technician
never holds the technician key itself. To log in, the client asks for a challenge (a fresh 16-byte nonce,
usable once) and answers (tech_id, expires, HMAC(token_key, "TA" || nonce)). The handset recomputes
token_key from its own key and device id, so a token for another handset simply gives a wrong MAC.
A session ends on logout, idle timeout, token expiry, disconnect and reset.
"""

import struct

from micropython import const

from fsm import crypto, timebase

NONCE_LEN = const(16)
CHALLENGE_MS = const(30000)  # a challenge must be answered within this
IDLE_MS = const(600000)  # a session with no request for this long ends
MAX_TOKEN_S = const(30 * 86400)  # tokens are short-lived: a longer one is refused

# refusal reasons: the c field of a SERVICE / SVC_LOGIN_REFUSED record (high byte), see Auth.refusal_value
R_EXPIRED = const(1)  # token expired against the handset's own clock
R_BAD_MAC = const(2)  # wrong MAC: wrong token key, or a token for another handset
R_NO_CHALLENGE = const(3)  # no fresh challenge: never asked, already used (replay) or too old
R_TOO_LONG = const(4)  # token lifetime above MAX_TOKEN_S
R_UNPROVISIONED = const(5)  # the handset has no key yet
R_DENIED = const(6)  # a request that needs a session arrived without one
R_SUPPRESSED = const(7)  # b = number of refusals not logged one by one (flood)


def token_key(tech_key, device_id, tech_id, expires):
    """The per-token key the companion hands to a technician."""
    return crypto.hmac_sha256(tech_key, b"TT" + struct.pack(">III", device_id, tech_id, expires))


def answer(token_key_bytes, nonce):
    """The MAC a client sends back for a challenge."""
    return crypto.hmac_sha256(token_key_bytes, b"TA" + nonce)


def refusal_value(reason, group=0, cmd=0):
    """The c value logged with a refusal: reason, and for a denied request its SMP group and command."""
    return (reason << 24) | ((group & 0xFFFF) << 8) | (cmd & 0xFF)


class Auth:
    """One port's login state: the open challenge and the session, with their timers (ticks in ms)."""

    def __init__(self, entropy):
        self._entropy = entropy  # entropy(n) -> n random bytes (the board's TRNG)
        self._nonce = None
        self._nonce_at = 0
        self.tech_id = 0  # 0 = no session
        self.expires = 0
        self._last = 0

    def end(self):
        """End the session and forget any open challenge."""
        self.tech_id = 0
        self.expires = 0
        self._nonce = None

    def active(self, now_ms, wall):
        """True while a session is open; ends it on idle timeout or token expiry."""
        if not self.tech_id:
            return False
        if timebase.diff(now_ms, self._last) >= IDLE_MS or wall >= self.expires:
            self.end()
            return False
        return True

    def touch(self, now_ms):
        """A request inside the session: restart the idle timer."""
        self._last = now_ms

    def challenge(self, now_ms):
        """A fresh nonce; any earlier one is no longer valid."""
        self._nonce = bytes(self._entropy(NONCE_LEN))
        self._nonce_at = now_ms
        return self._nonce

    def login(self, now_ms, wall, tech_key, device_id, tech_id, expires, mac):
        """0 and a new session when the answer is right, else a refusal reason (R_*)."""
        nonce = self._nonce
        self._nonce = None  # single use, right or wrong
        self.tech_id = 0  # a login attempt ends any session before it
        self.expires = 0
        if tech_key is None:
            return R_UNPROVISIONED
        if nonce is None or timebase.diff(now_ms, self._nonce_at) >= CHALLENGE_MS:
            return R_NO_CHALLENGE
        want = answer(token_key(tech_key, device_id, tech_id, expires), nonce)
        if not crypto.equal(want, mac):
            return R_BAD_MAC
        if expires <= wall:
            return R_EXPIRED
        if expires - wall > MAX_TOKEN_S:
            return R_TOO_LONG
        self.tech_id = tech_id
        self.expires = expires
        self._last = now_ms
        return 0
