# The ESP32-WROOM-32 handset build: ESP32_GENERIC (MicroPython v1.27.0 ports/esp32/boards/ESP32_GENERIC/
# mpconfigboard.cmake: the same sdkconfig fragments), the firmware frozen in (the only way it fits: README), and
# mpconfigboard.h here taking the REPL off UART0. Build: README, "Putting the firmware on a board".
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
)

# The firmware, frozen (a FROZEN_MANIFEST on the command line would override it: CMakeLists.txt:44-50).
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/../../../firmware/manifest.py)
