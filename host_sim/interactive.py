"""Play the handset in a terminal: see its display, press its three buttons, blow, turn the key.

On a terminal, single keys act at once and the simulation runs in real time:
    a / s / d   LEFT / OK / RIGHT          k   key on / off        c   crank        x   stall
    b           blow (sober)               B   blow at 0.045       m   pull / insert the module
    u           unplug / plug the handset  f   fast-forward 1 minute               q   quit
Without a terminal (piped input) it reads one command per line and time passes only when told:
    LEFT | OK | RIGHT | key on | key off | crank | stall | blow [BRAC] | wait DURATION | show | quit
"""

import select
import sys
import time

from board import LEFT, OK, RIGHT
from host_sim import scenario
from host_sim.handset import SimHandset
from host_sim.world import default_module

_KEYS = {"a": LEFT, "s": OK, "d": RIGHT}
_NAMES = {"LEFT": LEFT, "OK": OK, "RIGHT": RIGHT}


class Session:
    """A SimHandset and what the person at it has done."""

    def __init__(self, out, seed=1):
        self.sim = SimHandset(seed=seed)
        self.out = out
        self.shown = None

    def draw(self, force=False):
        """Print the display when it changed."""
        screen = self.sim.trace.screen
        w = self.sim.world
        if screen == self.shown and not force:
            return
        self.shown = screen
        flags = " ".join(name for name, on in (("RELAY", w.relay), ("ENGINE", w.engine), ("HORN", w.horn),
                                                ("KEY", w.ignition)) if on)
        self.out.write("+----------------+\n|%-16s|  %s\n|%-16s|\n+----------------+\n" % (
            screen[0], flags, screen[1]))
        self.out.flush()

    def act(self, ms=200):
        """Let a little time pass after an action."""
        self.sim.wake()
        self.sim.run(ms)
        self.draw()

    def command(self, line):
        """One line-mode command; returns False to quit."""
        words = line.split()
        if not words:
            return True
        cmd = words[0]
        w = self.sim.world
        if cmd in _NAMES:
            w.press(_NAMES[cmd])
            self.act()
        elif cmd == "key":
            w.key(len(words) > 1 and words[1] == "on")
            self.act()
        elif cmd == "crank":
            w.crank()
            self.act()
        elif cmd == "stall":
            w.stall()
            self.act()
        elif cmd == "blow":
            brac = scenario._number(words[1], 1000) if len(words) > 1 else 0
            w.start_blow(brac, 2000, 5500, 340, False)
            self.act(5600)
        elif cmd == "wait":
            self.sim.run(scenario.duration(words[1]))
            self.draw()
        elif cmd == "show":
            self.draw(force=True)
        elif cmd == "quit":
            return False
        else:
            self.out.write("unknown command: %s\n" % cmd)
        return True

    def key(self, ch):
        """One terminal key; returns False to quit."""
        w = self.sim.world
        if ch in _KEYS:
            w.press(_KEYS[ch])
        elif ch == "k":
            w.key(not w.ignition)
        elif ch == "c":
            w.crank()
        elif ch == "x":
            w.stall()
        elif ch in ("b", "B"):
            w.start_blow(45 if ch == "B" else 0, 2000, 5500, 340, False)
        elif ch == "m":
            if w.module is None:
                w.insert_module(default_module(start_wall=w.rtc_now()))
            else:
                w.remove_module()
        elif ch == "u":
            w.connected = not w.connected
        elif ch == "f":
            self.sim.run(60000)
        elif ch == "q":
            return False
        self.sim.wake()
        return True


def _line_mode(session, stream):
    session.draw(force=True)
    for line in stream:
        if not session.command(line.strip()):
            break
    return 0


def _terminal_mode(session):
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    print(__doc__.split("Without")[0])
    session.draw(force=True)
    try:
        tty.setcbreak(fd)
        last = time.monotonic()
        while True:
            ready, _, _ = select.select([sys.stdin], [], [], 0.05)
            now = time.monotonic()
            session.sim.run(int((now - last) * 1000))
            last = now
            if ready and not session.key(sys.stdin.read(1)):
                break
            session.draw()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    return 0


def main(argv):
    """Interactive handset; line mode when stdin is not a terminal."""
    session = Session(sys.stdout)
    if sys.stdin.isatty():
        return _terminal_mode(session)
    return _line_mode(session, sys.stdin)
