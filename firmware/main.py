"""Board entry point: wire the board, open the flash storage, run the handset and its service port."""

import os
import time

import asyncio
import machine
import storage
from drivers.esp32 import wiring
from drivers.flash import VfsFlash
from drivers.serialport import UartPort
from runtime import Runtime
from service import task as service_task


def main():
    """Build the drivers and storage, then run the runtime loop and its tasks forever."""
    hw = wiring.build()
    log, state = storage.on_flash(VfsFlash())
    runtime = Runtime(hw, log, state, seed=int.from_bytes(os.urandom(4), "big"))
    wiring.wake_on_inputs(runtime.wake)
    # the service port is UART0 (the USB bridge): the REPL must be detached from it (see wiring.py)
    service = service_task.start(runtime, log, UartPort(wiring.service_uart()), time.ticks_ms, os.urandom,
                                 machine.reset)
    asyncio.run(runtime.run(time.ticks_ms, wiring.tasks(hw) + (service,)))


main()
