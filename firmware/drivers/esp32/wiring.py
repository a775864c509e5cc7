"""THE wiring of the ESP32 handset board: every pin and bus in one place, and build() for the drivers.

Board: ESP32-WROOM-32. Avoided on purpose: GPIO 6-11 (flash), 1/3 (USB serial, REPL), 0 (boot strap: a
pull-down enters the bootloader). GPIO 2 is a strap too, but only as an output with a pull-down (the pump),
which is the level the bootloader wants. Analog inputs sit on the input-only ADC1 pins 34, 36, 39 (ADC2
belongs to the radio). GPIO 5 (link sense) and 15 (camera RX) are straps for SDIO timing and boot-log output
only: harmless at either level on this board.

GPIO 12 is the last free pin, and the service cable's sense. It is also the strap that selects the flash
voltage (high = 1.8 V), so every board has its flash voltage fixed in eFuse before it first boots, once, at
the factory: `espefuse.py --port PORT set_flash_voltage 3.3V`. After that the strap is not read and a cable
plugged in at power-up is harmless. (Without the eFuse a board powered up with the cable in does not boot:
relay open, which is safe, but a service call.)
"""

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

# I2C bus 0, 100 kHz, 2.2 kOhm pull-ups to 3.3 V on the board. Devices on it (7-bit addresses):
I2C_ID = const(0)
I2C_SDA = const(21)
I2C_SCL = const(22)
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
SUPPLY_FSR_MV = const(2048)    # 10 k; every ADC1 pin is taken, and the fuel cell keeps its converter alone
SUPPLY_DIVIDER = const(11)

# Analog inputs (ADC1, 11 dB attenuation, calibrated read_uv()).
PIN_BREATH_NTC = const(36)     # breath-path NTC, 10 k / B3950, high side; 10 k to ground
PIN_BLOCK_NTC = const(39)      # fuel-cell block NTC, same divider
PIN_HUM = const(34)            # microphone band-pass envelope (analog front end), 0..3.1 V
NTC_SUPPLY_UV = const(3300000)

# Digital inputs.
PIN_LEFT = const(18)           # buttons to ground, internal pull-ups
PIN_OK = const(19)
PIN_RIGHT = const(23)
PIN_LATCH = const(33)          # module latch switch to ground, internal pull-up
PIN_LINK = const(5)            # handset cable sense: the relay unit ties it to ground; internal pull-up
PIN_IGNITION = const(35)       # ignition through divider + optocoupler, high = on (input only, no pulls)
PIN_ALT_W = const(32)          # alternator W terminal through an optocoupler, pulses counted on rising edges
PIN_SERVICE_VBUS = const(12)   # service USB connector's VBUS through 10 k / 20 k to ground: high while a
                               # technician's cable is in (the divider holds it low otherwise; no pulls)
SERVICE_VBUS_ACTIVE = const(1)

# Outputs. Each has a 10 kOhm pull-down on the board so it stays off while the chip is in reset.
PIN_RELAY = const(26)          # starter interlock relay driver, high = closed
PIN_HORN = const(27)           # horn relay driver
PIN_LIGHTS = const(13)         # hazard-lights relay driver, PWM at 1 Hz to flash
PIN_HEATER = const(25)         # fuel-cell heater MOSFET
PIN_BUZZER = const(4)          # piezo, PWM
PIN_PUMP = const(2)            # sampling solenoid MOSFET (the pull-down keeps the boot strap low)
PUMP_TIMER = const(1)          # hardware timer ending the solenoid pulse
LIGHTS_FLASH_HZ = const(1)
BUZZER_HZ = const(2700)
BUZZER_TIMER = const(0)        # hardware timer stepping the beep patterns
BUTTON_SAMPLE_MS = const(10)   # button sampler period: 2 stable samples = 20 ms debounce

# UARTs. The camera's is built here; the modem's and the service port's belong to their drivers' authors,
# who build them with modem_uart() / service_uart() below.
CAMERA_UART = const(1)
CAMERA_TX = const(14)
CAMERA_RX = const(15)
CAMERA_BAUD = const(38400)     # VC0706 power-on default
MODEM_UART = const(2)
MODEM_TX = const(17)
MODEM_RX = const(16)
MODEM_BAUD = const(115200)
SERVICE_UART = const(0)        # the USB serial bridge (GPIO 1/3), also MicroPython's REPL stream: main.py turns
                               # Ctrl-C off and resets rather than return to the prompt
SERVICE_BAUD = const(115200)


def modem_uart():
    """The cellular modem's UART (for the modem driver; not created by build())."""
    return machine.UART(MODEM_UART, baudrate=MODEM_BAUD, tx=MODEM_TX, rx=MODEM_RX, timeout=100,
                        timeout_char=20, rxbuf=1024)


def service_uart():
    """The service port's UART (for the service-port driver; not created by build())."""
    return machine.UART(SERVICE_UART, baudrate=SERVICE_BAUD, timeout=0, rxbuf=512)


def service_port():
    """The technician's service port: its UART and the cable sense, so unplugging ends the session."""
    sense = machine.Pin(PIN_SERVICE_VBUS, machine.Pin.IN)
    return UartPort(service_uart(), sense, SERVICE_VBUS_ACTIVE)


def build(camera_fs=None):
    """Create the buses and every driver; return the board's board.Hardware."""
    Pin = machine.Pin
    # Outputs first, each created at its off level: the starter stays blocked from the first instruction.
    rel = relay.Relay(Pin(PIN_RELAY, Pin.OUT, value=0))
    heat_pin = Pin(PIN_HEATER, Pin.OUT, value=0)
    pump_pin = Pin(PIN_PUMP, Pin.OUT, value=0)
    horn = Pin(PIN_HORN, Pin.OUT, value=0)
    lights = machine.PWM(Pin(PIN_LIGHTS), freq=LIGHTS_FLASH_HZ, duty_u16=0)
    beeper = machine.PWM(Pin(PIN_BUZZER), freq=BUZZER_HZ, duty_u16=0)

    i2c = machine.I2C(I2C_ID, scl=Pin(I2C_SCL), sda=Pin(I2C_SDA), freq=I2C_FREQ)
    cam_uart = machine.UART(CAMERA_UART, baudrate=CAMERA_BAUD, tx=CAMERA_TX, rx=CAMERA_RX, timeout=200,
                            timeout_char=50)

    def adc(pin):
        return machine.ADC(Pin(pin), atten=machine.ADC.ATTN_11DB)

    def button(pin):
        return Pin(pin, Pin.IN, Pin.PULL_UP)

    block = ntc.NTC(adc(PIN_BLOCK_NTC), NTC_SUPPLY_UV)
    return board.Hardware(
        fuel_cell=ads1115.FuelCell(i2c, ADDR_ADS1115, FUEL_CELL_CHANNEL, FUEL_CELL_FSR_MV),
        flow=sdp810.BreathFlow(i2c, ADDR_SDP810),
        breath_temp=ntc.NTC(adc(PIN_BREATH_NTC), NTC_SUPPLY_UV),
        hum=hum.HumDetect(adc(PIN_HUM)),
        heater=heater.Heater(heat_pin, block),
        ambient=ds3231.Ambient(i2c, ADDR_RTC),
        module=slot.ModuleSlot(button(PIN_LATCH), i2c, ADDR_MODULE, sleep_ms=time.sleep_ms),
        buttons=buttons.Buttons(button(PIN_LEFT), button(PIN_OK), button(PIN_RIGHT)),
        display=hd44780.Display(i2c, ADDR_LCD, time.sleep_ms),
        relay=rel,
        alarm=alarm.Alarm(horn, lights),
        buzzer=buzzer.Buzzer(beeper, machine.Timer(BUZZER_TIMER), BUZZER_HZ),
        vehicle=vehicle.Vehicle(Pin(PIN_IGNITION, Pin.IN), Pin(PIN_ALT_W, Pin.IN, Pin.PULL_UP), time.ticks_ms),
        link=link.HandsetLink(button(PIN_LINK)),
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
    Pin = machine.Pin
    for pin in (PIN_IGNITION, PIN_LEFT, PIN_OK, PIN_RIGHT, PIN_LINK, PIN_LATCH):
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
