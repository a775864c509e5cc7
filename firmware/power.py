"""The vehicle battery as the handset sees it through its supply input. Pure: (ticks, millivolts, engine) in,
a level change out; the runtime loop records it and shows the warning.

Levels (12 V vehicle): LOW below WARN_MV, where a resting battery may no longer crank the engine, so the driver
is warned before it is too low to start; CRITICAL below CRITICAL_MV, where the handset's own supply is about
to fail. A level counts once it has held HOLD_MS, so the dip while the starter cranks is not one. Back to OK at
RECOVER_MV (hysteresis).

Why it matters beyond the warning: a battery that runs flat takes the handset's power with it, and the boot
after it finds a long power gap, which on its own would be booked as a disconnect (a violation). A CRITICAL
record as the last thing the log holds before that gap says the supply sagged away rather than being cut: the
runtime then boots the state machine with battery_failed, the gap is recorded (POWER_GAP) without a violation,
and the boot reason is a brown-out. A cut lead drops the supply at once, with no such record before it.
"""

from micropython import const

from interlock import timebase

WARN_MV = const(12000)
CRITICAL_MV = const(10500)
RECOVER_MV = const(12400)
HOLD_MS = const(4000)
# above a resting battery's surface charge after a drive (about 13.2 V), below an alternator's regulation (13.8 to
# 14.7 V): the engine runs (the state machine checks its engine input against it, fsm.machine._engine_sense)
CHARGING_MV = const(13500)

OK = const(0)
LOW = const(1)
CRITICAL = const(2)

WARNING_TEXT = b"LOW BATTERY     "  # on the display's second line while the engine is off


class Battery:
    """The supply level with hysteresis and a hold time."""

    def __init__(self):
        self.level = OK
        self.mv = 0
        self._want = OK
        self._since = 0

    def resume(self, level):
        """Start from the level the log last recorded (the boot after a supply failure)."""
        self.level = self._want = level

    def update(self, now, mv):
        """Take a reading at tick now; the new level when it changes, else -1."""
        self.mv = mv
        level = self.level
        if mv < CRITICAL_MV:
            want = CRITICAL
        elif mv < WARN_MV:
            want = LOW
        elif mv >= RECOVER_MV:
            want = OK
        else:
            want = LOW if level != OK else OK  # between WARN and RECOVER: stay where it was (or leave CRITICAL)
        if want == level:
            self._want = want
            return -1
        if want != self._want:
            self._want = want
            self._since = now
        if timebase.diff(now, self._since) < HOLD_MS:
            return -1
        self.level = want
        return want
