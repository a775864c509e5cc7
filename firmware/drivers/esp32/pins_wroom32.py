"""The ESP32-WROOM-32's pin map (MicroPython v1.27.0 ESP32_GENERIC): every pin and bus of the handset board
on this module. wiring.py builds the drivers on it; pins_s3.py is the ESP32-S3 board's.

Avoided on purpose: GPIO 6-11 (flash), 1/3 (UART0: the service port only), 0 (boot strap: a pull-down enters
the bootloader). GPIO 2 is a strap too, but only as an output with a pull-down (the pump), which is the level the
bootloader wants. Analog inputs sit on the input-only ADC1 pins 34, 36, 39 (ADC2 belongs to the radio). GPIO 5
(link sense) and 15 (camera RX) are straps for SDIO timing and boot-log output only: harmless at either level on
this board. Not for a WROVER (the ESP32_GENERIC SPIRAM build): its PSRAM takes GPIO 16/17, the modem's UART here.

GPIO 12 is the last free pin, and the service cable's sense. It is also the strap that selects the flash
voltage (high = 1.8 V), so every board has its flash voltage fixed in eFuse before it first boots, once, at
the factory: `espefuse.py --port PORT set_flash_voltage 3.3V`. After that the strap is not read and a cable
plugged in at power-up is harmless. (Without the eFuse a board powered up with the cable in does not boot:
relay open, which is safe, but a service call.)
"""

from micropython import const

# I2C bus 0 (the parts on it, their addresses and the bus speed are in wiring.py).
I2C_ID = const(0)
I2C_SDA = const(21)
I2C_SCL = const(22)

# Analog inputs (ADC1; no ADC2: it is the radio's).
PIN_BREATH_NTC = const(36)     # breath-path NTC
PIN_BLOCK_NTC = const(39)      # fuel-cell block NTC
PIN_HUM = const(34)            # microphone band-pass envelope

# Digital inputs.
PIN_LEFT = const(18)           # buttons to ground, internal pull-ups
PIN_OK = const(19)
PIN_RIGHT = const(23)
PIN_LATCH = const(33)          # module latch switch to ground, internal pull-up
PIN_LINK = const(5)            # handset cable sense: the relay unit ties it to ground; internal pull-up
PIN_IGNITION = const(35)       # ignition through divider + optocoupler, high = on (input only, no pulls)
PIN_ALT_W = const(32)          # alternator W terminal through an optocoupler
PIN_SERVICE_VBUS = const(12)   # service USB connector's VBUS through 10 k / 20 k to ground (no pulls)

# Outputs. Each has a 10 kOhm pull-down on the board so it stays off while the chip is in reset.
PIN_RELAY = const(26)          # starter interlock relay driver, high = closed
PIN_HORN = const(27)           # horn relay driver
PIN_LIGHTS = const(13)         # hazard-lights relay driver, PWM
PIN_HEATER = const(25)         # fuel-cell heater MOSFET
PIN_BUZZER = const(4)          # piezo, PWM
PIN_PUMP = const(2)            # sampling solenoid MOSFET (the pull-down keeps the boot strap low)

# UARTs.
CAMERA_UART = const(1)
CAMERA_TX = const(14)
CAMERA_RX = const(15)
MODEM_UART = const(2)
MODEM_TX = const(17)
MODEM_RX = const(16)
SERVICE_UART = const(0)        # the USB serial bridge (MicroPython's REPL stream too on a stock build)
SERVICE_TX = const(1)          # UART0's own pins (U0TXD / U0RXD): the port keeps them, they are not passed
SERVICE_RX = const(3)
