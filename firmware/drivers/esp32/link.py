"""Handset cable sense: a pin pulled up in the handset and tied to ground through the relay-unit cable."""

import board


class HandsetLink(board.HandsetLink):
    """Cable present when the sense pin reads its active level (low by default)."""

    def __init__(self, pin, active_low=True):
        self._pin = pin
        self._active = 0 if active_low else 1

    def connected(self):
        """True while the handset is plugged in."""
        return self._pin.value() == self._active
