"""The service port's asyncio task: move bytes between the port and the SMP server.

The runtime starts `serve(service, port, clock, reset)` (or `start(...)` from its task list); clock() gives
ticks in ms (time.ticks_ms on a board, the simulator's virtual clock on the host) and reset() restarts the
handset after an OS reset command has been answered. Answers go out one line (at most 127 bytes, ~11 ms at
115200 baud) at a time with a yield in between, so a long download never holds up the state machine.
"""

import asyncio

from micropython import const

_POLL_MS = const(5)
_CHUNK = const(256)


def pump(service, port, now_ms, buf):
    """Run the server's timers, report the cable and take what arrived; returns the number of bytes read."""
    service.poll(now_ms)
    connected = port.connected()
    service.link(now_ms, connected)
    if not connected:
        return 0
    n = port.readinto(buf)
    if n:
        service.take(memoryview(buf)[:n])
    return n


async def serve(service, port, clock, reset=None, alive=None):
    """Run the service port forever; alive() (the supervisor's) is called every turn."""
    buf = bytearray(_CHUNK)
    while True:
        if alive is not None:
            alive()
        n = pump(service, port, clock(), buf)
        while True:
            line = service.next_line(clock())
            if line is None:
                break
            port.write(line)
            await asyncio.sleep(0)
        if service.reset_requested:
            service.reset_requested = False
            service.end_session()
            if reset is not None:
                reset()
        # keep reading at once while bytes stream in; otherwise give the state machine the processor
        await asyncio.sleep(0 if n == _CHUNK else _POLL_MS / 1000)


async def start(runtime, log, port, clock, entropy, reset=None, alive=None, ble=None):
    """The service-port task for Runtime.run's task list: builds the server once the runtime has booted
    (tasks first run at the loop's first sleep, after boot), then serves forever. ble(service), when given,
    makes the BLE task (service.ble.serve) on the same server, so sessions, login waits and resets are one.
    port None: the build could not open the serial port (drivers.esp32.wiring.service_port); recorded as
    FAULT_SERVICE_PORT, and the task serves BLE alone (the server's timers still run here)."""
    from service.server import Service

    if port is None:
        from drivers.serialport import NoPort
        from fsm import records

        log.append(runtime.fsm.wall, records.FAULT, records.FAULT_SERVICE_PORT, 0, 0, 0)
        port = NoPort()
    service = Service(runtime.fsm, log, entropy)
    if ble is not None:
        asyncio.create_task(ble(service))
    await serve(service, port, clock, reset, alive)
