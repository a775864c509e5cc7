"""Pure conversions of the ESP32 board drivers, checked against CPython's own arithmetic."""

import datetime
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.esp32 import ads1115, ds3231, ntc, sdp810

_EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def _wall(dt):
    return int((dt - _EPOCH).total_seconds())


def _registers(dt):
    """The seven DS3231 time registers as the chip holds them for dt (24-hour mode)."""
    def bcd(v):
        return (v // 10) << 4 | v % 10

    century = 0x80 if dt.year >= 2100 else 0
    return bytearray([bcd(dt.second), bcd(dt.minute), bcd(dt.hour), dt.isoweekday(), bcd(dt.day),
                      bcd(dt.month) | century, bcd(dt.year % 100)])


_RTC_DATES = st.datetimes(min_value=datetime.datetime(2024, 1, 1), max_value=datetime.datetime(2199, 12, 31, 23, 59, 59),
                          timezones=st.just(datetime.UTC))


# ---- DS3231 civil-date arithmetic -------------------------------------------------------------------------

@given(st.dates(min_value=datetime.date(1, 1, 1), max_value=datetime.date(9999, 12, 31)))
def test_device_calendar_matches_python_ordinals(d):
    """interlock.timebase (the calendar the RTC driver uses) counts days like datetime, 2024-01-01 being day 0."""
    from interlock import timebase

    days = timebase.days_from_civil(d.year, d.month, d.day)
    assert days == d.toordinal() - datetime.date(2024, 1, 1).toordinal()
    assert tuple(timebase.civil_from_days(days)) == (d.year, d.month, d.day)


def test_rtc_range_ends_at_the_chips_last_second():
    """MAX_WALL is the DS3231's last second, 2199-12-31T23:59:59Z, in device seconds."""
    assert ds3231.MAX_WALL == _wall(datetime.datetime(2199, 12, 31, 23, 59, 59, tzinfo=datetime.UTC))


@given(_RTC_DATES)
def test_decode_registers_gives_device_seconds(dt):
    """BCD registers decode to the seconds since 2024-01-01T00:00Z that datetime computes."""
    assert ds3231.decode(_registers(dt)) == _wall(dt)


@given(_RTC_DATES)
def test_encode_writes_the_registers_the_chip_expects(dt):
    """encode() produces exactly the chip's BCD registers, day of week Monday = 1 included."""
    buf = bytearray(7)
    ds3231.encode(_wall(dt), buf)
    assert buf == _registers(dt)


@given(st.integers(min_value=0, max_value=ds3231.MAX_WALL))
def test_encode_then_decode_round_trips(wall):
    """Every representable device second survives encode then decode."""
    buf = bytearray(7)
    ds3231.encode(wall, buf)
    assert ds3231.decode(buf) == wall


@given(_RTC_DATES, st.booleans())
def test_decode_reads_twelve_hour_mode(dt, _unused):
    """A clock left in 12-hour mode (set by another tool) decodes to the same instant."""
    regs = _registers(dt)
    h12 = dt.hour % 12 or 12
    regs[2] = 0x40 | (0x20 if dt.hour >= 12 else 0) | (h12 // 10) << 4 | h12 % 10
    assert ds3231.decode(regs) == _wall(dt)


@pytest.mark.parametrize("index,value", [(0, 0x60), (1, 0x5A), (2, 0x24), (4, 0x00), (4, 0x32), (5, 0x13),
                                         (5, 0x00), (6, 0xA0)])
def test_decode_rejects_corrupt_registers(index, value):
    """Out-of-range or non-BCD registers raise ValueError instead of giving a wrong time."""
    regs = _registers(datetime.datetime(2025, 2, 10, 12, 0, 0, tzinfo=datetime.UTC))
    regs[index] = value
    with pytest.raises(ValueError):
        ds3231.decode(regs)


def test_decode_rejects_february_30():
    """A day that the month does not have is refused (leap years respected)."""
    regs = _registers(datetime.datetime(2024, 2, 29, tzinfo=datetime.UTC))
    assert ds3231.decode(regs) == _wall(datetime.datetime(2024, 2, 29, tzinfo=datetime.UTC))
    regs[6] = 0x25
    with pytest.raises(ValueError):
        ds3231.decode(regs)


@pytest.mark.parametrize("wall", [-1, ds3231.MAX_WALL + 1])
def test_encode_refuses_walls_the_chip_cannot_hold(wall):
    """Walls before 2024 or after 2199 raise ValueError and leave the buffer untouched."""
    buf = bytearray(b"\x11" * 7)
    with pytest.raises(ValueError):
        ds3231.encode(wall, buf)
    assert buf == bytearray(b"\x11" * 7)


@given(st.integers(min_value=-512, max_value=511))
def test_die_temperature_is_quarter_degrees(quarters):
    """The temperature registers give floor(quarters * 2.5) deci-degrees, negatives included."""
    raw = (quarters & 0x3FF) << 6
    assert ds3231.temp_deci(raw >> 8, raw & 0xFF) == math.floor(quarters * 2.5)


# ---- ADS1115 -------------------------------------------------------------------------------------------------

@given(st.integers(min_value=-32768, max_value=32767))
def test_ads1115_decodes_twos_complement(value):
    """The conversion register is a big-endian signed 16-bit word."""
    msb, lsb = struct.pack(">h", value)
    assert ads1115.decode(msb, lsb) == value


# ---- NTC -------------------------------------------------------------------------------------------------------

def _beta_fraction(t_c):
    r = 10000 * math.exp(3950 * (1 / (t_c + 273.15) - 1 / 298.15))
    return 10000 / (r + 10000)


def test_ntc_table_is_the_beta_equation():
    """Each table entry is the divider fraction of a 10 k / B3950 NTC at its temperature, to one count."""
    assert len(ntc.TABLE) == 34
    for i, code in enumerate(ntc.TABLE):
        t_c = (ntc.T0_DECI + i * ntc.STEP_DECI) / 10
        assert abs(code - 65536 * _beta_fraction(t_c)) <= 1


def test_ntc_table_rises_strictly():
    """The table rises with temperature, so the search and interpolation are well defined."""
    assert all(a < b for a, b in zip(ntc.TABLE, ntc.TABLE[1:], strict=False))


def test_ntc_conversion_is_monotonic_over_the_whole_adc_range():
    """Deci-degrees never fall as the voltage rises, from 0 V to the supply."""
    table = ntc.scale_table(3300000)
    last = None
    for uv in range(0, 3300001, 997):
        deci = ntc.to_deci(uv, table)
        assert -400 <= deci <= 1250
        if last is not None:
            assert deci >= last
        last = deci


@given(st.integers(min_value=-400, max_value=1250))
def test_ntc_conversion_matches_the_beta_equation(deci):
    """Within -40..125 C the interpolated reading is within 0.8 C (within 0.3 C over 0..60 C)."""
    table = ntc.scale_table(3300000)
    uv = round(3300000 * _beta_fraction(deci / 10))
    got = ntc.to_deci(uv, table)
    assert abs(got - deci) <= (3 if 0 <= deci <= 600 else 8)


class _FakeADC:
    """ESP32 ADC stand-in returning a fixed calibrated voltage."""

    def __init__(self, uv):
        self.uv = uv

    def read_uv(self):
        return self.uv


def test_ntc_flags_open_and_shorted_thermistor():
    """0 V (open NTC) reads -40.0 C with ok False; a normal reading is ok; a short is not ok."""
    adc = _FakeADC(0)
    sensor = ntc.NTC(adc)
    assert sensor.read() == -400 and not sensor.ok
    adc.uv = round(3300000 * _beta_fraction(35.0))
    assert abs(sensor.read() - 350) <= 3 and sensor.ok
    adc.uv = 3300000
    assert sensor.read() == 1250 and not sensor.ok


# ---- SDP810 ------------------------------------------------------------------------------------------------

def test_sensirion_crc_check_value():
    """CRC-8 of 0xBEEF is 0x92, the check value of Sensirion's datasheets."""
    assert sdp810.crc8(b"\xbe\xef", 0, 2) == 0x92


@given(st.integers(min_value=0, max_value=(1 << 30) - 1))
def test_integer_square_root(n):
    """isqrt is the floor square root for every small int."""
    assert sdp810.isqrt(n) == math.isqrt(n)


@given(st.integers(min_value=-32768, max_value=32767))
def test_flow_keeps_sign_and_scale(raw):
    """Flow is K * sqrt(|dP|) in mL/s within 1 mL/s, with the sign of the pressure."""
    coef = sdp810.coefficient(sdp810.K_MILLI, sdp810.SCALE_500PA)
    got = sdp810.flow(raw, coef)
    want = sdp810.K_MILLI / 1000 * math.sqrt(abs(raw) / sdp810.SCALE_500PA)
    assert abs(abs(got) - want) <= 1
    assert got == -sdp810.flow(-raw, coef) if raw != -32768 else got < 0
    assert (got > 0) == (raw > 0) or got == 0


def test_flow_reference_points():
    """100 Pa through the 6 mm orifice is about 219 mL/s; no pressure, no flow."""
    coef = sdp810.coefficient(sdp810.K_MILLI, sdp810.SCALE_500PA)
    assert sdp810.flow(0, coef) == 0
    assert sdp810.flow(100 * 60, coef) == 219
    assert sdp810.flow(-100 * 60, coef) == -219


def test_flow_rises_with_pressure():
    """More pressure never gives less flow."""
    coef = sdp810.coefficient(sdp810.K_MILLI, sdp810.SCALE_500PA)
    flows = [sdp810.flow(raw, coef) for raw in range(-32768, 32768, 7)]
    assert flows == sorted(flows)


def _frame(raw, scale=60, temp=25 * 200):
    words = (raw & 0xFFFF, temp & 0xFFFF, scale)
    out = bytearray()
    for w in words:
        pair = bytes([w >> 8, w & 0xFF])
        out += pair + bytes([sdp810.crc8(pair, 0, 2)])
    return out


@given(st.integers(min_value=-32768, max_value=32767))
def test_sdp810_frame_check_returns_signed_pressure(raw):
    """A well-formed 9-byte frame yields its signed pressure word."""
    assert sdp810.check(_frame(raw), 60) == raw


@pytest.mark.parametrize("index", range(9))
def test_sdp810_frame_with_a_flipped_bit_is_refused(index):
    """Any corrupted byte (data or CRC) raises OSError rather than passing a wrong flow."""
    frame = _frame(1234)
    frame[index] ^= 0x10
    with pytest.raises(OSError):
        sdp810.check(frame, 60)


def test_sdp810_frame_with_another_scale_factor_is_refused():
    """A sensor reporting another scale (a 125 Pa part fitted by mistake) is refused."""
    with pytest.raises(OSError):
        sdp810.check(_frame(1234, scale=240), 60)


# ---- tick arithmetic (vehicle) -----------------------------------------------------------------------------

_TICKS = st.integers(min_value=0, max_value=(1 << 30) - 1)


@given(_TICKS, _TICKS)
def test_ticks_diff_is_micropythons_modular_difference(a, b):
    """ticks_diff(a, b) is (a - b) wrapped into [-2**29, 2**29), as MicroPython's time.ticks_diff."""
    from drivers.esp32 import vehicle

    half = 1 << 29
    assert vehicle.ticks_diff(a, b) == (a - b + half) % (1 << 30) - half
