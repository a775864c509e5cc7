"""The persisted part of the state machine: lockouts, counters, used-code record, dates, policy; and, in a
store of its own, the handset's identity.

One fixed binary layout each (big-endian). The storage layer makes the write atomic and checks its integrity;
this module only packs and unpacks, and refuses anything that does not parse (the caller then fails safe).

State formats (364 bytes with the 49 policy values of formats 1 to 3; format 1 4 bytes less; format 4 holds
every value of the policy's SPEC):
  1  the first layout: identity (device id, secret) in bytes 4..39, no retest deadline
  2  the retest deadline is kept (4 more bytes after the retest due time)
  3  the identity moved to its own store (a corrupt state no longer loses it); bytes 4..39 now hold the token
     clock's lead, the service port's failed-login wait levels and the technician policy count, and room
  4  the policy values appended to SPEC since (state rules) are kept, and the start-up failure pending since
     (device time, 0 none) takes the first 4 reserved bytes. Its length follows SPEC: a format-4 state saved
     when SPEC had fewer values (at least the 55 of its first version) loads, the values it lacks at default
unpack() reads all four (a policy value an older format lacks keeps its default); pack() writes format 4. A handset updated from older firmware loses nothing: the
boot that reads an older format saves the current one, and moves the identity it found to its own store.

Identity (IDENTITY_SIZE bytes, written at provisioning and never again): magic b"ID", format, flags,
device id, secret.
"""

import struct

from fsm import policy as policy_mod

MAGIC = b"IS"
FORMAT = 4  # 2: the retest deadline is kept; 3: the identity lives in its own store; 4: state-rule policy values
_ABORTS = 10  # abort times kept (the policy's aborts_lock is at most this)
_TAIL = 4  # fail streak, last fail-lock end, next retest due, retest deadline

# format 3: magic, format, flags, token lead, login wait (line), login wait (network), technician policy count,
# start-up failure pending since (format 4; reserved in 3), reserved x24,
# lock cause, violations, codes used, code fails, temp kind, brown-outs excused (reserved 0 before), reserved x2,
# lockout id, recall deadline, temp-lock end, code next counter, code wait end,
# payment due, service due, inspection due, module expiry,
# desired version, last command seq, last alive, last sync, restart-window end, expected module,
# log next seq at save, module serial, policy version,
# fail streak, last fail-lock end, next retest due, retest deadline, abort times x10, policy values
_HEAD = ">2sBBIBBH28sBBBBBBBBIIIIIHHHHIIIIIIIII" + "I" * (_TAIL + _ABORTS)
_FMT = _HEAD + "i" * policy_mod.COUNT
SIZE = struct.calcsize(_FMT)
_OLD_COUNT = 49  # policy values in formats 1 to 3
_V4_COUNT = 55  # policy values in the first format-4 states (SPEC up to outage_grace_days)
_SIZE_V4 = struct.calcsize(_HEAD) + 4 * _V4_COUNT
_SIZE_V3 = struct.calcsize(_HEAD) + 4 * _OLD_COUNT
# formats 1 and 2 differ from 3 in bytes 4..39 (device id, secret) and, for 1, in the tail (3 words, no deadline)
_OLD_ID = ">I32s"
_SIZE_V1 = _SIZE_V3 - 4
# field-group offsets used by pack() and unpack(); checked against the format at import
assert struct.calcsize(">2sBBIBBH28s") == struct.calcsize(">2sBBI32s") == 40
assert struct.calcsize(">2sBBIBBH28sBBBBBBBBIIIIIHHHHIIIIIIIIIIIII") == 128
_TAIL_AT = 112
_ABORTS_AT = 128

F_VLOCK = 1
F_PROVISIONED = 2  # formats 1 and 2: bytes 8..39 hold the secret
F_HELD = 2  # formats 3 and 4 (never set by them before): the engine ran held by its charge, its sense reading off
F_RETEST = 4  # a retest was pending when the state was saved
F_ALARM = 8  # the retest alarm sounded when the state was saved, or (a save between a boot and its first poll)
# it sounded at the cut and the first poll has not yet decided what that means (Interlock.alarm_at_save)
F_STATE_LOCK = 16  # the state was found corrupt: locked for service until a technician clears it
F_ENGINE = 32  # the engine ran at the last engine edge (a blip may resume the drive only then)
F_PROVISIONED_BEFORE = 64  # a secret was provisioned once (the log says so), even if the state lost it
F_ANALYZING = 128  # a drawn sample was being analysed (a cut that ends the analysis is booked at boot)

_ZERO_RESERVED = b"\x00" * 24

ID_MAGIC = b"ID"
ID_FORMAT = 1
_ID_FMT = ">2sBBI32s"
IDENTITY_SIZE = struct.calcsize(_ID_FMT)


def pack(m, buf=None):
    """The persisted fields of Interlock m, packed into buf (a bytearray of SIZE, reused) or a new one.

    Written field group by field group with explicit arguments, so a save allocates nothing.
    """
    if buf is None:
        buf = bytearray(SIZE)
    flags = (F_VLOCK if m.vlock else 0) | (
        F_RETEST if m.retest_pending else 0) | (F_ALARM if m.alarm or m.alarm_at_save else 0) | (
        F_STATE_LOCK if m.state_lock else 0) | (F_ENGINE if m.engine_saved else 0) | (
        F_PROVISIONED_BEFORE if m.provisioned_before else 0) | (F_ANALYZING if m.analyzing else 0) | (
        F_HELD if m.held_saved else 0)
    struct.pack_into(">2sBBIBBHI24sBBBBBBBB", buf, 0, MAGIC, FORMAT, flags, m.token_lead, m.login_wait_line,
                     m.login_wait_net, m.policy.local, m.startup_fail_at, _ZERO_RESERVED, m.lock_cause, m.violations, m.codes_used,
                     m.code_fails, m.temp_kind, m.brownouts, 0, 0)
    struct.pack_into(">IIIIIHHHH", buf, 48, m.lockout_id, m.recall_deadline, m.temp_until, m.code_counter,
                     m.code_wait_until, m.payment_due, m.service_due, m.inspection_due, m.module_expiry)
    struct.pack_into(">IIIIIIIII", buf, 76, m.desired_version, m.last_command_seq, m.last_alive, m.last_sync,
                     m.restart_until, m.expected_module, m.log.next_seq(), m.module_serial, m.policy.version)
    struct.pack_into(">IIII", buf, _TAIL_AT, m.fail_streak, m.fail_lock_end, m.retest_due, m.retest_deadline)
    off = _ABORTS_AT
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
    """Load bytes of any format into Interlock m; returns the log sequence number at save, or -1 if data is
    unusable (m is then unchanged).

    Formats 1 and 2 also set m.device_id and m.secret from the identity they hold (the caller moves it to the
    identity store); format 3 leaves them as they are. Format 1 had no retest deadline: it comes back 0 (the
    caller gives a pending retest its window).
    """
    if data is None or len(data) < 3 or bytes(data[:2]) != MAGIC:
        return -1
    fmt = data[2]
    if not (fmt == FORMAT and _SIZE_V4 <= len(data) <= SIZE and (len(data) - _SIZE_V4) % 4 == 0 or (fmt == 3 or fmt == 2) and len(data) == _SIZE_V3
            or fmt == 1 and len(data) == _SIZE_V1):
        return -1
    flags = data[3]
    m.startup_fail_at = 0
    if fmt >= 3:
        (m.token_lead, m.login_wait_line, m.login_wait_net, local) = struct.unpack_from(">IBBH", data, 4)
        if fmt == FORMAT:
            m.startup_fail_at = struct.unpack_from(">I", data, 12)[0]
    else:
        device_id, secret = struct.unpack_from(_OLD_ID, data, 4)
        m.device_id = device_id
        m.secret = secret if flags & F_PROVISIONED else None
        m._keys = None
        m.token_lead = 0
        m.login_wait_line = 0
        m.login_wait_net = 0
        local = 0
    m.vlock = bool(flags & F_VLOCK)
    m.retest_pending = bool(flags & F_RETEST)
    m.alarm_at_save = bool(flags & F_ALARM)
    m.state_lock = bool(flags & F_STATE_LOCK)
    m.engine_saved = bool(flags & F_ENGINE)
    m.provisioned_before = bool(flags & F_PROVISIONED_BEFORE)
    m.analyzing = bool(flags & F_ANALYZING)
    m.held_saved = fmt >= 3 and bool(flags & F_HELD)  # (formats 1 and 2: the bit is F_PROVISIONED)
    (m.lock_cause, m.violations, m.codes_used, m.code_fails, m.temp_kind,
     m.brownouts) = struct.unpack_from(">BBBBBB", data, 40)  # brownouts: a reserved 0 before
    (m.lockout_id, m.recall_deadline, m.temp_until, m.code_counter, m.code_wait_until, m.payment_due,
     m.service_due, m.inspection_due, m.module_expiry) = struct.unpack_from(">IIIIIHHHH", data, 48)
    (m.desired_version, m.last_command_seq, m.last_alive, m.last_sync, m.restart_until, m.expected_module,
     log_seq, m.module_serial, pol_version) = struct.unpack_from(">IIIIIIIII", data, 76)
    if fmt == 1:
        (m.fail_streak, m.fail_lock_end, m.retest_due) = struct.unpack_from(">III", data, _TAIL_AT)
        m.retest_deadline = 0
        off = _TAIL_AT + 12
    else:
        (m.fail_streak, m.fail_lock_end, m.retest_due, m.retest_deadline) = struct.unpack_from(
            ">IIII", data, _TAIL_AT)
        off = _ABORTS_AT
    for k in range(_ABORTS):
        m.abort_times[k] = struct.unpack_from(">I", data, off)[0]
        off += 4
    values = struct.unpack_from(">" + "i" * ((len(data) - off) // 4), data, off)
    m.policy.load_values(values, pol_version, local)
    return log_seq


def pack_identity(device_id, secret):
    """The identity store's bytes: device id and the 32-byte handset secret."""
    return struct.pack(_ID_FMT, ID_MAGIC, ID_FORMAT, 0, device_id, secret)


def unpack_identity(data):
    """(device id, secret) from the identity store's bytes, or None when they do not parse."""
    if data is None or len(data) != IDENTITY_SIZE or bytes(data[:2]) != ID_MAGIC or data[2] != ID_FORMAT:
        return None
    _magic, _fmt, _flags, device_id, secret = struct.unpack(_ID_FMT, data)
    if device_id <= 0:
        return None
    return device_id, bytes(secret)
