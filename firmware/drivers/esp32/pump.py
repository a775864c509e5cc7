"""Sampling solenoid pump on a MOSFET pin: one timed pulse per draw(), ended by a one-shot timer."""

from micropython import const

import board

# The solenoid's stroke: long enough to complete, short enough not to overheat the coil.
_PULSE_MS = const(200)


class Pump(board.Pump):
    """draw() energises the solenoid and returns at once; the timer releases it after `pulse_ms`."""

    def __init__(self, pin, timer, pulse_ms=_PULSE_MS):
        if pulse_ms <= 0:
            raise ValueError("pulse_ms")
        self._pin = pin
        self._timer = timer
        self._pulse = pulse_ms
        self._off_cb = self._off   # bound once: the timer callback must not allocate
        self.drawing = False
        pin.value(0)

    def draw(self):
        """Draw one sample now (a draw already under way is not restarted)."""
        if self.drawing:
            return
        self.drawing = True
        self._pin.value(1)
        self._timer.init(mode=self._timer.ONE_SHOT, period=self._pulse, callback=self._off_cb)

    def _off(self, _timer):
        self._pin.value(0)
        self.drawing = False
