"""Simulated drivers: the `drivers` interfaces implemented on the World, each output recorded in the trace.

These are what a developer runs the firmware on every day; the board files in firmware/drivers/esp32/
implement the same verbs on real parts.
"""

import board
from host_sim.trace import BEEPS


class SimFuelCell(board.FuelCell):
    """Fuel-cell counts from the world's cell model."""

    def __init__(self, world):
        self.world = world

    def read(self):
        """ADC counts."""
        return self.world.cell_counts()


class SimFlow(board.BreathFlow):
    """Mouthpiece flow from the current blow."""

    def __init__(self, world):
        self.world = world

    def read(self):
        """mL/s."""
        return self.world.flow()


class SimBreathTemp(board.BreathTemp):
    """Breath thermistor."""

    def __init__(self, world):
        self.world = world

    def read(self):
        """Deci C."""
        return self.world.breath_temp()


class SimHum(board.HumDetect):
    """Hum detector."""

    def __init__(self, world):
        self.world = world

    def read(self):
        """1 while humming."""
        return self.world.hum()


class SimHeater(board.Heater):
    """Heater switch and cell block temperature."""

    def __init__(self, world):
        self.world = world

    def set(self, on):
        """Switch the heater."""
        self.world.heater = on

    def temperature(self):
        """Deci C."""
        return self.world.cell_temp()


class SimAmbient(board.Ambient):
    """Ambient temperature."""

    def __init__(self, world):
        self.world = world

    def read(self):
        """Deci C."""
        return self.world.ambient


class SimModuleSlot(board.ModuleSlot):
    """Module latch and EEPROM."""

    def __init__(self, world):
        self.world = world

    def present(self):
        """Inserted and latched."""
        return self.world.module is not None and self.world.module_latched

    def read_eeprom(self):
        """EEPROM image."""
        return self.world.module

    def write_eeprom(self, image):
        """A technician writes the module (only while one is inserted)."""
        if self.world.module is None:
            return False
        self.world.module = bytes(image)
        return True


class SimButtons(board.Buttons):
    """Buttons the scenario or the person pressed."""

    def __init__(self, world):
        self.world = world

    def pressed(self):
        """Presses since the last call."""
        mask = self.world.buttons
        self.world.buttons = 0
        return mask


class SimDisplay(board.Display):
    """The 2 x 16 display, recorded in the trace."""

    def __init__(self, trace):
        self.trace = trace

    def show(self, buf):
        """Record the new screen."""
        self.trace.show(buf)


class SimRelay(board.Relay):
    """Starter relay."""

    def __init__(self, world, trace):
        self.world = world
        self.trace = trace

    def set(self, on):
        """Close or open."""
        self.world.relay = on
        self.trace.add("RELAY " + ("ON" if on else "OFF"))


class SimAlarm(board.Alarm):
    """Horn and lights."""

    def __init__(self, world, trace):
        self.world = world
        self.trace = trace

    def horn(self, on):
        """Horn."""
        self.world.horn = on
        self.trace.add("HORN " + ("ON" if on else "OFF"))

    def lights(self, on):
        """Lights."""
        self.world.lights = on
        self.trace.add("LIGHTS " + ("ON" if on else "OFF"))


class SimBuzzer(board.Buzzer):
    """Beeper."""

    def __init__(self, trace):
        self.trace = trace

    def beep(self, pattern):
        """Record the pattern."""
        self.trace.add("BEEP " + BEEPS[pattern])


class SimVehicle(board.Vehicle):
    """Ignition and engine sense."""

    def __init__(self, world):
        self.world = world

    def ignition(self):
        """Key on (as the ignition sense wire reports it)."""
        return self.world.ignition and not self.world.ignition_sense_cut

    def engine_running(self):
        """Engine runs (as the engine sense wire reports it)."""
        return self.world.engine and not self.world.engine_sense_cut


class SimLink(board.HandsetLink):
    """Handset cable sense."""

    def __init__(self, world):
        self.world = world

    def connected(self):
        """Plugged in."""
        return self.world.connected


class SimRtc(board.Rtc):
    """Battery-backed clock of the world."""

    def __init__(self, world, trace):
        self.world = world
        self.trace = trace

    def now(self):
        """Device seconds."""
        return self.world.rtc_now()

    def set(self, wall):
        """Set by the firmware."""
        self.world.rtc_set(wall)
        self.trace.add("RTC SET %d" % wall)


class SimCamera(board.Camera):
    """Camera: numbered photos."""

    def __init__(self, world, trace):
        self.world = world
        self.trace = trace

    def capture(self, reason, photo_id):
        """Take a photo named photo_id."""
        self.world.take_photo()
        self.trace.add("PHOTO %d reason=%d" % (photo_id, reason))
        return photo_id


class SimPump(board.Pump):
    """Sampling pump."""

    def __init__(self, world, trace):
        self.world = world
        self.trace = trace

    def draw(self):
        """Draw a sample into the cell."""
        self.world.draw_sample()
        self.trace.add("PUMP")


class SimSupply(board.Supply):
    """The vehicle battery's voltage (the alternator's while the engine runs)."""

    def __init__(self, world):
        self.world = world

    def millivolts(self):
        """mV."""
        return self.world.supply_mv()


def hardware(world, trace):
    """A board.Hardware over the world."""
    return board.Hardware(
        SimFuelCell(world), SimFlow(world), SimBreathTemp(world), SimHum(world), SimHeater(world),
        SimAmbient(world), SimModuleSlot(world), SimButtons(world), SimDisplay(trace), SimRelay(world, trace),
        SimAlarm(world, trace), SimBuzzer(trace), SimVehicle(world), SimLink(world), SimRtc(world, trace),
        SimCamera(world, trace), SimPump(world, trace), supply=SimSupply(world),
    )
