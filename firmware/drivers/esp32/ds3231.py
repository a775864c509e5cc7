"""DS3231 battery-backed RTC: BCD calendar registers <-> device seconds (s since 2024-01-01T00:00Z).

The chip keeps UTC; its temperature sensor doubles as the ambient thermometer (class Ambient).
"""

from micropython import const

import board
from interlock import timebase

_REG_TIME = const(0x00)
_REG_STATUS = const(0x0F)
_REG_TEMP = const(0x11)
_OSF = const(0x80)             # oscillator stopped: the time is not to be trusted
_H12 = const(0x40)             # hours register in 12-hour mode
_PM = const(0x20)
_CENTURY = const(0x80)         # month register: years 2100..2199
# The chip counts years 2000..2199.
MAX_WALL = const(5554051199)   # 2199-12-31T23:59:59Z in device seconds


def bcd(value):
    """Binary 0..99 to packed BCD."""
    return ((value // 10) << 4) | (value % 10)


def unbcd(byte):
    """Packed BCD to binary; ValueError on a nibble above 9 (corrupt register)."""
    hi = byte >> 4
    lo = byte & 0x0F
    if hi > 9 or lo > 9:
        raise ValueError("rtc bcd")
    return hi * 10 + lo


def days_in_month(y, m):
    """Length of month m of year y."""
    if m == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    return 30 if m in (4, 6, 9, 11) else 31


def decode(buf):
    """Device seconds from the 7 time registers (seconds .. year); ValueError if they hold no valid time."""
    sec = unbcd(buf[0] & 0x7F)
    minute = unbcd(buf[1] & 0x7F)
    h = buf[2]
    if h & _H12:
        hour = unbcd(h & 0x1F)
        if not 1 <= hour <= 12:
            raise ValueError("rtc hour")
        hour = hour % 12 + (12 if h & _PM else 0)
    else:
        hour = unbcd(h & 0x3F)
    day = unbcd(buf[4] & 0x3F)
    month = unbcd(buf[5] & 0x1F)
    year = 2000 + unbcd(buf[6]) + (100 if buf[5] & _CENTURY else 0)
    if sec > 59 or minute > 59 or hour > 23 or not 1 <= month <= 12 or not 1 <= day <= days_in_month(year, month):
        raise ValueError("rtc time")
    days = timebase.days_from_civil(year, month, day)
    return ((days * 24 + hour) * 60 + minute) * 60 + sec


def encode(wall, buf):
    """Fill the 7 time registers (24-hour mode) for device seconds wall; ValueError outside 2024..2199."""
    if not 0 <= wall <= MAX_WALL:
        raise ValueError("rtc wall out of range")
    days, rem = divmod(wall, 86400)
    y, m, d = timebase.civil_from_days(days)
    buf[0] = bcd(rem % 60)
    buf[1] = bcd(rem // 60 % 60)
    buf[2] = bcd(rem // 3600)
    # Day of week 1..7 = Monday..Sunday (2024-01-01 was a Monday).
    buf[3] = days % 7 + 1
    buf[4] = bcd(d)
    buf[5] = bcd(m) | (_CENTURY if y >= 2100 else 0)
    buf[6] = bcd(y % 100)


class DS3231(board.Rtc):
    """The RTC in UTC; now() in device seconds (negative before 2024, e.g. after a flat coin cell)."""

    def __init__(self, i2c, addr=0x68):
        self._i2c = i2c
        self._addr = addr
        self._buf = bytearray(7)
        self._wbuf = bytearray(7)
        self._one = bytearray(1)

    def now(self):
        """Device seconds; ValueError if the registers hold no valid time, OSError on a bus fault."""
        self._i2c.readfrom_mem_into(self._addr, _REG_TIME, self._buf)
        return decode(self._buf)

    def set(self, wall):
        """Set the clock to device seconds wall and clear the oscillator-stopped flag."""
        buf = self._wbuf
        encode(wall, buf)            # raises before anything is written
        self._i2c.writeto_mem(self._addr, _REG_TIME, buf)
        one = self._one
        self._i2c.readfrom_mem_into(self._addr, _REG_STATUS, one)
        one[0] &= ~_OSF & 0xFF
        self._i2c.writeto_mem(self._addr, _REG_STATUS, one)

    def lost(self):
        """True if the oscillator stopped since the last set(): the time (and a power-cut gap) is unknown."""
        one = self._one
        self._i2c.readfrom_mem_into(self._addr, _REG_STATUS, one)
        return bool(one[0] & _OSF)


class Ambient(board.Ambient):
    """The DS3231's die temperature (0.25 C steps, refreshed by the chip every 64 s) as ambient."""

    def __init__(self, i2c, addr=0x68):
        self._i2c = i2c
        self._addr = addr
        self._buf = bytearray(2)

    def read(self):
        """Ambient temperature in deci-degrees C."""
        buf = self._buf
        self._i2c.readfrom_mem_into(self._addr, _REG_TEMP, buf)
        return temp_deci(buf[0], buf[1])


def temp_deci(msb, lsb):
    """Deci-degrees C from the temperature registers: a signed 10-bit count of quarter degrees."""
    quarters = (msb << 2) | (lsb >> 6)
    if quarters & 0x200:
        quarters -= 0x400
    return quarters * 10 // 4
