"""Command line of the host simulator.

    python -m host_sim                      interactive handset in the terminal
    python -m host_sim run [--flash IMAGE] SCENARIO [...]
                                            run scenario files; print display transcript and event trace;
                                            with --flash, on a littlefs image file (created if missing)
    python -m host_sim demo                 a scripted drive, shown as the driver sees it
    python -m host_sim log IMAGE [--json]   decode and verify a flash image's event log
    python -m host_sim service-port [--baud N] [--token FILE] [--udp [HOST:]PORT]
                                            a simulated handset in real time with its service port on a
                                            pseudo-terminal and, with --udp, on UDP too (host_sim/pty_port.py)
"""

import sys


def main(argv):
    """Dispatch a subcommand; returns the exit status."""
    if not argv:
        from host_sim import interactive

        return interactive.main([])
    cmd, rest = argv[0], argv[1:]
    if cmd == "run":
        from host_sim import scenario

        image = None
        if len(rest) >= 2 and rest[0] == "--flash":
            from host_sim.flash import FlashImage

            image = FlashImage(rest[1])
            rest = rest[2:]
        if not rest:
            print("usage: python -m host_sim run [--flash IMAGE] SCENARIO [SCENARIO ...]", file=sys.stderr)
            return 2
        failed = 0
        for path in rest:
            try:
                sc = scenario.run_file(path, image.storage() if image is not None else None)
            except (OSError, scenario.ScenarioError) as exc:
                print("%s: %s" % (path, exc), file=sys.stderr)
                return 2
            for line in scenario.report(sc):
                print(line)
            failed += len(sc.failures)
            if image is not None:
                image.save()
        return 1 if failed else 0
    if cmd == "demo":
        from host_sim import demo

        return demo.main(rest)
    if cmd == "log":
        from host_sim import logtool

        return logtool.main(rest)
    if cmd == "service-port":
        from host_sim import pty_port

        return pty_port.main(rest)
    if cmd in ("interactive", "play"):
        from host_sim import interactive

        return interactive.main(rest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
