"""Board entry point: wire the board, open the flash storage, run the handset, its sync and its service port."""

import asyncio
import os
import time

import machine
import micropython

import config
import storage
import supervisor as sv
from drivers.esp32 import wiring
from drivers.flash import VfsFlash
from drivers.simcom import SimcomModem
from runtime import Runtime
from service import task as service_task
from sync.client import SyncClient


def main():
    """Build the drivers and storage, then run the runtime loop and its supervised tasks forever."""
    # on a stock build UART0 (the service cable) is MicroPython's REPL stream, and on the S3 the native USB is
    # in every build: with Ctrl-C on, a 0x03 would raise KeyboardInterrupt here and leave a Python prompt (the
    # secret, the state, everything)
    micropython.kbd_intr(-1)
    hw = wiring.build()
    # the runtime loop feeds it while every task below reports progress; it starts at the first feed
    hw.watchdog = wiring.watchdog(sv.WATCHDOG_MS)
    log, state = storage.on_flash(VfsFlash())
    seed = int.from_bytes(os.urandom(4), "big")
    sup = sv.Supervisor()
    runtime = Runtime(hw, log, state, seed=seed, supervisor=sup)
    wiring.wake_on_inputs(runtime.wake)
    now = time.ticks_ms()
    # syncs at start, at key-off and every 30 min; offline it backs off and the handset carries on
    sync = SyncClient(runtime.fsm, SimcomModem(wiring.modem_uart(), config.COMPANION_URL), log=log, seed=seed)
    sync_task = sv.guard(sup, sv.TASK_SYNC, sync.run(alive=sup.watch(sv.TASK_SYNC, sv.LIMIT_SYNC_MS, now,
                                                                      time.ticks_ms)))
    # the service port is UART0 (the USB bridge); its cable sense ends the technician's session when the cable
    # comes out. On a stock MicroPython build UART0 is the REPL's and service_port() is None: the task records
    # FAULT_SERVICE_PORT and runs without it (no boot loop). The same server over BLE (the SMP GATT service), its
    # sessions bound to the BLE connection, runs either way.
    ble_alive = sup.watch(sv.TASK_BLE, sv.LIMIT_BLE_MS, now, time.ticks_ms)

    def ble(server):
        from service import ble as ble_port

        return sv.guard(sup, sv.TASK_BLE, ble_port.serve(server, time.ticks_ms, ble_alive, config.BLE_NAME))

    service = sv.guard(sup, sv.TASK_SERVICE, service_task.start(
        runtime, log, wiring.service_port(), time.ticks_ms, os.urandom, machine.reset,
        alive=sup.watch(sv.TASK_SERVICE, sv.LIMIT_SERVICE_MS, now, time.ticks_ms), ble=ble))
    asyncio.run(runtime.run(time.ticks_ms, wiring.tasks(hw, sup, now) + (sync_task, service)))


try:
    main()
finally:
    # the loop never ends; should it (an exception), restart rather than fall back to the REPL on the port
    machine.reset()
