"""HD44780 2 x 16 character LCD behind a PCF8574 I2C backpack, 4-bit mode, writing only changed cells."""

from micropython import const

import board

# PCF8574 bit -> LCD line on the common backpack: P0 RS, P1 RW, P2 E, P3 backlight, P4..P7 D4..D7.
_RS = const(0x01)
_E = const(0x04)
_BL = const(0x08)
COLS = const(16)
CELLS = const(32)
_SET_DDRAM = const(0x80)
_LINE2 = const(0x40)


class Display(board.Display):
    """Two lines of 16 characters; show() compares against a shadow copy and sends only the differences."""

    def __init__(self, i2c, addr=0x27, sleep_ms=None):
        self._i2c = i2c
        self._addr = addr
        self._out = bytearray(4)       # one byte as two nibbles, each with an E pulse
        self._out1 = memoryview(self._out)[:1]
        self._out2 = memoryview(self._out)[:2]
        self._shadow = bytearray(CELLS)
        self._cursor = -1              # cell the LCD's address counter points at, -1 if unknown
        self._bl = _BL
        if sleep_ms is None:
            import time
            sleep_ms = time.sleep_ms
        self._sleep_ms = sleep_ms
        self._resync = False
        self._init()

    def _init(self):
        sleep_ms = self._sleep_ms
        # Power-on reset may not have run cleanly: the datasheet's 4-bit "initialization by instruction".
        sleep_ms(50)
        for wait in (5, 1, 1):
            self._nibble(0x30)
            sleep_ms(wait)
        self._nibble(0x20)             # 4-bit interface from here on
        sleep_ms(1)
        self._cmd(0x28)                # 2 lines, 5x8 dots
        self._cmd(0x08)                # display off
        self._cmd(0x01)                # clear (1.52 ms)
        sleep_ms(2)
        self._cmd(0x06)                # entry mode: increment, no shift
        self._cmd(0x0C)                # display on, cursor off, blink off
        for i in range(CELLS):
            self._shadow[i] = 0x20     # clear leaves spaces
        self._cursor = -1

    def _nibble(self, high):
        out = self._out
        out[0] = high | self._bl | _E
        out[1] = high | self._bl
        self._i2c.writeto(self._addr, self._out2)

    def _byte(self, value, rs):
        # Each PCF8574 byte is latched at its ACK, so four bytes form the E pulses for both nibbles.
        out = self._out
        flags = self._bl | rs
        out[0] = (value & 0xF0) | flags | _E
        out[1] = (value & 0xF0) | flags
        out[2] = ((value << 4) & 0xF0) | flags | _E
        out[3] = ((value << 4) & 0xF0) | flags
        self._i2c.writeto(self._addr, out)

    def _cmd(self, value):
        self._byte(value, 0)

    def show(self, buf):
        """Show 32 bytes of ASCII: line 1 then line 2. ValueError (and no change) on another length."""
        if isinstance(buf, str):
            raise TypeError("display needs bytes, not str")
        if len(buf) != CELLS:
            raise ValueError("display needs 32 bytes")
        if self._resync:
            # A write failed half way: the LCD may be between nibbles, so start it again from scratch.
            self._init()
            self._resync = False
        try:
            self._update(buf)
        except OSError:
            self._resync = True
            raise

    def _update(self, buf):
        shadow = self._shadow
        for i in range(CELLS):
            ch = buf[i]
            if ch < 0x20 or ch > 0x7E:
                ch = 0x3F              # '?': the LCD's upper ROM half is not ASCII
            if shadow[i] == ch:
                continue
            if self._cursor != i:
                self._cmd(_SET_DDRAM | (i if i < COLS else _LINE2 + i - COLS))
            self._byte(ch, _RS)
            shadow[i] = ch
            # The address counter runs on to the next cell, except off the end of line 1.
            self._cursor = i + 1 if i + 1 != COLS else -1

    def backlight(self, on):
        """Switch the backlight (the next write carries the bit; sent now with an empty nibble)."""
        self._bl = _BL if on else 0
        self._out[0] = self._bl
        self._i2c.writeto(self._addr, self._out1)

    def redraw(self):
        """Forget the shadow so the next show() rewrites every cell (after an LCD brown-out, say)."""
        for i in range(CELLS):
            self._shadow[i] = 0
        self._cursor = -1
