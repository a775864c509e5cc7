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
