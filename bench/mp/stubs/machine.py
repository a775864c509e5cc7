"""A stand-in `machine` module so the import-heap bench can import the board wiring off the board (no pin is
touched at import time; the stand-in itself is imported before the baseline is taken)."""


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2


class WDT:
    def __init__(self, id=0, timeout=5000):
        pass

    def feed(self):
        pass


PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
