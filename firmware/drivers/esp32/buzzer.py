"""Piezo beeper on a PWM channel, playing short on/off patterns from a one-shot timer (never blocking)."""

from micropython import const

import drivers

# Pattern ids: the values fsm.board.BEEP_* should carry.
SHORT = const(1)     # key click, confirmation
DOUBLE = const(2)    # sample accepted / PASS
LONG = const(3)      # FAIL, lockout
REMIND = const(4)    # rolling-retest reminder
ERROR = const(5)     # abort prompt, wrong code

# Each pattern: on, off, on, off, ... durations in 10 ms units; the last tone ends the pattern.
_PATTERNS = (b"", b"\x05", b"\x08\x08\x08", b"\x32", b"\x0a\x0a\x0a\x0a\x0a", b"\x14\x05\x14\x05\x14")
_HALF = const(32768)


class Buzzer(drivers.Buzzer):
    """Beeper: beep() starts a pattern and returns; the timer callback steps through it."""

    def __init__(self, pwm, timer, freq=2700):
        self._pwm = pwm
        self._timer = timer
        self._pattern = _PATTERNS[0]
        self._step = 0
        self._cb = self._next      # bound once: the timer callback must not allocate
        pwm.duty_u16(0)
        pwm.freq(freq)

    def beep(self, pattern):
        """Play a short pattern (SHORT, DOUBLE, LONG, REMIND, ERROR); a new one replaces one playing."""
        if not 0 < pattern < len(_PATTERNS):
            raise ValueError("beep pattern")
        self._timer.deinit()
        self._pattern = _PATTERNS[pattern]
        self._step = 0
        self._next(None)

    def playing(self):
        """True while a pattern is still sounding or pausing."""
        return self._step != 0

    def _next(self, _timer):
        pattern = self._pattern
        step = self._step
        if step >= len(pattern):
            self._pwm.duty_u16(0)
            self._step = 0
            return
        # Even steps sound, odd steps pause.
        self._pwm.duty_u16(0 if step & 1 else _HALF)
        self._step = step + 1
        self._timer.init(mode=self._timer.ONE_SHOT, period=pattern[step] * 10, callback=self._cb)
