"""Starter interlock relay on a pin: open (starter blocked) from the moment the driver exists."""

import board


class Relay(board.Relay):
    """Relay coil driver; the wiring also creates the pin with its off level so boot never glitches it on."""

    def __init__(self, pin, active_high=True):
        self._pin = pin
        self._on = 1 if active_high else 0
        self.closed = False
        pin.value(1 - self._on)    # fail safe: open until the firmware decides otherwise

    def set(self, on):
        """Close (True) or open (False) the starter circuit."""
        self.closed = bool(on)
        self._pin.value(self._on if self.closed else 1 - self._on)
