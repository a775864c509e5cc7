"""Which rule of the driver's state makes each kind of violation one, from ../shared/design/JURISDICTIONS.md
(R = rule or statute text, A = the agency's own page). Where no rule was found the record says so: it is a
violation under the handset's policy, and no citation is invented."""

from dataclasses import dataclass

from companion.app.notifications.messages import N_

# fsm.records VIO_* (tests check these against the firmware)
VIO_MISSED_RETEST = 1
VIO_FAILED_RETEST = 2
VIO_BYPASS = 3
VIO_DISCONNECT = 4
VIO_POWER_CUT = 5
VIO_TAMPER = 6
VIO_REFUSED_RETEST = 7
VIO_FAILED_START = 8

CAUSES = {
    VIO_MISSED_RETEST: N_("missed retest"),
    VIO_FAILED_RETEST: N_("failed retest"),
    VIO_BYPASS: N_("engine started without a passed test"),
    VIO_DISCONNECT: N_("handset disconnected"),
    VIO_POWER_CUT: N_("power cut"),
    VIO_TAMPER: N_("tampering"),
    VIO_REFUSED_RETEST: N_("refused retest"),
    VIO_FAILED_START: N_("failed start test"),
}

STATES = ("AZ", "CA", "IN", "MI", "TN", "TX", "WA")

_RETEST = {
    "AZ": ("A.A.C. R17-5-615(C)(7), (D)", "a refused or failed retest is recorded and demanded again"),
    "IN": ("260 IAC 3-2-1(3)", "violation reset with notice: a retest at or above the fail point, or no passing "
                              "sample within 6 minutes of a retest request"),
    "MI": ("Mich. Admin. Code R 257.301a(d)", "a rolling-retest violation is a major violation"),
    "TN": ("Tenn. Comp. R. & Regs. 1340-03-06-.06(8)", "a refused or failed retest sets off horn and lights"),
    "WA": ("WAC 204-50-110(1)(d)", "a missed retest is a missed test and a violation reset"),
}
_CIRCUMVENT = {
    "AZ": ("A.R.S. 28-1301(2)", "circumvention includes a bump start and another person's sample"),
    "IN": ("260 IAC 3-2-1(3)", "violation reset with notice: a start without a passing test"),
    "MI": ("Mich. Admin. Code R 257.301a", "tampering or circumvention is a major violation"),
}
_TAMPER = {
    "AZ": ("A.R.S. 28-1301(2)", "circumvention of the device"),
    "MI": ("Mich. Admin. Code R 257.301a", "tampering or circumvention is a major violation"),
    "CA": ("Cal. Veh. Code 23575(d)", "tampering is reported to the court or the DMV"),
}
_FAILED_START = {
    "IN": ("260 IAC 3-2-1(3)", "violation reset with notice: a start test at or above the fail point, or a fail "
                              "not followed by a pass within 10 minutes"),
    "TN": ("Tenn. Comp. R. & Regs. 1340-03-06-.13", "a failed start test is a violation unless a test within 10 "
                                                    "minutes reads at or below 0.020"),
}
RULES: dict[int, dict[str, tuple[str, str]]] = {
    VIO_MISSED_RETEST: _RETEST,
    VIO_FAILED_RETEST: _RETEST,
    VIO_REFUSED_RETEST: _RETEST,
    VIO_BYPASS: _CIRCUMVENT,
    VIO_TAMPER: _TAMPER,
    VIO_DISCONNECT: _TAMPER,
    VIO_POWER_CUT: {},
    VIO_FAILED_START: _FAILED_START,
}


@dataclass(frozen=True)
class Rule:
    """The rule a violation is cited under: (citation, what it says), or none found for the state."""

    state: str
    citation: str
    says: str

    @property
    def found(self) -> bool:
        """Whether a rule of the state was found."""
        return bool(self.citation)


def rule_for(cause: int, state: str) -> Rule:
    """The state's rule that makes this cause a violation (an empty citation: none found)."""
    citation, says = RULES.get(cause, {}).get(state, ("", ""))
    return Rule(state, citation, says)
