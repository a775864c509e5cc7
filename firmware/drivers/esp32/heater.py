"""Fuel-cell block heater on a MOSFET pin, with its block thermistor and a board-level over-temperature cut."""

from micropython import const

import board

# The firmware warms the block to about 35 C; above this the driver cuts the heater whatever it was told.
_CUTOFF_DECI = const(600)


class Heater(board.Heater):
    """Heater switch plus block temperature; off at construction, off on a sensor fault or over temperature.

    The cut runs in set() and in every temperature() reading, so it relies on the runtime polling the block
    temperature while the heater is on; a thermal fuse on the block stays the last line of defence.
    """

    def __init__(self, pin, ntc, cutoff_deci=_CUTOFF_DECI):
        self._pin = pin
        self._ntc = ntc
        self._cutoff = cutoff_deci
        self._want = False
        self.tripped = False
        pin.value(0)

    def set(self, on):
        """Switch the heater (refused, and left off, while the block is too hot or its sensor is faulty)."""
        self._want = bool(on)
        self._apply(self._ntc.read())

    def temperature(self):
        """Cell block temperature in deci-degrees C."""
        deci = self._ntc.read()
        self._apply(deci)
        return deci

    def _apply(self, deci):
        # Trip on a fault or over temperature; clear once the block reads sane and cool again.
        self.tripped = (not self._ntc.ok) or deci >= self._cutoff
        self._pin.value(1 if self._want and not self.tripped else 0)
