"""LEFT, OK and RIGHT buttons on pins with pull-ups, debounced by counting stable samples."""

import board
from board import LEFT, OK, RIGHT


class Buttons(board.Buttons):
    """Three active-low buttons: sample() reads the pins, update() decides, pressed() reports new presses.

    A button counts as pressed once it reads down in `stable` consecutive samples, as released likewise;
    a new press is the released -> pressed decision. The runtime polls pressed() every tick; it may also
    call poll() more often for a faster debounce.
    """

    def __init__(self, left, ok, right, stable=2):
        if stable < 1:
            raise ValueError("stable")
        self._left = left
        self._ok = ok
        self._right = right
        self._stable = stable
        self._state = 0       # debounced bitmask
        self._new = 0         # presses not yet reported
        self._count_l = 0     # consecutive samples disagreeing with the debounced state, per button
        self._count_o = 0
        self._count_r = 0

    def sample(self):
        """Raw bitmask of buttons reading down now (pins read 0 when pressed)."""
        bits = 0
        if not self._left.value():
            bits |= LEFT
        if not self._ok.value():
            bits |= OK
        if not self._right.value():
            bits |= RIGHT
        return bits

    def update(self, raw):
        """Take one raw sample; return the debounced bitmask."""
        self._count_l = self._step(raw, LEFT, self._count_l)
        self._count_o = self._step(raw, OK, self._count_o)
        self._count_r = self._step(raw, RIGHT, self._count_r)
        return self._state

    def _step(self, raw, bit, count):
        if (raw ^ self._state) & bit:
            count += 1
            if count >= self._stable:
                self._state ^= bit
                if self._state & bit:
                    self._new |= bit
                count = 0
            return count
        return 0

    def poll(self):
        """Sample the pins once and keep any new press for the next pressed()."""
        self.update(self.sample())

    def pressed(self):
        """Bitmask of buttons pressed since the last call (LEFT | OK | RIGHT)."""
        self.update(self.sample())
        new = self._new
        self._new = 0
        return new
