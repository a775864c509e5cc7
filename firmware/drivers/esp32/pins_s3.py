"""The ESP32-S3-WROOM-1-N8R8's pin map (MicroPython v1.27.0 ESP32_GENERIC_S3, variant SPIRAM_OCT): every pin and
bus of the handset board on the target module. wiring.py builds the drivers on it; pins_wroom32.py is the
ESP32-WROOM-32's. The parts, their I2C addresses and the electrical notes (pull-downs on the outputs, the
dividers) are the same on both boards.

The rules, from ESP-IDF v5.4's "GPIO & RTC GPIO" page for the ESP32-S3
(https://docs.espressif.com/projects/esp-idf/en/v5.4.5/esp32s3/api-reference/peripherals/gpio.html) and
MicroPython v1.27.0's ports/esp32 (machine_pin.h, boards/ESP32_GENERIC_S3):
- The chip has GPIO 0-21 and 26-48 (no 22-25).
- GPIO 26-32 carry the SPI flash and PSRAM; with octal PSRAM, as on the N8R8 (an ESP32-S3R8), GPIO 33-37 are
  its SPIIO4-7 and DQS too. None is used; MicroPython's SPIRAM_OCT build refuses Pin(26) and Pin(33..37).
- GPIO 0, 3, 45 and 46 are the strapping pins (boot mode, JTAG source, VDD_SPI voltage, ROM log): all left
  alone, so no strap has to be fixed in eFuse as GPIO 12 must be on the WROOM-32.
- GPIO 19/20 are the native USB's D-/D+: MicroPython's REPL (USB CDC) and the USB-Serial-JTAG. Left alone
  (machine_pin.h leaves them out with CONFIG_USB_CDC_ENABLED); they belong on a header inside the case, for
  flashing, never on a connector a driver can reach.
- ADC1 is GPIO 1-10 and ADC2 GPIO 11-20; ADC2 is unusable while the radio runs (the BLE service port, Wi-Fi),
  so the three analog inputs are ADC1 channels (CH0, CH1, CH3; GPIO 3 is a strap).
- The chip has no input-only pins (the WROOM-32's GPIO 34-39 have no counterpart), so any pin may be an output.
- UART0 keeps its own pins, GPIO 43/44 (U0TXD/U0RXD), on the USB serial bridge of the service port, as GPIO 1/3
  on the WROOM-32. The handset's board build (tools/board/INTERLOCK_S3) turns MICROPY_HW_ENABLE_UART_REPL off,
  so UART0 is the service port's alone and the REPL stays on the native USB; a stock ESP32_GENERIC_S3 keeps the
  REPL on UART0 too, and the handset then runs without its serial port (wiring.service_port()).
- I2C on GPIO 8/9, the board build's own I2C0 defaults (MICROPY_HW_I2C0_SDA/SCL); the camera's UART1 on
  GPIO 17/18, UART1's IO MUX pins; the modem's UART2 on GPIO 15/16 (XTAL_32K_P/N, free: the DS3231 keeps time,
  no 32 kHz crystal is fitted).
Every other usable pin of the module is taken; GPIO 47/48 are the spares.
"""

from micropython import const

# I2C bus 0 (the parts on it, their addresses and the bus speed are in wiring.py).
I2C_ID = const(0)
I2C_SDA = const(8)
I2C_SCL = const(9)

# Analog inputs (ADC1; no ADC2: it is the radio's).
PIN_BREATH_NTC = const(1)      # ADC1_CH0: breath-path NTC
PIN_BLOCK_NTC = const(2)       # ADC1_CH1: fuel-cell block NTC
PIN_HUM = const(4)             # ADC1_CH3: microphone band-pass envelope

# Digital inputs.
PIN_LEFT = const(39)           # buttons to ground, internal pull-ups
PIN_OK = const(40)
PIN_RIGHT = const(41)
PIN_LATCH = const(42)          # module latch switch to ground, internal pull-up
PIN_LINK = const(38)           # handset cable sense: the relay unit ties it to ground; internal pull-up
PIN_IGNITION = const(5)        # ignition through divider + optocoupler, high = on (no pulls)
PIN_ALT_W = const(6)           # alternator W terminal through an optocoupler
PIN_SERVICE_VBUS = const(7)    # service USB connector's VBUS through 10 k / 20 k to ground (no pulls)

# Outputs. Each has a 10 kOhm pull-down on the board so it stays off while the chip is in reset.
PIN_RELAY = const(11)          # starter interlock relay driver, high = closed
PIN_HORN = const(12)           # horn relay driver
PIN_LIGHTS = const(13)         # hazard-lights relay driver, PWM
PIN_HEATER = const(14)         # fuel-cell heater MOSFET
PIN_BUZZER = const(10)         # piezo, PWM
PIN_PUMP = const(21)           # sampling solenoid MOSFET

# UARTs (the S3 has three: 0, 1, 2).
CAMERA_UART = const(1)
CAMERA_TX = const(17)
CAMERA_RX = const(18)
MODEM_UART = const(2)
MODEM_TX = const(15)
MODEM_RX = const(16)
SERVICE_UART = const(0)        # the USB serial bridge (MicroPython's REPL stream too on a stock build)
SERVICE_TX = const(43)         # UART0's own pins (U0TXD / U0RXD): the port keeps them, they are not passed
SERVICE_RX = const(44)
