"""MicroPython: the heap the firmware holds once imported, package by package, in the order the board imports
them. Run by bench/board.py two ways:
  - WebAssembly port: run.mjs --fw DIR --loop step, DIR holding the firmware as mpy-cross output (.mpy files
    loaded into RAM, as when they are copied to the board's file system); the runner collects between calls;
  - unix port built with the firmware frozen (bench/mp/unix_manifest.py): `micropython import_heap.py --drive`,
    bytecode and strings in the binary, as in a board build from firmware/manifest.py.
Either way the heap is sampled after a collection: what is left is what the imported modules keep, not the
loader's garbage."""

import gc
import sys

_here = sys.argv[0].rsplit("/", 1)[0] if "/" in sys.argv[0] else "."
sys.path.append(_here + "/stubs")  # machine: the board wiring imports it
import machine  # noqa: E402,F401

# (package, its modules in import order); every firmware module but main.py (which runs the handset) is here
PACKAGES = (
    ("asyncio", ("asyncio",)),  # frozen in every board build; main.py imports it first
    ("interlock", ("interlock", "interlock.const", "interlock.timebase", "interlock.crypto", "interlock.record",
                   "interlock.codes", "interlock.token", "interlock.wire", "interlock.smpgroup")),
    ("board", ("board", "config")),
    ("fsm", ("fsm", "fsm.records", "fsm.policy", "fsm.prng", "fsm.states", "fsm.inputs", "fsm.module",
             "fsm.brac", "fsm.breath", "fsm.entry", "fsm.screen", "fsm.view", "fsm.menu", "fsm.persist",
             "fsm.authority", "fsm.machine")),
    ("storage", ("storage", "storage.memory", "storage.log", "storage.state")),
    ("drivers", ("drivers", "drivers.flash", "drivers.modem", "drivers.serialport", "drivers.simcom")),
    # off the board wiring picks no pin map (PINS is None): the target's is imported here as on the S3
    ("drivers/esp32", ("drivers.esp32", "drivers.esp32.wiring", "drivers.esp32.pins_s3", "drivers.esp32.watchdog")),
    ("runtime", ("supervisor", "power", "runtime")),
    ("sync", ("sync", "sync.client")),
    ("service", ("service", "service.cbor", "service.frame", "service.smp", "service.auth", "service.osgroup",
                 "service.fsgroup", "service.ilgroup", "service.server", "service.task", "service.ble")),
    # the BLE side: aioble as the board build freezes it (core, peripheral, server; micropython-lib at the commit
    # v1.27.0 pins, bench/mp/lib/aioble) over a stand-in `bluetooth` (C on the board, imported uncounted), then
    # the GATT table service/ble.py registers (its objects, aioble's capture queue and task)
    ("-bluetooth", ("bluetooth",)),
    ("aioble", ("aioble", "aioble.core", "aioble.device", "aioble.peripheral", "aioble.server")),
    ("ble gatt", ("+gatt",)),
)
_kept = []

_i = [-1]
_last = [0]
_rows = []


def step():
    """Import the next package; the runner collects between calls. Returns None when done."""
    now = gc.mem_alloc()  # live heap after the runner's collection: what the previous package kept
    i = _i[0]
    if i >= 0:
        _rows.append((PACKAGES[i][0], now - _last[0]))
    _last[0] = now
    i += 1
    _i[0] = i
    if i == len(PACKAGES):
        total = 0
        for name, n in _rows:
            if name.startswith("-"):
                continue  # a stand-in for a C module of the board: not counted
            total += n
            print("import_heap %-14s %7d bytes" % (name, n))
        print("import_heap %-14s %7d bytes" % ("total", total))
        mod = sys.modules.get("fsm.machine")
        print("loaded_from", getattr(mod, "__file__", "?"))
        return None
    for name in PACKAGES[i][1]:
        if name == "+gatt":
            from service import ble

            _kept.append(ble.gatt())
        else:
            __import__(name)
    return 1


if "--drive" in sys.argv:
    gc.collect()
    while step() is not None:
        gc.collect()
