"""SIMCom-style cellular modem (SIM7600 / A7670 family) doing HTTP with its AT commands over a UART.

The driver receives its UART (it never creates it) and speaks:
    AT+HTTPINIT; AT+HTTPPARA="URL"/"CONTENT"/"USERDATA"; AT+HTTPDATA=<len>,<ms> then the body after DOWNLOAD;
    AT+HTTPACTION=1 and its +HTTPACTION: 1,<status>,<len> report; AT+HTTPHEAD; AT+HTTPREAD=0,<len>;
    AT+HTTPTERM.
Reading is line-based through asyncio streams, so the state machine keeps running while the modem works.
It cannot run on the host (no UART); it compiles with mpy-cross.
"""

import asyncio
import time

from micropython import const

from drivers.modem import Modem, ModemError
from interlock import timebase

_LINE = const(256)
_ACTION_MS = const(45000)  # below the sync client's 60 s answer timeout
# one whole exchange at most: a modem that keeps sending lines (unsolicited reports, a tampered or failing
# UART) must not hold the sync task past its supervision limit (supervisor.LIMIT_SYNC_MS), which would fail
# the handset safe and restart it
_EXCHANGE_MS = const(120000)


def _ticks():
    return time.ticks_ms()  # type: ignore[attr-defined]


class SimcomModem(Modem):
    """Modem over a SIMCom module on uart; base is the companion's URL, e.g. "http://companion.example"."""

    def __init__(self, uart, base, timeout_ms=20000):
        self.uart = uart
        self.base = base
        self.timeout_ms = timeout_ms
        self.reader = asyncio.StreamReader(uart)
        self.writer = asyncio.StreamWriter(uart, {})
        self._lines = []
        self._deadline = -1  # tick the running exchange must end by (-1: none running)

    async def _send(self, cmd):
        """Write one AT command line."""
        self.writer.write(cmd)
        self.writer.write(b"\r\n")
        await self.writer.drain()

    async def _line(self, timeout_ms):
        """The next non-empty line (bytes, without CR LF), within timeout_ms and the exchange's deadline."""
        while True:
            timeout_ms = self._within(timeout_ms)
            try:
                raw = await asyncio.wait_for_ms(self.reader.readline(), timeout_ms)
            except asyncio.TimeoutError:  # noqa: UP041 -- MicroPython has no builtin TimeoutError
                raise ModemError("modem timeout") from None
            line = raw.rstrip(b"\r\n")
            if line:
                return line

    def _within(self, timeout_ms):
        """timeout_ms, cut to what is left of the exchange's time; ModemError once none is left."""
        if self._deadline == -1:
            return timeout_ms
        left = timebase.diff(self._deadline, _ticks())
        if left <= 0:
            raise ModemError("modem exchange took too long")
        return left if left < timeout_ms else timeout_ms

    async def _expect(self, cmd, want=b"OK", timeout_ms=0):
        """Send cmd and wait for want (or ERROR); returns the lines before it."""
        await self._send(cmd)
        return await self._wait(want, timeout_ms)

    async def _wait(self, want=b"OK", timeout_ms=0):
        """Wait for a line starting with want (ERROR raises); returns the lines before it."""
        got = []
        while True:
            line = await self._line(timeout_ms or self.timeout_ms)
            if line == want or line.startswith(want):
                return got
            if line == b"ERROR" or line.startswith(b"+CME ERROR"):
                raise ModemError("modem refused the command")
            got.append(line)

    async def _read_exact(self, n):
        """n raw bytes from the UART."""
        out = b""
        while len(out) < n:
            try:
                chunk = await asyncio.wait_for_ms(self.reader.read(n - len(out)), self._within(self.timeout_ms))
            except asyncio.TimeoutError:  # noqa: UP041 -- MicroPython has no builtin TimeoutError
                raise ModemError("modem timeout") from None
            if not chunk:
                raise ModemError("modem closed")
            out += chunk
        return out

    async def request(self, method, path, headers, body):
        """One HTTP exchange through the modem's HTTP stack."""
        if method != "POST":
            raise ModemError("only POST is used for sync")
        self._deadline = timebase.add(_ticks(), _EXCHANGE_MS)
        try:
            return await self._exchange(path, headers, body)
        finally:
            self._deadline = -1

    async def _exchange(self, path, headers, body):
        try:
            await self._expect(b"AT+HTTPINIT")
        except ModemError:
            await self._expect(b"AT+HTTPTERM")  # a previous session was left open
            await self._expect(b"AT+HTTPINIT")
        try:
            await self._expect(b'AT+HTTPPARA="URL","' + (self.base + path).encode() + b'"')
            await self._expect(b'AT+HTTPPARA="CONTENT","' + headers.get("content-type", "").encode() + b'"')
            extra = []
            for name in headers:
                if name != "content-type":
                    extra.append(name + ": " + headers[name])
            await self._expect(b'AT+HTTPPARA="USERDATA","' + "\\r\\n".join(extra).encode() + b'"')
            await self._expect(b"AT+HTTPDATA=" + str(len(body)).encode() + b",10000", b"DOWNLOAD")
            self.writer.write(body)
            await self.writer.drain()
            await self._wait(b"OK")
            await self._expect(b"AT+HTTPACTION=1")
            status, length = await self._action()
            head = await self._headers()
            data = await self._body(length)
            return status, head, data
        finally:
            self._deadline = timebase.add(_ticks(), self.timeout_ms)  # the closing command gets its own time
            try:
                await self._expect(b"AT+HTTPTERM")
            except ModemError:
                pass

    async def _action(self):
        """Wait for +HTTPACTION: 1,<status>,<length>."""
        while True:
            line = await self._line(_ACTION_MS)
            if line.startswith(b"+HTTPACTION:"):
                parts = line[12:].strip().split(b",")
                if len(parts) < 3:
                    raise ModemError("bad HTTPACTION report")
                status = int(parts[1])
                if status >= 600:
                    raise ModemError("network error " + str(status))  # SIMCom's 7xx codes
                return status, int(parts[2])

    async def _headers(self):
        """The response headers, names lowercased."""
        await self._send(b"AT+HTTPHEAD")
        out = {}
        while True:
            line = await self._line(self.timeout_ms)
            if line == b"OK":
                return out
            if line == b"ERROR":
                raise ModemError("HTTPHEAD failed")
            if line.startswith(b"+HTTPHEAD:"):
                continue
            i = line.find(b":")
            if i > 0:
                out[line[:i].decode().strip().lower()] = line[i + 1:].decode().strip()

    async def _body(self, length):
        """The response body (length bytes)."""
        if length <= 0:
            return b""
        await self._send(b"AT+HTTPREAD=0," + str(length).encode())
        data = b""
        while True:
            line = await self._line(self.timeout_ms)
            if line.startswith(b"+HTTPREAD:"):
                n = int(line[10:].strip())
                if n == 0:
                    break
                data += await self._read_exact(n)
            elif line == b"ERROR":
                raise ModemError("HTTPREAD failed")
        return data
