"""Board entry point: wire the board, open the flash storage, run the handset."""

import asyncio
import os
import time

import storage
from drivers.esp32 import wiring
from drivers.flash import VfsFlash
from runtime import Runtime


def main():
    """Build the drivers and storage, then run the runtime loop forever."""
    hw = wiring.build()
    log, state = storage.on_flash(VfsFlash())
    seed = int.from_bytes(os.urandom(4), "big")
    runtime = Runtime(hw, log, state, seed=seed)
    wiring.wake_on_inputs(runtime.wake)
    asyncio.run(runtime.run(time.ticks_ms, wiring.tasks(hw)))


main()
