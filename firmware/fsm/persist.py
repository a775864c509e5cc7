"""The persisted part of the state machine: lockouts, counters, used-code record, dates, policy, identity.

One fixed binary layout (big-endian). The storage layer makes the write atomic and checks its integrity; this
module only packs and unpacks, and refuses anything that does not parse (the caller then fails safe).
"""

import struct

from fsm import policy as policy_mod

MAGIC = b"IS"
FORMAT = 2  # 2: the retest deadline is kept
_ABORTS = 10  # abort times kept (the policy's aborts_lock is at most this)
_TAIL = 4  # fail streak, last fail-lock end, next retest due, retest deadline

# magic, format, flags, device id, secret,
# lock cause, violations, codes used, code fails, temp kind, reserved x3,
# lockout id, recall deadline, temp-lock end, code next counter, code wait end,
# payment due, service due, inspection due, module expiry,
# desired version, last command seq, last alive, last sync, restart-window end, expected module,
# log next seq at save, module serial, policy version,
# fail streak, last fail-lock end, next retest due, retest deadline, abort times x10, policy values
_HEAD = ">2sBBI32sBBBBBBBBIIIIIHHHHIIIIIIIII" + "I" * (_TAIL + _ABORTS)
_FMT = _HEAD + "i" * policy_mod.COUNT
SIZE = struct.calcsize(_FMT)
# field-group offsets used by pack(); checked against the format at import
assert struct.calcsize(">2sBBI32sBBBBBBBBIIIIIHHHHIIIIIIIIIIIII") == 128

F_VLOCK = 1
F_PROVISIONED = 2
F_RETEST = 4  # a retest was pending when the state was saved
F_ALARM = 8
F_STATE_LOCK = 16  # the state was found corrupt: locked for service until a technician clears it
F_ENGINE = 32  # the engine ran at the last engine edge (a blip may resume the drive only then)
F_PROVISIONED_BEFORE = 64  # a secret was provisioned once (the log says so), even if the state lost it
F_ANALYZING = 128  # a drawn sample was being analysed (a cut that ends the analysis is booked at boot)


_HEAD_SIZE = struct.calcsize(_HEAD)
_ZERO_SECRET = b"\x00" * 32


def pack(m, buf=None):
    """The persisted fields of Interlock m, packed into buf (a bytearray of SIZE, reused) or a new one.

    Written field group by field group with explicit arguments, so a save allocates nothing.
    """
    if buf is None:
        buf = bytearray(SIZE)
    flags = (F_VLOCK if m.vlock else 0) | (F_PROVISIONED if m.secret else 0) | (
        F_RETEST if m.retest_pending else 0) | (F_ALARM if m.alarm else 0) | (
        F_STATE_LOCK if m.state_lock else 0) | (F_ENGINE if m.engine_saved else 0) | (
        F_PROVISIONED_BEFORE if m.provisioned_before else 0) | (F_ANALYZING if m.analyzing else 0)
    struct.pack_into(">2sBBI32sBBBBBBBB", buf, 0, MAGIC, FORMAT, flags, m.device_id,
                     m.secret or _ZERO_SECRET, m.lock_cause, m.violations, m.codes_used, m.code_fails,
                     m.temp_kind, 0, 0, 0)
    struct.pack_into(">IIIIIHHHH", buf, 48, m.lockout_id, m.recall_deadline, m.temp_until, m.code_counter,
                     m.code_wait_until, m.payment_due, m.service_due, m.inspection_due, m.module_expiry)
    struct.pack_into(">IIIIIIIII", buf, 76, m.desired_version, m.last_command_seq, m.last_alive, m.last_sync,
                     m.restart_until, m.expected_module, m.log.next_seq(), m.module_serial, m.policy.version)
    struct.pack_into(">IIII", buf, 112, m.fail_streak, m.fail_lock_end, m.retest_due, m.retest_deadline)
    off = 128
    ring = m.abort_times
    for i in range(_ABORTS):
        struct.pack_into(">I", buf, off, ring[i])
        off += 4
    pol = m.policy
    names = policy_mod.NAMES
    for i in range(policy_mod.COUNT):
        struct.pack_into(">i", buf, off, getattr(pol, names[i]))
        off += 4
    return buf


def unpack(data, m):
    """Load bytes into Interlock m; returns the log sequence number at save, or -1 if data is unusable."""
    if data is None or len(data) != SIZE or bytes(data[:2]) != MAGIC or data[2] != FORMAT:
        return -1
    v = struct.unpack(_FMT, data)
    flags = v[2]
    m.vlock = bool(flags & F_VLOCK)
    m.retest_pending = bool(flags & F_RETEST)
    m.alarm_at_save = bool(flags & F_ALARM)
    m.state_lock = bool(flags & F_STATE_LOCK)
    m.engine_saved = bool(flags & F_ENGINE)
    m.provisioned_before = bool(flags & F_PROVISIONED_BEFORE)
    m.analyzing = bool(flags & F_ANALYZING)
    m.device_id = v[3]
    m.secret = v[4] if flags & F_PROVISIONED else None
    (m.lock_cause, m.violations, m.codes_used, m.code_fails, m.temp_kind) = v[5:10]
    (m.lockout_id, m.recall_deadline, m.temp_until, m.code_counter, m.code_wait_until) = v[13:18]
    (m.payment_due, m.service_due, m.inspection_due, m.module_expiry) = v[18:22]
    (m.desired_version, m.last_command_seq, m.last_alive, m.last_sync, m.restart_until,
     m.expected_module) = v[22:28]
    log_seq = v[28]
    m.module_serial = v[29]
    pol_version = v[30]
    i = 31
    m.fail_streak = v[i]
    m.fail_lock_end = v[i + 1]
    m.retest_due = v[i + 2]
    m.retest_deadline = v[i + 3]
    i += _TAIL
    for k in range(_ABORTS):
        m.abort_times[k] = v[i + k]
    i += _ABORTS
    m.policy.load_values(v[i:], pol_version)
    return log_seq
