"""Example tests of the firmware's pure pieces: ticks, dates, policy, screen, code entry, BrAC, persistence."""

import ast
import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import LEFT, OK, RIGHT
from fsm import brac, codes, entry, module, persist, policy, timebase
from fsm.machine import Interlock
from fsm.screen import Screen
from storage.memory import MemoryLog, MemoryState

FSM = Path(__file__).resolve().parent.parent / "firmware" / "fsm"
ALLOWED = {"micropython", "struct", "hashlib", "binascii", "fsm", "drivers"}


def test_fsm_imports_only_the_allowed_modules():
    """firmware/fsm is pure: it imports micropython, struct, hashlib, binascii, its own package and button bits."""
    for path in FSM.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                continue
            for name in names:
                assert name in ALLOWED, "%s imports %s" % (path.name, name)


@given(st.integers(0, timebase.TICKS_PERIOD - 1), st.integers(-(2**29) + 1, 2**29 - 1))
def test_tick_add_and_diff_are_inverse_across_wrap(t, delta):
    """diff(add(t, d), t) == d for any start tick, including across the wrap point."""
    assert timebase.diff(timebase.add(t, delta), t) == delta


def test_civil_dates_match_the_calendar():
    """Device day numbers agree with Python's calendar from 2024 to 2060."""
    epoch = datetime.date(2024, 1, 1)
    for n in range(0, 36 * 366, 7):
        d = epoch + datetime.timedelta(days=n)
        assert timebase.days_from_civil(d.year, d.month, d.day) == n
        assert timebase.civil_from_days(n) == (d.year, d.month, d.day)


def test_policy_defaults_are_handset_md_numbers():
    """The default policy holds HANDSET.md's numbers."""
    p = policy.Policy()
    assert (p.warn_brac, p.fail_brac, p.start_window_s, p.free_restart_s) == (10, 20, 180, 120)
    assert (p.temp_lock_s, p.temp_lock2_s, p.temp_lock3_s) == (300, 900, 1800)
    assert (p.retest_first_min_s, p.retest_first_max_s, p.retest_next_min_s, p.retest_next_max_s) == (
        300, 900, 900, 2700)
    assert (p.retest_window_s, p.retest_beep_s, p.recall_s, p.violations_lock) == (360, 15, 432000, 3)
    assert (p.volume_ml, p.blow_ms, p.breath_temp_dc, p.aborts_lock, p.abort_lock_s) == (1500, 4500, 300, 5, 300)
    assert (p.warmup_timeout_s, p.service_days, p.service_remind_days, p.service_grace_days) == (300, 30, 7, 0)
    assert (p.code_digits, p.code_valid_h, p.codes_per_period, p.power_cut_s) == (8, 6, 2, 900)
    assert p.payment_lock == 0 and p.camera == 0 and p.unplug_allowed == 1


@pytest.mark.parametrize("values, reason", [
    ({"version": 0}, "version must go up"),
    ({"version": 2, "bogus": 1}, "unknown bogus"),
    ({"version": 2, "fail_brac": 5, "warn_brac": 10}, "warn above fail"),
    ({"version": 2, "recall_s": -1}, "bad recall_s"),
    ({"version": 2, "camera": True}, "bad camera"),
    ("not a dict", "not a map"),
])
def test_bad_policies_are_refused_whole(values, reason):
    """A policy that fails validation is refused with its reason and changes nothing."""
    p = policy.Policy()
    before = p.to_dict()
    assert p.apply(values) == reason
    assert p.to_dict() == before


def test_screen_formats_numbers_dates_and_wraps_long_messages():
    """The screen writes MM:SS, BrAC, dates, and word-wraps VIOLATION LOCKOUT onto two lines."""
    s = Screen()
    s.mmss(0, 0, 299)
    s.brac(0, 6, 12)
    assert s.line(0) == "04:59 .012"
    s.clear()
    s.date(1, 0, timebase.days_from_civil(2026, 12, 1))
    assert s.line(1) == "2026-12-01"
    s.clear()
    s.message(b"VIOLATION LOCKOUT")
    assert (s.line(0), s.line(1)) == ("VIOLATION", "LOCKOUT")


def test_code_entry_with_back_and_cancel():
    """LEFT/RIGHT scroll 0-9, back and cancel; OK takes the symbol; back reopens the previous digit."""
    e = entry.CodeEntry(8)
    e.begin(4)
    for digit in (1, 2):
        for _ in range(digit):
            assert e.press(RIGHT) == entry.TYPING
        assert e.press(OK) == entry.TYPING
    e.press(LEFT)
    e.press(LEFT)  # "<"
    assert e.press(OK) == entry.TYPING
    assert e.pos == 1 and e.symbol == 2
    e.press(OK)
    for _ in range(2):
        e.press(OK)
    assert e.value() == 1200
    e.begin(4)
    e.press(LEFT)  # "X"
    assert e.press(OK) == entry.CANCEL


def test_wrong_code_waits_escalate():
    """Three free tries, then 1, 5, 15, 60 minutes and a day for every further wrong code."""
    waits = [entry.wait_after(n, 3) for n in range(1, 10)]
    assert waits == [0, 0, 0, 60, 300, 900, 3600, 86400, 86400]


def test_brac_uses_two_point_calibration_and_temperature():
    """BrAC scales linearly between the calibration points and is divided by the cell's temperature gain."""
    m = module.ModuleData(1, 1000, 100, 16100, 80, 350, 0)
    assert brac.compute(16100, m, 350) == 80
    assert brac.compute(8100, m, 350) == 40
    assert brac.compute(100, m, 350) == 0
    assert brac.compute(50, m, 350) == 0
    # 10 degrees warmer: the cell reads 15 % high; compensation takes it back
    assert brac.compute(100 + 16000 * 115 // 100, m, 450) == 80


def test_module_eeprom_round_trip_and_corruption():
    """A module image parses back to the same data; a flipped bit or a short image is refused."""
    data = module.ModuleData(123456, 1500, 10, 15000, 80, 350, 1000)
    image = module.encode(data)
    back = module.parse(image)
    assert (back.serial, back.expiry_day, back.ref_area, back.cal_temp) == (123456, 1500, 15000, 350)
    for i in range(len(image)):
        bad = bytearray(image)
        bad[i] ^= 0x10
        assert module.parse(bytes(bad)) is None
    assert module.parse(image[:20]) is None
    assert module.parse(None) is None


class _Board:
    def __getattr__(self, name):
        return lambda *a: 0


def test_persisted_state_round_trips():
    """Everything persisted comes back identical after pack and unpack; the identity is not in the state (it
    has a store of its own)."""
    a = Interlock(_Board(), MemoryLog(), MemoryState())
    a.vlock, a.lockout_id, a.violations, a.recall_deadline = True, 77, 2, 123456
    a.code_counter, a.code_fails, a.code_wait_until, a.codes_used = 9, 4, 5555, 1
    a.payment_due, a.service_due, a.last_command_seq, a.secret, a.device_id = 1000, 1010, 42, b"k" * 32, 5
    a.retest_due, a.retest_deadline, a.fail_streak, a.fail_lock_end = 91000, 92000, 2, 93000
    a.token_lead, a.login_wait_line, a.login_wait_net = 2**31, 6, 3
    a.policy.apply({"version": 3, "fail_brac": 40})
    a.policy.apply({"fail_brac": 41}, local=True)
    data = persist.pack(a)
    assert b"k" * 32 not in bytes(data)
    b = Interlock(_Board(), MemoryLog(), MemoryState())
    assert persist.unpack(data, b) == 1
    for name in ("vlock", "lockout_id", "violations", "recall_deadline", "code_counter", "code_fails",
                 "code_wait_until", "codes_used", "payment_due", "service_due", "last_command_seq",
                 "retest_due", "retest_deadline", "fail_streak", "fail_lock_end", "token_lead", "login_wait_line",
                 "login_wait_net"):
        assert getattr(b, name) == getattr(a, name), name
    assert b.secret is None and b.device_id == 0
    assert b.policy.to_dict() == a.policy.to_dict() and b.policy.local == a.policy.local == 1


def test_unusable_state_bytes_are_refused():
    """Truncated or foreign bytes do not load."""
    m = Interlock(_Board(), MemoryLog(), MemoryState())
    good = persist.pack(m)
    assert persist.unpack(good[:-1], m) == -1
    assert persist.unpack(b"XX" + good[2:], m) == -1
    assert persist.unpack(None, m) == -1


def test_brac_edges_of_the_calibration():
    """A module with no span reads 0; one count above the zero point counts; large readings keep full
    precision; an absurdly cold cell is compensated with the sensitivity clamped at half."""
    flat = module.ModuleData(1, 1000, 100, 100, 80, 350, 0)
    assert brac.compute(5000, flat, 350) == 0
    narrow = module.ModuleData(1, 1000, 0, 1, 80, 350, 0)
    assert brac.compute(1, narrow, 350) == 80
    assert brac.compute(0, narrow, 350) == 0
    two = module.ModuleData(1, 1000, 0, 2, 80, 350, 0)
    assert brac.compute(2, two, 350) == 80
    wide = module.ModuleData(1, 1000, 0, 1, 10000, 350, 0)
    assert brac.compute(1, wide, 350) == 10000
    assert brac.compute(1, wide, 350 - 10000) == 20000


def test_code_entry_back_at_the_first_digit_stays_there():
    """`<` at the first digit goes nowhere: the cursor stays on it, showing `<`."""
    e = entry.CodeEntry(8)
    e.begin(8)
    e.press(LEFT)
    e.press(LEFT)
    assert e.press(OK) == entry.TYPING
    assert (e.pos, e.symbol) == (0, 10)
    s = Screen()
    e.render(s, 1)
    assert s.line(1) == "<_______"


def test_code_entry_shows_no_cursor_past_the_last_digit():
    """Once every digit is typed, nothing is drawn after them."""
    e = entry.CodeEntry(8)
    e.begin(4)
    for _ in range(4):
        e.press(RIGHT)
        e.press(OK)
    s = Screen()
    e.render(s, 0)
    assert s.line(0) == "1111"


def test_code_counter_found_in_the_first_hour_and_with_six_digits():
    """A code issued in device hour 0 is found, and a 6-digit policy checks 6-digit codes."""
    key = b"k" * 32
    value = codes.code_for(key, 7, 1, 3, 0, 8)
    assert entry.find_counter(key, 7, 1, value, 3, 2, 0, 6, 8) == 3
    six = codes.code_for(key, 7, 1, 4, 100, 6)
    assert entry.find_counter(key, 7, 1, six, 3, 2, 101, 6, 6) == 4
    assert entry.find_counter(key, 7, 1, six, 3, 2, 101, 6, 8) == 0


def test_baseline_after_an_abort_uses_only_readings_taken_after_it():
    """After an abort, the fuel-cell baseline averages the clean-air readings taken since, not older slots."""
    from fsm import breath
    from fsm.inputs import Inputs

    t = breath.BreathTest(policy.Policy())
    inp = Inputs()
    inp.cell_temp, inp.cell, inp.breath_temp = 350, 1000, 200
    now = 0
    t.start(now, 350)

    def poll(ms=50):
        nonlocal now
        now += ms
        return t.step(now, inp)

    for _ in range(10):
        assert poll() == breath.EV_NONE
    inp.flow = -200
    assert poll() == breath.EV_ABORT
    inp.flow, inp.cell = 0, 200
    for _ in range(60):  # the notice time: the last of these polls re-arms
        poll()
    inp.flow, inp.breath_temp = 400, 340
    events = [poll() for _ in range(100)]
    assert breath.EV_SAMPLE in events
    inp.flow = 0
    while t.phase == breath.ANALYZE:
        poll()
    assert t.area() == 0
