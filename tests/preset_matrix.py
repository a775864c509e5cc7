"""The conformance matrix of the jurisdiction presets: one scenario per preset (tests/scenarios/preset_XX.scn),
generated from presets/data/XX.toml. Each block sets the preset's values as policy, names the parameter and its
citation, and checks the value just inside and just outside. Run on CPython and on real MicroPython with the
rest of the corpus (tests/test_conformance.py); tests/test_presets.py checks the files are up to date.

    .venv/bin/python -m tests.preset_matrix          # rewrite the scenarios (then `make traces`)
"""

from __future__ import annotations

import sys
from pathlib import Path

import presets
from presets.policy_spec import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "scenarios"
START = "2026-03-02"  # the scenarios' first day (the service block jumps from it)


def _cited(preset, *names):
    return [n for n in names if preset.params[n].source != "unsourced"]


def _say(preset, names):
    out = []
    for n in names:
        p = preset.params[n]
        out.append("# %s %s = %d (%s: %s)" % (preset.state, n, p.value, p.source, p.cite or "unsourced"))
    out.append('say "%s %s"' % (preset.state, ", ".join(
        "%s=%d %s" % (n, preset.params[n].value, preset.params[n].cite.split(";")[0])
        for n in names if preset.params[n].source != "unsourced")))
    return out


def _brac(value):
    return ".%03d" % value


def _prelude(v):
    """A clean start for a block: a new service period (no violations, no countdown), a passed start test (no fail
    streak, no start-up failure pending), ignition off."""
    verdict = "PASS" if v["warn_brac"] > 0 else "WARN"
    return ["", "tech service", "key on", 'wait-for "BLOW" within 2m', "blow", 'wait-for "%s" within 15s' % verdict,
            "key off", "wait 5s"]


def _service(preset, v):
    names = _cited(preset, "service_days", "outage_grace_days")
    if not names:
        return []
    d = v["service_days"]
    g = v["outage_grace_days"]
    out = _say(preset, names)
    out += ["# a service record sets the next visit service_days ahead; the day before it tests go on, on it",
            "# INSPECTION DUE locks (no grace); no sync since the due day extends nothing unless outage grace says so",
            "tech service", "tech time %s 08:00" % _date(d - 1), "key on", 'wait-for "BLOW" within 2m',
            "expect state TEST", "key off", "tech time %s 08:00" % _date(d + g), "key on", "expect state INSPECTION",
            "expect relay off", "key off"]
    if g:
        out += ["tech time %s 08:00" % _date(d + g - 1), "key on", 'wait-for "BLOW" within 2m', "key off"]
    return out


def _date(days):
    from interlock import timebase

    y, m, d = (int(x) for x in START.split("-"))
    return "%04d-%02d-%02d" % timebase.civil_from_days(timebase.days_from_civil(y, m, d) + days)


def _camera(preset, v):
    if not _cited(preset, "camera"):
        return []
    out = _say(preset, ["camera"]) + _prelude(v) + ["mark", "key on", 'wait-for "BLOW" within 2m']
    if v["camera"]:
        out += ["# a photo with the test request", "expect log TEST_REQUEST a=1", "expect no-log TEST_REQUEST photo=0"]
    else:
        out += ["expect log TEST_REQUEST a=1 photo=0"]
    return out + ["key off"]


def _results(preset, v):
    names = _cited(preset, "fail_brac", "warn_brac")
    if not names:
        return []
    f, w = v["fail_brac"], v["warn_brac"]
    below = "PASS" if f - 1 < w else "WARN"
    out = _say(preset, names) + _prelude(v)
    # the simulated fuel cell reads a breath within 0.001 of its BrAC, so the edges are one step either side
    # of it; the comparison at the exact level is boundary_result_levels.scn's
    out += ["# just below the fail point the start is allowed; just above it the test fails", "key on",
            'wait-for "BLOW" within 2m', "blow brac=%s" % _brac(f - 1), 'wait-for "%s" within 15s' % below,
            "expect log RESULT b=%d" % (1 if below == "PASS" else 2), "key off", "key on",
            'wait-for "BLOW" within 2m', "blow brac=%s" % _brac(f + 1), 'wait-for "FAIL" within 15s',
            "expect log RESULT b=3", "key off", "wait %ds" % (v["temp_lock_s"] + 5)]
    return out


def _volume(preset, v):
    if not _cited(preset, "volume_ml"):
        return []
    ml = v["volume_ml"]
    out = _say(preset, ["volume_ml"]) + _prelude(v)
    out += ["# 50 mL short of the minimum is refused (an abort), 50 mL over it is taken", "key on",
            'wait-for "BLOW" within 2m', "mark", "blow volume=%d.%03d duration=8" % divmod(ml - 50, 1000),
            "expect log ABORT", "wait 4s", "blow volume=%d.%03d duration=8" % divmod(ml + 50, 1000),
            'wait-for "PASS" within 15s', "key off"]
    return out


def _free_restart(preset, v):
    if not _cited(preset, "free_restart_s"):
        return []
    r = v["free_restart_s"]
    out = _say(preset, ["free_restart_s"]) + _prelude(v)
    out += ["key on", 'wait-for "BLOW" within 2m', "blow", 'wait-for "START" within 15s', "crank", "wait 10s",
            "# key off after a drive: a restart without a test %d s later is allowed, %d s later not" % (r - 2, r + 1),
            "key off", "wait %ds" % (r - 2), "key on", "expect state RESTART", "expect relay on", "crank",
            "expect engine on", "wait 5s", "key off", "wait %ds" % (r + 1), "key on", "expect state TEST",
            "expect relay off", "key off"]
    return out


def _temp_lock(preset, v):
    names = _cited(preset, "temp_lock_s", "temp_lock_repeat")
    if not names:
        return []
    t, k = v["temp_lock_s"], v["temp_lock_repeat"]
    out = _say(preset, names) + _prelude(v)
    if preset.retests_after_fail:
        out.append("# %d tests possible within %d s of a failed test" % preset.retests_after_fail)
    out += ["key on", 'wait-for "BLOW" within 2m']
    for _ in range(k):
        out += ["blow brac=.045", 'wait-for "FAIL" within 15s', "expect log LOCKOUT a=1 b=%d" % t,
                "wait %ds" % (t - 2), "expect state TEMP_LOCK", 'wait-for "BLOW" within 2m']
    out += ["# the next fail in a row escalates", "blow brac=.045", 'wait-for "FAIL" within 15s',
            "expect log LOCKOUT a=1 b=%d" % v["temp_lock2_s"], "key off", "wait %ds" % (v["temp_lock2_s"] + 5)]
    return out


def _startup(preset, v):
    names = _cited(preset, "startup_fail_s", "startup_fail_vio", "startup_fail_now")
    if not names or not v["startup_fail_s"]:
        return []
    s, vio, now, t = v["startup_fail_s"], v["startup_fail_vio"], v["startup_fail_now"], v["temp_lock_s"]
    out = _say(preset, names) + _prelude(v)
    out += ["# a fail that a pass follows within the window is no start-up failure%s" % (
                "; the fail itself is a violation" if now else ", and no violation"), "mark", "key on",
            'wait-for "BLOW" within 2m', "blow brac=.045", 'wait-for "FAIL" within 15s', "key off",
            "wait %ds" % (t + 2), "key on", 'wait-for "BLOW" within 2m', "blow", 'wait-for "PASS" within 15s',
            "key off", "wait %ds" % s, "expect no-log STARTUP_FAIL",
            "expect log VIOLATION a=8" if now else "expect no-log VIOLATION a=8"]
    out += ["# a fail that no pass follows: logged once the window is over", "key on", 'wait-for "BLOW" within 2m',
            "blow brac=.045", 'wait-for "FAIL" within 15s', "mark", "key off", "wait %ds" % (s - 3),
            "expect no-log STARTUP_FAIL", "wait 12s",
            "expect log STARTUP_FAIL b=%d c=%d" % (s, 1 if vio and not now else 0)]
    if now:
        out += ["# booked at the fail already: the start-up failure is no second violation", "expect no-log VIOLATION"]
    else:
        out += ["expect log VIOLATION a=8" if vio else "expect no-log VIOLATION"]
    return out


def _retests(preset, v):
    names = _cited(preset, "retest_first_min_s", "retest_first_max_s", "retest_next_min_s", "retest_next_max_s",
                   "retest_next_from", "retest_window_s", "retest_redemand")
    if not names:
        return []
    m, mx = v["retest_first_min_s"], v["retest_first_max_s"]
    n, nx = v["retest_next_min_s"], v["retest_next_max_s"]
    w = v["retest_window_s"]
    out = _say(preset, names) + _prelude(v)
    out += ["key on", 'wait-for "BLOW" within 2m', "blow", 'wait-for "START" within 15s', "crank", "mark",
            "# the first retest: not before %d s, by %d s" % (m, mx), "wait %ds" % (m - 2), "expect no-log RETEST",
            'wait-for "RETEST - BLOW" within %ds' % (mx - m + 4), "expect log RETEST a=0 b=1"]
    if v["retest_next_from"]:
        # timed from the request: the driver blows at once, so the pass comes at most 15 s after it
        out += ["blow", 'wait-for "DRIVE SAFELY" within 15s', "mark",
                "# the next retest, timed from the previous request: not before %d s, by %d s" % (n, nx),
                "wait %ds" % (n - 17), "expect no-log RETEST", 'wait-for "RETEST - BLOW" within %ds' % (nx - n + 19)]
    else:
        out += ["blow", 'wait-for "DRIVE SAFELY" within 15s', "mark",
                "# the next retest, timed from the pass: not before %d s, by %d s" % (n, nx), "wait %ds" % (n - 2),
                "expect no-log RETEST", 'wait-for "RETEST - BLOW" within %ds' % (nx - n + 4)]
    out += ["expect log RETEST a=0 b=1", "mark", "# the window: no miss %d s after the request, a miss at %d s"
            % (w - 2, w + 2), "wait %ds" % (w - 2), "expect no-log RETEST a=4", "wait 4s", "expect log RETEST a=4",
            "expect horn on"]
    if v["retest_redemand"]:
        out += ["# asked again at once", "expect log RETEST a=0 b=1 c=3"]
    else:
        out += ["# not asked again: the alarm runs until a pass or key-off", "expect no-log RETEST a=0 b=1 c=3"]
    out += ['wait-for "RETEST - BLOW" within 15s', "blow", 'wait-for "DRIVE SAFELY" within 20s', "expect horn off",
            "key off"]
    return out


def _verdict(v, brac):
    return "FAIL" if brac >= v["fail_brac"] else ("WARN" if brac >= v["warn_brac"] else "PASS")


def _excuse(preset, v):
    names = _cited(preset, "startup_excuse_brac")
    e, s, t, vio = v["startup_excuse_brac"], v["startup_fail_s"], v["temp_lock_s"], v["startup_fail_vio"]
    if not names or not s or v["startup_fail_now"] or s < t + 60:
        return []
    out = _say(preset, names) + _prelude(v)
    out += ["# a fail that a test at the excuse level follows within the window is no start-up failure, even when",
            "# that test fails (and locks) itself", "mark", "key on", 'wait-for "BLOW" within 2m', "blow brac=.045",
            'wait-for "FAIL" within 15s', "key off", "wait %ds" % (t + 2), "key on", 'wait-for "BLOW" within 2m',
            "blow brac=%s" % _brac(e), 'wait-for "%s" within 15s' % _verdict(v, e), "expect log RESULT a=%d" % e,
            "key off", "wait %ds" % s,
            "expect no-log STARTUP_FAIL", "expect no-log VIOLATION a=8"]
    if e + 1 < v["fail_brac"]:
        return out  # a test just above the excuse level passes: it ends the window as any pass does
    # the simulated fuel cell reads a breath within 0.001 of its BrAC: two steps above is surely above (the step
    # itself, 0.021 after 0.020, is review_tn_retest_at_021_no_excuse.scn)
    out += _prelude(v)
    out += ["# a test above the excuse level fails and excuses nothing: the start-up failure is logged",
            "key on", 'wait-for "BLOW" within 2m', "blow brac=.045", 'wait-for "FAIL" within 15s', "mark", "key off",
            "wait %ds" % (t + 2), "key on", 'wait-for "BLOW" within 2m', "blow brac=%s" % _brac(e + 2),
            'wait-for "FAIL" within 15s', "key off", "wait %ds" % s,
            "expect log STARTUP_FAIL b=%d c=%d" % (s, 1 if vio else 0),
            "expect log VIOLATION a=8" if vio else "expect no-log VIOLATION a=8"]
    return out


BLOCKS = (_service, _camera, _results, _volume, _free_restart, _temp_lock, _startup, _excuse, _retests)


def scenario(preset):
    """The text of a preset's matrix scenario."""
    v = dict(DEFAULTS)
    v.update(preset.policy())
    head = ["# GENERATED by tests/preset_matrix.py from presets/data/%s.toml (%s, version %d, %s): do not edit."
            % (preset.state, preset.name, preset.version, preset.coverage),
            "# Every parameter the preset cites, just inside and just outside; each block names its citation.",
            "date %s 08:00" % START,
            "policy " + " ".join("%s=%d" % kv for kv in sorted(preset.policy().items()))]
    lines = head
    for block in BLOCKS:
        got = block(preset, v)
        if got:
            lines += [""] + got
    return "\n".join(lines) + "\n"


def path(preset):
    return OUT / ("preset_%s.scn" % preset.state.lower())


def main(argv=None):
    for preset in presets.all_presets():
        path(preset).write_text(scenario(preset))
        print("wrote", path(preset).relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
