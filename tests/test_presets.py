"""Jurisdiction presets (presets/data/*.toml): every one validates, carries a citation and a source mark for
every state-rule parameter, and is what a handset accepts on the companion's policy path; validation refuses a
preset that breaks the policy's bounds, its rule's range or its rule's arithmetic."""

import copy
import tomllib

import pytest

import presets
from fsm.policy import SPEC, Policy

FULL = ("AZ", "CA", "IN", "TN", "WA")
PARTIAL = ("MI", "TX")


def _raw(state):
    return tomllib.loads((presets.DATA / (state + ".toml")).read_text())


def test_the_states_with_presets_and_their_coverage():
    """Five well-sourced states are full presets, Michigan and Texas partial ones."""
    assert presets.states() == sorted(FULL + PARTIAL)
    for p in presets.all_presets():
        assert p.coverage == ("full" if p.state in FULL else "partial"), p.state
        assert p.version >= 1 and p.tag() == "%s@%d" % (p.state, p.version)


@pytest.mark.parametrize("state", FULL + PARTIAL)
def test_every_rule_parameter_has_a_source_mark_and_sourced_ones_a_citation(state):
    p = presets.load(state)
    assert set(p.params) == set(presets.RULE_PARAMS)
    defaults = {row[0]: row[1] for row in SPEC}
    for name, param in p.params.items():
        assert param.source in presets.SOURCES and param.says
        if param.source == "unsourced":
            assert param.value == defaults[name] or param.why, name
        else:
            assert param.cite, name


@pytest.mark.parametrize("state", FULL + PARTIAL)
def test_a_handset_accepts_the_preset_as_a_companion_policy(state):
    """The values go to the handset as any companion policy: all accepted, each in force afterwards."""
    p = presets.load(state)
    pol = Policy()
    values = dict(p.policy(), version=7)
    assert pol.apply(values) is None
    for name, v in p.policy().items():
        assert getattr(pol, name) == v


def test_the_state_values_the_design_page_cites():
    """A few numbers straight from JURISDICTIONS.md, so a slip in a file shows."""
    az, ca, tn, wa, ind, mi = (presets.load(s).policy() for s in ("AZ", "CA", "TN", "WA", "IN", "MI"))
    assert az["retest_next_max_s"] == 1800 and az["retest_redemand"] == 1 and az["free_restart_s"] == 180
    assert ca["fail_brac"] == 30 and ca["retest_window_s"] == 300 and ca["service_days"] == 60
    assert ca["retest_next_from"] == 1
    assert tn["camera"] == 1 and tn["service_days"] == 30 and tn["outage_grace_days"] == 0
    assert wa["free_restart_s"] == 120 and wa["temp_lock_s"] == 300 and 180 <= wa["retest_window_s"] <= 360
    assert ind["retest_first_min_s"] == 180 and ind["startup_fail_s"] == 600 and ind["startup_fail_vio"] == 1
    assert mi["startup_fail_s"] == 900 and mi["startup_fail_vio"] == 0
    for p in presets.all_presets():
        assert p.policy()["warn_brac"] >= p.policy()["fail_brac"], "no invented warn band"


def test_unsourced_parameters_are_listed():
    tx = presets.load("TX")
    assert "fail_brac" in tx.unsourced() and "service_days" not in tx.unsourced()
    assert "fail_brac" not in presets.load("AZ").unsourced()


def _refused(state, change, words):
    data = copy.deepcopy(_raw(state))
    change(data)
    with pytest.raises(presets.PresetError) as e:
        presets.parse(data)
    assert words in str(e.value), str(e.value)


def test_validation_refuses_a_preset_outside_the_policy_bounds():
    _refused("AZ", lambda d: d["params"]["fail_brac"].update(value=401), "the policy refuses it: bad fail_brac")
    _refused("AZ", lambda d: d["params"]["retest_first_min_s"].update(value=1000, rule_min=None),
             "retest first range")
    _refused("CA", lambda d: d["params"]["retest_next_min_s"].update(value=200, rule_min=None),
             "retest next inside window")
    _refused("AZ", lambda d: d["params"]["warn_brac"].update(value=30), "warn above fail")
    _refused("TN", lambda d: d["params"]["startup_excuse_brac"].update(value=21), "excuse above fail")


def test_validation_refuses_a_value_outside_its_rule():
    _refused("AZ", lambda d: d["params"]["retest_next_max_s"].update(value=2700), "above the 1800 its rule allows")
    _refused("WA", lambda d: d["params"]["retest_window_s"].update(value=120), "below the 180 its rule allows")


def test_validation_refuses_a_rule_its_own_lockouts_break():
    """TN: three retests within 10 minutes of a failed test; with 5-minute lockouts they do not fit."""
    _refused("TN", lambda d: d["params"]["temp_lock_s"].update(value=300), "more than the rule's 600 s")
    _refused("TN", lambda d: d["params"]["temp_lock_repeat"].update(value=1), "more than the rule's 600 s")


def test_validation_refuses_missing_unknown_and_unmarked_parameters():
    _refused("IN", lambda d: d["params"].pop("camera"), "camera: missing")
    _refused("IN", lambda d: d["params"].update(no_such={"value": 1, "source": "rule", "cite": "x", "says": "x"}),
             "no_such: not a policy parameter")
    _refused("IN", lambda d: d["params"].update(alive_s={"value": 60, "source": "rule", "cite": "x", "says": "x"}),
             "not a state-rule parameter")
    _refused("IN", lambda d: d["params"]["camera"].update(source="hearsay"), "source must be one of")
    _refused("IN", lambda d: d["params"]["camera"].pop("cite"), "needs its citation")
    _refused("IN", lambda d: d["params"]["volume_ml"].update(value=2000), "keeps the default 1500")
    _refused("IN", lambda d: d["params"]["camera"].update(value=True), "whole number")
    _refused("IN", lambda d: d.update(version=0), "version must be")
    _refused("IN", lambda d: d.update(coverage="most"), "coverage")


def test_load_refuses_unknown_states_and_broken_files(tmp_path):
    with pytest.raises(presets.PresetError, match="no preset"):
        presets.load("ZZ")
    with pytest.raises(presets.PresetError, match="no preset"):
        presets.load("../AZ")
    bad = tmp_path / "AZ.toml"
    bad.write_text("state = \n")
    with pytest.raises(presets.PresetError, match="AZ.toml"):
        presets.load_file(bad)
    wrong = tmp_path / "CA.toml"
    wrong.write_text((presets.DATA / "AZ.toml").read_text())
    with pytest.raises(presets.PresetError, match="named after its state"):
        presets.load_file(wrong)


@pytest.mark.parametrize("state", FULL + PARTIAL)
def test_the_conformance_matrix_scenario_is_generated_from_the_preset(state):
    """tests/scenarios/preset_XX.scn is what tests/preset_matrix.py makes of the preset now (rewrite it with
    `python -m tests.preset_matrix`, then `make traces`); every cited parameter is named in it."""
    from tests import preset_matrix

    p = presets.load(state)
    assert preset_matrix.path(p).read_text() == preset_matrix.scenario(p)
    text = preset_matrix.path(p).read_text()
    for name, param in p.params.items():
        if param.source != "unsourced" and name != "recall_s":  # no block: the early-recall countdown is the same code in every state
            assert "# %s %s = %d (%s: %s)" % (state, name, param.value, param.source, param.cite) in text, name


def test_the_rules_page_is_generated_from_the_presets_and_linked_from_the_readme():
    """docs/RULES.md is what `python -m presets.rules_page` writes now; each state names every behaviour with its
    citation and lists what is unsourced; the README links it."""
    from presets import rules_page

    text = rules_page.PAGE.read_text()
    assert text == rules_page.render(), "docs/RULES.md is out of date: run python -m presets.rules_page"
    assert rules_page.main(["--check"]) == 0
    for p in presets.all_presets():
        section = "\n".join(rules_page.render_state(p))
        assert section in text
        for param in p.params.values():
            assert param.says in section and (param.cite or param.source == "unsourced") and param.cite in section
        assert ", ".join("`%s`" % n for n in p.unsourced()) in section
    assert "(docs/RULES.md)" in (rules_page.PAGE.parent.parent / "README.md").read_text()


def test_the_rules_page_check_fails_when_out_of_date(tmp_path, monkeypatch):
    from presets import rules_page

    page = tmp_path / "RULES.md"
    page.write_text(rules_page.render().replace("0.030", "0.040"))
    monkeypatch.setattr(rules_page, "PAGE", page)
    assert rules_page.main(["--check"]) == 1
    assert rules_page.main([]) == 0 and rules_page.main(["--check"]) == 0
