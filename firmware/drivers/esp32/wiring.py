"""THE wiring of the ESP32 handset boards: the parts and buses, and build() for the drivers, on the pin map of the
board the firmware runs on.

One pin map per board, each in its own file with the reasons for every pin:
- `pins_wroom32.py`: the ESP32-WROOM-32 (MicroPython's ESP32_GENERIC build);
- `pins_s3.py`: the ESP32-S3-WROOM-1-N8R8, the target (ESP32_GENERIC_S3, variant SPIRAM_OCT).
The board build picks it: sys.implementation._machine is "<board name> with <MCU name>" as the build's
mpconfigboard.h sets them ("Generic ESP32 module with ESP32", "Generic ESP32S3 module with Octal-SPIRAM with
ESP32S3"), and the MCU name chooses the map (board_pins()). On any other chip, and on an ESP32 build with SPIRAM
(a WROVER: its PSRAM takes GPIO 16/17, the modem's here), PINS is None and build() refuses before it touches a
pin: a wrong map could drive the flash lines or leave the relay floating. The freeze manifest freezes both maps.
"""

import sys
import time

import machine
from micropython import const

import board
from drivers.esp32 import (
    ads1115,
    alarm,
    buttons,
    buzzer,
    ds3231,
    hd44780,
    heater,
    hum,
    link,
    ntc,
    pump,
    relay,
    sdp810,
    slot,
    vc0706,
    vehicle,
)
from drivers.serialport import UartPort

# The parts on the I2C bus (100 kHz, 2.2 kOhm pull-ups to 3.3 V on the board), 7-bit addresses:
I2C_FREQ = const(100000)
ADDR_ADS1115 = const(0x48)     # fuel-cell amplifier on AIN0, +-2.048 V range
ADDR_SDP810 = const(0x25)      # mouthpiece differential pressure (SDP810-500Pa)
ADDR_LCD = const(0x27)         # PCF8574 backpack of the 2 x 16 LCD
ADDR_RTC = const(0x68)         # DS3231 (also the ambient thermometer)
ADDR_MODULE = const(0x50)      # 24C02 on the sensor module, through the slot connector behind a hot-swap
                               # I2C buffer, so plugging a module cannot hang the bus
FUEL_CELL_CHANNEL = const(0)
FUEL_CELL_FSR_MV = const(2048)
ADDR_SUPPLY_ADC = const(0x49)  # a second ADS1115 (ADDR pin to VDD): the vehicle supply on AIN0 through a
SUPPLY_CHANNEL = const(0)      # 100 kOhm / 10 kOhm divider (16 V reads 1.45 V) with a 3.6 V zener across the
SUPPLY_FSR_MV = const(2048)    # 10 k; the WROOM-32 has no ADC1 pin left, and the fuel cell keeps its converter
SUPPLY_DIVIDER = const(11)     # alone

# Analog inputs: ADC1, 11 dB attenuation, calibrated read_uv(). The NTCs (10 k / B3950) sit high side with 10 k
# to ground; the hum input is the microphone's band-pass envelope (analog front end), 0..3.1 V.
NTC_SUPPLY_UV = const(3300000)

# The service cable's sense: VBUS through 10 k / 20 k to ground, high while a technician's cable is in (the
# divider holds it low otherwise; no pulls).
SERVICE_VBUS_ACTIVE = const(1)

# Outputs: the lights flash by PWM at 1 Hz; timers end the solenoid pulse and step the beep patterns.
PUMP_TIMER = const(1)
LIGHTS_FLASH_HZ = const(1)
BUZZER_HZ = const(2700)
BUZZER_TIMER = const(0)
BUTTON_SAMPLE_MS = const(10)   # button sampler period: 2 stable samples = 20 ms debounce

# UART speeds. The camera's UART is built by build(); the modem's and the service port's by modem_uart() and
# service_uart(). The service port is UART0: the handset's board builds (tools/board/) take the REPL off it (on
# the S3 the REPL stays on the native USB); on a stock build it is the REPL's, service_port() gives None and the
# handset runs without it. main.py turns Ctrl-C off and resets rather than return to a prompt either way.
CAMERA_BAUD = const(38400)     # VC0706 power-on default
MODEM_BAUD = const(115200)
SERVICE_BAUD = const(115200)


def chip():
    """The MCU name the MicroPython board build gave (the end of sys.implementation._machine), '' off a board."""
    return getattr(sys.implementation, "_machine", "").rsplit(" with ", 1)[-1]


def board_pins():
    """The pin map of the board this build is for, or None when there is none for it."""
    name = getattr(sys.implementation, "_machine", "")
    mcu = chip()
    if mcu == "ESP32S3":
        from drivers.esp32 import pins_s3

        return pins_s3
    if mcu == "ESP32" and "SPIRAM" not in name:
        from drivers.esp32 import pins_wroom32

        return pins_wroom32
    return None


PINS = board_pins()


def _pins():
    if PINS is None:
        raise RuntimeError("no pin map for " + getattr(sys.implementation, "_machine", "this build"))
    return PINS


def modem_uart():
    """The cellular modem's UART (for the modem driver; not created by build())."""
    p = _pins()
    return machine.UART(p.MODEM_UART, baudrate=MODEM_BAUD, tx=p.MODEM_TX, rx=p.MODEM_RX, timeout=100,
                        timeout_char=20, rxbuf=1024)


def service_uart():
    """The service port's UART (for the service-port driver; not created by build())."""
    return machine.UART(_pins().SERVICE_UART, baudrate=SERVICE_BAUD, timeout=0, rxbuf=512)


def service_port():
    """The technician's service port: its UART and the cable sense, so unplugging ends the session; None when
    this build keeps UART0 for its REPL (a stock ESP32_GENERIC or ESP32_GENERIC_S3: MicroPython v1.27.0
    ports/esp32/machine_uart.c refuses a REPL UART's rxbuf with ValueError "REPL UART buffer size is fixed", and
    that UART's bytes go to the REPL, never to UART.read). Only the handset's own board builds
    (tools/board/INTERLOCK_*: MICROPY_HW_ENABLE_UART_REPL 0) free it; the service task then runs without the
    serial port and records why (records.FAULT_SERVICE_PORT)."""
    p = _pins()
    try:
        uart = service_uart()
    except ValueError:
        return None
    return UartPort(uart, machine.Pin(p.PIN_SERVICE_VBUS, machine.Pin.IN), SERVICE_VBUS_ACTIVE)


def build(camera_fs=None):
    """Create the buses and every driver; return the board's board.Hardware."""
    p = _pins()
    Pin = machine.Pin
    # Outputs first, each created at its off level: the starter stays blocked from the first instruction.
    rel = relay.Relay(Pin(p.PIN_RELAY, Pin.OUT, value=0))
    heat_pin = Pin(p.PIN_HEATER, Pin.OUT, value=0)
    pump_pin = Pin(p.PIN_PUMP, Pin.OUT, value=0)
    horn = Pin(p.PIN_HORN, Pin.OUT, value=0)
    lights = machine.PWM(Pin(p.PIN_LIGHTS), freq=LIGHTS_FLASH_HZ, duty_u16=0)
    beeper = machine.PWM(Pin(p.PIN_BUZZER), freq=BUZZER_HZ, duty_u16=0)

    i2c = machine.I2C(p.I2C_ID, scl=Pin(p.I2C_SCL), sda=Pin(p.I2C_SDA), freq=I2C_FREQ)
    cam_uart = machine.UART(p.CAMERA_UART, baudrate=CAMERA_BAUD, tx=p.CAMERA_TX, rx=p.CAMERA_RX, timeout=200,
                            timeout_char=50)

    def adc(pin):
        return machine.ADC(Pin(pin), atten=machine.ADC.ATTN_11DB)

    def button(pin):
        return Pin(pin, Pin.IN, Pin.PULL_UP)

    block = ntc.NTC(adc(p.PIN_BLOCK_NTC), NTC_SUPPLY_UV)
    return board.Hardware(
        fuel_cell=ads1115.FuelCell(i2c, ADDR_ADS1115, FUEL_CELL_CHANNEL, FUEL_CELL_FSR_MV),
        flow=sdp810.BreathFlow(i2c, ADDR_SDP810),
        breath_temp=ntc.NTC(adc(p.PIN_BREATH_NTC), NTC_SUPPLY_UV),
        hum=hum.HumDetect(adc(p.PIN_HUM)),
        heater=heater.Heater(heat_pin, block),
        ambient=ds3231.Ambient(i2c, ADDR_RTC),
        module=slot.ModuleSlot(button(p.PIN_LATCH), i2c, ADDR_MODULE, sleep_ms=time.sleep_ms),
        buttons=buttons.Buttons(button(p.PIN_LEFT), button(p.PIN_OK), button(p.PIN_RIGHT)),
        display=hd44780.Display(i2c, ADDR_LCD, time.sleep_ms),
        relay=rel,
        alarm=alarm.Alarm(horn, lights),
        buzzer=buzzer.Buzzer(beeper, machine.Timer(BUZZER_TIMER), BUZZER_HZ),
        vehicle=vehicle.Vehicle(Pin(p.PIN_IGNITION, Pin.IN), Pin(p.PIN_ALT_W, Pin.IN, Pin.PULL_UP), time.ticks_ms),
        link=link.HandsetLink(button(p.PIN_LINK)),
        rtc=ds3231.DS3231(i2c, ADDR_RTC),
        camera=vc0706.Camera(cam_uart, camera_fs),
        pump=pump.Pump(pump_pin, machine.Timer(PUMP_TIMER)),
        supply=ads1115.Supply(i2c, ADDR_SUPPLY_ADC, SUPPLY_CHANNEL, SUPPLY_FSR_MV, SUPPLY_DIVIDER),
        # Added by their own drivers' authors: the flash filesystem (storage), the cellular modem (on
        # modem_uart()) and the technician's service port (on service_uart()).
        fs=None,
        modem=None,
        service_port=None,
    )


async def sample_buttons(buttons, sleep_ms, period_ms=BUTTON_SAMPLE_MS, alive=None):
    """Sample the buttons every period_ms, so presses shorter than the runtime's poll are not lost; alive()
    (the supervisor's) is called every turn."""
    while True:
        buttons.poll()
        if alive is not None:
            alive()
        await sleep_ms(period_ms)


def wake_on_inputs(callback):
    """Call callback(pin) on any edge of the inputs the runtime sleeps through: ignition, buttons, handset
    link and module latch (Runtime.wake), so the idle poll can be long without missing a key turn."""
    p = _pins()
    Pin = machine.Pin
    for pin in (p.PIN_IGNITION, p.PIN_LEFT, p.PIN_OK, p.PIN_RIGHT, p.PIN_LINK, p.PIN_LATCH):
        Pin(pin).irq(trigger=Pin.IRQ_RISING | Pin.IRQ_FALLING, handler=callback)


def tasks(hw, supervisor=None, now=0):
    """The board's background coroutines, for Runtime.run(ticks_ms, tasks); under the supervisor when given."""
    import asyncio

    if supervisor is None:
        return (sample_buttons(hw.buttons, asyncio.sleep_ms),)
    import supervisor as sv

    alive = supervisor.watch(sv.TASK_BUTTONS, sv.LIMIT_BUTTONS_MS, now, time.ticks_ms)
    return (sv.guard(supervisor, sv.TASK_BUTTONS, sample_buttons(hw.buttons, asyncio.sleep_ms, alive=alive)),)


def watchdog(timeout_ms):
    """The hardware watchdog (started by its first feed), the reset cause and the RTC's slow memory."""
    from drivers.esp32.watchdog import Watchdog

    # machine.reset_cause() -> board.RESET_* (the ESP32 port reports a brown-out as PWRON_RESET)
    causes = {machine.PWRON_RESET: board.RESET_POWER, machine.HARD_RESET: board.RESET_HARD,
              machine.WDT_RESET: board.RESET_WATCHDOG, machine.DEEPSLEEP_RESET: board.RESET_DEEPSLEEP,
              machine.SOFT_RESET: board.RESET_SOFT}
    return Watchdog(machine.WDT, timeout_ms, causes.get(machine.reset_cause(), board.RESET_UNKNOWN), machine.RTC())
