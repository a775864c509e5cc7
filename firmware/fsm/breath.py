"""One breath test: warm-up, waiting for a blow, sample validation, fuel-cell analysis.

Used for the start test and for rolling retests. `step` takes the time and the readings and returns an
event; the caller (the state machine) decides what the event means. Nothing here allocates per sample.
"""

from micropython import const

from fsm import brac, records
from interlock import timebase

# phases
IDLE = const(0)
HEAT = const(1)
READY = const(2)
BLOW = const(3)
ANALYZE = const(4)
DONE = const(5)
FAULT = const(6)

# events returned by step()
EV_NONE = const(0)
EV_READY = const(1)  # warm-up finished
EV_ABORT = const(2)  # the blow was refused; reason in .abort
EV_SAMPLE = const(3)  # a valid sample was drawn into the cell
EV_RESULT = const(4)  # analysis finished; BrAC in .result
EV_FAULT = const(5)  # warm-up timed out

_BASELINE = const(8)  # samples averaged for the fuel-cell baseline
_SAMPLE_MS = const(50)  # area unit: counts x 50 ms
_SOFTER_MS = const(500)  # sustained over-flow before "BLOW SOFTER"
_HEAT_BAND = const(10)  # heater hysteresis, deci-degrees
_READY_BAND = const(20)  # a test may start this far below the target once warmed up


class BreathTest:
    """The breath-test sub-machine; one instance, reused for every test."""

    def __init__(self, policy):
        self.policy = policy
        self._ring = [0] * _BASELINE
        self.phase = IDLE
        self.abort = 0
        self.result = 0
        self.progress = 0
        self._reset()

    def _reset(self):
        self._ring_n = 0
        self._ring_i = 0
        self._volume = 0
        self._volume_rest = 0  # mL x ms not yet a whole mL
        self._duration = 0
        self._high = 0
        self._hum = 0
        self._area = 0
        self._elapsed = 0
        self._base = 0
        self._module_area = 0
        self._armed = True
        self._aborted_at = 0
        self._last = 0

    def start(self, now, cell_temp):
        """Begin a test: warm up unless the cell is already at temperature."""
        self._reset()
        self.abort = 0
        self.result = 0
        self._started = now
        self._heat_from = cell_temp
        self.progress = 0
        # the heater holds the cell in a band around the target; anywhere in it is warm enough to test
        self.phase = READY if cell_temp >= self.policy.heat_target_dc - _READY_BAND else HEAT
        self._last = now

    def stop(self):
        """Abandon the test (ignition off, lockout, disconnect)."""
        self.phase = IDLE

    def heater_wanted(self, cell_temp, on):
        """Bang-bang regulation of the cell block around the target; returns the new heater state."""
        target = self.policy.heat_target_dc
        if cell_temp < target:
            return True
        if cell_temp >= target + _HEAT_BAND:
            return False
        return on

    def step(self, now, inp):
        """Advance with one poll's readings; returns an EV_* event."""
        dt = timebase.diff(now, self._last)
        self._last = now
        if dt < 0:
            dt = 0
        phase = self.phase
        if phase == HEAT:
            return self._heat(now, inp)
        if phase == READY:
            return self._ready(now, inp)
        if phase == BLOW:
            return self._blow(now, inp, dt)
        if phase == ANALYZE:
            return self._analyze(inp, dt)
        return EV_NONE

    def _heat(self, now, inp):
        p = self.policy
        t = inp.cell_temp
        if t >= p.heat_target_dc:
            self.phase = READY
            self.progress = 100
            return EV_READY
        span = p.heat_target_dc - self._heat_from
        pct = (t - self._heat_from) * 100 // span if span > 0 else 0
        # whole tens, so the display changes ten times, not every poll
        self.progress = 0 if pct < 0 else (90 if pct > 90 else pct - pct % 10)
        if timebase.diff(now, self._started) >= p.warmup_timeout_s * 1000:
            self.phase = FAULT
            return EV_FAULT
        return EV_NONE

    def _ready(self, now, inp):
        p = self.policy
        if not self._armed:
            # an abort is one refused attempt: the driver sees its prompt for the notice time, and the refused
            # blow must have stopped (flow well below the minimum, not a dip of a blow hovering at it) before a
            # new attempt counts
            if (timebase.diff(now, self._aborted_at) >= p.notice_ms and inp.flow < p.flow_min // 2
                    and inp.flow > p.inhale_flow):
                self._armed = True
            return EV_NONE
        self._ring[self._ring_i] = inp.cell
        self._ring_i = (self._ring_i + 1) % _BASELINE
        if self._ring_n < _BASELINE:
            self._ring_n += 1
        if inp.flow <= p.inhale_flow:
            return self._abort(now, records.ABORT_INHALE)
        if inp.flow >= p.flow_min:
            self.phase = BLOW
            self._volume = 0
            self._volume_rest = 0
            self._duration = 0
            self._high = 0
            self._hum = 0
        return EV_NONE

    def _blow(self, now, inp, dt):
        p = self.policy
        flow = inp.flow
        if flow <= p.inhale_flow:
            return self._abort(now, records.ABORT_INHALE)
        if flow < p.flow_min:
            # the blow ended before the sample was complete
            if self._duration * p.volume_ml < self._volume * p.blow_ms:
                return self._abort(now, records.ABORT_VOLUME)
            return self._abort(now, records.ABORT_HARDER)
        if flow > p.flow_max:
            self._high += dt
            if self._high >= _SOFTER_MS:
                return self._abort(now, records.ABORT_SOFTER)
        else:
            self._high = 0
        self._duration += dt
        # the fraction of a mL is carried, not dropped: truncating every sample lost up to 20 mL/s
        rest = self._volume_rest + flow * dt
        self._volume += rest // 1000
        self._volume_rest = rest % 1000
        if inp.hum:
            self._hum += dt
        if self._duration < p.blow_ms or self._volume < p.volume_ml:
            return EV_NONE
        if inp.breath_temp < p.breath_temp_dc:
            # the air drawn now is the sample: it must be breath-warm itself (the warmest reading of the blow
            # let a second of breath followed by stored air pass)
            return self._abort(now, records.ABORT_TEMP)
        if p.hum_required and self._hum * 10 < self._duration * 8:
            return self._abort(now, records.ABORT_HUM)
        total = 0
        n = self._ring_n
        for i in range(n):
            total += self._ring[i]
        self._base = total // n if n else inp.cell
        self._area = 0
        self._elapsed = 0
        self.phase = ANALYZE
        return EV_SAMPLE

    def _analyze(self, inp, dt):
        self._area += (inp.cell - self._base) * dt
        self._elapsed += dt
        if self._elapsed < self.policy.analysis_ms:
            return EV_NONE
        self._module_area = self._area // _SAMPLE_MS
        self.phase = DONE
        return EV_RESULT

    def finish(self, module, cell_temp):
        """BrAC of the analysed sample with the module's calibration."""
        self.result = brac.compute(self._module_area, module, cell_temp)
        return self.result

    def area(self):
        """Area of the last analysed sample (for calibration by a technician)."""
        return self._module_area

    def _abort(self, now, reason):
        self.abort = reason
        self._aborted_at = now
        self.phase = READY
        self._armed = False
        # the baseline starts again from the readings after the abort (the average takes slots 0..n-1)
        self._ring_n = 0
        self._ring_i = 0
        return EV_ABORT
