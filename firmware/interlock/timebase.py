"""Tick arithmetic that wraps like MicroPython's `time.ticks_*`, and device calendar dates.

Ticks are milliseconds modulo TICKS_PERIOD (2**30, MicroPython's period on every port), so they stay small
integers and never allocate. Timers are a start tick plus a duration, compared with `diff`; durations must
stay below half a period (about 6.2 days). Device time ("wall") is seconds since 2024-01-01T00:00Z, a small
integer until 2058; a device day is wall // 86400.
"""

from .const import const

TICKS_PERIOD = const(0x40000000)
_TICKS_MAX = const(0x3FFFFFFF)
_TICKS_HALF = const(0x20000000)
DAY = const(86400)
HOUR = const(3600)
# device time 0 (2024-01-01T00:00Z) in Unix seconds, for the companion and the tools
EPOCH_UNIX = 1704067200  # a long int on a 32-bit port: no const, and no firmware path reads it
# days from 0000-03-01 to 2024-01-01 in the proleptic Gregorian calendar (the civil-date algorithm's origin)
_EPOCH_DAYS = const(739191)


def diff(a, b):
    """a - b in ticks, correct across wrap-around (like time.ticks_diff).

    Written so no intermediate leaves the small-int range of a 32-bit port (|x| < 2**30): a bigint here
    would allocate on every poll.
    """
    d = a - b
    if d >= _TICKS_HALF:
        return d - _TICKS_MAX - 1
    if d < -_TICKS_HALF:
        return d + _TICKS_MAX + 1
    return d


def add(t, delta):
    """t + delta in ticks (like time.ticks_add), for |delta| below half a period; never leaves small ints."""
    if delta >= 0:
        if t > _TICKS_MAX - delta:
            return t - (_TICKS_MAX - delta) - 1
        return t + delta
    if t < -delta:
        return t + delta + _TICKS_MAX + 1
    return t + delta


def days_from_civil(y, m, d):
    """Device day number of a calendar date (2024-01-01 is day 0)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - _EPOCH_DAYS


def civil_from_days(day):
    """(year, month, day) of a device day number."""
    z = day + _EPOCH_DAYS
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400
    if m <= 2:
        y += 1
    return y, m, d
