"""A stand-in for the handset's state machine with the documented service API (docs: /work/briefs/fsm_api.md).

It keeps a real FlashLog on a simulated littlefs flash, so log export and chain checks are the real ones.
Used by the service-port tests until `fsm.machine.Interlock` offers the technician API.
"""

from __future__ import annotations

import host_sim  # noqa: F401  (firmware on sys.path)
from fsm import crypto, machine, policy, records
from storage.log import FlashLog

from host_sim.flash import LfsFlash

# the technician action codes and results the service uses (taken from fsm.machine once it defines them)
for _name, _value in (("RC_APPLIED", 0), ("RC_REFUSED", 2), ("TECH_CLEAR", 20), ("TECH_POLICY", 21),
                      ("TECH_TIME", 22)):
    if not hasattr(machine, _name):
        setattr(machine, _name, _value)


class HandsetDouble:
    """The documented Interlock service surface: identity, wall clock, technician actions, status, record."""

    def __init__(self, device_id: int = 4242, secret: bytes | None = bytes(range(32)), wall: int = 90_000_000):
        self.log = FlashLog(LfsFlash.fresh())
        self.device_id = device_id if secret is not None else 0
        self.secret = secret
        self.wall = wall
        self.policy = policy.Policy()
        self.lockout = records.LOCK_VIOLATION
        self.lockout_id = 7
        self.service_due = 0
        self.module = (0, 0)
        self.calibration = (0, 0, 0)
        self.calls: list[tuple] = []

    def keys(self):
        """(sync, unlock, tech) keys derived from the secret."""
        s = self.secret
        return (crypto.derive(s, crypto.LABEL_SYNC), crypto.derive(s, crypto.LABEL_UNLOCK),
                crypto.derive(s, crypto.LABEL_TECH))

    def record(self, rtype, a=0, b=0, c=0):
        """Log one record at the current wall time."""
        return self.log.append(self.wall, rtype, a, b, c, 0)

    def technician(self, now_ms, tech_id, action, a=0, b=0, c=0):
        """Apply a technician action; log it with the technician's id."""
        self.calls.append(("technician", tech_id, action, a, b, c))
        if action == machine.TECH_CLEAR:
            if self.lockout != records.LOCK_VIOLATION:
                return machine.RC_REFUSED
            self.lockout = 0
            self.record(records.CLEAR, records.LOCK_VIOLATION, records.SRC_TECH, tech_id)
            return machine.RC_APPLIED
        if action == records.SVC_CALIBRATE:
            self.calibration = (a, b, c)
        elif action == records.SVC_RECORD:
            self.service_due = a
        elif action == records.SVC_MODULE:
            self.module = (a, b)
        else:
            return machine.RC_REFUSED
        self.record(records.SERVICE, action, tech_id, a)
        return machine.RC_APPLIED

    def apply_policy(self, now_ms, values, source):
        """Validated all-or-nothing policy change."""
        self.calls.append(("policy", values, source))
        old = self.policy.version
        if self.policy.check(values) is not None:
            return False
        self.policy.apply(values)
        self.policy.version = values["version"]
        self.record(records.POLICY, self.policy.version, old, source)
        return True

    def set_time(self, now_ms, wall, source):
        """Authenticated clock set."""
        self.calls.append(("time", wall, source))
        self.record(records.CLOCK, 1, wall - self.wall, source)
        self.wall = wall

    def provision(self, now_ms, device_id, secret):
        """Install the key, only once."""
        if self.secret is not None:
            return False
        self.secret = bytes(secret)
        self.device_id = device_id
        self.record(records.SERVICE, records.SVC_PROVISION, 0, device_id)
        return True

    def status(self):
        """Reported state."""
        return {"state": "VIOLATION LOCKOUT" if self.lockout else "IDLE", "lockout": self.lockout,
                "lockout_id": self.lockout_id, "service_due": self.service_due,
                "module_serial": self.module[0], "module_expiry": self.module[1],
                "policy_version": self.policy.version, "log_next_seq": self.log.next_seq(),
                "wall": self.wall, "firmware": "double"}
