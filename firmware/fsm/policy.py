"""Every number that governs the handset, with HANDSET.md's defaults. The companion can push a new policy.

A policy is a fixed, ordered set of named integers. Times are in seconds unless the name ends in _ms; BrAC is
in thousandths of g/dL; temperatures in deci-degrees C; volumes in mL; flows in mL/s.

Versions: `version` is the companion's, and only the companion moves it (each push must go above it).
A technician's change over the service port does not take a version from that space: it applies on top of
the companion's version in force and counts in `local` (changes since the companion's last push). The next
companion policy applies over it and sets `local` back to 0.
"""

# (name, default, minimum, maximum) -- the order is the persisted order; append new names at the end.
SPEC = (
    ("warn_brac", 10, 0, 400),
    ("fail_brac", 20, 1, 400),
    ("start_window_s", 180, 10, 900),
    ("free_restart_s", 120, 0, 900),
    ("temp_lock_s", 300, 0, 86400),
    ("temp_lock2_s", 900, 0, 86400),
    ("temp_lock3_s", 1800, 0, 86400),
    ("fail_window_s", 900, 60, 86400),
    ("retest_first_min_s", 300, 60, 7200),
    ("retest_first_max_s", 900, 60, 7200),
    ("retest_next_min_s", 900, 60, 14400),
    ("retest_next_max_s", 2700, 60, 14400),
    ("retest_window_s", 360, 60, 1800),
    ("retest_beep_s", 15, 1, 120),
    ("recall_s", 432000, 3600, 2592000),
    ("violations_lock", 3, 1, 50),
    ("power_cut_s", 900, 60, 86400),
    ("volume_ml", 1500, 500, 5000),
    ("blow_ms", 4500, 1000, 15000),
    ("breath_temp_dc", 300, 200, 370),
    ("flow_min", 150, 50, 1000),
    ("flow_max", 1200, 300, 3000),
    ("inhale_flow", -100, -2000, -10),
    ("hum_required", 0, 0, 1),
    ("aborts_lock", 5, 1, 10),
    ("abort_window_s", 900, 60, 86400),
    ("abort_lock_s", 300, 0, 86400),
    ("warmup_timeout_s", 300, 30, 1800),
    ("heat_target_dc", 350, 250, 450),
    ("analysis_ms", 4000, 1000, 15000),
    ("module_warn_days", 7, 0, 60),
    ("service_days", 30, 7, 180),
    ("service_remind_days", 7, 0, 60),
    ("service_grace_days", 0, 0, 30),
    ("payment_lock", 0, 0, 1),
    ("payment_grace_days", 0, 0, 60),
    ("code_digits", 8, 6, 9),
    ("code_valid_h", 6, 1, 72),
    ("code_lookahead", 2, 1, 10),
    ("codes_per_period", 2, 0, 20),
    ("code_free_tries", 3, 1, 10),
    ("code_service_days", 3, 1, 30),
    ("unplug_allowed", 1, 0, 1),
    ("camera", 0, 0, 1),
    ("clock_tolerance_s", 120, 5, 3600),
    ("alive_s", 60, 10, 3600),
    ("result_ms", 3000, 500, 10000),
    ("notice_ms", 3000, 500, 10000),
    ("menu_timeout_ms", 15000, 3000, 60000),
    # state rules (../shared/design/JURISDICTIONS.md); each default is the behaviour before it was a parameter
    ("retest_redemand", 0, 0, 1),  # 1: a missed or failed retest is asked again at once, each miss logged
    ("temp_lock_repeat", 1, 1, 10),  # failed start tests in a row that take temp_lock_s before it escalates
    ("retest_next_from", 0, 0, 1),  # the next retest is timed from 0: the pass, 1: the previous request
    ("startup_fail_s", 0, 0, 7200),  # 0 off; else a failed start test not followed by a pass within it is logged
    ("startup_fail_vio", 0, 0, 1),  # 1: that start-up failure is also a violation (counted, recall countdown)
    ("outage_grace_days", 0, 0, 30),  # days the payment and service locks wait when no sync came since the due day
    ("startup_fail_now", 0, 0, 1),  # 1: a failed start test is a violation at once (then none again after the window)
    ("startup_excuse_brac", 0, 0, 400),  # a start test at or below this ends a pending start-up failure, even a fail
)

VERSION_MAX = 0xFFFFFFFF  # the version is persisted as an unsigned 32-bit field
LOCAL_MAX = 0xFFFF  # technician changes counted on top of one companion version (saturates; persisted 16-bit)

NAMES = tuple(row[0] for row in SPEC)
COUNT = len(SPEC)


class Policy:
    """The policy in force: one attribute per SPEC name, plus its version (0 = factory defaults)."""

    def __init__(self):
        self.version = 0
        self.local = 0  # technician changes since the companion's policy `version`
        for name, default, _lo, _hi in SPEC:
            setattr(self, name, default)

    def values(self):
        """The numbers in SPEC order."""
        return [getattr(self, name) for name in NAMES]

    def load_values(self, values, version, local=0):
        """Set every number from a SPEC-ordered sequence (persisted policies are validated when pushed)."""
        for i in range(min(len(values), COUNT)):
            setattr(self, NAMES[i], values[i])
        self.version = version
        self.local = local

    def to_dict(self):
        """Name -> value, with "version" (the companion's; status() gives the technician changes on top)."""
        out = {"version": self.version}
        for name in NAMES:
            out[name] = getattr(self, name)
        return out

    def check(self, values, local=False):
        """None if the name->int dict is acceptable, else a short reason. Changes nothing.

        A companion policy (local False) carries a "version" above the one in force. A technician's (local
        True) takes no version: "version", if given, must be the companion version in force (the one the
        technician saw), so a technician can never use up the companion's versions.
        """
        if not isinstance(values, dict):
            return "not a map"
        version = values.get("version")
        if local:
            if "version" in values and (not isinstance(version, int) or isinstance(version, bool)
                                        or version != self.version):
                return "version is the companion's"
        elif not isinstance(version, int) or isinstance(version, bool) or version <= self.version:
            return "version must go up"
        elif version > VERSION_MAX:
            return "version out of range"
        for key in values:
            if key != "version" and key not in NAMES:
                return "unknown " + str(key)
        merged = {}
        for name, _default, lo, hi in SPEC:
            v = values.get(name, getattr(self, name))
            if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
                return "bad " + name
            merged[name] = v
        if merged["warn_brac"] > merged["fail_brac"]:
            return "warn above fail"
        if merged["retest_first_min_s"] > merged["retest_first_max_s"]:
            return "retest first range"
        if merged["retest_next_min_s"] > merged["retest_next_max_s"]:
            return "retest next range"
        if merged["flow_min"] >= merged["flow_max"]:
            return "flow range"
        if merged["startup_excuse_brac"] > merged["fail_brac"]:
            return "excuse above fail"
        if merged["startup_fail_vio"] and not merged["startup_fail_s"]:
            return "start-up failure window"
        if merged["retest_next_from"] and merged["retest_next_min_s"] <= merged["retest_window_s"]:
            return "retest next inside window"
        return None

    def apply(self, values, local=False):
        """Apply a dict that check() accepts: all or nothing. A companion policy takes its version and ends the
        technician changes count; a technician's keeps the version and counts one more change."""
        reason = self.check(values, local)
        if reason is not None:
            return reason
        for name in NAMES:
            if name in values:
                setattr(self, name, values[name])
        if local:
            if self.local < LOCAL_MAX:
                self.local += 1
        else:
            self.version = values["version"]
            self.local = 0
        return None
