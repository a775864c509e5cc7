"""The human-readable rules page, generated from the preset files: per state, each behaviour in plain words with
its citation and how it is sourced, and the parameters left unsourced.

    .venv/bin/python -m presets.rules_page            # rewrite docs/RULES.md
    .venv/bin/python -m presets.rules_page --check    # exit 1 if docs/RULES.md is not what the presets give

`render_state` gives one state's section on its own (for the portal's driver and authority pages).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from . import RULE_PARAMS, Preset, all_presets
from .policy_spec import DEFAULTS

PAGE = Path(__file__).resolve().parent.parent / "docs" / "RULES.md"

MARKS = {"rule": "rule text", "agency": "agency page", "secondary": "secondary source (an assumption)",
         "unsourced": "not found: the conservative default"}

# the handset's words for each parameter, for the table
LABELS = {
    "fail_brac": "Fail point", "warn_brac": "Warn band", "free_restart_s": "Free restart",
    "retest_first_min_s": "First retest, earliest", "retest_first_max_s": "First retest, latest",
    "retest_next_min_s": "Later retests, earliest", "retest_next_max_s": "Later retests, latest",
    "retest_next_from": "Later retests timed from", "retest_window_s": "Time to give a retest",
    "retest_redemand": "Missed or failed retest", "temp_lock_s": "Wait after a failed start test",
    "temp_lock_repeat": "Failed tests before the wait grows", "startup_fail_s": "Start-up failure window",
    "startup_fail_vio": "Start-up failure is a violation", "service_days": "Service interval",
    "camera": "Camera", "volume_ml": "Breath volume", "recall_s": "Violation countdown",
    "outage_grace_days": "Outage grace", "startup_fail_now": "Failed start test is a violation at once",
    "startup_excuse_brac": "Retest that excuses a failed start",
}


def _value(name: str, v: int) -> str:
    if name == "startup_excuse_brac" and not v:
        return "a pass only"
    if name in ("fail_brac", "warn_brac", "startup_excuse_brac"):
        return "%d.%03d g/210 L" % divmod(v, 1000)
    if name == "retest_next_from":
        return "the previous request" if v else "the previous pass"
    if name == "retest_redemand":
        return "asked again at once" if v else "alarm until pass or key-off"
    if name in ("camera", "startup_fail_vio", "startup_fail_now"):
        return "yes" if v else "no"
    if name == "volume_ml":
        return "%d.%d L" % (v // 1000, v % 1000 // 100)
    if name.endswith("_days"):
        return "%d days" % v
    if name == "recall_s":
        return "%d days" % (v // 86400) if v % 86400 == 0 else "%d h" % (v // 3600)
    if name.endswith("_s"):
        if v == 0:
            return "off"
        return "%d min" % (v // 60) if v % 60 == 0 else "%d s" % v
    return str(v)


@dataclass(frozen=True)
class Row:
    """One behaviour of a state's rules as the pages show it (the Markdown page and the portal's pages)."""

    name: str  # the policy parameter (or the violation-class value)
    label: str  # LABELS: the handset's words for it
    value: str  # the value in plain units
    says: str  # the rule in plain words
    source: str  # rule | agency | secondary | unsourced
    cite: str  # the citation ("-" none), with why an unsourced value was chosen


def rows(p: Preset) -> list[Row]:
    """Every state-rule parameter of a preset, in RULE_PARAMS order."""
    out = []
    for name in RULE_PARAMS:
        prm = p.params[name]
        cite = prm.cite or "-"
        if prm.why:
            cite += " (%s)" % prm.why if prm.cite else ""
            if not prm.cite:
                cite = prm.why
        shown = "none" if name == "warn_brac" and prm.value >= p.params["fail_brac"].value else _value(name, prm.value)
        out.append(Row(name, LABELS[name], shown, prm.says, prm.source, cite))
    return out


def default_rows() -> list[Row]:
    """The handset's factory values of the same parameters, for a program with no state preset."""
    return [Row(name, LABELS[name], _value(name, DEFAULTS[name]), "", "unsourced", "-") for name in RULE_PARAMS]


def class_rows(p: Preset) -> list[Row]:
    """The state's violation classes the companion counts (none for a preset without [classes])."""
    return [Row(c.name, c.name, str(c.value), c.says, c.source, c.cite or "-") for c in p.classes.values()]


def render_state(p: Preset) -> list[str]:
    """The Markdown lines of one state's section."""
    out = ["## %s (%s)" % (p.name, p.state), "",
           "Preset `%s`, %s, revised %s (`presets/data/%s.toml`)." % (p.tag(), "full" if p.coverage == "full"
                                                                      else "partial: many numbers not found",
                                                                      p.revised, p.state), "",
           "| behaviour | value | in plain words | source | citation |", "|---|---|---|---|---|"]
    for r in rows(p):
        out.append("| %s | %s | %s | %s | %s |" % (r.label, r.value, r.says.replace("|", "/"), MARKS[r.source],
                                                   r.cite.replace("|", "/")))
    if p.classes:
        out += ["", "Violation classes, counted by the companion from the uploaded log "
                "(`companion/app/records/classes.py`):", ""]
        for r in class_rows(p):
            out.append("- %s (`%s` = %s; %s: %s)" % (r.says, r.name, r.value, MARKS[r.source], r.cite))
    if p.facts:
        out += ["", "Other rules of the state, kept elsewhere:", ""]
        for f in p.facts:
            where = {"handset": "the handset always does this", "companion": "a duty of the companion's reporting",
                     "service": "a duty of the service centre", "not modelled": "not modelled yet"}[f.kept_by]
            out.append("- %s (%s; %s: %s)" % (f.says, where, MARKS[f.source], f.cite or "-"))
    unsourced = p.unsourced()
    out += ["", "Unsourced (the conservative default is kept): %s." % (
        ", ".join("`%s`" % n for n in unsourced) if unsourced else "none"), ""]
    return out


def render(presets: list[Preset] | None = None) -> str:
    """The whole page."""
    presets = presets if presets is not None else all_presets()
    out = ["# State rules the handset runs", "",
           "Generated by `python -m presets.rules_page` from `presets/data/*.toml`: do not edit by hand. Each "
           "value is a policy value the companion pushes to a handset installed in that state; its source is "
           "rule text, the state agency's page, a secondary source (a labelled assumption) or none (the "
           "conservative default). The facts behind them: `../shared/design/JURISDICTIONS.md`.", "",
           "States: " + ", ".join("[%s](#%s)" % (p.name, ("%s-%s" % (p.name, p.state)).lower()) for p in presets),
           ""]
    for p in presets:
        out += render_state(p)
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text:
            print("%s is out of date: run python -m presets.rules_page" % PAGE, file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print("wrote", PAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
