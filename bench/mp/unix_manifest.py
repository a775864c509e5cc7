# ruff: noqa: F821 -- a MicroPython freeze manifest
# The unix port's build for bench/board.py: asyncio and the firmware frozen as on the board (firmware/manifest.py
# without the esp32 port's own modules and main.py).
include("$(MPY_DIR)/extmod/asyncio")
include("../../firmware/manifest.py", board=False)
