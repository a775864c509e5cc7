# ruff: noqa: F821 -- a MicroPython freeze manifest: include, freeze, package and module come from its tools
"""Freeze manifest: the firmware as frozen bytecode in the board's MicroPython build (bytecode and strings stay
in flash; only the objects the modules make live on the heap).

Board build (MicroPython v1.27.0, ESP-IDF v5.4 set up with its export.sh); shown for the ESP32-WROOM-32, which
takes the firmware only frozen; for the target ESP32-S3-WROOM-1-N8R8 use BOARD=ESP32_GENERIC_S3
BOARD_VARIANT=SPIRAM_OCT (README, "Putting the firmware on a board"):
    git clone -b v1.27.0 https://github.com/micropython/micropython && cd micropython
    make -C mpy-cross && make -C ports/esp32 BOARD=ESP32_GENERIC submodules
    make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=$PWD/../interlock/firmware/manifest.py
    make -C ports/esp32 BOARD=ESP32_GENERIC PORT=/dev/ttyUSB0 deploy

Which pin map each build uses: both are frozen (package("drivers")), and drivers/esp32/wiring.py picks the one
named by the chip the build is for (the MCU name at the end of sys.implementation._machine):
    BOARD=ESP32_GENERIC                          (ESP32-WROOM-32)         -> drivers/esp32/pins_wroom32.py
    BOARD=ESP32_GENERIC_S3 BOARD_VARIANT=SPIRAM_OCT (ESP32-S3-WROOM-1-N8R8) -> drivers/esp32/pins_s3.py
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
