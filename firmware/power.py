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

A start seen from the supply alone (CrankWatch): the starter's crank sag followed by the alternator's charge. The
state machine believes it only while its engine input reads off (a sense wire cut while parked, then a hot-wire).
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

# A start's signature on the supply, which a battery charger's or a jump pack's has not (CrankWatch):
# - the crank sag: a reading at least CRANK_DROP_MV under the one before it (the resting level) and under WARN_MV.
#   A starter draws 150-300 A: through a battery's 8-15 milliohm it pulls 12.6 V down to 9.5-11 V. The biggest load a
#   parked car switches (headlights, blower, rear screen, about 40 A) drops it under 0.6 V; a charger's or jump
#   pack's clamp lifts it; unclamping a charger falls back to the battery's own level, above WARN_MV when healthy.
CRANK_DROP_MV = const(1200)
# - a crank lasts a fraction of a second to a few seconds (a cold engine on a weak battery): a supply held low longer
#   is a failing battery or a brown-out, not a crank, and what follows it is not a start
CRANK_MAX_MS = const(5000)
# - the charge (CHARGING_MV) begins within CHARGE_WITHIN_MS of the sag's end (an alternator charges as soon as the
#   engine idles; a weak battery's crank that does not start falls back to its resting level instead) and holds
#   CHARGE_HOLD_MS, as long as the running-engine check of the sense wire asks (fsm.machine.ENGINE_SENSE_HOLD_MS)
CHARGE_WITHIN_MS = const(5000)
CHARGE_HOLD_MS = const(4000)

_REST = const(0)
_SAG = const(1)
_AFTER = const(2)

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


class CrankWatch:
    """A start seen from the supply readings alone: a crank sag, then a sustained charge. Pure: (ticks, mV) in,
    True on the one reading where the charge has held CHARGE_HOLD_MS after a sag, else False."""

    def __init__(self):
        self.phase = _REST
        self.rest = 0  # the reading before the sag (the resting level), 0 until the first one
        self._since = 0  # the sag's start (_SAG), its end (_AFTER)
        self._charge = -1  # tick the charge after the sag began (-1: not yet)

    def update(self, now, mv):
        """Take a reading; True when it completes a start's signature."""
        if mv <= 0:
            return False  # no reading
        if self.phase == _SAG:
            if mv <= self.rest - CRANK_DROP_MV:
                if timebase.diff(now, self._since) > CRANK_MAX_MS:
                    self.phase = _REST  # held low too long: a failing battery or a brown-out, not a crank
                    self.rest = mv
                return False
            self.phase = _AFTER
            self._since = now
            self._charge = -1
        if self.phase == _AFTER:
            waiting = self._charge == -1 and timebase.diff(now, self._since) <= CHARGE_WITHIN_MS
            if mv >= CHARGING_MV and (waiting or self._charge != -1):
                if self._charge == -1:
                    self._charge = now
                elif timebase.diff(now, self._charge) >= CHARGE_HOLD_MS:
                    self.phase = _REST
                    self.rest = mv
                    return True
                return False
            if waiting:
                if self._sag(mv):  # cranked again
                    self.phase = _SAG
                    self._since = now
                return False
            self.phase = _REST  # the charge stopped short, or none came: no start
        if self._sag(mv):
            self.phase = _SAG
            self._since = now
        else:
            self.rest = mv
        return False

    def pending(self):
        """A crank sag was seen and whether a start follows it is not decided yet."""
        return self.phase != _REST

    def _sag(self, mv):
        return mv <= self.rest - CRANK_DROP_MV and mv < WARN_MV
