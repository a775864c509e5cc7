"""Three-button unlock-code entry and verification.

Entry: each position scrolls with LEFT / RIGHT through 0-9, then `<` (back one digit) and `X` (cancel); OK
takes the symbol shown. OK on the last digit submits the code. Verification follows interlock.codes: the code must
match an unused counter within the look-ahead window and an issue hour within the validity; wrong codes
earn escalating waits.
"""

from micropython import const

from board import LEFT, OK, RIGHT
from interlock import codes

_SYMBOLS = const(12)  # 0-9, back, cancel
_BACK = const(10)
_CANCEL = const(11)
_GLYPHS = b"0123456789<X"

# entry outcomes
TYPING = const(0)
SUBMIT = const(1)
CANCEL = const(2)

# waits after each wrong code beyond the free tries, seconds; the last one repeats
LADDER = (60, 300, 900, 3600, 86400)


class CodeEntry:
    """The digits being typed and the cursor."""

    def __init__(self, digits):
        self.buf = bytearray(12)
        self.digits = digits
        self.pos = 0
        self.symbol = 0

    def begin(self, digits):
        """Start a new entry of the given length."""
        self.digits = digits
        self.pos = 0
        self.symbol = 0
        for i in range(len(self.buf)):
            self.buf[i] = 95  # "_"

    def press(self, buttons):
        """Apply a button bitmask; returns TYPING, SUBMIT or CANCEL."""
        if buttons & LEFT:
            self.symbol = (self.symbol + _SYMBOLS - 1) % _SYMBOLS
        if buttons & RIGHT:
            self.symbol = (self.symbol + 1) % _SYMBOLS
        if not buttons & OK:
            return TYPING
        if self.symbol == _CANCEL:
            return CANCEL
        if self.symbol == _BACK:
            if self.pos > 0:
                self.pos -= 1
                self.symbol = self.buf[self.pos] - 48
                self.buf[self.pos] = 95
            return TYPING
        self.buf[self.pos] = 48 + self.symbol
        self.pos += 1
        self.symbol = 0
        if self.pos >= self.digits:
            return SUBMIT
        return TYPING

    def value(self):
        """The entered code as an int."""
        v = 0
        for i in range(self.digits):
            v = v * 10 + self.buf[i] - 48
        return v

    def render(self, screen, line):
        """Typed digits, the symbol under the cursor, underscores for the rest."""
        for i in range(self.digits):
            screen.buf[line * 16 + i] = self.buf[i]
        if self.pos < self.digits:
            screen.buf[line * 16 + self.pos] = _GLYPHS[self.symbol]


def wait_after(fails, free_tries):
    """Seconds to wait after the fails-th consecutive wrong code."""
    extra = fails - free_tries
    if extra <= 0:
        return 0
    if extra > len(LADDER):
        extra = len(LADDER)
    return LADDER[extra - 1]


def find_counter(unlock_key, device_id, action, value, next_counter, lookahead, now_hour, valid_h, digits):
    """The counter a code was issued with, or 0 if it matches none in the window (0 is never issued)."""
    for counter in range(next_counter, next_counter + lookahead):
        # valid_h hours back, and one hour ahead for the clock skew between companion and handset
        for hour in range(now_hour + 1, now_hour - valid_h, -1):
            if hour >= 0 and codes.code_for(unlock_key, device_id, action, counter, hour, digits) == value:
                return counter
    return 0

