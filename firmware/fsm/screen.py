"""The 2 x 16 display as a preallocated 32-byte buffer that the state handlers write text and numbers into.

Text is given as bytes (no str objects on the per-tick path). `message` word-wraps a text longer than a line
onto both lines, which is how `VIOLATION LOCKOUT` (17 characters) appears: `VIOLATION` / `LOCKOUT`.
"""

from micropython import const

from interlock import timebase

WIDTH = const(16)
SIZE = const(32)
_SPACE = const(32)


class Screen:
    """Two lines of sixteen ASCII characters."""

    def __init__(self):
        self.buf = bytearray(SIZE)
        self.clear()

    def clear(self):
        """Blank both lines."""
        buf = self.buf
        for i in range(SIZE):
            buf[i] = _SPACE

    def text(self, line, col, data):
        """Write bytes at (line, col), clipped at the end of the line; returns the column after it."""
        buf = self.buf
        base = line * WIDTH
        n = len(data)
        for i in range(n):
            c = col + i
            if c >= WIDTH:
                return WIDTH
            buf[base + c] = data[i]
        return col + n

    def message(self, data):
        """Show data on line 0, word-wrapped onto line 1 when it is longer than a line."""
        n = len(data)
        if n <= WIDTH:
            self.text(0, 0, data)
            return
        cut = WIDTH
        while cut > 0 and data[cut] != _SPACE:
            cut -= 1
        if cut == 0:
            cut = WIDTH
        buf = self.buf
        for i in range(cut):
            buf[i] = data[i]
        j = cut + 1 if data[cut] == _SPACE else cut
        k = 0
        while j < n and k < WIDTH:
            buf[WIDTH + k] = data[j]
            j += 1
            k += 1

    def number(self, line, col, value, width, zero=True):
        """Write a non-negative integer right-aligned in width columns, zero- or space-padded."""
        buf = self.buf
        base = line * WIDTH
        if value < 0:
            value = 0
        pos = col + width - 1
        while pos >= col:
            if pos < WIDTH:
                buf[base + pos] = 48 + value % 10 if (value or zero or pos == col + width - 1) else _SPACE
            value //= 10
            pos -= 1
        return col + width

    def digits(self, line, col, value):
        """Write a non-negative integer with as many digits as it needs; returns the column after it."""
        width = 1
        probe = value
        while probe >= 10:
            probe //= 10
            width += 1
        return self.number(line, col, value, width)

    def mmss(self, line, col, seconds):
        """Write seconds as MM:SS (minutes go past 99 as needed)."""
        if seconds < 0:
            seconds = 0
        minutes = seconds // 60
        col = self.number(line, col, minutes, 3 if minutes > 99 else 2)
        self.buf[line * WIDTH + col] = 58
        return self.number(line, col + 1, seconds % 60, 2)

    def brac(self, line, col, value):
        """Write a BrAC in thousandths of g/dL as .012 (or 1.234 above one)."""
        if value >= 1000:
            col = self.digits(line, col, value // 1000)
        self.buf[line * WIDTH + col] = 46
        return self.number(line, col + 1, value % 1000, 3)

    def date(self, line, col, day):
        """Write a device day as YYYY-MM-DD."""
        y, m, d = timebase.civil_from_days(day)
        col = self.number(line, col, y, 4)
        self.buf[line * WIDTH + col] = 45
        col = self.number(line, col + 1, m, 2)
        self.buf[line * WIDTH + col] = 45
        return self.number(line, col + 1, d, 2)

    def line(self, n):
        """Line n as a str, trailing spaces removed (for traces and tests, not the tick path)."""
        return bytes(self.buf[n * WIDTH:(n + 1) * WIDTH]).decode().rstrip()
