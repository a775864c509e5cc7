"""Board entry point: wire the board, open the flash storage, run the handset, its sync and its service port."""

import asyncio
import os
import time

import machine

import config
import storage
from drivers.esp32 import wiring
from drivers.flash import VfsFlash
from drivers.simcom import SimcomModem
from runtime import Runtime
from service import task as service_task
from sync.client import SyncClient


def main():
    """Build the drivers and storage, then run the runtime loop and its tasks forever."""
    hw = wiring.build()
    log, state = storage.on_flash(VfsFlash())
    seed = int.from_bytes(os.urandom(4), "big")
    runtime = Runtime(hw, log, state, seed=seed)
    wiring.wake_on_inputs(runtime.wake)
    # syncs at start, at key-off and every 30 min; offline it backs off and the handset carries on
    sync = SyncClient(runtime.fsm, SimcomModem(wiring.modem_uart(), config.COMPANION_URL), log=log, seed=seed)
    # the service port is UART0 (the USB bridge): the REPL must be detached from it (see wiring.py); its
    # cable sense ends the technician's session when the cable comes out
    service = service_task.start(runtime, log, wiring.service_port(), time.ticks_ms, os.urandom, machine.reset)
    asyncio.run(runtime.run(time.ticks_ms, wiring.tasks(hw) + (sync.run(), service)))


main()
