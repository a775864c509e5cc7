"""NTC thermistor on an ESP32 ADC pin: a table lookup with linear interpolation to deci-degrees C."""

from micropython import const

import board

# Divider: the NTC (10 kOhm at 25 C, Beta 3950) from the 3.3 V rail to the ADC pin, 10 kOhm from the pin to
# ground. The voltage rises with temperature, and an open thermistor reads 0 V, which the ESP32 ADC measures
# well (it saturates near 3.1 V, so a fault at the top end would look like a plain hot reading).
# Entry i is 65536 * Rfixed / (Rntc + Rfixed) at T = -40 C + 5 C * i, from the Beta equation
# (tests/test_board_conversions.py recomputes it).
T0_DECI = const(-400)
STEP_DECI = const(50)
TABLE = (1591, 2248, 3118, 4247, 5680, 7456, 9603, 12130, 15024, 18243, 21719, 25365, 29081, 32768, 36334,
         39705, 42830, 45676, 48230, 50496, 52487, 54223, 55729, 57029, 58149, 59112, 59940, 60651, 61263,
         61789, 62242, 62634, 62972, 63266)
# Below this fraction of the -40 C voltage the thermistor is taken as open (or its wire broken).
_OPEN_PCT = const(50)


def scale_table(vref_uv):
    """The divider table in microvolts for a divider supply of vref_uv (constructor use: may use big ints)."""
    return [code * vref_uv // 65536 for code in TABLE]


def to_deci(uv, table):
    """Deci-degrees C for a divider voltage in uV; clamped to the table's ends (-40 C .. 125 C)."""
    if uv <= table[0]:
        return T0_DECI
    last = len(table) - 1
    if uv >= table[last]:
        return T0_DECI + last * STEP_DECI
    # Binary search for the segment table[lo] < uv <= table[lo + 1].
    lo = 0
    hi = last
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if table[mid] < uv:
            lo = mid
        else:
            hi = mid
    a = table[lo]
    return T0_DECI + lo * STEP_DECI + (uv - a) * STEP_DECI // (table[hi] - a)


class NTC(board.BreathTemp):
    """Thermistor temperature in deci-degrees C; `ok` is False after a reading outside the table (fault)."""

    def __init__(self, adc, vref_uv=3300000, samples=8):
        if samples < 1 or vref_uv <= 0:
            raise ValueError("samples/vref_uv")
        self._adc = adc
        self._samples = samples
        self._table = scale_table(vref_uv)
        last = len(self._table) - 1
        self._open_uv = self._table[0] * _OPEN_PCT // 100
        self._short_uv = self._table[last]
        self.ok = True
        self.uv = 0

    def read(self):
        """Deci-degrees C from the mean of a few ADC readings (the ESP32 ADC is noisy)."""
        adc = self._adc
        total = 0
        for _ in range(self._samples):
            total += adc.read_uv()
        uv = total // self._samples
        self.uv = uv
        self.ok = self._open_uv < uv < self._short_uv
        return to_deci(uv, self._table)
