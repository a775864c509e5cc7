// The handset's target build: ESP32-S3-WROOM-1-N8R8 (8 MB quad flash, 8 MB octal PSRAM) on MicroPython v1.27.0.
// Based on ports/esp32/boards/ESP32_GENERIC_S3/mpconfigboard.h (variant SPIRAM_OCT), with one change: UART0 is
// not the REPL, so the firmware can open it as the technician's service port (firmware/drivers/esp32/wiring.py
// service_port(): UART0 on its own GPIO 43/44, rxbuf=512).
//
// Why the change is needed (v1.27.0 source):
// - boards/ESP32_GENERIC_S3/mpconfigboard.h:8 sets MICROPY_HW_ENABLE_UART_REPL (1): REPL on UART0 too;
// - machine_uart.c:102-108 uart_is_repl(): the REPL UART is MICROPY_HW_UART_REPL (uart.h:38-40, UART 0) while
//   MICROPY_HW_ENABLE_UART_REPL is on; machine_uart.c:324-327 then refuses any rxbuf/txbuf for it with
//   ValueError("REPL UART buffer size is fixed"), and :350 never installs the ESP-IDF driver on it (its bytes go
//   to the REPL's stdin, not to UART.read).
// With (0) uart_is_repl() is false for every UART, main.c:115-117 does not start the UART REPL, and UART0 is an
// ordinary machine.UART.
//
// The REPL stays on the native USB (GPIO 19/20) for development: mpconfigport.h:225 MICROPY_HW_ENABLE_USBDEV
// defaults to SOC_USB_OTG_SUPPORTED (1 on the S3), :277 MICROPY_HW_USB_CDC follows it (TinyUSB CDC-ACM: the REPL),
// and :283 leaves the USB-Serial/JTAG console off while the CDC has the PHY. They are stated here so that the
// intent does not depend on those defaults.

// sys.implementation._machine is "<board name> with <MCU name>"; wiring.py picks pins_s3.py by the MCU name.
#define MICROPY_HW_BOARD_NAME               "Interlock handset ESP32-S3-WROOM-1-N8R8"
#define MICROPY_HW_MCU_NAME                 "ESP32S3"

// UART0 is the service port's, not the REPL's.
#define MICROPY_HW_ENABLE_UART_REPL         (0)

// The REPL on the native USB (TinyUSB CDC), as in the generic build.
#define MICROPY_HW_ENABLE_USBDEV            (1)
#define MICROPY_HW_USB_CDC                  (1)

// As ESP32_GENERIC_S3: I2C0 on GPIO 9/8 (pins_s3.py I2C_SCL / I2C_SDA).
#define MICROPY_HW_I2C0_SCL                 (9)
#define MICROPY_HW_I2C0_SDA                 (8)
