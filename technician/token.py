"""Technician tokens from the companion, and the answer to a handset's login challenge.

A token is the JSON `{"device_id", "tech_id", "expires", "token_key": hex}` the companion issues for one
handset and one technician; the token key and the answer to a challenge nonce are interlock.token's. The
technician never sees the handset's keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from interlock import token as contract


@dataclass(frozen=True)
class Token:
    """One technician token for one handset."""

    device_id: int
    tech_id: int
    expires: int
    token_key: bytes

    @classmethod
    def from_json(cls, data: dict) -> Token:
        """A token from the companion's JSON; ValueError when a field is missing or malformed."""
        try:
            key = bytes.fromhex(data["token_key"])
            token = cls(int(data["device_id"]), int(data["tech_id"]), int(data["expires"]), key)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a technician token: {e}") from None
        if len(key) != contract.KEY_BYTES:
            raise ValueError("not a technician token: token_key must be 32 bytes")
        return token

    @classmethod
    def load(cls, path: str | Path) -> Token:
        """A token from a JSON file."""
        return cls.from_json(json.loads(Path(path).read_text()))

    def answer(self, nonce: bytes) -> bytes:
        """The MAC that answers a login challenge."""
        return bytes(contract.answer(self.token_key, nonce))

    def to_json(self) -> dict:
        """The companion's JSON form."""
        return {"device_id": self.device_id, "tech_id": self.tech_id, "expires": self.expires,
                "token_key": self.token_key.hex()}


def mint(tech_key: bytes, device_id: int, tech_id: int, expires: int) -> Token:
    """The token the companion would issue (for tests and the bench; the companion holds tech_key)."""
    return Token(device_id, tech_id, expires, bytes(contract.token_key(tech_key, device_id, tech_id, expires)))
