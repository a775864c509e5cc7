"""The simulated world around the handset: vehicle, driver's breath, fuel cell, heater, module, clock.

Integer physics so that CPython and MicroPython compute the same numbers:
- Heater: the cell block warms at 0.6 + 0.04 x (ambient + 40) degrees C per second while the heater is on
  (3 C/s at 20 C, 0.6 C/s at -40 C: about 5 s and 125 s to reach 35 C), and cools toward ambient with a
  60 s time constant while it is off.
- Breath: a blow has a volume, a duration, a breath temperature, an optional hum and a BrAC; flow ramps up in
  100 ms. The breath thermistor follows the air in the mouthpiece with a 300 ms time constant.
- Fuel cell: the pump draws a sample; the alcohol it holds reacts with an 800 ms time constant; the cell
  current, in ADC counts, is baseline + charge x 10 / 800. Charge per sample = BrAC x 1000, scaled by the
  cell's temperature sensitivity (+1.5 % per degree C around 35 C) and its age (-0.5 % per 30 days).
  With the default module calibration (0.080 g/dL -> area 16000) a fresh cell at 35 C reads exactly.
- Supply: the battery's resting voltage (`battery_mv`); while the starter turns (CRANK_MS after a crank it is let
  through) it sags CRANK_SAG_MV under it (under 12.6 V with a charger or jump pack on: their lift gives way); a
  running engine's alternator holds 14.2 V (SimSupply), or less while a heavy load at idle pulls it down
  (`alternator_mv`).
- Noise: the world's own xorshift PRNG, so a seed gives the same run on both interpreters.
"""

from fsm import module as module_mod
from fsm.prng import Prng
from interlock import timebase

SUBSTEP = 10  # ms of physics per integration step while something is changing
BASELINE = 200  # fuel-cell counts with clean air
TAU_CELL = 800  # ms
TAU_BREATH_TEMP = 300  # ms
TAU_COOL = 60000  # ms
CRANK_MS = 1000  # the starter turns this long (the engine catches at its end, or does not)
CRANK_SAG_MV = 2600  # the starter's draw pulls the supply this far under the battery's resting voltage


REFERENCE_BRAC = 80  # the dry-gas standard used at calibration, 0.080 g/dL


def measured_area(brac, cell_temp=350, age_days=0, analysis_ms=4000, poll_ms=50):
    """The area the firmware measures for a sample of this BrAC: what a calibration bench records."""
    w = World(0, 1, cell_temp)
    w.noise = 0
    w.cell_temp_m = cell_temp * 1000
    w.cell_age_days = age_days
    w.start_blow(brac, 2000, 10000, 340, False)
    w.advance(200)
    base = w.cell_counts()
    w.draw_sample()
    area = 0
    elapsed = 0
    while elapsed < analysis_ms:
        w.advance(poll_ms)
        elapsed += poll_ms
        area += (w.cell_counts() - base) * poll_ms
    return area // 50


_REFERENCE_AREA = [0]  # computed on first use: the bench measurement of the reference standard


def default_module(serial=1001, expiry_day=None, start_wall=0):
    """A module calibrated on the bench against the reference standard; expires in a year by default."""
    if expiry_day is None:
        expiry_day = start_wall // timebase.DAY + 365
    if not _REFERENCE_AREA[0]:
        _REFERENCE_AREA[0] = measured_area(REFERENCE_BRAC)
    return module_mod.ModuleData(serial, expiry_day, 0, _REFERENCE_AREA[0], REFERENCE_BRAC, 350,
                                 start_wall // timebase.DAY)


class Blow:
    """One exhalation (or inhalation, when volume is negative) into the mouthpiece."""

    def __init__(self, brac, volume_ml, duration_ms, temp_dc, hum, start, stored_after_ms=0):
        self.brac = brac
        # after this many ms (0: never) the flow comes from stored air (a balloon or pump of clean air at
        # ambient temperature) instead of the lungs, with no break in the flow
        self.stored_after = stored_after_ms
        self.volume = volume_ml
        self.duration = duration_ms
        self.temp = temp_dc
        self.hum = hum
        self.start = start
        self.flow = volume_ml * 1000 // duration_ms if duration_ms > 0 else 0

    def flow_at(self, t):
        """Flow (mL/s) at world time t."""
        dt = t - self.start
        if dt < 0 or dt >= self.duration:
            return 0
        if dt < 100:
            return self.flow * (dt + 10) // 110
        return self.flow

    def stored(self, t):
        """Whether the air at world time t is stored air, not breath."""
        return self.stored_after > 0 and t - self.start >= self.stored_after


class World:
    """Everything outside the handset's firmware, advanced in integer milliseconds."""

    def __init__(self, start_wall, seed=1, ambient_dc=200):
        self.t = 0
        self.start_wall = start_wall
        self.rtc_offset = 0
        self.rng = Prng(seed ^ 0x5EED)
        self.ambient = ambient_dc
        self.powered = True
        self.ignition = False
        self.engine = False
        self.ignition_sense_cut = False  # the handset's ignition sense wire is cut: it reads off
        self.engine_sense_cut = False  # the engine-running sense wire (alternator W terminal) is cut: it reads off
        self.connected = True
        self.relay = False
        self.horn = False
        self.lights = False
        self.heater = False
        self.cell_temp_m = ambient_dc * 1000  # milli deci-degrees
        self.breath_temp_m = ambient_dc * 1000
        self.charge = 0
        self.cell_age_days = 0
        self.noise = 2  # counts of fuel-cell noise, peak
        self.blow = None
        self.buttons = 0
        self.module = None  # EEPROM image bytes, or None when no module is inserted
        self.module_latched = True
        self.photos = 0
        self.battery_mv = 12600  # the vehicle battery, resting and full (a charger or jump pack: set it higher)
        self.crank_until = -1  # world time the starter stops turning (-1: not turning)
        self.alternator_mv = 14200  # a running engine's charge (a heavy load at idle pulls it under 13.5 V)

    # ---- actions --------------------------------------------------------------------------------

    def insert_module(self, data):
        """Insert a module with this ModuleData (its EEPROM image is what the firmware reads)."""
        self.module = module_mod.encode(data)
        self.module_latched = True

    def insert_raw_module(self, image):
        """Insert a module whose EEPROM holds these bytes (for corrupt or foreign modules)."""
        self.module = bytes(image)
        self.module_latched = True

    def remove_module(self):
        """Pull the module out."""
        self.module = None

    def start_blow(self, brac, volume_ml, duration_ms, temp_dc, hum, stored_after_ms=0):
        """The driver begins to blow (negative volume: inhales); stored air may take over after a while."""
        self.blow = Blow(brac, volume_ml, duration_ms, temp_dc, hum, self.t, stored_after_ms)

    def press(self, mask):
        """The driver presses buttons (board.LEFT / OK / RIGHT)."""
        self.buttons |= mask

    def crank(self, bypass=False, catch=True):
        """Turn the key to start: the engine runs if the relay lets the starter crank (or it is bypassed) and it
        catches (catch=False: a weak battery's crank that does not start it). The starter's sag on the supply
        lasts CRANK_MS either way; the engine input reads it running at once (no scenario waits on the crank)."""
        if self.ignition and (self.relay or bypass):
            self.crank_until = self.t + CRANK_MS
            if catch:
                self.engine = True
            return catch
        return False

    def supply_mv(self):
        """The vehicle supply: the starter's sag while it turns, an alternator's charge while the engine runs (if
        the battery can still excite it), else the battery's resting voltage."""
        if self.crank_until != -1:
            if self.t < self.crank_until:
                # a charger's or jump pack's lift over a full battery's 12.6 V gives way under the starter's draw
                mv = (self.battery_mv if self.battery_mv < 12600 else 12600) - CRANK_SAG_MV
                return mv if mv > 0 else 0
            self.crank_until = -1
        return self.alternator_mv if self.engine and self.battery_mv >= 11000 else self.battery_mv

    def stall(self):
        """The engine stops with the key still on."""
        self.engine = False

    def key(self, on):
        """Ignition on or off (off also stops the engine)."""
        self.ignition = on
        if not on:
            self.engine = False

    def rtc_now(self):
        """What the battery-backed RTC reads now."""
        return self.start_wall + self.t // 1000 + self.rtc_offset

    def rtc_set(self, wall):
        """The firmware writes the RTC."""
        self.rtc_offset = wall - self.start_wall - self.t // 1000

    # ---- physics --------------------------------------------------------------------------------

    def _active(self):
        return (self.blow is not None or self.charge > 0
                or abs(self.breath_temp_m - self.ambient * 1000) > 500)

    def advance(self, ms):
        """Let ms milliseconds of world time pass."""
        end = self.t + ms
        while self.t < end:
            step = SUBSTEP if self._active() else 1000
            if self.t + step > end:
                step = end - self.t
            self._integrate(step)
            self.t += step

    def _integrate(self, dt):
        # heater and cell block
        amb = self.ambient * 1000
        if self.heater:
            rate = 6 + (self.ambient + 400) * 4 // 100  # deci-degrees per second
            self.cell_temp_m += rate * dt
        else:
            self.cell_temp_m -= (self.cell_temp_m - amb) * dt // TAU_COOL
        # breath path
        blow = self.blow
        target = amb
        if blow is not None:
            if self.t - blow.start >= blow.duration:
                self.blow = None
            elif blow.volume > 0 and not blow.stored(self.t):
                target = blow.temp * 1000
        self.breath_temp_m += (target - self.breath_temp_m) * dt // (TAU_BREATH_TEMP + dt)
        # fuel cell
        if self.charge > 0:
            reacted = self.charge * dt // TAU_CELL
            if reacted <= 0:
                reacted = self.charge
            self.charge -= reacted

    # ---- what the sensors read ---------------------------------------------------------------

    def flow(self):
        """Mouthpiece flow (mL/s)."""
        blow = self.blow
        if blow is None:
            return 0
        f = blow.flow_at(self.t)
        if blow.volume < 0:
            return f
        return f + (self.rng.next() % 11) - 5 if f else 0

    def breath_temp(self):
        """Breath thermistor (deci C)."""
        return self.breath_temp_m // 1000

    def hum(self):
        """Hum detector output."""
        blow = self.blow
        return 1 if blow is not None and blow.hum and blow.flow_at(self.t) > 0 else 0

    def cell_temp(self):
        """Cell block temperature (deci C)."""
        return self.cell_temp_m // 1000

    def cell_counts(self):
        """Fuel-cell ADC counts."""
        noise = (self.rng.next() % (2 * self.noise + 1)) - self.noise if self.noise else 0
        return BASELINE + self.charge * 10 // TAU_CELL + noise

    def draw_sample(self):
        """The pump draws breath into the cell: alcohol charge from the air in the mouthpiece now."""
        blow = self.blow
        brac = blow.brac if (blow is not None and blow.volume > 0 and blow.flow_at(self.t) > 0
                             and not blow.stored(self.t)) else 0
        sens = 10000 + 15 * (self.cell_temp() - 350)
        age = 1000 - self.cell_age_days * 5 // 30
        self.charge += brac * 1000 * sens // 10000 * age // 1000

    def take_photo(self):
        """The camera takes a picture; returns its id."""
        self.photos += 1
        return self.photos
