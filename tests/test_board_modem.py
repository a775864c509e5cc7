"""The cellular modem driver's bounds, on the host: its AT dialogue runs over fakes of the UART streams, with
MicroPython's wait_for_ms and a fake tick clock."""

import asyncio

import pytest

from drivers import simcom
from drivers.modem import ModemError


class _Chatty:
    """A modem UART that answers nothing but an unsolicited report, one line a second, for ever."""

    def __init__(self, clock):
        self.clock = clock
        self.lines = 0

    async def readline(self):
        self.clock[0] += 1000
        self.lines += 1
        if self.lines > 3600:
            raise RuntimeError("an hour of lines and the exchange still waits")
        return b"+CREG: 0\r\n"


class _Writer:
    def write(self, data):
        pass

    async def drain(self):
        pass


def test_a_modem_that_never_stops_talking_ends_the_exchange_within_its_bound(monkeypatch):
    """Unsolicited lines that never end (a failing or tampered modem, a flapping network) end one exchange
    after _EXCHANGE_MS with ModemError, well inside the sync task's supervision limit, instead of holding the
    sync task until the supervisor fails the handset safe and the watchdog restarts it."""
    clock = [0]

    async def wait_for_ms(aw, ms):
        return await aw

    monkeypatch.setattr(asyncio, "wait_for_ms", wait_for_ms, raising=False)
    monkeypatch.setattr(simcom, "_ticks", lambda: clock[0], raising=False)
    modem = simcom.SimcomModem.__new__(simcom.SimcomModem)
    modem.base = "http://companion.example"
    modem.timeout_ms = 20000
    modem.reader = _Chatty(clock)
    modem.writer = _Writer()
    modem._lines = []
    modem._deadline = -1
    with pytest.raises(ModemError):
        asyncio.run(modem.request("POST", "/sync", {"content-type": "application/cbor"}, b"x"))
    assert clock[0] <= simcom._EXCHANGE_MS + modem.timeout_ms + 1000
    assert clock[0] < 300000  # supervisor.LIMIT_SYNC_MS
