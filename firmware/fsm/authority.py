"""What authenticated parties may change: sync commands and desired state, technician actions, policy, time.

The caller (the sync client or the service port) has verified the message before calling; these methods
check that the change makes sense for the handset's state, apply it all or nothing, log it, and persist it
in the same state write. A violation lockout ends here only through `clear_violation`.
"""

from micropython import const

from fsm import module as module_mod
from fsm import persist, records
from fsm.module import ModuleData
from fsm.states import STATE_NAMES
from interlock import crypto, timebase

# sync command kinds
CMD_CLEAR = const(1)
CMD_SERVICE_EXTEND = const(2)
CMD_TIME_SET = const(3)
CMD_POLICY = const(4)

# outcomes of a change (a sync command's is logged as c of its SYNC record; the client reports it to the
# companion as interlock.wire's RC_* result code)
APPLIED = const(0)
STALE = const(1)
REFUSED = const(2)

# technician actions beyond records.SVC_*
TECH_CLEAR = const(20)

# SYNC record outcomes (records.SYNC a=)
SYNC_OK = const(1)
SYNC_FAILED = const(2)
SYNC_REFUSED = const(3)  # a response or command failed authentication, was stale, expired or foreign
SYNC_COMMAND = const(4)  # b = command seq, c = result code


class Authority:
    """Mixin of the state machine: the entry points for authenticated changes."""

    def keys(self):
        """(sync key, unlock key, technician key) derived from the handset secret, or None if unprovisioned."""
        if self.secret is None:
            return None
        if self._keys is None:
            self._keys = (
                crypto.derive(self.secret, crypto.LABEL_SYNC),
                crypto.derive(self.secret, crypto.LABEL_UNLOCK),
                crypto.derive(self.secret, crypto.LABEL_TECH),
            )
        return self._keys

    def provision(self, now, device_id, secret):
        """Install the handset secret; refused once provisioned."""
        # a handset that held a secret once (the log proves it) is never provisioned again in the field: a
        # corrupt state must not turn it into a blank one that anyone with a cable can take over
        if self.secret is not None or self.provisioned_before or len(secret) != 32 or device_id <= 0:
            self._log(records.SERVICE, records.SVC_PROVISION, 0, 0)
            return False
        secret = bytes(secret)
        if self._ident:
            # the identity's own store first: a cut before the record leaves a provisioned handset, not half one
            self.store.save_identity(persist.pack_identity(device_id, secret))
        self.secret = secret
        self.device_id = device_id
        self.provisioned_before = True
        self._keys = None
        self._log(records.SERVICE, records.SVC_PROVISION, 1, device_id)
        self._dirty = True
        self._flush()
        return True

    def apply_command(self, now, seq, kind, arg):
        """Apply one verified sync command once; remembers seq across power loss."""
        if seq <= self.last_command_seq:
            self._log(records.SYNC, SYNC_COMMAND, seq, STALE)
            return STALE
        rc = APPLIED
        if kind == CMD_CLEAR:
            if self.vlock and arg == self.lockout_id:
                self.clear_violation(records.SRC_REMOTE, arg)
            elif not self.vlock and arg == self.lockout_id and arg:
                rc = STALE  # that lockout was already cleared (by a code or a technician): nothing done
            else:
                rc = REFUSED
        elif kind == CMD_SERVICE_EXTEND:
            if isinstance(arg, int) and 0 < arg <= 90:
                self._extend_service(arg, records.SRC_REMOTE, seq)
            else:
                rc = REFUSED
        elif kind == CMD_TIME_SET:
            if isinstance(arg, int) and arg > 0:
                self.set_time(now, arg, records.SRC_REMOTE)
            else:
                rc = REFUSED
        elif kind == CMD_POLICY:
            if not self.apply_policy(now, arg, records.SRC_REMOTE):
                rc = REFUSED
        else:
            rc = REFUSED
        self.last_command_seq = seq
        self._log(records.SYNC, SYNC_COMMAND, seq, rc)
        self._dirty = True
        self._flush()
        return rc

    def set_desired(self, now, version, payment_due_day, service_due_day, inspection_due_day, expected_module):
        """Apply the companion's desired-state document if its version is newer; returns the applied version."""
        if version <= self.desired_version:
            return self.desired_version
        if payment_due_day != self.payment_due:
            self.payment_due = payment_due_day
            self._log(records.PAYMENT, 3, payment_due_day)
        if service_due_day != self.service_due:
            self.service_due = service_due_day
            self._log(records.INSPECTION, 3, service_due_day, 1)
        if inspection_due_day != self.inspection_due:
            self.inspection_due = inspection_due_day
            self._log(records.INSPECTION, 3, inspection_due_day, 2)
        self.expected_module = expected_module
        self.desired_version = version
        self._dirty = True
        self._flush()
        return version

    def apply_policy(self, now, values, source):
        """Validate and apply a pushed policy, all or nothing; refused ones are logged.

        POLICY record: a = the number after, b = before, c = source; the number is the companion's version for
        its pushes, the count of technician changes on top of it for a technician's (which keeps the version).
        """
        local = source == records.SRC_TECH
        pol = self.policy
        old = pol.local if local else pol.version
        reason = pol.apply(values, local)
        if reason is not None:
            self._log(records.POLICY, 0, old, source)
            return False
        self._log(records.POLICY, pol.local if local else pol.version, old, source)
        self._dirty = True
        self._flush()
        return True

    def set_time(self, now, wall, source):
        """An authenticated clock set (sync server time or technician).

        The token clock (token_wall) is device time that a technician's set never moves back; it is kept as its
        lead over device time, which only a clock set changes, so it is saved with this set and costs no write
        as time runs. The companion's signed time is taken as it is (the lead ends): its tokens, its time.
        """
        delta = wall - self.wall
        lead = 0
        if source == records.SRC_TECH:
            lead = self.token_lead - delta
            if lead < 0:
                lead = 0
        self.token_lead = lead
        self.wall = wall
        self._wall_tick = now
        self.last_alive = wall
        self._next_alive = wall + self.policy.alive_s
        self.board.set_clock(wall)
        self._log(records.CLOCK, 1, delta, source)
        self._dirty = True
        self._flush()
        if self._stamps:
            # the heartbeat too: a stamp from before a clock set back would read, at the next boot, as a clock
            # wound back across a power cut (the set undone and a power-cut violation charged)
            self.store.stamp(wall)

    def token_wall(self, now):
        """Device time for technician token expiry at tick now: the clock (with the seconds since the last poll
        counted it), never earlier than it was before a technician set it back, across resets and power cuts
        too (the lead is saved with the state)."""
        el = timebase.diff(now, self._wall_tick)
        return self.wall + self.token_lead + (el // 1000 if el > 0 else 0)

    def set_login_waits(self, line, net):
        """The service port's failed-login wait levels (the cable's, the network peers'), kept across power
        loss; saved only when one changes (a few times in a brute force, never once per attempt)."""
        if line != self.login_wait_line or net != self.login_wait_net:
            self.login_wait_line = line
            self.login_wait_net = net
            self._dirty = True
            self._flush()

    def technician(self, now, tech_id, action, a=0, b=0, c=0):
        """A technician's action over the authenticated service port."""
        if action == TECH_CLEAR:
            # a = the lockout the technician means (status() "lockout_id", 0 with no violation lockout): a
            # clear that names another lockout, one cleared meanwhile or a newer one, clears nothing
            if not self.vlock and not self.state_lock:
                return REFUSED
            if a != (self.lockout_id if self.vlock else 0):
                return REFUSED
            if self.state_lock:
                self.state_lock = False
                self._log(records.CLEAR, records.LOCK_STATE, records.SRC_TECH, tech_id)
            if self.vlock:
                self.clear_violation(records.SRC_TECH, tech_id)
            if self.temp_until:
                self._log(records.CLEAR, self.temp_kind, records.SRC_TECH, tech_id)
                self.temp_until = 0
                self.temp_kind = 0
            if not self._analyzing_now():
                # (a drawn sample's analysis runs to its result, which leads on: a key-off during it, or the clear)
                self._route(now)
        elif action == records.SVC_RECORD:
            day = self.wall // timebase.DAY
            due = a if a > day else day + self.policy.service_days
            self.service_due = due
            if self.inspection_due:
                self.inspection_due = due
            self.brownouts = 0
            self.violations = 0
            self.recall_deadline = 0
            self.codes_used = 0
            self.code_fails = 0
            self.code_wait_until = 0
            self._log(records.SERVICE, records.SVC_RECORD, tech_id, due)
        elif action == records.SVC_CALIBRATE:
            m = self._module
            if m is None or b <= a or c <= 0:
                return REFUSED
            cal = ModuleData(m.serial, m.expiry_day, a, b, c, self._cell_temp, self.wall // timebase.DAY)
            # the calibration lives on the module: written there first, used only once it took
            if not self.board.write_module(module_mod.encode(cal)):
                self._log(records.SERVICE, records.SVC_CALIBRATE, tech_id, 0)
                return REFUSED
            self._module = cal
            self._log(records.SERVICE, records.SVC_CALIBRATE, tech_id, b - a)
        elif action == records.SVC_MODULE:
            if a <= 0 or b <= self.wall // timebase.DAY:
                return REFUSED
            self.expected_module = a
            self._log(records.SERVICE, records.SVC_MODULE, tech_id, a)
        else:
            return REFUSED
        self._dirty = True
        self._flush()
        return APPLIED

    def record(self, rtype, a=0, b=0, c=0):
        """Log an event from outside the state machine (sync, service port); returns its sequence number."""
        seq = self._log(rtype, a, b, c)
        if rtype == records.SYNC and a == SYNC_OK:
            self.last_sync = self.wall
            self._dirty = True
        return seq

    def status(self):
        """The reported state, for sync and the service port."""
        m = self._module
        return {
            "state": STATE_NAMES[self.state],
            "display": [_line(self._shown, 0), _line(self._shown, 1)],
            "lockout": bool(self.vlock),
            "lockout_id": self.lockout_id if self.vlock else 0,
            "lock_cause": self.lock_cause,
            "violations": self.violations,
            "recall_deadline": self.recall_deadline,
            "temp_lock_until": self.temp_until,
            "payment_due": self.payment_due,
            "service_due": self.service_due,
            "inspection_due": self.inspection_due,
            "policy_version": self.policy.version,
            "policy_local": self.policy.local,
            "desired_version": self.desired_version,
            "module_serial": m.serial if m is not None else 0,
            "module_expiry": m.expiry_day if m is not None else 0,
            "last_command_seq": self.last_command_seq,
            "log_next_seq": self.log.next_seq(),
            "log_acked": self.log.acked(),
            "wall": self.wall,
            "device_id": self.device_id,
            "provisioned": self.secret is not None,
            "firmware": "0.1.0",
        }


def _line(buf, n):
    return bytes(buf[n * 16:(n + 1) * 16]).decode().rstrip()
