"""The handset's states, buzzer patterns, camera reasons and poll intervals: shared by the machine and its view."""

from micropython import const

# states
S_OFF = const(1)
S_DISCONNECTED = const(2)
S_SERVICE_LOCK = const(3)
S_VIOLATION = const(4)
S_TEMP_LOCK = const(5)
S_NO_MODULE = const(6)
S_MODULE_EXP = const(7)
S_INSPECTION = const(8)
S_PAYMENT = const(9)
S_TEST = const(10)
S_RESULT = const(11)
S_START = const(12)
S_RESTART = const(13)
S_DRIVING = const(14)
S_RETEST = const(15)
S_CODE = const(16)
S_MENU = const(17)
S_FAULT = const(18)

STATE_NAMES = (
    "", "OFF", "DISCONNECTED", "SERVICE_LOCK", "VIOLATION", "TEMP_LOCK", "NO_MODULE", "MODULE_EXP",
    "INSPECTION", "PAYMENT", "TEST", "RESULT", "START", "RESTART", "DRIVING", "RETEST", "CODE", "MENU",
    "FAULT",
)

# poll intervals the runtime is asked for
POLL_FAST = const(50)
POLL_NORMAL = const(250)
POLL_IDLE = const(5000)  # ignition off: inputs that matter wake the loop (pin interrupts)

# camera reasons
PHOTO_REQUEST = const(1)
PHOTO_SAMPLE = const(2)
PHOTO_RETEST = const(3)
