# The handset's target build: ESP32-S3-WROOM-1-N8R8. ESP32_GENERIC_S3 with its SPIRAM_OCT variant folded in
# (MicroPython v1.27.0 ports/esp32/boards/ESP32_GENERIC_S3/mpconfigboard.cmake and mpconfigvariant_SPIRAM_OCT.cmake:
# the same sdkconfig fragments, in the same order, ESP32_GENERIC_S3/sdkconfig.board copied
# here as sdkconfig.board), the firmware frozen in, and mpconfigboard.h here taking the
# REPL off UART0. Relative fragment paths are read from ports/esp32 (CMakeLists.txt:52-58), as the generic
# boards' are; this board's own fragment by its directory. Build: README, "Putting the firmware on a board".
set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
    boards/sdkconfig.spiram_sx
    ${MICROPY_BOARD_DIR}/sdkconfig.board
    boards/sdkconfig.240mhz
    boards/sdkconfig.spiram_oct
)

# The firmware, frozen (a FROZEN_MANIFEST on the command line would override it: CMakeLists.txt:44-50).
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/../../../firmware/manifest.py)
