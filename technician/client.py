"""A technician's session with a handset over smpclient: connect, log in, act, download and check the log.

Transports: serial through pyserial (`port`, opened exclusively), BLE through bleak (`ble`), UDP (`udp`,
`HOST[:PORT]`, port 1337 by default). Every function raises `ServiceError` with a one-line, readable reason
when the port cannot be opened, the handset does not answer, or it refuses.
"""

from __future__ import annotations

import datetime
import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from serial import SerialException
from smp import error as smperr
from smpclient import SMPClient
from smpclient.exceptions import SMPClientException
from smpclient.generics import error, error_v1, error_v2, success
from smpclient.requests.file_management import FileDownload
from smpclient.transport import SMPTransportDisconnected
from smpclient.transport.serial import SMPSerialTransport
from smpclient.transport.udp import SMPUDPTransport

from interlock import record, timebase
from technician import protocol as p
from technician.token import Token

LOG_FILE = "/log/events.bin"
STATE_FILE = "/state.json"
EPOCH = datetime.datetime.fromtimestamp(timebase.EPOCH_UNIX, datetime.UTC)  # device time 0
EPOCH_DATE = EPOCH.date()
UDP_PORT = 1337


class ServiceError(Exception):
    """The handset refused a request, or the exchange failed."""


class NoAnswer(ServiceError):
    """The handset did not answer in time (or the link went away): nothing more is worth sending."""


def quiet_transport_logs() -> None:
    """Keep smpclient's own log lines (timeouts with packet dumps) off the technician's terminal: the CLI says
    what went wrong in one line."""
    for name in ("smpclient", "smp"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def port_problem(port: str, exc: BaseException) -> str:
    """One line saying why a serial port would not open."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if "exclusively lock" in text or code in (errno.EBUSY, errno.EAGAIN):
        return f"{port} is busy: another program has it open"
    if code == errno.ENOENT or "No such file" in text:
        return f"no serial port {port} (is the cable plugged in?)"
    if code == errno.EACCES or "Permission denied" in text:
        return f"no permission to open {port} (is your user in the dialout group?)"
    return f"cannot open {port}: {text}"


class ExclusiveSerial(SMPSerialTransport):
    """smpclient's serial transport, opened once and exclusively (a lock other exclusive openers respect, and
    TIOCEXCL so no further open succeeds); a port that will not open is a ServiceError at once."""

    def __init__(self, baudrate: int = 115200) -> None:
        super().__init__(baudrate=baudrate, exclusive=True)

    async def connect(self, address: str, timeout_s: float) -> None:
        self._reset_state()
        self._conn.port = address
        try:
            self._conn.open()
        except (SerialException, OSError) as e:
            raise ServiceError(port_problem(address, e)) from None
        try:
            import fcntl
            import termios

            fcntl.ioctl(self._conn.fd, termios.TIOCEXCL)
        except (ImportError, OSError, AttributeError):
            pass  # not a POSIX terminal: the lock above is all there is
        self._conn.reset_input_buffer()


class UdpPort(SMPUDPTransport):
    """smpclient's UDP transport on a chosen port (it always uses 1337 otherwise)."""

    def __init__(self, port: int = UDP_PORT) -> None:
        super().__init__()
        self._port = port

    async def connect(self, address: str, timeout_s: float, port: int | None = None) -> None:
        await super().connect(address, timeout_s, self._port if port is None else port)


def split_udp(address: str) -> tuple[str, int]:
    """(host, port) of "HOST" or "HOST:PORT" (port 1337 when absent); ServiceError when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or "]" in port:
        return address, UDP_PORT
    try:
        number = int(port)
    except ValueError:
        raise ServiceError(f"bad UDP address {address!r}: the port must be a number") from None
    if not 0 < number < 65536:
        raise ServiceError(f"bad UDP address {address!r}: the port must be 1..65535")
    return host.strip("[]"), number


def make_client(port: str | None = None, ble: str | None = None, udp: str | None = None,
                timeout: float = 2.5, baudrate: int = 115200) -> SMPClient:
    """An SMPClient on exactly one of the three transports."""
    chosen = [x for x in (port, ble, udp) if x]
    if len(chosen) != 1:
        raise ServiceError("give exactly one of --port, --ble, --udp")
    if port:
        return SMPClient(ExclusiveSerial(baudrate=baudrate), port, timeout)
    if ble:
        from smpclient.transport.ble import SMPBLETransport

        return SMPClient(SMPBLETransport(), ble, timeout)
    host, number = split_udp(str(udp))
    return SMPClient(UdpPort(number), host, timeout)


async def connect(client: SMPClient, where: str) -> None:
    """Open the transport and read the handset's parameters; ServiceError in one line when that fails."""
    try:
        await client.connect()
    except ServiceError:
        raise
    except (TimeoutError, SMPTransportDisconnected, SMPClientException, OSError) as e:
        raise NoAnswer(f"cannot reach the handset at {where}: {type(e).__name__}") from None


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
    name = type(request).__name__
    try:
        rsp = await client.request(request)
    except TimeoutError:
        raise NoAnswer(f"no answer from the handset to {name} (is it powered, and is this its port?)") from None
    except SMPTransportDisconnected:
        raise NoAnswer(f"the connection to the handset was lost during {name}") from None
    except SMPClientException as e:
        raise NoAnswer(f"the handset's answer to {name} made no sense: {str(e).splitlines()[0]}") from None
    if error(rsp):
        raise ServiceError(f"{type(request).__name__} refused: {describe(rsp)}")
    assert success(rsp)
    return rsp


async def login(client: SMPClient, token: Token) -> p.LoginResponse:
    """Challenge-response login with a companion-issued token."""
    try:
        challenge = await call(client, p.Challenge())
        return await call(client, p.Login(tech_id=token.tech_id, expires=token.expires,
                                          mac=token.answer(challenge.nonce)))
    except NoAnswer:
        raise
    except ServiceError as e:
        if smperr.MGMT_ERR.EBUSY.name in str(e):
            raise ServiceError("login refused: the handset is busy (it waits up to 30 s after a wrong login, "
                               "or every connection already has a session); try again shortly") from None
        raise


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
    return int(time.time()) - timebase.EPOCH_UNIX


def day_to_date(day: int) -> datetime.date:
    """The calendar date of a device day (days since 2024-01-01)."""
    return EPOCH_DATE + datetime.timedelta(days=day)


def date_to_day(text: str) -> int:
    """The device day of a date written YYYY-MM-DD; ValueError when it is not one or lies before 2024."""
    try:
        d = datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    day = (d - EPOCH_DATE).days
    if day < 0:
        raise ValueError(f"{text} is before {EPOCH_DATE.isoformat()}, the start of device time")
    return day


def wall_to_text(wall: int) -> str:
    """Device seconds as UTC date and time."""
    t = EPOCH + datetime.timedelta(seconds=wall)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def text_to_wall(text: str) -> int:
    """Device seconds of an ISO 8601 date and time (UTC unless it carries an offset); ValueError if not one."""
    try:
        t = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time (YYYY-MM-DDTHH:MM:SS)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    wall = int(t.timestamp()) - timebase.EPOCH_UNIX
    if wall < 0:
        raise ValueError(f"{text} is before {EPOCH_DATE.isoformat()}, the start of device time")
    return wall


def is_access_denied(exc: ServiceError) -> bool:
    """True when the refusal was ACCESSDENIED (no session)."""
    return smperr.MGMT_ERR.EACCESSDENIED.name in str(exc)
