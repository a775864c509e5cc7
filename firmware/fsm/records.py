"""Log record types and their fields. A record is (seq, wall, type, a, b, c, photo), all integers.

`wall` is device time: seconds since 2024-01-01 00:00 UTC. The meaning of a, b, c per type is given beside
each constant; the log reader prints them by these names.
"""

from micropython import const

BOOT = const(1)  # a=firmware version, b=power gap s (-1 unknown), c=1 if state was missing or corrupt
POWER_GAP = const(2)  # a=gap s it provably lasted (-1 unknown), b=limit s, c=gap s since the last heartbeat
STATE = const(3)  # a=new state, b=old state
IGNITION = const(4)  # a=1 on / 0 off; b=1: off while the engine runs (taken as on until it stops)
# b=2: started by the supply's crank sag then charge while its sense reads off (power.CrankWatch)
ENGINE = const(5)  # a=1 running / 0 stopped; b=1: running by the supply's charge while its sense reads off
TEST_REQUEST = const(6)  # a=1 start test / 2 retest
ABORT = const(7)  # a=abort reason (ABORT_*), b=aborts in window
RESULT = const(8)  # a=BrAC (thousandths g/dL), b=verdict (PASS/WARN/FAIL), c=1 start / 2 retest
LOCKOUT = const(9)  # a=kind (LOCK_*), b=seconds (0 = until cleared), c=cause
CLEAR = const(10)  # a=kind (LOCK_*), b=source (SRC_*), c=technician id or code counter or lockout id
VIOLATION = const(11)  # a=cause (VIO_*), b=violations this service period, c=recall deadline (wall)
RETEST = const(12)  # a=outcome (RT_*) or 0 with b=1 for a request, c=why it was asked (RQ_*)
MODULE = const(13)  # a=event (MOD_*), b=serial, c=expiry day
HANDSET = const(14)  # a=1 connected / 0 disconnected, b=engine running
SERVICE = const(15)  # a=action (SVC_*), b=technician id, c=value
CODE = const(16)  # a=1 accepted / 0 refused, b=action, c=counter (accepted) or wait s (refused)
SYNC = const(17)  # a=outcome (SYNC_*), b=value, c=detail
POLICY = const(18)  # a=new version, b=old version, c=source
CLOCK = const(19)  # a=1 set / 2 jump detected, b=delta s, c=source
PAYMENT = const(20)  # a=1 due warning / 2 due lock / 3 date changed, b=due day
INSPECTION = const(21)  # a=1 reminder / 2 due lock / 3 date changed, b=due day
FAULT = const(22)  # a=fault code (FAULT_*), b=detail, c=detail
BYPASS = const(23)  # engine started without a start permission; b=state
ALARM = const(24)  # a=1 on / 0 off, b=reason
STORAGE = const(25)  # a=1 nearly full lock
BOOT_REASON = const(26)  # a=why the board started (board.RESET_*), b=watchdog restarts in a row
VOLTAGE = const(27)  # a=supply level (power.OK 0 / LOW 1 / CRITICAL 2), b=mV, c=1 engine running
# a failed start test no pass followed within the policy's startup_fail_s: a=device time of that fail,
# b=startup_fail_s, c=1 if also booked as a violation (VIO_FAILED_START; 0 when startup_fail_now booked the fail)
STARTUP_FAIL = const(28)

NAMES = {
    BOOT: "BOOT", POWER_GAP: "POWER_GAP", STATE: "STATE", IGNITION: "IGNITION", ENGINE: "ENGINE",
    TEST_REQUEST: "TEST_REQUEST", ABORT: "ABORT", RESULT: "RESULT", LOCKOUT: "LOCKOUT", CLEAR: "CLEAR",
    VIOLATION: "VIOLATION", RETEST: "RETEST", MODULE: "MODULE", HANDSET: "HANDSET", SERVICE: "SERVICE",
    CODE: "CODE", SYNC: "SYNC", POLICY: "POLICY", CLOCK: "CLOCK", PAYMENT: "PAYMENT",
    INSPECTION: "INSPECTION", FAULT: "FAULT", BYPASS: "BYPASS", ALARM: "ALARM", STORAGE: "STORAGE",
    BOOT_REASON: "BOOT_REASON", VOLTAGE: "VOLTAGE", STARTUP_FAIL: "STARTUP_FAIL",
}

# verdicts
PASS = const(1)
WARN = const(2)
FAIL = const(3)

# abort reasons
ABORT_VOLUME = const(1)  # not enough volume / too short
ABORT_HARDER = const(2)  # flow too low
ABORT_SOFTER = const(3)  # flow too high
ABORT_INHALE = const(4)  # suction detected
ABORT_TEMP = const(5)  # air not breath-warm
ABORT_HUM = const(6)  # hum tone missing
ABORT_TIMEOUT = const(7)  # no blow within the wait

# lockout kinds
LOCK_TEMP = const(1)  # after a failed start test
LOCK_ABORT = const(2)  # too many aborts
LOCK_VIOLATION = const(3)  # VIOLATION LOCKOUT
LOCK_SERVICE = const(4)  # INSPECTION DUE past grace
LOCK_PAYMENT = const(5)  # PAYMENT DUE past grace
LOCK_STORAGE = const(6)  # log nearly full of unacknowledged records
LOCK_CODES = const(7)  # wrong unlock codes: wait
LOCK_STATE = const(8)  # persistent state missing or corrupt

# clear sources
SRC_CODE = const(1)
SRC_REMOTE = const(2)
SRC_TECH = const(3)
SRC_TIMER = const(4)

# violation causes
VIO_MISSED_RETEST = const(1)
VIO_FAILED_RETEST = const(2)
VIO_BYPASS = const(3)
VIO_DISCONNECT = const(4)
VIO_POWER_CUT = const(5)
VIO_TAMPER = const(6)
VIO_REFUSED_RETEST = const(7)
VIO_FAILED_START = const(8)  # a start-up failure (STARTUP_FAIL) where the policy makes it a violation, or
# any failed start test where startup_fail_now says so

# fault codes (FAULT a=)
FAULT_WARMUP = const(1)  # warm-up timed out; b=cell temperature, c=1 start test / 2 retest
FAULT_RUNTIME = const(2)  # the runtime caught an unexpected error and failed safe
# the analysis of a drawn sample ended without a result; b=1 start test / 2 retest, c=0 a power cut, else the
# state that ended it (the module pulled: NO_MODULE; the handset unplugged: DISCONNECTED)
FAULT_ANALYSIS_LOST = const(3)
FAULT_TASK = const(4)  # a background task failed; b=task (supervisor.TASK_*), c=how (supervisor.HOW_*)
# the serial service port could not be opened at boot: a MicroPython build that keeps UART0 for its REPL (a
# stock ESP32_GENERIC / ESP32_GENERIC_S3: "REPL UART buffer size is fixed"); the handset runs on without it, the
# BLE port still serves; relay and retests unaffected. Once per boot.
FAULT_SERVICE_PORT = const(5)

# retest outcomes
RT_PASS = const(1)
RT_WARN = const(2)
RT_FAIL = const(3)
RT_MISSED = const(4)
RT_REFUSED = const(5)

# why a retest was asked (RETEST a=0 b=1 c=)
RQ_SCHEDULE = const(0)  # the rolling schedule
RQ_BYPASS = const(1)  # the engine started without a pass
RQ_POWER_CUT = const(2)  # a power cut interrupted a drive that may not resume unasked
RQ_REDEMAND = const(3)  # a missed or failed retest asked again at once (policy retest_redemand)

# module events
MOD_INSERTED = const(1)
MOD_REMOVED = const(2)
MOD_TAMPER = const(3)  # removed while the engine runs
MOD_EXPIRED = const(4)
MOD_UNEXPECTED = const(5)  # serial differs from the expected module

# service actions (technician or remote)
SVC_RECORD = const(1)  # service visit recorded, c=next due day
SVC_CALIBRATE = const(2)
SVC_EXTEND = const(3)  # c=days
SVC_LOGIN = const(4)
SVC_LOGIN_REFUSED = const(5)
SVC_PROVISION = const(6)
SVC_DOWNLOAD = const(7)
SVC_MODULE = const(8)
SVC_POLICY = const(21)  # a technician pushed a policy; c = the version now in force
SVC_CLOCK = const(22)  # a technician set the clock; c = device time set
SVC_RESET = const(23)  # a technician reset the handset

