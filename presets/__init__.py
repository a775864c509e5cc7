"""Jurisdiction presets: each state's interlock rule as policy values, every one with its citation.

A preset is a versioned TOML file in `presets/data/` (one per state). Every state-rule parameter of the handset
policy (`RULE_PARAMS`) is given in every preset, with how it is sourced:

    rule       the rule or statute text says it
    agency     the state agency's own page says it
    secondary  a vendor, a law firm or an older rule says it: a labelled assumption
    unsourced  nothing found: the value is the policy's conservative default (or a stated safer choice)

The data lives outside firmware/: the handset only ever sees policy values, pushed by the companion on the
existing policy path (`to_policy`). `validate` refuses a preset that breaks the policy's own bounds
(`fsm.policy.Policy.check`), the range its rule allows, or a rule's own arithmetic (`retests_after_fail`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from .policy_spec import DEFAULTS, NAMES, check_policy

DATA = Path(__file__).parent / "data"
SOURCES = ("rule", "agency", "secondary", "unsourced")
COVERAGE = ("full", "partial")

# the policy values a preset sets: every one of them in every preset, each with its citation and source mark
RULE_PARAMS = (
    "fail_brac", "warn_brac", "free_restart_s", "retest_first_min_s", "retest_first_max_s", "retest_next_min_s",
    "retest_next_max_s", "retest_next_from", "retest_window_s", "retest_redemand", "temp_lock_s",
    "temp_lock_repeat", "startup_fail_s", "startup_fail_vio", "service_days", "camera", "volume_ml", "recall_s",
    "outage_grace_days", "startup_fail_now", "startup_excuse_brac",
)

# the violation classes a state's rule defines and the companion counts from the uploaded log
# (companion/app/records/classes.py): name -> what the value means. A preset gives none, or every one.
CLASS_KEYS = {
    "startup_apart_s": "start-up failures closer together than this count once (seconds)",
    "minor_startups": "this many counted start-up failures make a minor violation",
    "minor_after_months": "start-up failures count toward a minor violation only this many months into the program",
    "service_report_days": "not reporting for service within this many days of the date is a minor violation",
    "major_minors": "this many minor violations make a major violation",
    "major_retest": "1: a rolling-retest violation (missed, failed or refused retest) is a major violation",
    "major_tamper": "1: tampering or circumvention (bypass, tamper, disconnect) is a major violation",
}


# the most a breath test takes, from request to result, when the driver blows at once (warm-up in the cold
# excluded): used to check that a rule's "N retests within W" fits the lockouts the preset sets
TEST_S = 60


class PresetError(ValueError):
    """A preset file that does not parse or does not validate; the message names every problem."""


@dataclass(frozen=True)
class Param:
    """One policy value of a preset: the value, how it is sourced, the citation, and words for the rules page."""

    name: str
    value: int
    source: str
    cite: str
    says: str
    why: str = ""
    rule_min: int | None = None
    rule_max: int | None = None


@dataclass(frozen=True)
class Fact:
    """A rule of the state that is not a handset policy value (reporting, calibration, fixed firmware behaviour)."""

    says: str
    source: str
    cite: str
    kept_by: str  # who keeps it: "handset" (fixed firmware behaviour), "companion", "service", "not modelled"


@dataclass(frozen=True)
class ClassRule:
    """One number of a state's violation classes, with its citation and plain words."""

    name: str
    value: int
    source: str
    cite: str
    says: str


@dataclass(frozen=True)
class Preset:
    """A state's preset, as loaded from its file."""

    state: str
    name: str
    version: int
    coverage: str
    revised: str
    params: dict[str, Param]
    facts: tuple[Fact, ...] = ()
    retests_after_fail: tuple[int, int] | None = None  # (count, within seconds)
    classes: dict[str, ClassRule] = field(default_factory=dict)  # the state's violation classes (CLASS_KEYS)
    path: Path | None = field(default=None, compare=False)

    def policy(self) -> dict[str, int]:
        """The policy values this preset sets (no version: the companion gives that)."""
        return {name: p.value for name, p in self.params.items()}

    def unsourced(self) -> list[str]:
        """The parameters nothing was found for (they keep the conservative value)."""
        return [name for name in RULE_PARAMS if self.params[name].source == "unsourced"]

    def tag(self) -> str:
        """What the companion records as the preset in force, e.g. "AZ@1"."""
        return "%s@%d" % (self.state, self.version)


def _int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def parse(data: dict[str, Any], path: Path | None = None) -> Preset:
    """A Preset from a parsed TOML document; PresetError lists every problem found (nothing half-loaded)."""
    problems: list[str] = []
    state = data.get("state")
    if not isinstance(state, str) or len(state) != 2 or not state.isupper():
        problems.append("state must be a two-letter code")
    for key in ("name", "revised"):
        if not isinstance(data.get(key), str) or not data.get(key):
            problems.append(key + " missing")
    version = data.get("version")
    if not (_int(version) and version >= 1):
        problems.append("version must be a whole number >= 1")
    if data.get("coverage") not in COVERAGE:
        problems.append("coverage must be one of " + ", ".join(COVERAGE))
    raw = data.get("params")
    params: dict[str, Param] = {}
    if not isinstance(raw, dict):
        problems.append("params missing")
        raw = {}
    for name, entry in raw.items():
        if name not in NAMES:
            problems.append("%s: not a policy parameter" % name)
            continue
        if name not in RULE_PARAMS:
            problems.append("%s: not a state-rule parameter (RULE_PARAMS)" % name)
            continue
        if not isinstance(entry, dict):
            problems.append("%s: not a table" % name)
            continue
        value, source = entry.get("value"), entry.get("source")
        cite, says, why = entry.get("cite", ""), entry.get("says", ""), entry.get("why", "")
        lo, hi = entry.get("rule_min"), entry.get("rule_max")
        if not _int(value):
            problems.append("%s: value must be a whole number" % name)
            continue
        if source not in SOURCES:
            problems.append("%s: source must be one of %s" % (name, ", ".join(SOURCES)))
            continue
        if not isinstance(says, str) or not says:
            problems.append("%s: says (plain words for the rules page) missing" % name)
        if source != "unsourced" and (not isinstance(cite, str) or not cite):
            problems.append("%s: a %s value needs its citation" % (name, source))
        if source == "unsourced" and value != DEFAULTS[name] and not why:
            problems.append("%s: unsourced, so it keeps the default %d unless why says what is safer"
                            % (name, DEFAULTS[name]))
        for label, bound in (("rule_min", lo), ("rule_max", hi)):
            if bound is not None and not _int(bound):
                problems.append("%s: %s must be a whole number" % (name, label))
        if _int(lo) and value < lo:
            problems.append("%s: %d is below the %d its rule allows" % (name, value, lo))
        if _int(hi) and value > hi:
            problems.append("%s: %d is above the %d its rule allows" % (name, value, hi))
        params[name] = Param(name, value, source, cite, says, why, lo if _int(lo) else None,
                             hi if _int(hi) else None)
    for name in RULE_PARAMS:
        if name not in raw:
            problems.append("%s: missing (give it, marked unsourced if nothing was found)" % name)
    facts = []
    for i, f in enumerate(data.get("facts", [])):
        if (not isinstance(f, dict) or not f.get("says") or f.get("source") not in SOURCES
                or f.get("kept_by") not in ("handset", "companion", "service", "not modelled")
                or (f.get("source") != "unsourced" and not f.get("cite"))):
            problems.append("facts[%d]: needs says, source, cite and kept_by" % i)
            continue
        facts.append(Fact(f["says"], f["source"], f.get("cite", ""), f["kept_by"]))
    raf = data.get("retests_after_fail")
    retests = None
    if raf is not None:
        if not isinstance(raf, dict) or not _int(raf.get("count")) or not _int(raf.get("within_s")):
            problems.append("retests_after_fail needs count and within_s")
        else:
            retests = (raf["count"], raf["within_s"])
    classes = _parse_classes(data.get("classes"), problems)
    if not problems:
        merged = dict(DEFAULTS)
        merged.update({n: p.value for n, p in params.items()})
        merged["version"] = 1
        reason = check_policy(merged)
        if reason is not None:
            problems.append("the policy refuses it: " + reason)
        if retests is not None:
            problems.extend(_check_retests(merged, *retests))
    if problems:
        raise PresetError("%s: %s" % (path.name if path else state, "; ".join(problems)))
    assert isinstance(state, str) and isinstance(version, int)
    return Preset(state, data["name"], version, data["coverage"], data["revised"], params, tuple(facts), retests,
                  classes, path)


def _parse_classes(raw: Any, problems: list[str]) -> dict[str, ClassRule]:
    """The [classes] table: absent, or every CLASS_KEYS entry with a whole value >= 0, its source and citation."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append("classes must be a table")
        return {}
    out: dict[str, ClassRule] = {}
    for name in raw:
        if name not in CLASS_KEYS:
            problems.append("classes.%s: not a violation-class value (%s)" % (name, ", ".join(CLASS_KEYS)))
    for name in CLASS_KEYS:
        entry = raw.get(name)
        if not isinstance(entry, dict):
            problems.append("classes.%s: missing (a preset with classes gives every one)" % name)
            continue
        value, source, cite, says = entry.get("value"), entry.get("source"), entry.get("cite"), entry.get("says")
        if not _int(value) or value < 0:
            problems.append("classes.%s: value must be a whole number >= 0" % name)
        elif source not in SOURCES:
            problems.append("classes.%s: source must be one of %s" % (name, ", ".join(SOURCES)))
        elif not isinstance(says, str) or not says:
            problems.append("classes.%s: says missing" % name)
        elif source != "unsourced" and (not isinstance(cite, str) or not cite):
            problems.append("classes.%s: a %s value needs its citation" % (name, source))
        else:
            out[name] = ClassRule(name, value, source, cite or "", says)
    for name in ("minor_startups", "major_minors"):
        if name in out and out[name].value < 1:
            problems.append("classes.%s: must be at least 1" % name)
    return out


def _check_retests(values: dict[str, int], count: int, within_s: int) -> list[str]:
    """The rule's "count tests possible within within_s of a failed test": the lockouts after the failed test
    and the count - 1 that may follow it, plus TEST_S for each test, must fit."""
    total = 0
    streak = 1
    for _ in range(count):
        n = streak - values["temp_lock_repeat"]
        total += values["temp_lock_s"] if n <= 0 else (values["temp_lock2_s"] if n == 1 else values["temp_lock3_s"])
        total += TEST_S
        streak += 1
    if total > within_s:
        return ["retests_after_fail: %d tests after a failed test take at least %d s, more than the rule's %d s"
                % (count, total, within_s)]
    return []


def load_file(path: Path) -> Preset:
    """Parse and validate one preset file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise PresetError("%s: %s" % (path.name, e)) from None
    preset = parse(data, path)
    if path.stem != preset.state:
        raise PresetError("%s: the file must be named after its state (%s.toml)" % (path.name, preset.state))
    return preset


def load(state: str) -> Preset:
    """The preset of a state (two-letter code); PresetError when there is none or it does not validate."""
    code = state.upper()
    path = DATA / (code + ".toml")
    if not code.isalpha() or len(code) != 2 or not path.is_file():
        raise PresetError("no preset for state %r (have: %s)" % (state, ", ".join(states())))
    return load_file(path)


_CACHE: dict[str, tuple[int, Preset]] = {}


def load_cached(state: str) -> Preset:
    """load(), kept while the file is unchanged (its modification time): for pages that read a preset on every
    request. A preset is frozen, so sharing one is safe."""
    code = state.upper()
    path = DATA / (code + ".toml")
    try:
        mtime = path.stat().st_mtime_ns if code.isalpha() and len(code) == 2 else -1
    except OSError:
        mtime = -1
    hit = _CACHE.get(code)
    if hit is not None and mtime != -1 and hit[0] == mtime:
        return hit[1]
    preset = load(code)
    _CACHE[code] = (mtime, preset)
    return preset


def states() -> list[str]:
    """The states that have a preset, sorted."""
    return sorted(p.stem for p in DATA.glob("*.toml"))


def all_presets() -> list[Preset]:
    """Every preset, validated, sorted by state."""
    return [load(s) for s in states()]
