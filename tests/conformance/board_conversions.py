"""ESP32 board conversions (RTC calendar, NTC table, SDP810 flow, ADS1115, DS3231 temperature) on a fixed
spread of inputs: the integer arithmetic must give the same numbers on both interpreters."""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import binascii

from drivers.esp32 import ads1115, ds3231, ntc, sdp810
from interlock import timebase


def _walls():
    """Device seconds spread over 2024..2199 by a fixed LCG, plus the edges."""
    out = [0, 59, 86399, 86400, 5097599, 5097600, ds3231.MAX_WALL]
    x = 12345
    for _ in range(200):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(x * 2 + (x & 1))
    for _ in range(50):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(ds3231.MAX_WALL - x * 2)
    return out


def main():
    """Print each conversion's result line by line."""
    buf = bytearray(7)
    for wall in _walls():
        ds3231.encode(wall, buf)
        print("rtc", wall, binascii.hexlify(buf).decode(), ds3231.decode(buf))
    for z in (-738885, -1, 0, 1057, 64645, 2913173):
        print("civil", z, timebase.civil_from_days(z), timebase.days_from_civil(*timebase.civil_from_days(z)))
    for q in range(-512, 512, 37):
        raw = (q & 0x3FF) << 6
        print("die", q, ds3231.temp_deci(raw >> 8, raw & 0xFF))
    table = ntc.scale_table(3300000)
    print("ntc table", table[0], table[-1], len(table))
    for uv in range(0, 3300001, 25013):
        print("ntc", uv, ntc.to_deci(uv, table))
    coef = sdp810.coefficient(sdp810.K_MILLI, sdp810.SCALE_500PA)
    print("sdp coef", coef)
    for raw in range(-32768, 32768, 509):
        print("flow", raw, sdp810.flow(raw, coef))
    print("crc", sdp810.crc8(b"\xbe\xef", 0, 2))
    for v in (0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x1234):
        print("ads", v, ads1115.decode(v >> 8, v & 0xFF))


main()
