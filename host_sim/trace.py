"""The deterministic record of a simulated run: what the display showed and every event, with world time."""

from fsm import records

BEEPS = ("", "KEY", "PROMPT", "RETEST", "ERROR")


def clock(t):
    """World time t (ms since the start of the run) as H:MM:SS.mmm."""
    s = t // 1000
    return "%d:%02d:%02d.%03d" % (s // 3600, s // 60 % 60, s % 60, t % 1000)


class Trace:
    """Display transcript and event trace of one run; `lines()` is what conformance compares."""

    def __init__(self, world):
        self.world = world
        self.events = []
        self.display = []
        self.screen = ("", "")

    def add(self, text):
        """One event at the current world time."""
        self.events.append(clock(self.world.t) + " " + text)

    def show(self, buf):
        """The display changed."""
        b = bytes(buf)
        first = b[:16].decode().rstrip()
        second = b[16:32].decode().rstrip()
        self.screen = (first, second)
        line = clock(self.world.t) + ' "' + first + '" "' + second + '"'
        self.display.append(line)
        self.events.append(clock(self.world.t) + ' DISPLAY "' + first + '" "' + second + '"')

    def record(self, rec):
        """A log record was committed."""
        seq, wall, rtype, a, b, c, photo = rec
        text = "LOG %d %s %d %d %d" % (seq, records.NAMES.get(rtype, str(rtype)), a, b, c)
        if photo:
            text += " photo=%d" % photo
        self.add(text)

    def lines(self):
        """The whole trace: transcript then events."""
        return ["== display =="] + self.display + ["== events =="] + self.events
