"""A technician's session with a handset over smpclient: connect, log in, act, download and check the log.

Transports: serial through pyserial (`port`), BLE through bleak (`ble`), UDP (`udp`, port 1337). Every
function raises `ServiceError` with a readable reason when the handset refuses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smp import error as smperr
from smpclient import SMPClient
from smpclient.generics import error, error_v1, error_v2, success
from smpclient.requests.file_management import FileDownload

from technician import protocol as p
from technician.token import Token

LOG_FILE = "/log/events.bin"
STATE_FILE = "/state.json"
EPOCH_UNIX = 1704067200  # 2024-01-01T00:00Z: device seconds are counted from here


class ServiceError(Exception):
    """The handset refused a request, or the exchange failed."""


def make_client(port: str | None = None, ble: str | None = None, udp: str | None = None,
                timeout: float = 2.5, baudrate: int = 115200) -> SMPClient:
    """An SMPClient on exactly one of the three transports."""
    chosen = [x for x in (port, ble, udp) if x]
    if len(chosen) != 1:
        raise ServiceError("give exactly one of --port, --ble, --udp")
    if port:
        from smpclient.transport.serial import SMPSerialTransport

        return SMPClient(SMPSerialTransport(baudrate=baudrate), port, timeout)
    if ble:
        from smpclient.transport.ble import SMPBLETransport

        return SMPClient(SMPBLETransport(), ble, timeout)
    from smpclient.transport.udp import SMPUDPTransport

    return SMPClient(SMPUDPTransport(), str(udp), timeout)


def describe(rsp: Any) -> str:
    """A readable reason for an SMP error response."""
    if error_v2(rsp):
        rc = rsp.err.rc
        return f"{getattr(rc, 'name', rc)} (group {int(rsp.err.group)}, rc {int(rc)})"
    if error_v1(rsp):
        rc = rsp.rc
        return f"{getattr(rc, 'name', rc)} (rc {int(rc)})"
    return repr(rsp)


async def call(client: SMPClient, request: Any) -> Any:
    """Send one request; its success response, or ServiceError."""
    try:
        rsp = await client.request(request)
    except TimeoutError as e:
        raise ServiceError(f"no answer from the handset: {e}") from None
    if error(rsp):
        raise ServiceError(f"{type(request).__name__} refused: {describe(rsp)}")
    assert success(rsp)
    return rsp


async def login(client: SMPClient, token: Token) -> p.LoginResponse:
    """Challenge-response login with a companion-issued token."""
    challenge = await call(client, p.Challenge())
    return await call(client, p.Login(tech_id=token.tech_id, expires=token.expires,
                                      mac=token.answer(challenge.nonce)))


async def download(client: SMPClient, name: str,
                   progress: Callable[[int, int], None] | None = None) -> bytes:
    """A whole file through the FS group, reporting (done, total) after each chunk."""
    rsp = await call(client, FileDownload(off=0, name=name))
    if rsp.len is None:
        raise ServiceError("the handset did not say how long the file is")
    total = rsp.len
    data = bytearray(rsp.data)
    if progress:
        progress(len(data), total)
    while len(data) < total:
        rsp = await call(client, FileDownload(off=len(data), name=name))
        if rsp.off != len(data) or not rsp.data:
            raise ServiceError(f"download stalled at {len(data)} of {total}")
        data += rsp.data
        if progress:
            progress(len(data), total)
    return bytes(data)


@dataclass(frozen=True)
class LogCheck:
    """What the chain check found in a downloaded log."""

    ok: bool
    first: int
    last: int
    count: int
    reason: str
    bad_index: int
    records: list[tuple]


def check_log(data: bytes) -> LogCheck:
    """Verify an export: header, then records whose CRCs, links and sequence numbers all hold."""
    import host_sim  # noqa: F401, I001  (firmware on sys.path: storage.record is the one definition)
    from storage import record

    try:
        first, prev = record.parse_header(data)
    except ValueError as e:
        return LogCheck(False, 0, 0, 0, str(e), -1, [])
    body = data[record.HEADER_SIZE:]
    ok, last, _h, bad, why = record.verify_reason(body, prev, first)
    if ok and len(body) % record.SIZE:
        ok, why, bad = False, record.BAD_LENGTH, len(body) // record.SIZE
    good = len(body) // record.SIZE if ok else bad
    recs = [record.decode(body, i * record.SIZE) for i in range(good)]
    return LogCheck(ok, first, last, good, record.REASONS[why], bad, recs)


def device_now() -> int:
    """This computer's clock in device seconds (since 2024-01-01T00:00Z)."""
    return int(time.time()) - EPOCH_UNIX


def is_access_denied(exc: ServiceError) -> bool:
    """True when the refusal was ACCESSDENIED (no session)."""
    return smperr.MGMT_ERR.EACCESSDENIED.name in str(exc)
