"""Upload chain verification with the shared record codec (interlock.record, the firmware's own)."""

import binascii

from interlock import record

SIZE: int = record.SIZE
GENESIS: bytes = record.GENESIS


def verify_chunk(data: bytes, prev_hash: bytes, first: int) -> tuple[bool, int, bytes, int, str]:
    """(ok, last good seq, chain hash after it, count of good records, reason) for back-to-back records."""
    ok, last_seq, last_hash, bad, why = record.verify_reason(data, prev_hash, first)
    good = len(data) // SIZE if ok else bad
    return ok, last_seq, last_hash, good, record.REASONS[why]


def decode(data: bytes, index: int) -> tuple[int, int, int, int, int, int, int]:
    """The record tuple (seq, wall, rtype, a, b, c, photo) at index."""
    return record.decode(data, index * SIZE)


def hexhash(h: bytes) -> str:
    """Hex of a chain hash."""
    return binascii.hexlify(h).decode()
