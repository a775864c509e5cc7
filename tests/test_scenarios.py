"""The scenario corpus on CPython: every expectation of every scenario holds (no Node needed)."""

import pytest

from host_sim import scenario
from tests.interpreters import ROOT

SCENARIOS = sorted((ROOT / "tests" / "scenarios").glob("*.scn"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_scenario_expectations_hold(path):
    """Every expectation in the scenario holds when it runs on CPython."""
    sc = scenario.run_file(str(path))
    assert not sc.failures, "\n".join(sc.failures)


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
