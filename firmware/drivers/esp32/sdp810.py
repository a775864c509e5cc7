"""Sensirion SDP810 differential-pressure sensor turned into breath flow through the mouthpiece orifice."""

from micropython import const

import board

# Start continuous measurement, mass-flow temperature compensation, averaging until read.
_CMD_START = b"\x36\x03"
_CMD_STOP = b"\x3f\xf9"
_CRC_POLY = const(0x31)
# Orifice flow Q = K * sqrt(dP): K = Cd * A * sqrt(2 / rho). A 6 mm orifice with Cd 0.6 in air at 1.2 kg/m3
# gives 21.9 mL/s per sqrt(Pa): 100 Pa -> 219 mL/s, 250 Pa -> 346 mL/s (a 1.5 L sample over 4.5 s).
K_MILLI = const(21900)
# SDP810-500Pa reports 60 counts per Pa (the sensor also sends its scale factor; it is checked at start).
SCALE_500PA = const(60)
_FRAC = const(12)


def crc8(buf, start, n):
    """Sensirion CRC-8 (poly 0x31, init 0xFF) over buf[start:start + n], without slicing."""
    crc = 0xFF
    for i in range(start, start + n):
        crc ^= buf[i]
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def isqrt(n):
    """Floor square root of a non-negative int below 2**30, bit by bit (small ints only, no allocation)."""
    root = 0
    bit = 1 << 28
    while bit > n:
        bit >>= 2
    while bit:
        if n >= root + bit:
            n -= root + bit
            root = (root >> 1) + bit
        else:
            root >>= 1
        bit >>= 2
    return root


def coefficient(k_milli, scale):
    """Fixed-point factor K / sqrt(scale) * 2**12 for flow(): computed once, integer only."""
    # sqrt(k^2 * 2^24 / (scale * 1e6)) with k = k_milli / 1000.
    return isqrt_big(k_milli * k_milli * (1 << (2 * _FRAC)) // (scale * 1000000))


def isqrt_big(n):
    """Floor square root of any non-negative int (Newton); constructor use only, may allocate big ints."""
    if n < 0:
        raise ValueError("isqrt")
    if n < 2:
        return n
    x = n
    y = (x + 1) // 2
    while y < x:
        x = y
        y = (x + n // x) // 2
    return x


def flow(raw, coef):
    """Flow in mL/s from a signed raw pressure reading; the sign (direction) is kept."""
    if raw < 0:
        return -flow(-raw, coef)
    # isqrt(raw << 14) = 128 * sqrt(raw): raw <= 32768 keeps it and the product below 2**30.
    return (coef * isqrt(raw << 14) + (1 << (_FRAC + 6))) >> (_FRAC + 7)   # rounded


class BreathFlow(board.BreathFlow):
    """Breath flow in mL/s from an SDP810 in continuous mode; positive = blowing into the mouthpiece."""

    def __init__(self, i2c, addr=0x25, k_milli=K_MILLI, scale=SCALE_500PA, invert=False):
        if k_milli <= 0 or scale <= 0:
            raise ValueError("k_milli/scale")
        self._i2c = i2c
        self._addr = addr
        self._coef = coefficient(k_milli, scale)
        self._scale = scale
        # Swapped tubing reverses the sign: a plumbing fact, set once in the wiring.
        self._sign = -1 if invert else 1
        self._buf = bytearray(9)
        i2c.writeto(addr, _CMD_START)

    def stop(self):
        """Stop continuous measurement (before sleep or a soft reset)."""
        self._i2c.writeto(self._addr, _CMD_STOP)

    def raw(self):
        """Signed differential pressure in sensor counts; OSError on a bus or CRC fault."""
        buf = self._buf
        # 9 bytes: pressure, temperature, scale factor, each a 16-bit word and its CRC.
        self._i2c.readfrom_into(self._addr, buf)
        return check(buf, self._scale)

    def read(self):
        """Flow in mL/s; negative when the driver inhales."""
        return self._sign * flow(self.raw(), self._coef)


def check(buf, scale):
    """Signed pressure word of a 9-byte SDP810 frame after checking the CRCs and the scale factor."""
    for i in (0, 3, 6):
        if crc8(buf, i, 2) != buf[i + 2]:
            raise OSError(5)  # EIO: a corrupted frame must never pass as a flow reading
    if ((buf[6] << 8) | buf[7]) != scale:
        raise OSError(5)
    value = (buf[0] << 8) | buf[1]
    if value & 0x8000:
        value -= 0x10000
    return value
