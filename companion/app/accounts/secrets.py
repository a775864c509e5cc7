"""Passwords (Argon2id through pwdlib) and random tokens (only their SHA-256 is ever stored)."""

import hashlib
import hmac
import re
import secrets

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from companion.app.portal.config import PortalSettings

PASSWORD_RULE = re.compile(r"^(?=.*\d).{8,128}$", re.S)


def password_ok(password: str) -> bool:
    """The password rule: 8 to 128 characters, at least one number."""
    return bool(PASSWORD_RULE.match(password))


class Passwords:
    """Hash and verify passwords with the configured Argon2id parameters."""

    def __init__(self, ps: PortalSettings):
        self.hasher = PasswordHash((Argon2Hasher(time_cost=ps.ARGON2_TIME_COST, memory_cost=ps.ARGON2_MEMORY_KIB,
                                                 parallelism=ps.ARGON2_PARALLELISM),))
        # verified against when no such user exists, so the answer takes as long either way
        self._dummy = self.hasher.hash(secrets.token_hex(16))

    def hash(self, password: str) -> str:
        """A new Argon2id hash."""
        return self.hasher.hash(password)

    def verify(self, password: str, hashed: str | None) -> bool:
        """True when password matches hashed; with no hash, the same work is done and False returned."""
        if hashed is None:
            self.hasher.verify(password, self._dummy)
            return False
        try:
            return bool(self.hasher.verify(password, hashed))
        except Exception:  # noqa: BLE001 -- a malformed stored hash matches nothing
            return False


def new_token() -> str:
    """A URL-safe random token (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def new_customer_id() -> str:
    """A customer id drivers can type: 'C' and 9 digits."""
    return "C" + "".join(secrets.choice("0123456789") for _ in range(9))


def new_temporary_password() -> str:
    """A temporary password that satisfies the rule (it must be changed at first sign-in)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(10)) + secrets.choice("23456789")
