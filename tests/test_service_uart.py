"""The board's UART service port and the asyncio task that serves it, on stand-in buses."""

import asyncio

from smpclient.requests.os_management import EchoWrite, ResetWrite

from drivers.serialport import UartPort
from service import cbor, frame, task
from technician import protocol as p
from tests.service_sim import Bench


class FakeUart:
    """machine.UART's any/readinto/write, with writes that take at most `chunk` bytes at a time."""

    def __init__(self, chunk=50):
        self.rx = bytearray()
        self.tx = bytearray()
        self.chunk = chunk

    def any(self):
        return len(self.rx)

    def readinto(self, buf, n):
        n = min(n, len(self.rx))
        buf[:n] = self.rx[:n]
        del self.rx[:n]
        return n

    def write(self, data):
        n = min(self.chunk, len(data))
        self.tx += bytes(data[:n])
        return n


class FakePin:
    def __init__(self, level):
        self.level = level

    def value(self):
        return self.level


def test_uart_port_reads_writes_and_senses_the_cable():
    """readinto never waits, write sends every byte across partial writes, the sense pin gives connected()."""
    uart = FakeUart(chunk=7)
    port = UartPort(uart, FakePin(0), sense_active=0)
    buf = bytearray(16)
    assert port.readinto(buf) == 0
    uart.rx += b"0123456789abcdefXYZ"
    assert port.readinto(buf) == 16 and bytes(buf) == b"0123456789abcdef"
    assert port.readinto(buf) == 3 and buf[:3] == b"XYZ"
    port.write(b"x" * 100)
    assert uart.tx == b"x" * 100
    assert port.connected() is True
    assert UartPort(uart, FakePin(1), sense_active=0).connected() is False
    assert UartPort(uart).connected() is True


def answers(tx):
    out = []
    frame.Decoder(4096).feed(bytes(tx), out)
    return [cbor.decode(pkt[8:]) for kind, pkt in out if kind == 0]


def test_task_serves_requests_and_resets_after_answering():
    """The asyncio task answers over the UART; an authenticated reset runs only after its answer is sent."""
    b = Bench()
    uart = FakeUart()
    port = UartPort(uart)
    resets = []

    def reset():
        resets.append(len(answers(uart.tx)))

    async def main():
        server = asyncio.ensure_future(task.serve(b.svc, port, b.sim.ticks, reset))
        uart.rx += b"".join(frame.encode(EchoWrite(d="over uart").BYTES))
        await asyncio.sleep(0.05)
        assert answers(uart.tx)[-1] == {"r": "over uart"}
        uart.rx += b"".join(frame.encode(ResetWrite().BYTES))  # no session: refused, no reset
        await asyncio.sleep(0.05)
        assert resets == []
        c = p.Challenge()
        uart.rx += b"".join(frame.encode(c.BYTES))
        await asyncio.sleep(0.05)
        nonce = answers(uart.tx)[-1]["nonce"]
        tok = b.token()
        uart.rx += b"".join(frame.encode(p.Login(tech_id=tok.tech_id, expires=tok.expires,
                                                 mac=tok.answer(nonce)).BYTES))
        await asyncio.sleep(0.05)
        uart.rx += b"".join(frame.encode(ResetWrite().BYTES))
        await asyncio.sleep(0.05)
        server.cancel()

    asyncio.run(main())
    got = answers(uart.tx)
    assert got[1] == {"rc": 11} and got[-1] == {}
    assert resets == [len(got)]  # the reset came after the reset's answer was on the wire
    assert b.tech_id == 0


def test_start_builds_the_server_after_boot():
    """task.start reads the runtime's state machine only when it first runs, then serves the port."""
    b = Bench()

    class Runtime:
        fsm = None

    rt = Runtime()
    uart = FakeUart()

    async def main():
        t = asyncio.ensure_future(task.start(rt, b.log, UartPort(uart), b.sim.ticks, lambda n: bytes(n)))
        rt.fsm = b.h  # boot happens before the task's first turn
        uart.rx += b"".join(frame.encode(p.Status().BYTES))
        await asyncio.sleep(0.05)
        t.cancel()

    asyncio.run(main())
    assert answers(uart.tx) == [{"rc": 11}]
