"""The scenario corpus on CPython (no Node needed): every expectation holds, the trace is the recorded one,
and after every poll the saved state is the state machine's persisted state.

Each scenario's event trace is kept in tests/scenarios/traces/NAME.trace; `make traces` rewrites them after
an intended change of behaviour (review the diff: every line is something the handset did or showed).
"""

import pytest

from fsm import persist
from host_sim import scenario
from runtime import Runtime
from tests.interpreters import ROOT
from tests.scenario_xfail import ExpectationsFailed, params, reason

SCENARIOS = sorted((ROOT / "tests" / "scenarios").glob("*.scn"))
TRACES = ROOT / "tests" / "scenarios" / "traces"
# not compared: the heartbeat (it goes to its own stamp) and the log position at the save (records that
# change nothing persistent do not cause a save)
_LAST_ALIVE = slice(84, 88)
_LOG_SEQ = slice(100, 104)


def recorded_trace(sc):
    """The part of a run's report that is kept: events and the result (the display lines are events too)."""
    lines = scenario.report(sc)
    return "\n".join(lines[lines.index("== events =="):]) + "\n"


def saved_state_is_current(monkeypatch):
    """Make every poll that logged something check that the store holds what the state machine would save."""
    poll = Runtime.poll

    def checked_poll(self, now):
        before = self.log.next_seq()
        poll(self, now)
        fsm = self.fsm
        # polls that logged nothing changed nothing persistent (every such change has its record)
        if self.failed or fsm.store.load() is None or self.log.next_seq() == before:
            return
        now_bytes = bytearray(persist.pack(fsm))
        saved = bytearray(fsm.store.load())
        now_bytes[_LAST_ALIVE] = saved[_LAST_ALIVE] = b"\x00" * 4
        now_bytes[_LOG_SEQ] = saved[_LOG_SEQ] = b"\x00" * 4
        assert saved == now_bytes, "a persistent change was not saved by the end of the poll"

    monkeypatch.setattr(Runtime, "poll", checked_poll)


@pytest.mark.parametrize("path", params(SCENARIOS))
def test_scenario_expectations_hold(path, monkeypatch):
    """Every expectation in the scenario holds on CPython, the state is saved as it changes, and the trace
    is the recorded one (an XFAIL scenario: its expectations fail, tests/scenario_xfail.py)."""
    saved_state_is_current(monkeypatch)
    sc = scenario.run_file(str(path))
    xfail = reason(path) is not None  # its trace is compared before its failing expectations
    if sc.failures and not xfail:
        raise ExpectationsFailed("\n".join(sc.failures))
    golden = TRACES / (path.stem + ".trace")
    got = recorded_trace(sc)
    want = golden.read_text()
    if got != want:
        a, b = want.splitlines(), got.splitlines()
        first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        raise AssertionError("trace differs from %s at line %d:\nrecorded: %s\nnow:      %s" % (
            golden.name, first + 1, a[first] if first < len(a) else "<end>", b[first] if first < len(b) else "<end>"))
    if sc.failures:
        raise ExpectationsFailed("\n".join(sc.failures))


def test_every_scenario_has_a_recorded_trace_and_every_trace_a_scenario():
    """No scenario runs unchecked against a trace, and no trace is left over from a removed scenario."""
    assert sorted(p.stem for p in TRACES.glob("*.trace")) == sorted(p.stem for p in SCENARIOS)


def test_a_persistent_change_left_unsaved_is_caught(monkeypatch):
    """With the state machine's save skipped once, the per-poll check fails."""
    from fsm.machine import Interlock

    saved_state_is_current(monkeypatch)
    real = Interlock._flush
    skipped = []

    def flush_but_once(self):
        if self.violations and not skipped:
            skipped.append(1)
            self._dirty = False
            return
        real(self)

    monkeypatch.setattr(Interlock, "_flush", flush_but_once)
    sc = scenario.Scenario("unsaved")
    with pytest.raises(AssertionError, match="not saved"):
        sc.run_text('key on\nwait-for "BLOW" within 10s\nhotwire\n')
def test_a_scenario_with_a_wrong_expectation_fails():
    """A scenario whose expectation does not hold reports it (the check above can fail)."""
    sc = scenario.Scenario("wrong")
    sc.run_text('key on\nwait-for "BLOW" within 10s\nexpect relay on\n')
    assert sc.failures == ["wrong:3: relay is off"]


def test_no_log_expectation_fails_on_a_matching_record_and_mark_hides_older_ones():
    """`expect no-log` fails when a matching record follows the mark; `mark` hides the records before it."""
    sc = scenario.Scenario("nolog")
    sc.run_text("key on\nexpect no-log IGNITION a=1\nexpect no-log IGNITION a=0\nmark\nexpect no-log IGNITION\n"
                "expect log IGNITION\n")
    assert len(sc.failures) == 2
    assert sc.failures[0].startswith("nolog:2: IGNITION record a=1 #")
    assert sc.failures[1].startswith("nolog:6: no IGNITION record")


def test_beep_expectation_counts_since_the_mark():
    """`expect beeps` counts the buzzer patterns sounded since the mark and fails on another count."""
    sc = scenario.Scenario("beeps")
    sc.run_text('key on\nwait-for "BLOW" within 10s\nexpect beeps PROMPT 1\nexpect beeps PROMPT 2\nmark\n'
                "expect beeps PROMPT 0\n")
    assert sc.failures == ["beeps:4: 1 PROMPT beeps since the mark"]
