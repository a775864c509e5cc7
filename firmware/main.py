"""Board entry point: wire the board, open the flash storage, run the handset."""

import os
import time

import asyncio
from drivers.esp32 import wiring
from drivers.flash import VfsFlash
from runtime import Runtime
from storage.log import FlashLog
from storage.state import PairState


def main():
    """Build the drivers and storage, then run the runtime loop forever."""
    hw = wiring.build()
    flash = VfsFlash()
    log = FlashLog(flash)
    log.mount()
    state = PairState(flash)
    seed = int.from_bytes(os.urandom(4), "big")
    runtime = Runtime(hw, log, state, seed=seed)
    asyncio.run(runtime.run(time.ticks_ms, wiring.tasks(hw)))


main()
