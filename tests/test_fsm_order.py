"""The exact order of the state machine's actions at its transitions (as Zephyr SMF's tests record them).

Rules, in order, for one poll:
1. input edges are logged first (IGNITION, ENGINE, MODULE, HANDSET), each followed by what it causes;
2. a transition logs STATE (new, old) before it sets the relay for the new state;
3. the display is sent once, after all of it, and only when it changed.
"""

from board import Board
from fsm import records
from fsm.inputs import Inputs
from fsm.machine import S_DRIVING, S_OFF, S_RESULT, S_START, S_TEST, Interlock
from host_sim.world import default_module
from storage.memory import MemoryLog, MemoryState


class RecordingBoard(Board):
    """Board verbs that append what was called to a shared action list."""

    def __init__(self, actions):
        self.actions = actions

    def relay(self, on):
        self.actions.append("relay " + ("on" if on else "off"))

    def horn(self, on):
        self.actions.append("horn " + ("on" if on else "off"))

    def lights(self, on):
        self.actions.append("lights " + ("on" if on else "off"))

    def beep(self, pattern):
        self.actions.append("beep %d" % pattern)

    def heater(self, on):
        pass  # regulation noise; not part of the transition rules

    def show(self, buf):
        self.actions.append("show " + bytes(buf[:16]).decode().rstrip() + "|" + bytes(buf[16:]).decode().rstrip())

    def photo(self, reason, photo_id):
        self.actions.append("photo %d" % reason)
        return 0

    def pump(self):
        self.actions.append("pump")

    def set_clock(self, wall):
        self.actions.append("clock")


class RecordingLog(MemoryLog):
    """MemoryLog that also appends each record's type (and for STATE its states) to the action list."""

    def __init__(self, actions):
        super().__init__()
        self.actions = actions

    def append(self, wall, rtype, a=0, b=0, c=0, photo=0):
        name = records.NAMES[rtype]
        self.actions.append("log %s %d %d" % (name, a, b) if rtype == records.STATE else "log " + name)
        return super().append(wall, rtype, a, b, c, photo)


def _machine():
    actions = []
    m = Interlock(RecordingBoard(actions), RecordingLog(actions), MemoryState(), seed=3)
    inp = Inputs()
    inp.rtc = 90_000_000
    inp.module_present = True
    inp.module = default_module(start_wall=inp.rtc)
    inp.cell_temp = 355
    now = 2**30 - 100
    m.boot(now, inp.rtc)
    m.step(now, inp)
    del actions[:]
    return m, inp, now, actions


def _poll(m, inp, now, ms):
    now = (now + ms) % 2**30
    m.step(now, inp)
    return now


def _poll_until(m, inp, now, ms, reached, most=20000):
    """Poll every ms until reached() holds; fails after `most` polls (a broken machine must not hang the test)."""
    for _ in range(most):
        if reached():
            return now
        now = _poll(m, inp, now, ms)
    raise AssertionError("not reached in %d polls" % most)


def test_ignition_on_logs_the_edge_then_the_transition_then_shows():
    """Key on: IGNITION, then STATE OFF->TEST and TEST_REQUEST, then one display update."""
    m, inp, now, actions = _machine()
    inp.ignition = True
    _poll(m, inp, now, 50)
    assert actions == ["log IGNITION", "log STATE %d %d" % (S_TEST, S_OFF), "log TEST_REQUEST", "beep 2",
                       "show BLOW|"]


def test_pass_then_start_window_then_engine_start():
    """A pass logs RESULT and STATE before display; the window closes the relay after its STATE record;
    an engine start logs ENGINE, STATE, then opens the relay."""
    m, inp, now, actions = _machine()
    inp.ignition = True
    now = _poll(m, inp, now, 50)
    inp.flow, inp.breath_temp = 400, 340
    for _ in range(100):
        now = _poll(m, inp, now, 50)
    inp.flow, inp.breath_temp = 0, 200
    del actions[:]
    now = _poll_until(m, inp, now, 50, lambda: m.state == S_RESULT)
    assert actions == ["log RESULT", "log STATE %d %d" % (S_RESULT, S_TEST), "show PASS|"]
    del actions[:]
    now = _poll_until(m, inp, now, 50, lambda: m.state == S_START)
    assert actions == ["log STATE %d %d" % (S_START, S_RESULT), "relay on", "show PASS|START 03:00"]
    del actions[:]
    inp.engine = True
    _poll(m, inp, now, 50)
    assert actions == ["log ENGINE", "log STATE %d %d" % (S_DRIVING, S_START), "relay off", "show DRIVE SAFELY|"]


def test_missed_retest_order():
    """At the end of the retest window: RETEST missed, VIOLATION, horn, lights, ALARM, then the display."""
    m, inp, now, actions = _machine()
    inp.ignition = True
    now = _poll(m, inp, now, 50)
    inp.flow, inp.breath_temp = 400, 340
    for _ in range(100):
        now = _poll(m, inp, now, 50)
    inp.flow, inp.breath_temp = 0, 200
    now = _poll_until(m, inp, now, 50, lambda: m.state == S_START)
    inp.engine = True
    now = _poll(m, inp, now, 50)
    now = _poll_until(m, inp, now, 250, lambda: m.state != S_DRIVING)
    for _ in range(6 * 60 * 4 - 2):
        now = _poll(m, inp, now, 250)
    del actions[:]
    now = _poll_until(m, inp, now, 250, lambda: m.alarm)
    assert [a for a in actions if not a.startswith("beep")] == [
        "log RETEST", "log VIOLATION", "horn on", "lights on", "log ALARM", "show RETEST - BLOW|MISSED TEST"]


def test_display_is_sent_only_when_it_changes():
    """Polls that change nothing on screen send nothing to the display."""
    m, inp, now, actions = _machine()
    for _ in range(50):
        now = _poll(m, inp, now, 1000)
    assert not [a for a in actions if a.startswith("show")]
