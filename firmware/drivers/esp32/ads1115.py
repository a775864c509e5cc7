"""ADS1115 16-bit I2C ADC reading the fuel cell's transimpedance amplifier on one input."""

from micropython import const

import board

_REG_CONV = const(0)
_REG_CONFIG = const(1)
# Config bits: single-ended input AINx vs GND is MUX = 4 + x (bits 14..12).
_MUX_SHIFT = const(12)
_PGA_SHIFT = const(9)
# Continuous conversion (MODE = 0), 128 samples/s (DR = 4), comparator disabled (COMP_QUE = 3).
_BASE = const((4 << 5) | 3)

# Full-scale ranges in mV and their PGA codes: the amplifier's output swing picks one in the wiring.
_FSR_MV = (6144, 4096, 2048, 1024, 512, 256)


class FuelCell(board.FuelCell):
    """Fuel-cell current in ADC counts, from one ADS1115 input in continuous conversion mode."""

    def __init__(self, i2c, addr=0x48, channel=0, fsr_mv=2048):
        if not 0 <= channel <= 3:
            raise ValueError("channel")
        if fsr_mv not in _FSR_MV:
            raise ValueError("fsr_mv")
        self._i2c = i2c
        self._addr = addr
        self._buf = bytearray(2)
        config = ((4 + channel) << _MUX_SHIFT) | (_FSR_MV.index(fsr_mv) << _PGA_SHIFT) | _BASE
        self._buf[0] = config >> 8
        self._buf[1] = config & 0xFF
        # Continuous mode: read() then only fetches the latest result, no waiting on the bus.
        i2c.writeto_mem(addr, _REG_CONFIG, self._buf)

    def read(self):
        """Latest conversion, signed counts (32767 = full scale); OSError on a bus fault."""
        buf = self._buf
        self._i2c.readfrom_mem_into(self._addr, _REG_CONV, buf)
        return decode(buf[0], buf[1])


def decode(msb, lsb):
    """Two's-complement 16-bit result from its two register bytes."""
    value = (msb << 8) | lsb
    if value & 0x8000:
        value -= 0x10000
    return value


class Supply(board.Supply):
    """The vehicle supply in mV, through a resistor divider into an ADS1115 input in continuous conversion
    (a second ADS1115, so the fuel cell keeps its converter to itself)."""

    def __init__(self, i2c, addr=0x49, channel=0, fsr_mv=2048, divider=11):
        self._cell = FuelCell(i2c, addr, channel, fsr_mv)
        self._fsr = fsr_mv
        self._div = divider

    def millivolts(self):
        """Supply voltage in mV (0 for a negative reading); OSError on a bus fault."""
        counts = self._cell.read()
        if counts <= 0:
            return 0
        # counts * fsr stays below 2**30 (32767 * 6144): no long integer on a 32-bit port
        return counts * self._fsr // 32767 * self._div
