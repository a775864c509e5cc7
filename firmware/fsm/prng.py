"""The firmware's own seeded PRNG (xorshift32), so retest times are identical on CPython and MicroPython."""

from micropython import const

_MASK = const(0xFFFFFFFF)


class Prng:
    """xorshift32 over a 32-bit state; never zero."""

    def __init__(self, seed):
        self.state = (seed & _MASK) or 0x9E3779B9

    def next(self):
        """Next 32-bit value."""
        x = self.state
        x ^= (x << 13) & _MASK
        x ^= x >> 17
        x ^= (x << 5) & _MASK
        self.state = x
        return x

    def between(self, lo, hi):
        """A value in [lo, hi]; the tiny modulo bias is irrelevant for retest scheduling."""
        return lo + self.next() % (hi - lo + 1)
