"""Michigan's violation classes (Mich. Admin. Code R 257.301a) counted from a device's log by the pure function
companion/app/records/classes.py, at the edges of each number of presets/data/MI.toml's [classes]; the
start-up failures come from the real firmware (host_sim) where the handset's own window decides."""

import datetime as dt

import pytest

import presets
from companion.app.records import classes
from fsm import records
from host_sim import scenario

MI = presets.load("MI")
DAY = 86400
START = dt.date(2026, 3, 1)  # two calendar months on: 2026-05-01, day 61
FAR = dt.date(2026, 3, 20)  # "today" for tests that want no service date missed


def _wall(day, hh=8, mm=0):
    return (classes._day(START) + day) * DAY + hh * 3600 + mm * 60


def _sf(seq, day, hh=8, mm=0):
    w = _wall(day, hh, mm)
    return (seq, w + 901, records.STARTUP_FAIL, w, 900, 0)


def _visit(seq, day, next_day=0):
    return (seq, _wall(day, 10), records.SERVICE, records.SVC_RECORD, 7, next_day)


def test_the_record_constants_are_the_firmwares():
    assert (classes.VIOLATION, classes.SERVICE, classes.INSPECTION, classes.STARTUP_FAIL) == (
        records.VIOLATION, records.SERVICE, records.INSPECTION, records.STARTUP_FAIL)
    assert classes.SVC_RECORD == records.SVC_RECORD
    assert classes.RETEST_CAUSES == (records.VIO_MISSED_RETEST, records.VIO_FAILED_RETEST,
                                     records.VIO_REFUSED_RETEST)
    assert classes.TAMPER_CAUSES == (records.VIO_BYPASS, records.VIO_DISCONNECT, records.VIO_TAMPER)


@pytest.mark.parametrize(("gap_min", "counted"), [(59, 1), (60, 2)])
def test_start_up_failures_59_minutes_apart_count_once_60_apart_twice(gap_min, counted):
    got = classes.classify([_sf(1, 70, 8, 0), _sf(2, 70, 8, gap_min)], MI, START, FAR + dt.timedelta(days=200))
    assert got.startup_failures == counted
    if counted == 1:
        once = [e for e in got.events if e.cls == classes.STARTUP_ONCE]
        assert len(once) == 1 and once[0].seq == 2 and once[0].rule.cite == "Mich. Admin. Code R 257.301a(j)"


def test_the_hour_is_measured_from_the_failure_counted_not_chained():
    got = classes.classify([_sf(1, 70, 8, 0), _sf(2, 70, 8, 50), _sf(3, 70, 9, 40)], MI, START, FAR)
    assert [e.cls for e in got.events if e.seq] == [classes.STARTUP, classes.STARTUP_ONCE, classes.STARTUP]


@pytest.mark.parametrize(("day", "minor"), [(59, 0), (60, 0), (61, 1)])
def test_three_start_up_failures_make_a_minor_violation_only_after_two_months(day, minor):
    """2026-03-01 + 2 calendar months = 2026-05-01 (day 61): the third failure on day 59 or 60 makes none."""
    recs = [_sf(1, day, 0), _sf(2, day, 2), _sf(3, day, 4)]  # the first at midnight, the day's first second
    got = classes.classify(recs, MI, START, START + dt.timedelta(days=day + 1))
    assert got.startup_failures == 3
    from_startups = [e for e in got.events if e.cls == classes.MINOR and e.rule.name == "minor_startups"]
    assert len(from_startups) == minor
    if minor:
        m = from_startups[0]
        assert m.seq == 3 and m.rule.cite == "Mich. Admin. Code R 257.301a(e)"


@pytest.mark.parametrize(("late", "minor"), [(7, 0), (8, 1)])
def test_service_reported_on_day_7_is_in_time_day_8_is_a_minor_violation(late, minor):
    due = MI.params["service_days"].value  # the first date: the program start + the preset's interval
    got = classes.classify([_visit(1, due + late, 0)], MI, START, START + dt.timedelta(days=due + late))
    assert got.minor == minor
    if minor:
        m = got.events[0]
        assert m.seq is None and m.cls == classes.MINOR and "7 days" in m.why
        assert m.wall == _wall(due + 8, 0)


def test_a_service_date_with_no_visit_at_all_is_missed_once_day_8_has_come():
    due = MI.params["service_days"].value
    assert classes.classify([], MI, START, START + dt.timedelta(days=due + 7)).minor == 0
    assert classes.classify([], MI, START, START + dt.timedelta(days=due + 8)).minor == 1
    assert classes.classify([], MI, START, START + dt.timedelta(days=due + 300)).minor == 1


def test_the_next_service_date_is_the_visits_and_the_companion_may_move_it():
    due = MI.params["service_days"].value
    nxt = classes._day(START) + due + 40
    visit = _visit(1, due, nxt)
    assert classes.classify([visit], MI, START, START + dt.timedelta(days=due + 47)).minor == 0
    assert classes.classify([visit], MI, START, START + dt.timedelta(days=due + 48)).minor == 1
    moved = (2, _wall(due + 1), records.INSPECTION, 3, nxt + 10, 1)
    assert classes.classify([visit, moved], MI, START, START + dt.timedelta(days=due + 48)).minor == 0


def test_majors_retest_and_tamper_violations_and_every_third_minor():
    due = MI.params["service_days"].value
    recs = [(1, _wall(3), records.VIOLATION, records.VIO_MISSED_RETEST, 1, 0),
            (2, _wall(4), records.VIOLATION, records.VIO_BYPASS, 2, 0),
            (3, _wall(5), records.VIOLATION, records.VIO_POWER_CUT, 3, 0)]
    got = classes.classify(recs, MI, START, FAR)
    assert got.major == 2 and got.minor == 0
    assert {e.seq for e in got.events} == {1, 2}
    assert all(e.rule.cite == "Mich. Admin. Code R 257.301a(d)" for e in got.events)
    # three missed service dates (no visit, each 30 days after the previous date the visit would have set)
    recs = [_visit(10, due + 9, classes._day(START) + due + 40), _visit(11, due + 49, classes._day(START) + due + 80),
            _visit(12, due + 89, 0)]
    got = classes.classify(recs, MI, START, START + dt.timedelta(days=due + 90))
    assert got.minor == 3 and got.major == 1
    major = [e for e in got.events if e.cls == classes.MAJOR][0]
    assert major.rule.name == "major_minors"
    assert major.wall == max(e.wall for e in got.events if e.cls == classes.MINOR)  # made by the third


def test_a_state_without_classes_classifies_nothing():
    rec = [(1, _wall(3), records.VIOLATION, records.VIO_MISSED_RETEST, 1, 0), _sf(2, 70)]
    assert classes.classify(rec, presets.load("AZ"), START, FAR).events == ()
    assert classes.classify(rec, None, START, FAR).events == ()


def test_no_start_date_counts_no_minor_from_start_up_failures():
    recs = [_sf(1, 100, 6), _sf(2, 100, 8), _sf(3, 100, 10)]
    got = classes.classify(recs, MI, None, FAR + dt.timedelta(days=300))
    assert got.startup_failures == 3 and got.minor == 0  # and no service date known: none missed


def test_add_months_clamps_to_the_months_last_day():
    assert classes.add_months(dt.date(2026, 12, 31), 2) == dt.date(2027, 2, 28)
    assert classes.add_months(dt.date(2026, 3, 1), 2) == dt.date(2026, 5, 1)


# ---- the handset's 15-minute window, from the real firmware ------------------------------------------------
def _fail_then_pass(wait_s):
    """MI's policy; a failed start test, then a passed one wait_s later (plus the test's own time)."""
    sc = scenario.Scenario("mi-startup")
    policy = " ".join("%s=%d" % kv for kv in sorted(MI.policy().items()))
    sc.run_text('''date 2026-06-01 08:00
policy %s
key on
wait-for "BLOW" within 2m
blow brac=.045
wait-for "FAIL" within 15s
key off
wait %ds
key on
wait-for "BLOW" within 2m
blow
wait-for "PASS" within 15s
key off
wait 20m
''' % (policy, wait_s))
    assert not sc.failures, sc.failures
    sim = sc.sim
    return [r for r in (sim.log.read(s) for s in range(sim.log.first_seq(), sim.log.next_seq())) if r]


@pytest.mark.parametrize(("gap", "counted"), [(899, 0), (901, 1)])
def test_a_pass_at_14_59_after_a_fail_is_no_start_up_failure_at_15_01_it_is(gap, counted):
    probe = _fail_then_pass(840)
    results = [r for r in probe if r[2] == records.RESULT and r[5] == 1]
    took = results[1][1] - results[0][1] - 840  # the time of the second test itself
    recs = _fail_then_pass(gap - took)
    results = [r for r in recs if r[2] == records.RESULT and r[5] == 1]
    assert [r[4] for r in results] == [records.FAIL, records.PASS]
    assert results[1][1] - results[0][1] == gap
    got = classes.classify([r[:6] for r in recs], MI, dt.date(2026, 1, 1), dt.date(2026, 6, 2))
    assert got.startup_failures == counted


def test_a_cached_preset_is_read_again_once_its_file_changes(tmp_path, monkeypatch):
    import os
    import shutil

    shutil.copy(presets.DATA / "MI.toml", tmp_path / "MI.toml")
    monkeypatch.setattr(presets, "DATA", tmp_path)
    monkeypatch.setattr(presets, "_CACHE", {})
    first = presets.load_cached("MI")
    assert presets.load_cached("mi") is first
    path = tmp_path / "MI.toml"
    path.write_text(path.read_text().replace("version = 1", "version = 2"))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert presets.load_cached("MI").version == 2
    path.unlink()
    with pytest.raises(presets.PresetError):
        presets.load_cached("MI")
