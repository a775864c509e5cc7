"""Shared set-up for the service-port tests: a simulated handset on flash, driven into a violation lockout,
its SMP server, typed requests and technician tokens."""

from __future__ import annotations

import struct
from typing import Any

from fsm import records
from host_sim.pty_port import flash_sim
from host_sim.scenario import Scenario
from service.server import Service
from technician.token import Token, mint

# one violation locks at once: the quickest way to a VIOLATION LOCKOUT for the clear command
LOCKOUT_SCENARIO = """
policy violations_lock=1
key on
wait-for "BLOW" within 10s
hotwire
wait 2m
key off
wait 10s
"""


class Counter:
    """Deterministic 'random' bytes for nonces in tests (the board uses its TRNG)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, n: int) -> bytes:
        self.n += 1
        return (struct.pack(">I", self.n) * (n // 4 + 1))[:n]


def locked_sim(lockout: bool = True, **kw: Any) -> tuple[Any, Any]:
    """(sim, flash log) of a simulated handset, in VIOLATION LOCKOUT unless lockout is False."""
    sim, log = flash_sim(**kw)
    if lockout:
        sc = Scenario()
        sc.sim = sim
        sc.run_text(LOCKOUT_SCENARIO)
        assert not sc.failures, sc.failures
        assert sim.fsm.status()["lockout"] is True
    return sim, log


class Bench:
    """A simulated handset with its SMP server called in process, at the sim's own tick counter."""

    def __init__(self, lockout: bool = True, **kw: Any) -> None:
        self.sim, self.log = locked_sim(lockout, **kw)
        self.svc = Service(self.sim.fsm, self.log, Counter())

    @property
    def h(self) -> Any:
        """The state machine."""
        return self.sim.fsm

    @property
    def now(self) -> int:
        return self.sim.ticks()

    @property
    def tech_id(self) -> int:
        """The technician logged in on the serial line (0 = no session)."""
        s = self.svc.session_for()
        return s.tech_id if s is not None else 0

    def run(self, ms: int) -> None:
        """Let simulated time pass."""
        self.sim.run(ms)

    def raw(self, packet: bytes) -> bytes | None:
        return self.svc.handle(self.now, packet)

    def req(self, r: Any) -> Any:
        """Send a typed smpclient request; its parsed response or error."""
        rsp = self.raw(r.BYTES)
        assert rsp is not None
        errs = []
        for cls in (r._Response, r._ErrorV1, r._ErrorV2):
            try:
                return cls.loads(rsp)
            except Exception as e:  # noqa: BLE001
                errs.append(e)
        raise AssertionError(f"unparseable {rsp!r}: {errs}")

    def token(self, tech_id: int = 17, ttl: int = 3600, device_id: int | None = None,
              key: bytes | None = None) -> Token:
        """A token that expires ttl seconds from now on the port's token clock (the handset's clock, unless a
        technician set it back)."""
        return mint(key or self.h.keys()[2], self.h.device_id if device_id is None else device_id, tech_id,
                    self.svc.token_wall(self.now) + ttl)

    def login(self, tok: Token | None = None) -> Any:
        from technician import protocol as p

        tok = tok or self.token()
        c = self.req(p.Challenge())
        return self.req(p.Login(tech_id=tok.tech_id, expires=tok.expires, mac=tok.answer(c.nonce)))

    def records(self) -> list[tuple]:
        return [self.log.read(s) for s in range(self.log.first_seq(), self.log.next_seq())]

    def since(self, mark: int) -> list[tuple]:
        return [self.log.read(s) for s in range(mark, self.log.next_seq())]

    def refusals(self, mark: int = 1) -> list[tuple]:
        return [r for r in self.since(mark) if r[2] == records.SERVICE and r[3] == records.SVC_LOGIN_REFUSED]


# the byte range of "log next seq at save" in the persisted state: refusals may log, nothing else may change
_LOG_SEQ_AT = struct.calcsize(">2sBBI32sBBBBBBBBIIIIIHHHHIIIIII")


def saved(b: Bench) -> bytes:
    """The handset's persisted state as it would be written now, less the log position (raises if a field no
    longer fits its type: the next state save would fail)."""
    from fsm import persist

    data = bytearray(persist.pack(b.h))
    data[_LOG_SEQ_AT:_LOG_SEQ_AT + 4] = bytes(4)
    return bytes(data)


def visible(b: Bench) -> dict:
    """What status() reports, less the log position."""
    return {k: v for k, v in b.h.status().items() if k != "log_next_seq"}


def rc(rsp: Any) -> int:
    """The error code of an error response (v2 err.rc or v1 rc)."""
    return int(rsp.err.rc) if hasattr(rsp, "err") else int(rsp.rc)
