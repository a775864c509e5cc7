"""Hum-tone detector: the microphone's band-pass envelope on an ESP32 ADC pin, with hysteresis and hold.

Choice: the band filter (around 150-300 Hz, where a hummed tone sits) and the peak detector are analog, in
front of the ADC. Sampling audio from Python would block the runtime loop for tens of milliseconds per read
and depend on the loop's timing; an envelope needs one averaged ADC reading per poll and no buffer.
"""

import board


class HumDetect(board.HumDetect):
    """1 while the band envelope stays above `on_uv` for `hold` polls, back to 0 below `off_uv` for `hold`."""

    def __init__(self, adc, on_uv=600000, off_uv=400000, hold=3, samples=4):
        if not 0 <= off_uv < on_uv or hold < 1 or samples < 1:
            raise ValueError("thresholds/hold/samples")
        self._adc = adc
        self._on = on_uv
        self._off = off_uv
        self._hold = hold
        self._samples = samples
        self._state = 0
        self._count = 0

    def sample(self):
        """Mean envelope voltage in uV over a few readings."""
        adc = self._adc
        total = 0
        for _ in range(self._samples):
            total += adc.read_uv()
        return total // self._samples

    def update(self, uv):
        """Decide from one envelope sample; returns the tone state (0 or 1)."""
        if self._state:
            against = uv < self._off
        else:
            against = uv >= self._on
        if against:
            self._count += 1
            if self._count >= self._hold:
                self._state ^= 1
                self._count = 0
        else:
            self._count = 0
        return self._state

    def read(self):
        """1 while a hum tone is present, else 0."""
        return self.update(self.sample())
