// The ESP32-WROOM-32 handset build (4 MB flash, no PSRAM) on MicroPython v1.27.0. Based on
// ports/esp32/boards/ESP32_GENERIC/mpconfigboard.h, with one change: UART0 is not the REPL, so the firmware can
// open it as the technician's service port (firmware/drivers/esp32/wiring.py service_port(): UART0 on its own
// GPIO 1/3, rxbuf=512).
//
// Why (v1.27.0 source): the ESP32 has no native USB, so uart.h:32-34 turns MICROPY_HW_ENABLE_UART_REPL on by
// default (!MICROPY_HW_USB_CDC && !MICROPY_HW_ESP_USB_SERIAL_JTAG) with the REPL on UART 0 (uart.h:38-40);
// machine_uart.c:324-327 then refuses UART0's rxbuf with ValueError("REPL UART buffer size is fixed") and :350
// never installs the ESP-IDF driver on it. With (0) uart_is_repl() (machine_uart.c:102-108) is false and UART0 is
// an ordinary machine.UART.
//
// This build therefore has no REPL at all (no other UART's pins are free on this board): develop on a stock
// ESP32_GENERIC build, where the handset runs without its serial port (records FAULT_SERVICE_PORT), or on the S3.

// sys.implementation._machine is "<board name> with <MCU name>"; wiring.py picks pins_wroom32.py by the MCU name
// (and refuses a name with "SPIRAM": a WROVER's PSRAM takes the modem's GPIO 16/17).
#define MICROPY_HW_BOARD_NAME               "Interlock handset ESP32-WROOM-32"
#define MICROPY_HW_MCU_NAME                 "ESP32"

// UART0 is the service port's, not the REPL's.
#define MICROPY_HW_ENABLE_UART_REPL         (0)
