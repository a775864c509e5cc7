# ruff: noqa: F821 -- a MicroPython freeze manifest
# The unix port's build for bench/board.py: asyncio and the firmware frozen as on the board (firmware/manifest.py
# without the esp32 port's own modules and main.py), and aioble's parts the board build requires (core,
# peripheral, server: bench/mp/lib/aioble, micropython-lib at the commit v1.27.0 pins).
include("$(MPY_DIR)/extmod/asyncio")
include("../../firmware/manifest.py", board=False)
package("aioble", base_path="lib")
