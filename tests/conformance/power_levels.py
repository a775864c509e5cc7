"""The battery levels (firmware/power.py) on both interpreters: thresholds, hysteresis, the hold that lets a
starter's dip pass, and the tick counter's wrap; the start seen from the supply alone (CrankWatch)."""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import power
from interlock import timebase

T0 = timebase.TICKS_PERIOD - 2000


def main():
    b = power.Battery()
    t = T0
    for mv, dt, note in (
        (12600, 0, "full"),
        (9800, 250, "crank dip"), (9800, 1500, "crank dip"), (14200, 1000, "engine charging"),
        (12300, 5000, "resting, above warn"), (11990, 1000, "below warn"), (11990, 3999, "held 3999 ms"),
        (11990, 1, "held 4000 ms"), (12300, 5000, "between warn and recover: stays low"),
        (12399, 5000, "just below recover"), (12400, 1000, "recover"), (12400, 4000, "recover held"),
        (10400, 1000, "critical"), (10400, 4000, "critical held"), (11000, 1000, "up from critical"), (11000, 4000, "up from critical held: low"),
        (10499, 1000, "critical again"), (10499, 4000, "critical again held"),
    ):
        t = timebase.add(t, dt)
        got = b.update(t, mv)
        print("%-40s %5d mV -> change %2d level %d" % (note, mv, got, b.level))
    b.resume(power.CRITICAL)
    print("resumed", b.level, b.update(t, 12600), b.update(timebase.add(t, 4000), 12600), b.level)


def cranks():
    for note, profile in (
        ("start", ((12600, 2000), (10000, 1000), (14200, 6000))),
        ("charger", ((12600, 2000), (14400, 8000))),
        ("clamp off and on", ((14400, 2000), (12600, 500), (14400, 6000))),
        ("crank, no start, charger", ((11900, 2000), (9300, 1000), (11900, 6000), (14400, 6000))),
        ("brown-out", ((12600, 2000), (10000, 5500), (14400, 6000))),
        ("sag at the limit", ((12600, 2000), (10000, 5000), (14400, 6000))),
        ("short charge", ((12600, 2000), (10000, 1000), (14200, 4000), (12600, 1000))),
    ):
        w = power.CrankWatch()
        t = T0
        elapsed = 0
        got = []
        for mv, held in profile:
            for _ in range(held // 250):
                if w.update(t, mv):
                    got.append(elapsed)
                t = timebase.add(t, 250)
                elapsed += 250
        print("crank %-28s starts %s" % (note, got))


main()
cranks()
