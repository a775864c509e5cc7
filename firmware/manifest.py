# ruff: noqa: F821 -- a MicroPython freeze manifest: include, freeze, package and module come from its tools
"""Freeze manifest: the firmware as frozen bytecode in the board's MicroPython build (bytecode and strings stay
in flash; only the objects the modules make live on the heap).

Board build (MicroPython v1.27.0, ESP-IDF v5.4 set up with its export.sh): the handset's own board definitions,
tools/board/INTERLOCK_S3 (the target ESP32-S3-WROOM-1-N8R8) and tools/board/INTERLOCK_WROOM32, name this file as
their frozen manifest and take the REPL off UART0 (the service port's); README, "Putting the firmware on a board":
    git clone -b v1.27.0 https://github.com/micropython/micropython && cd micropython
    make -C mpy-cross && make -C ports/esp32 BOARD_DIR=$ILK/tools/board/INTERLOCK_S3 submodules
    make -C ports/esp32 BOARD_DIR=$ILK/tools/board/INTERLOCK_S3
    make -C ports/esp32 BOARD_DIR=$ILK/tools/board/INTERLOCK_S3 PORT=/dev/ttyACM0 deploy
A stock build (BOARD=ESP32_GENERIC FROZEN_MANIFEST=...) runs too, without the serial service port (UART0 is its
REPL: FAULT_SERVICE_PORT in the log).

Which pin map each build uses: both are frozen (package("drivers")), and drivers/esp32/wiring.py picks the one
named by the chip the build is for (the MCU name at the end of sys.implementation._machine):
    INTERLOCK_WROOM32 or ESP32_GENERIC                          (ESP32-WROOM-32) -> drivers/esp32/pins_wroom32.py
    INTERLOCK_S3 or ESP32_GENERIC_S3 BOARD_VARIANT=SPIRAM_OCT (ESP32-S3-WROOM-1-N8R8) -> drivers/esp32/pins_s3.py
Any other build (an ESP32 with SPIRAM, another chip) has no pin map: build() refuses before it touches a pin.

Frozen main.py runs at boot (the port runs a frozen main.py before one on the file system), so the board's
file system holds only the log, the state and, where it differs from the frozen default, config.py.
include(this file, board=False) freezes the firmware alone (what bench/board.py does on the unix port).
"""

options.defaults(board=True)

if options.board:
    freeze("$(PORT_DIR)/modules")  # the port's own _boot.py, flash block device and first-boot set-up
    include("$(MPY_DIR)/extmod/asyncio")
    require("aioble-peripheral")  # the BLE service port (service/ble.py): advertising and the GATT server
    require("aioble-server")

for name in ("interlock", "fsm", "storage", "drivers", "sync", "service"):
    package(name)
for name in ("board.py", "config.py", "power.py", "runtime.py", "supervisor.py"):
    module(name)
if options.board:
    module("main.py")
