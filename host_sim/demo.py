"""`make demo`: a scripted drive on the simulator, printed as the driver sees the handset."""

import sys

from host_sim import scenario

DEMO = __file__.rsplit("/", 1)[0] + "/demo.scn"
_QUIET_MS = 60000  # countdown and progress redraws closer together than this are not reprinted


def _ms(stamp):
    h, m, rest = stamp.split(":")
    s, ms = rest.split(".")
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def _box(stamp, first, second):
    return ["  %12s  [%-16s|%-16s]" % (stamp, first, second)]


def _shape(text):
    """The text with digits masked: a countdown or progress redraw has the same shape."""
    return "".join("9" if c.isdigit() else c for c in text)


def render(events):
    """The printable demo from a trace's event lines: narration, the display, the relay and alarms."""
    out = []
    last_shown = -_QUIET_MS
    last_shape = None
    for line in events:
        stamp, _, text = line.partition(" ")
        if text.startswith("SAY "):
            out.append("")
            out.append("== " + text[4:])
        elif text.startswith("DISPLAY "):
            first, second = text[9:-1].split('" "')
            t = _ms(stamp)
            shape = _shape(first + "|" + second)
            if shape == last_shape and t - last_shown < _QUIET_MS:
                continue
            last_shown = t
            last_shape = shape
            out.extend(_box(stamp, first, second))
        elif text.split(" ")[0] in ("RELAY", "HORN", "CRANK", "PUMP") or text.startswith("LOG") and (
                " RESULT " in text or " LOCKOUT " in text or " VIOLATION " in text or " CLEAR " in text):
            out.append("  %12s  %s" % (stamp, text))
    return out


def main(argv):
    """Run the demo drive (and, when the companion is available, a remote clear)."""
    sc = scenario.run_file(DEMO)
    for line in render(sc.sim.trace.events):
        print(line)
    if sc.failures:
        for f in sc.failures:
            print("DEMO STEP FAILED: " + f, file=sys.stderr)
        return 1
    try:
        from host_sim import companion_demo
    except ImportError:
        return 0
    print("")
    return companion_demo.run(sys.stdout) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
