"""The board contract (in the manner of QP's bsp.h): what the state machine and the runtime ask of a board.

- `Board`: the verbs the state machine calls (relay, horn, lights, beep, heater, show, photo, pump,
  write_module, set_clock). The runtime implements them over the drivers (runtime.Outputs); tests and benches
  derive their recording or silent boards from it.
- The driver interfaces: each class documents one driver's verbs; a board's driver files implement them on real
  parts (`drivers/esp32/`), the host simulator on a physical model (`host_sim/`). Drivers receive their bus in
  the constructor; they never create it. `Hardware` is every driver of one board, built by its wiring file.
- The values that cross the seam: button bits and beep patterns.

Readings are integers: deci-degrees C, mL/s, ADC counts, device seconds (interlock.timebase). The state machine
imports this module and nothing else of the board; drivers import this module and nothing of the state machine.
"""

from micropython import const

# Button bits, as reported by Buttons.pressed().
LEFT = const(1)
OK = const(2)
RIGHT = const(4)

# Buzzer patterns for Board.beep and Buzzer.beep.
BEEP_KEY = const(1)  # a key press
BEEP_PROMPT = const(2)  # blow now
BEEP_RETEST = const(3)  # a retest is due while driving
BEEP_ERROR = const(4)  # refused: a wrong code, a failed or aborted sample

# Why the board started (Watchdog.reset_cause(), the BOOT_REASON record's a).
RESET_POWER = const(1)  # power applied (on the ESP32 also a brown-out: its MicroPython reports both alike)
RESET_HARD = const(2)  # the reset pin, a panic, or machine.reset() (a technician's OS reset)
RESET_WATCHDOG = const(3)  # the hardware watchdog was not fed
RESET_DEEPSLEEP = const(4)
RESET_SOFT = const(5)  # MicroPython's soft reset
RESET_UNKNOWN = const(6)
RESET_BROWNOUT = const(7)  # the supply sagged away: power-on after a CRITICAL battery record (power.py)


class Board:
    """The verbs the state machine calls; the runtime implements them over a board's drivers."""

    def relay(self, on):
        """Close (True) or open (False) the starter relay."""
        raise NotImplementedError

    def horn(self, on):
        """Sound or silence the horn."""
        raise NotImplementedError

    def lights(self, on):
        """Flash or stop flashing the lights."""
        raise NotImplementedError

    def beep(self, pattern):
        """Play a buzzer pattern (BEEP_*)."""
        raise NotImplementedError

    def heater(self, on):
        """Switch the fuel-cell heater."""
        raise NotImplementedError

    def show(self, buf):
        """Show the 32-byte screen (line 1 then line 2) on the display."""
        raise NotImplementedError

    def photo(self, reason, photo_id):
        """Take a photo named photo_id for reason; return photo_id, or 0 when none was taken."""
        raise NotImplementedError

    def pump(self):
        """Draw a breath sample into the fuel cell."""
        raise NotImplementedError

    def write_module(self, image):
        """Write the sensor module's EEPROM image (a technician's calibration); True when it took."""
        raise NotImplementedError

    def set_clock(self, wall):
        """Write device time (seconds) back to the real-time clock."""
        raise NotImplementedError


class FuelCell:
    """Electrochemical alcohol sensor behind its transimpedance amplifier."""

    def read(self):
        """ADC counts of the cell current now (higher = more alcohol reacting)."""
        raise NotImplementedError


class BreathFlow:
    """Differential-pressure flow sensor in the mouthpiece."""

    def read(self):
        """Flow in mL/s; negative when the driver inhales through the mouthpiece."""
        raise NotImplementedError


class BreathTemp:
    """Thermistor in the breath path."""

    def read(self):
        """Breath temperature in deci-degrees C."""
        raise NotImplementedError


class HumDetect:
    """Microphone with a band filter: the hum tone that proves a human blows, where policy asks for it."""

    def read(self):
        """1 while a hum tone is present, else 0."""
        raise NotImplementedError


class Heater:
    """Fuel-cell block heater and its temperature sensor."""

    def set(self, on):
        """Switch the heater."""
        raise NotImplementedError

    def temperature(self):
        """Cell block temperature in deci-degrees C."""
        raise NotImplementedError


class Ambient:
    """Ambient temperature sensor."""

    def read(self):
        """Ambient temperature in deci-degrees C."""
        raise NotImplementedError


class ModuleSlot:
    """The replaceable calibrated sensor module: latch switch and its EEPROM."""

    def present(self):
        """True when a module is inserted and latched."""
        raise NotImplementedError

    def read_eeprom(self):
        """The module's EEPROM image (bytes, see fsm.module), or None if it cannot be read."""
        raise NotImplementedError

    def write_eeprom(self, image):
        """Write a new image (a technician's calibration); True when it reads back identical."""
        raise NotImplementedError


class Buttons:
    """LEFT, OK and RIGHT, debounced by the driver."""

    def pressed(self):
        """Bitmask of buttons pressed since the last call (LEFT | OK | RIGHT)."""
        raise NotImplementedError


class Display:
    """2 x 16 character display."""

    def show(self, buf):
        """Show 32 bytes of ASCII: line 1 then line 2."""
        raise NotImplementedError


class Relay:
    """Starter interlock relay: closed lets the starter crank."""

    def set(self, on):
        """Close (True) or open (False) the starter circuit."""
        raise NotImplementedError


class Alarm:
    """Vehicle horn and lights outputs."""

    def horn(self, on):
        """Sound or silence the horn."""
        raise NotImplementedError

    def lights(self, on):
        """Flash or stop flashing the lights."""
        raise NotImplementedError


class Buzzer:
    """Handset beeper."""

    def beep(self, pattern):
        """Play a short pattern (BEEP_*)."""
        raise NotImplementedError


class Vehicle:
    """Ignition line and engine-running sense (alternator or tachometer signal)."""

    def ignition(self):
        """True while the ignition is on."""
        raise NotImplementedError

    def engine_running(self):
        """True while the engine runs."""
        raise NotImplementedError


class HandsetLink:
    """Cable sense between the handset and the relay unit."""

    def connected(self):
        """True while the handset is plugged in."""
        raise NotImplementedError


class Rtc:
    """Battery-backed real-time clock."""

    def now(self):
        """Device seconds (s since 2024-01-01T00:00Z)."""
        raise NotImplementedError

    def set(self, wall):
        """Set the clock to device seconds wall."""
        raise NotImplementedError


class Pump:
    """Sampling solenoid pump: draws a fixed volume of end-expiratory breath into the fuel cell."""

    def draw(self):
        """Draw one sample now."""
        raise NotImplementedError


class Camera:
    """Driver-facing camera, where policy requires one."""

    def capture(self, reason, photo_id):
        """Take a photo and keep it as photo_id; return photo_id, or 0 if none was taken.

        The firmware passes the sequence number of the log record the photo belongs to, which is unique for
        the life of the handset, so a photo's name survives reboots and ties it to its record.
        """
        raise NotImplementedError


class Supply:
    """The vehicle supply the handset runs from."""

    def millivolts(self):
        """Supply voltage in mV."""
        raise NotImplementedError


class Watchdog:
    """The hardware watchdog, and what survives a restart but not a power loss."""

    def feed(self):
        """Restart the watchdog's countdown; the first call starts it (it cannot be stopped after that)."""
        raise NotImplementedError

    def reset_cause(self):
        """Why this boot happened (RESET_*)."""
        raise NotImplementedError

    def fault_boots(self):
        """The count set_fault_boots kept: watchdog restarts in a row (lost with the power)."""
        raise NotImplementedError

    def set_fault_boots(self, n):
        """Keep n for the next boot."""
        raise NotImplementedError


class Hardware:
    """Every driver of one board, built by that board's wiring file and handed to the runtime."""

    def __init__(self, fuel_cell, flow, breath_temp, hum, heater, ambient, module, buttons, display, relay,
                 alarm, buzzer, vehicle, link, rtc, camera, pump, fs=None, modem=None, service_port=None,
                 watchdog=None, supply=None):
        self.fuel_cell = fuel_cell
        self.flow = flow
        self.breath_temp = breath_temp
        self.hum = hum
        self.heater = heater
        self.ambient = ambient
        self.module = module
        self.buttons = buttons
        self.display = display
        self.relay = relay
        self.alarm = alarm
        self.buzzer = buzzer
        self.vehicle = vehicle
        self.link = link
        self.rtc = rtc
        self.camera = camera
        self.pump = pump
        self.fs = fs
        self.modem = modem
        self.service_port = service_port
        self.watchdog = watchdog  # None: no watchdog (the simulator unless asked, tests)
        self.supply = supply  # None: no supply input
