"""Piezo beeper on a PWM channel, playing short on/off patterns from a one-shot timer (never blocking)."""

from micropython import const

import board

# Pattern ids are board.BEEP_* (1..4); 5 is spare for the board's own use.
ALERT = const(5)     # spare: three long beeps

# Each pattern by id: on, off, on, off, ... durations in 10 ms units; the last tone ends the pattern.
# BEEP_KEY: one short beep; BEEP_PROMPT ("blow now", sample accepted): two short; BEEP_RETEST (rolling-retest
# reminder): three; BEEP_ERROR (abort prompt, failed test, wrong code): one long; ALERT: three long.
_PATTERNS = (b"", b"\x05", b"\x08\x08\x08", b"\x0a\x0a\x0a\x0a\x0a", b"\x32", b"\x14\x05\x14\x05\x14")
_HALF = const(32768)


class Buzzer(board.Buzzer):
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
        """Play a short pattern (board.BEEP_* or ALERT); a new one replaces one playing."""
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
