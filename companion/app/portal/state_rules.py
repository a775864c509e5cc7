"""The rules of a driver's state for the portal's pages (the driver's "Your state's rules", the authority's
view of a driver), generated from the same preset data as docs/RULES.md (presets/rules_page.py): each behaviour
in plain words with its citation and how it is sourced. A program without a preset shows the handset's factory
values, marked as such. The labels and source marks are translated; the rules' own words are the preset's."""

from dataclasses import dataclass

from sqlalchemy.orm import Session

import presets
from companion.app.accounts.models import DeviceLink
from companion.app.models import Account, Handset
from companion.app.notifications.messages import N_
from presets import rules_page

# presets.rules_page.LABELS in the portal's catalog (a test keeps the keys equal)
LABELS = {
    "fail_brac": N_("Fail point"), "warn_brac": N_("Warn band"), "free_restart_s": N_("Free restart"),
    "retest_first_min_s": N_("First retest, earliest"), "retest_first_max_s": N_("First retest, latest"),
    "retest_next_min_s": N_("Later retests, earliest"), "retest_next_max_s": N_("Later retests, latest"),
    "retest_next_from": N_("Later retests timed from"), "retest_window_s": N_("Time to give a retest"),
    "retest_redemand": N_("Missed or failed retest"), "temp_lock_s": N_("Wait after a failed start test"),
    "temp_lock_repeat": N_("Failed tests before the wait grows"), "startup_fail_s": N_("Start-up failure window"),
    "startup_fail_vio": N_("Start-up failure is a violation"), "service_days": N_("Service interval"),
    "camera": N_("Camera"), "volume_ml": N_("Breath volume"), "recall_s": N_("Violation countdown"),
    "outage_grace_days": N_("Outage grace"), "startup_fail_now": N_("Failed start test is a violation at once"),
    "startup_excuse_brac": N_("Retest that excuses a failed start"),
}
MARKS = {"rule": N_("rule text"), "agency": N_("agency page"), "secondary": N_("secondary source (an assumption)"),
         "unsourced": N_("not found: the conservative default")}
KEPT_BY = {"handset": N_("the handset always does this"), "companion": N_("counted by the companion"),
           "service": N_("a duty of the service center"), "not modelled": N_("not modelled yet")}


@dataclass(frozen=True)
class StateRules:
    """What a rules page shows: the preset (None: the factory values) and its rows."""

    preset: presets.Preset | None
    rows: list[rules_page.Row]
    classes: list[rules_page.Row]
    facts: tuple[presets.Fact, ...]

    @property
    def default(self) -> bool:
        return self.preset is None


def of_state(state: str | None) -> StateRules:
    """The rules of a state's preset ("" or None, or no preset for it: the factory values)."""
    preset = None
    if state:
        try:
            preset = presets.load_cached(state)
        except presets.PresetError:
            preset = None
    if preset is None:
        return StateRules(None, rules_page.default_rows(), [], ())
    return StateRules(preset, rules_page.rows(preset), rules_page.class_rows(preset), preset.facts)


def of_device(session: Session, link: DeviceLink) -> StateRules:
    """The rules the device's handset runs: its preset (the tag the companion pushed), else the factory values."""
    h = session.get(Handset, link.handset_id) if link.handset_id else None
    return of_state(h.preset.split("@")[0] if h is not None and h.preset else None)


def of_account(session: Session, account_id: int) -> StateRules:
    """The rules of the account's state (the preset its handsets are given)."""
    account = session.get(Account, account_id)
    return of_state(account.jurisdiction if account is not None else None)
