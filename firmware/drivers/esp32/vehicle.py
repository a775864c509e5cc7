"""Ignition sense on a pin and engine-running sense from the alternator W-terminal pulses on another.

The W terminal carries one of the alternator's phases: a few hundred Hz at idle, nothing with the engine off.
Its optocoupled pulses are counted by a pin interrupt; the rate over a short window decides "running".
(Cars without a W terminal need a battery-voltage threshold instead: another driver with the same verbs.)
"""

from micropython import const

import board
from interlock.timebase import diff as ticks_diff

# Pulse counts wrap at 2**30, the same period as ticks, so every value stays a small int (no allocation).
_COUNT_MASK = const(0x3FFFFFFF)
# A window longer than this (the runtime stalled, or stopped polling) is dropped rather than judged.
_STALE_MS = const(10000)


class Vehicle(board.Vehicle):
    """Ignition pin (active high by default) and W-terminal pulse rate with hysteresis."""

    def __init__(self, ignition, w_pin, ticks_ms, on_hz=40, off_hz=20, window_ms=250, active_low=False):
        if not 0 < off_hz < on_hz or window_ms <= 0:
            raise ValueError("on_hz/off_hz/window_ms")
        self._ign = ignition
        self._ign_on = 0 if active_low else 1
        self._ticks_ms = ticks_ms
        self._on_hz = on_hz
        self._off_hz = off_hz
        self._window = window_ms
        self._pulses = 0           # free-running count, only ever incremented by the interrupt
        self._seen = 0             # count at the start of the current window
        self._t0 = ticks_ms()
        self._running = False
        self._irq = self._pulse    # bound once: the interrupt handler must not allocate
        if w_pin is not None:
            w_pin.irq(handler=self._irq, trigger=w_pin.IRQ_RISING)

    def _pulse(self, _pin):
        # Wrap before 2**30 without ever forming it: a big int cannot be allocated in an interrupt.
        if self._pulses == _COUNT_MASK:
            self._pulses = 0
        else:
            self._pulses += 1

    def ignition(self):
        """True while the ignition is on."""
        return self._ign.value() == self._ign_on

    def decide(self, pulses, elapsed_ms):
        """Update the running state from `pulses` counted over `elapsed_ms`; returns it."""
        # Compare pulses * 1000 against hz * elapsed to stay in integers.
        rate = pulses * 1000
        if self._running:
            if rate < self._off_hz * elapsed_ms:
                self._running = False
        elif rate >= self._on_hz * elapsed_ms:
            self._running = True
        return self._running

    def engine_running(self):
        """True while the engine runs (decided once per window; between windows the last decision)."""
        now = self._ticks_ms()
        elapsed = ticks_diff(now, self._t0)
        if elapsed >= self._window:
            count = self._pulses
            # The counter is never reset (that would race the interrupt): take the difference instead.
            if elapsed <= _STALE_MS:
                self.decide((count - self._seen) & _COUNT_MASK, elapsed)
            self._seen = count
            self._t0 = now
        return self._running
