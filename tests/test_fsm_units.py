"""Example tests of the firmware's pure pieces: ticks, dates, policy, screen, code entry, BrAC, persistence."""

import ast
import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from board import LEFT, OK, RIGHT
from fsm import authority, brac, entry, module, persist, policy, records
from fsm.machine import CRANK_GRACE_MS, S_OFF, S_RESTART, S_START, S_TEST, Interlock
from fsm.screen import Screen
from interlock import codes, timebase
from storage.memory import MemoryLog, MemoryState

FSM = Path(__file__).resolve().parent.parent / "firmware" / "fsm"
FIRMWARE = FSM.parent
# the board contract is the module `board` itself: nothing of drivers/, and no submodule
ALLOWED = {"micropython", "struct", "hashlib", "binascii", "fsm", "board", "interlock"}


def _imports(path):
    """(module, line) for every import in a file (relative ones as '.name')."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or ""), node.lineno


def test_fsm_imports_only_the_allowed_modules():
    """firmware/fsm is pure: micropython, struct, hashlib, binascii, its own package, the shared contract
    (interlock) and the board contract (board), and no other module of the board."""
    for path in FSM.glob("*.py"):
        for name, line in _imports(path):
            top = name.split(".")[0]
            assert top in ALLOWED, "%s:%d imports %s" % (path.name, line, name)
            assert top != "board" or name == "board", "%s:%d imports %s" % (path.name, line, name)


def test_drivers_and_the_board_contract_import_nothing_of_the_state_machine():
    """The seam runs one way: board.py and every driver import nothing from fsm (fsm calls them)."""
    paths = [FIRMWARE / "board.py", *sorted((FIRMWARE / "drivers").rglob("*.py"))]
    for path in paths:
        for name, line in _imports(path):
            assert name.split(".")[0] != "fsm", "%s:%d imports %s" % (path.name, line, name)
    assert {n for n, _ in _imports(FIRMWARE / "board.py")} == {"micropython"}


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
    ({"version": 2, "startup_excuse_brac": 21}, "excuse above fail"),
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
    a.brownouts = 1
    a.policy.apply({"version": 3, "fail_brac": 40})
    a.policy.apply({"fail_brac": 41}, local=True)
    data = persist.pack(a)
    assert b"k" * 32 not in bytes(data)
    b = Interlock(_Board(), MemoryLog(), MemoryState())
    assert persist.unpack(data, b) == 1
    for name in ("vlock", "lockout_id", "violations", "recall_deadline", "code_counter", "code_fails",
                 "code_wait_until", "codes_used", "payment_due", "service_due", "last_command_seq",
                 "retest_due", "retest_deadline", "fail_streak", "fail_lock_end", "token_lead", "login_wait_line",
                 "login_wait_net", "brownouts"):
        assert getattr(b, name) == getattr(a, name), name
    assert b.secret is None and b.device_id == 0
    assert b.policy.to_dict() == a.policy.to_dict() and b.policy.local == a.policy.local == 1


def test_service_record_renews_the_brownout_excuse():
    """The flat-battery excuse for a power gap is spent per service period: a service record renews it, live
    and when the log is replayed over an older saved state."""
    log, state = MemoryLog(), MemoryState()
    m = Interlock(_Board(), log, state)
    m.boot(0, 86400 * 100)
    m.brownouts = 1
    m._dirty = True
    m._flush()
    m.technician(0, 5, records.SVC_RECORD)
    assert m.brownouts == 0
    saved = bytearray(persist.pack(m))
    saved[45] = 1  # a state saved before the service record: the replay of its record renews the excuse
    r = Interlock(_Board(), log, state)
    assert persist.unpack(saved, r) > 0
    assert r.brownouts == 1
    r._replay(log.first_seq())
    assert r.brownouts == 0


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
    for _ in range(200):  # the analysis takes 4 s (a broken one must fail here, not loop for ever)
        if t.phase != breath.ANALYZE:
            break
        poll()
    assert t.phase == breath.DONE
    assert t.area() == 0


def _breath_test():
    """A warm breath test in READY and a poll function that advances it in 50 ms steps."""
    from fsm import breath
    from fsm.inputs import Inputs

    t = breath.BreathTest(policy.Policy())
    inp = Inputs()
    inp.cell_temp, inp.cell, inp.breath_temp = 350, 1000, 200
    clock = [0]
    t.start(0, 350)

    def poll(n=1):
        events = []
        for _ in range(n):
            clock[0] += 50
            events.append(t.step(clock[0], inp))
        return events[-1] if n == 1 else events

    return t, inp, poll


def test_inhaling_during_a_blow_is_refused_as_inhaling():
    """Suction in the middle of a blow (flow at the inhale limit) ends it as DON'T INHALE, and the next attempt
    counts only once that prompt has been shown for its time and the mouthpiece is quiet."""
    from fsm import breath, records

    t, inp, poll = _breath_test()
    p = t.policy
    poll(10)
    inp.flow, inp.breath_temp = 400, 340
    poll(20)
    assert t.phase == breath.BLOW
    inp.flow = p.inhale_flow
    assert poll() == breath.EV_ABORT
    assert (t.abort, t.phase) == (records.ABORT_INHALE, breath.READY)
    inp.flow = 0
    poll(p.notice_ms // 50 - 2)
    inp.flow = 400
    poll(3)
    assert t.phase == breath.READY  # too early: the refused attempt's prompt is still up
    inp.flow = 0
    poll()
    inp.flow = 400
    poll()
    assert t.phase == breath.BLOW


class _Breath:
    """One BreathTest fed by hand: `poll(dt, n, **readings)` advances n polls of dt ms each with those
    readings (kept until changed) and returns the events."""

    def __init__(self, cell_temp=350, **policy_values):
        from fsm import breath
        from fsm.inputs import Inputs

        self.t = breath.BreathTest(policy.Policy())
        for name, value in policy_values.items():
            setattr(self.t.policy, name, value)
        self.inp = Inputs()
        self.inp.cell_temp, self.inp.cell, self.inp.breath_temp = cell_temp, 1000, 200
        self.now = 1000
        self.t.start(self.now, cell_temp)

    def poll(self, dt=50, n=1, **readings):
        for name, value in readings.items():
            setattr(self.inp, name, value)
        events = []
        for _ in range(n):
            self.now += dt
            events.append(self.t.step(self.now, self.inp))
        return events

    def blow_in(self, **readings):
        """Start a blow (the poll that moves READY to BLOW counts no time)."""
        from fsm import breath

        readings.setdefault("flow", 400)
        readings.setdefault("breath_temp", 340)
        self.poll(**readings)
        assert self.t.phase == breath.BLOW


def test_a_sample_is_complete_on_the_poll_that_reaches_both_time_and_volume():
    """4.5 s and 1.5 L, not a millisecond or a millilitre less; fractions of a mL are carried, neither lost nor
    made up."""
    from fsm import breath

    b = _Breath()
    b.blow_in()
    assert set(b.poll(50, 89)) == {breath.EV_NONE}
    assert b.poll(49) == [breath.EV_NONE]  # 4499 ms (1799 mL)
    assert b.poll(1) == [breath.EV_SAMPLE]  # 4500 ms

    b = _Breath()
    b.blow_in()
    assert set(b.poll(50, 99, flow=300)) == {breath.EV_NONE}  # 1485 mL in 4950 ms
    assert b.poll(50, flow=280) == [breath.EV_NONE]  # + 14 mL: 1499 mL
    assert b.poll(5, flow=200) == [breath.EV_SAMPLE]  # + 1 mL

    b = _Breath()
    b.blow_in()
    assert set(b.poll(50, 96, flow=310)) == {breath.EV_NONE}  # 15.5 mL a poll: 1488 mL
    assert b.poll(50) == [breath.EV_SAMPLE]  # 1503.5 mL

    b = _Breath()
    b.blow_in()
    assert b.poll(3, flow=333) == [breath.EV_NONE]  # 0.999 mL
    assert b.poll(1, flow=1001) == [breath.EV_NONE]  # + 1.001 mL: 2 mL
    assert set(b.poll(50, 99, flow=300)) == {breath.EV_NONE}  # + 1485 mL
    assert b.poll(50, flow=240) == [breath.EV_NONE]  # + 12 mL: 1499 mL in 5004 ms
    assert b.poll(3, flow=333) == [breath.EV_NONE]  # + 0.999 mL
    assert b.poll(5, flow=200) == [breath.EV_SAMPLE]  # + 1 mL


def test_blow_softer_after_half_a_second_over_the_maximum_flow():
    """Over-flow for 500 ms in a row refuses the blow as BLOW SOFTER; 499 ms does not, a poll in range (the
    maximum itself is in range) starts the count again."""
    from fsm import breath, records

    b = _Breath()
    b.blow_in(flow=1300)
    assert set(b.poll(83, 6) + b.poll(1)) == {breath.EV_NONE}  # 499 ms over
    assert b.poll(50, flow=1200) == [breath.EV_NONE]
    assert set(b.poll(83, 6, flow=1300) + b.poll(1)) == {breath.EV_NONE}
    assert b.poll(50, flow=1200) == [breath.EV_NONE]
    assert set(b.poll(100, 4, flow=1300)) == {breath.EV_NONE}
    assert b.poll(100) == [breath.EV_ABORT]  # 500 ms over
    assert b.t.abort == records.ABORT_SOFTER


def test_breath_exactly_at_the_minimum_temperature_is_warm_enough():
    """The air drawn as the sample must be breath-warm: 30.0 C is, 29.9 C is not."""
    from fsm import breath, records

    for temp, last in ((300, breath.EV_SAMPLE), (299, breath.EV_ABORT)):
        b = _Breath()
        b.blow_in(breath_temp=340)
        events = b.poll(50, 89) + b.poll(50, breath_temp=temp)
        assert events[-1] == last and set(events[:-1]) == {breath.EV_NONE}, temp
    assert b.t.abort == records.ABORT_TEMP


def test_hum_must_be_heard_for_four_fifths_of_the_blow():
    """Where policy asks for a hum, it must sound for at least 80 % of the blow: 3.6 s of 4.5 s is enough,
    3.55 s is not."""
    from fsm import breath, records

    for hum_polls, last in ((72, breath.EV_SAMPLE), (71, breath.EV_ABORT)):
        b = _Breath(hum_required=1)
        b.blow_in()
        events = b.poll(50, hum_polls, hum=1) + b.poll(50, 90 - hum_polls, hum=0)
        assert events[-1] == last and set(events[:-1]) == {breath.EV_NONE}, hum_polls
        if last == breath.EV_ABORT:
            assert b.t.abort == records.ABORT_HUM
    b = _Breath(hum_required=1)
    b.blow_in()
    b.poll(50, 71, hum=1)
    b.poll(49)  # 3599 ms of hum
    b.poll(50, 18, hum=0)
    assert b.poll(1) == [breath.EV_ABORT]  # at 4500 ms: 1 ms short of four fifths
    assert b.t.abort == records.ABORT_HUM


def test_a_blow_that_ends_early_is_told_what_fell_short():
    """A blow that stops before the sample is complete: BLOW LONGER when its time fell further short than its
    volume, BLOW HARDER when its volume did or both fell equally short."""
    from fsm import breath, records

    for flow, reason in ((300, records.ABORT_HARDER), (400, records.ABORT_HARDER), (500, records.ABORT_VOLUME)):
        b = _Breath(volume_ml=2000, blow_ms=5000)  # 0.4 mL a ms: 400 mL/s falls equally short of both
        b.blow_in(flow=flow)
        b.poll(50, 40)
        assert b.poll(flow=0) == [breath.EV_ABORT]
        assert b.t.abort == reason, flow


def test_baseline_is_the_mean_of_the_last_eight_quiet_readings():
    """The fuel-cell baseline averages (rounding down) the last eight readings before the blow, not older
    ones and not the reading at the end of the blow; the area above it is in counts x 50 ms, rounded down, and
    the analysis lasts its full time."""
    from fsm import breath

    b = _Breath()
    for cell in (5000, 5000, 1000, 1000, 1000, 1000, 1000, 1000, 1007, 1000):
        b.poll(cell=cell)
    b.blow_in()
    events = b.poll(50, 89)
    assert b.poll(50, cell=1100) == [breath.EV_SAMPLE]  # the alcohol arrives as the sample completes
    assert b.poll(49, cell=1001) == [breath.EV_NONE]  # 49 counts x ms
    assert set(b.poll(50, 79, cell=1000)) == {breath.EV_NONE}  # 3999 ms of analysis
    assert b.poll(1) == [breath.EV_RESULT]
    assert b.t.area() == 0
    assert breath.EV_SAMPLE not in events

    b = _Breath()  # a blow right after the prompt: the baseline is what was read before it
    b.poll(50, 2, cell=1000)
    b.blow_in()
    b.poll(50, 90)
    b.poll(50, 80)
    assert b.t.phase == breath.DONE and b.t.area() == 0


def test_warm_up_ends_at_the_target_and_shows_whole_tens():
    """A cell within 2 C of the target starts ready; a colder one heats until it reaches the target, showing
    its progress in whole tens from 0 to 90 %."""
    from fsm import breath

    assert _Breath(cell_temp=330).t.phase == breath.READY
    b = _Breath(cell_temp=329)
    assert b.t.phase == breath.HEAT
    b = _Breath(cell_temp=200)
    shown = []
    for temp in (190, 200, 214, 215, 229, 230, 335, 349):
        assert b.poll(cell_temp=temp) == [breath.EV_NONE]
        shown.append(b.t.progress)
    assert shown == [0, 0, 0, 10, 10, 20, 90, 90]
    assert b.poll(cell_temp=350) == [breath.EV_READY]
    assert b.t.phase == breath.READY

    b = _Breath(cell_temp=300, heat_target_dc=450)
    b.t.policy.heat_target_dc = 300  # a new policy lowers the target to where the warm-up began
    assert b.poll(cell_temp=290) == [breath.EV_NONE]
    assert b.t.progress == 0


def test_heater_holds_the_cell_in_a_one_degree_band_above_the_target():
    """On below the target, off from 1 C above it, and in between it keeps what it was doing."""
    from fsm import breath

    t = breath.BreathTest(policy.Policy())
    target = t.policy.heat_target_dc
    assert t.heater_wanted(target - 1, False) is True
    assert t.heater_wanted(target, False) is False
    assert t.heater_wanted(target, True) is True
    assert t.heater_wanted(target + 9, True) is True
    assert t.heater_wanted(target + 10, True) is False


def test_a_tick_that_goes_back_counts_no_time():
    """Time never runs backwards inside a blow: a poll stamped earlier than the last adds nothing."""
    from fsm import breath

    b = _Breath()
    b.blow_in()
    b.poll(50, 89)
    b.now -= 100
    b.poll(50)  # 50 ms earlier than the last poll
    assert b.poll(49) == [breath.EV_NONE]  # 4499 ms counted
    assert b.poll(1) == [breath.EV_SAMPLE]


def test_a_new_attempt_after_an_abort_needs_the_prompt_time_and_a_quiet_mouthpiece():
    """After a refused blow the next attempt counts only once its prompt has been up for the notice time and
    the flow has fallen below half the minimum (and is not suction); inhaling at the limit and a blow at
    exactly the minimum flow are what they are."""
    from fsm import breath, records

    b = _Breath()
    b.poll(50, 2)
    assert b.poll(flow=b.t.policy.inhale_flow) == [breath.EV_ABORT]  # suction at the limit, while ready
    assert b.t.abort == records.ABORT_INHALE
    b.poll(3000, flow=0)
    assert b.poll(flow=b.t.policy.flow_min) == [breath.EV_NONE]
    assert b.t.phase == breath.BLOW

    def armed_after(flow, wait=3000, **values):
        """Whether a blow counts after an abort, `wait` ms of `flow` and a poll of blowing."""
        b = _Breath(**values)
        b.poll(flow=-200)
        b.poll(wait, flow=flow)
        b.poll(flow=400)
        return b.t.phase == breath.BLOW

    assert not armed_after(0, wait=2999)
    assert armed_after(0, wait=3000)
    for flow, armed in ((75, False), (74, True), (60, True), (-100, False), (-99, True)):
        assert armed_after(flow) is armed, flow
    assert not armed_after(75, flow_min=151)


def _scenario_on(text, **handset):
    """Scenario lines run on a SimHandset made with these arguments (set-ups a .scn file cannot ask for);
    the expectations that failed."""
    from host_sim import scenario
    from host_sim.handset import SimHandset

    sc = scenario.Scenario("unit")
    sc.sim = SimHandset(**handset)
    sc.run_text(text)
    return sc.failures


def test_an_unprovisioned_handset_refuses_every_code():
    """With no secret there is no unlock key: a typed code is booked as a wrong one and clears nothing."""
    failures = _scenario_on("""
policy recall_s=3600
key on
wait-for "BLOW" within 10s
hotwire
key off
wait 2h
key on
expect display "VIOLATION" "LOCKOUT"
press OK
expect display "ENTER CODE"
code clear value=00000001
expect display "WRONG CODE"
expect log CODE a=0 b=1
expect no-log CLEAR
wait 5s
expect display "VIOLATION" "LOCKOUT"
""", provision=False)
    assert not failures, "\n".join(failures)


def _in_start_window():
    """An Interlock polled with hand-set inputs through a passed start test into START: (machine, inputs, tick)."""
    from fsm.inputs import Inputs
    from host_sim.world import default_module

    m = Interlock(_Board(), MemoryLog(), MemoryState(), seed=3)
    inp = Inputs()
    inp.rtc = 90_000_000
    inp.module_present = True
    inp.module = default_module(start_wall=inp.rtc)
    inp.cell_temp = 355
    now = timebase.TICKS_PERIOD - 100  # the tick counter wraps during the test
    m.boot(now, inp.rtc)
    m.step(now, inp)
    inp.ignition = True
    inp.flow, inp.breath_temp = 400, 340
    for _ in range(101):
        now = timebase.add(now, 50)
        m.step(now, inp)
    inp.flow, inp.breath_temp = 0, 200
    for _ in range(400):
        if m.state == S_START:
            return m, inp, now
        now = timebase.add(now, 50)
        m.step(now, inp)
    raise AssertionError("no START")


def test_a_crank_being_judged_holds_the_start_and_restart_windows_open_for_the_grace_only():
    """CRANK_GRACE_MS: a window that ends while the supply shows a crank not decided yet (inp.cranking) stays open
    up to 14 s longer and not a moment past, so a crank that never ends cannot keep the relay on: the start
    window (timed in ticks) and the free restart's (in device seconds) alike."""
    m, inp, now = _in_start_window()
    since = m._state_since
    inp.cranking = True
    m.step(timebase.add(since, m.policy.start_window_s * 1000 + CRANK_GRACE_MS - 1), inp)
    assert m.state == S_START
    m.step(timebase.add(since, m.policy.start_window_s * 1000 + CRANK_GRACE_MS), inp)
    assert m.state == S_TEST

    m, inp, now = _in_start_window()
    inp.engine = True
    now = timebase.add(now, 50)
    m.step(now, inp)
    inp.engine = False  # a stall: the free restart's window
    now = timebase.add(now, 50)
    m.step(now, inp)
    assert m.state == S_RESTART
    inp.cranking = True
    end = m.restart_until + CRANK_GRACE_MS // 1000
    while m.wall < end:
        assert m.state == S_RESTART, m.wall - m.restart_until
        now = timebase.add(now, 1000)
        m.step(now, inp)
    assert m.state == S_TEST


def test_a_start_window_ended_by_the_key_leaves_no_restart_at_any_device_time():
    """Safety invariant 1 (HANDSET.md): the relay closes only in a start window after a PASS or a free restart's
    window. A start window that the key-off ended leaves neither, whatever device time a signed clock set brings
    next, even its very first second (2024-01-01 00:00:00)."""
    m, inp, now = _in_start_window()
    inp.ignition = False
    now = timebase.add(now, 50)
    m.step(now, inp)
    assert m.state == S_OFF
    m.set_time(now, 0, records.SRC_REMOTE)
    inp.ignition = True
    now = timebase.add(now, 50)
    m.step(now, inp)
    assert m.state == S_TEST


def _no_restart_at_the_first_device_second(before):
    """Run `before` (it ends with the key off and no free restart due), then a signed clock set to device time 0
    (2024-01-01 00:00:00: the companion's time is taken as it is) and the key on within that second: the
    expectations that failed, and whether the handset entered RESTART (the relay closed without a test)."""
    from host_sim import scenario

    sc = scenario.Scenario("unit")
    sc.run_text(before)
    fsm = sc.sim.fsm
    start = sc.sim.log.next_seq()
    fsm.set_time(sc.sim.ticks(), 0, records.SRC_REMOTE)
    sc.run_text("key on\nwait 2s\nexpect state TEST\n")
    log = sc.sim.log
    restarted = any(log.read(s)[2:4] == (records.STATE, S_RESTART) for s in range(start, log.next_seq()))
    return sc.failures, restarted


def test_a_free_restart_window_that_ran_out_leaves_no_restart_at_any_device_time():
    """Safety invariant 1 (HANDSET.md): the relay closes only after a PASS or inside a free restart's window. A
    free restart's window that ran out unused leaves none, whatever device time a signed clock set brings next."""
    failures, restarted = _no_restart_at_the_first_device_second("""
policy free_restart_s=120
key on
wait-for "BLOW" within 10s
blow
wait-for "START" within 15s
crank
wait 5s
stall
expect state RESTART
wait 2m
wait-for "BLOW" within 10s
key off
wait 5s
""")
    assert not failures, "\n".join(failures)
    assert not restarted


def test_a_cleared_violation_lockout_still_needs_a_test_at_any_device_time():
    """A violation lockout's clear leaves no free restart (HANDSET.md: after a clear a breath test is still
    required), whatever device time a signed clock set brings next."""
    failures, restarted = _no_restart_at_the_first_device_second("""
policy recall_s=3600
key on
wait-for "BLOW" within 10s
hotwire
key off
wait 2h
key on
expect display "VIOLATION" "LOCKOUT"
tech clear
expect log CLEAR a=3 b=3
key off
wait 5s
""")
    assert not failures, "\n".join(failures)
    assert not restarted


def test_a_drive_with_no_free_restart_leaves_none_at_any_device_time():
    """The engine started in the start window ends it; a stall or key-off while a violation's recall countdown runs
    gives no free restart (HANDSET.md: not while a violation is pending), whatever device time a signed clock
    set brings next."""
    failures, restarted = _no_restart_at_the_first_device_second("""
key on
wait-for "BLOW" within 10s
hotwire
expect log VIOLATION
wait-for "RETEST - BLOW" within 10s
blow
wait-for "DRIVE SAFELY" within 15s
stall
key off
wait 5s
key on
wait-for "BLOW" within 10s
blow
wait-for "START" within 15s
crank
expect state DRIVING
stall
key off
wait 5s
""")
    assert not failures, "\n".join(failures)
    assert not restarted


def test_the_aborts_an_abort_lockout_spent_count_for_nothing_at_any_device_time():
    """5 aborts in 15 minutes lock for 5 minutes (HANDSET.md), and the lock spends them: after it, whatever device
    time a signed clock set brings next (even its first minutes, 2024-01-01), one abort counts as one."""
    from host_sim import scenario

    sc = scenario.Scenario("unit")
    sc.run_text("""
key on
wait-for "BLOW" within 10s
blow volume=1.0 duration=2
wait 4s
blow volume=1.0 duration=2
wait 4s
blow volume=1.0 duration=2
wait 4s
blow volume=1.0 duration=2
wait 4s
blow volume=1.0 duration=2
expect log ABORT a=1 b=5
expect log LOCKOUT a=2 b=300
wait-for "BLOW" within 6m
key off
wait 5s
""")
    sc.sim.fsm.set_time(sc.sim.ticks(), 0, records.SRC_REMOTE)
    sc.run_text("""
mark
key on
wait-for "BLOW" within 10s
blow volume=1.0 duration=2
expect log ABORT a=1 b=1
expect no-log LOCKOUT
""")
    assert not sc.failures, "\n".join(sc.failures)


@pytest.mark.parametrize("sync_day, locked", [("2026-11-19", False), ("2026-11-20", True), ("2026-11-21", True)])
def test_a_sync_since_the_due_day_ends_the_outage_grace(sync_day, locked):
    """outage_grace_days (rule_outage_grace.scn) holds the PAYMENT DUE lock back only while no sync has come since
    the due day (on it or after): with one, the handset could have learnt of a payment, and the lock applies."""
    from host_sim import scenario

    sc = scenario.Scenario("unit")
    sc.run_text("""
date %s 08:00
policy payment_lock=1 outage_grace_days=3
desired payment=2026-11-20
""" % sync_day)
    sc.sim.fsm.record(records.SYNC, authority.SYNC_OK)
    sc.run_text("""
tech time 2026-11-22 08:00
key on
wait 2s
expect state %s
""" % ("PAYMENT" if locked else "TEST"))
    assert not sc.failures, "\n".join(sc.failures)


def test_a_start_up_failure_rule_that_the_policy_drops_forgets_the_pending_fail():
    """startup_fail_s set to 0 while a failed start test waits for its pass: the fail is forgotten, and saved so by
    the poll that forgets it (machine.py rule 6: what changed is saved before the poll ends, or a power cut brings
    the fail back); when the rule comes back it books no start-up failure for that fail."""
    from host_sim import scenario

    sc = scenario.Scenario("unit")
    sc.run_text("""
policy startup_fail_s=600 temp_lock_s=120
key on
wait-for "BLOW" within 10s
blow brac=.045
wait-for "FAIL" within 10s
""")
    fsm = sc.sim.fsm
    assert fsm.startup_fail_at
    sc.run_text("policy startup_fail_s=0")
    assert fsm.startup_fail_at == 0
    saved = Interlock(_Board(), MemoryLog(), MemoryState())
    assert persist.unpack(fsm.store.load(), saved) > 0
    assert saved.startup_fail_at == 0
    sc.run_text("""
wait 1m
policy startup_fail_s=600
wait 15m
expect no-log STARTUP_FAIL
""")
    assert not sc.failures, "\n".join(sc.failures)


def test_a_passing_start_test_above_the_excuse_level_ends_a_pending_start_up_failure():
    """startup_fail_s (MI R 257.301a(j): a pass within 15 minutes means no start-up failure): a pass that reads
    above startup_excuse_brac (here .005, the level being 0) ends the pending fail as any pass does: no
    STARTUP_FAIL, then or after the window."""
    from host_sim import scenario

    sc = scenario.Scenario("unit")
    sc.run_text("""
policy startup_fail_s=600 startup_fail_vio=1 temp_lock_s=120
key on
wait-for "BLOW" within 10s
blow brac=.045
wait-for "FAIL" within 10s
wait-for "BLOW" within 140s
blow brac=.005
wait-for "PASS" within 10s
expect log RESULT a=5 b=1 c=1
key off
wait 11m
expect no-log STARTUP_FAIL
expect no-log VIOLATION
""")
    assert not sc.failures, "\n".join(sc.failures)
    assert sc.sim.fsm.startup_fail_at == 0


def test_a_start_test_s_analysis_lost_while_a_fail_is_pending_books_the_start_up_failure_from_that_fail():
    """A start test's analysis lost (the module pulled) counts as a failed test, not as a pass or an excusing test:
    with a fail already pending, the start-up failure is booked when that first fail's window ends, naming it."""
    from host_sim import scenario

    sc = scenario.Scenario("unit")
    sc.run_text("""
policy startup_fail_s=600 startup_fail_vio=1 temp_lock_s=120
key on
wait-for "BLOW" within 10s
blow brac=.045
wait-for "FAIL" within 10s
wait-for "BLOW" within 140s
blow brac=.080
expect display "ANALYZING"
module remove
expect log FAULT a=3 b=1 c=6
module insert serial=1001
key off
wait 9m
expect log STARTUP_FAIL b=600 c=1
""")
    assert not sc.failures, "\n".join(sc.failures)
    log = sc.sim.log
    got = [log.read(s) for s in range(log.first_seq(), log.next_seq())]
    first_fail = next(r for r in got if r[2] == records.RESULT and r[4] == records.FAIL)
    booked = [r for r in got if r[2] == records.STARTUP_FAIL]
    assert len(booked) == 1 and booked[0][3] == first_fail[1]
