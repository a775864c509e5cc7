"""The handset's last reported status in a driver's words (gettext ids; translated where shown)."""

from companion.app.notifications.messages import N_

# reported "state" -> what it means for the driver
STATES = {
    "OFF": N_("Ready. Turn the key and blow when asked."),
    "DISCONNECTED": N_("Not connected to the vehicle. Call us."),
    "SERVICE_LOCK": N_("Locked: a service visit is overdue."),
    "VIOLATION": N_("Locked out after a violation."),
    "TEMP_LOCK": N_("Temporarily locked after a failed test."),
    "NO_MODULE": N_("No sensor module. Put the module back in."),
    "MODULE_EXP": N_("The sensor module has expired."),
    "INSPECTION": N_("An inspection is due."),
    "PAYMENT": N_("A payment is due."),
    "TEST": N_("Taking a breath test."),
    "RESULT": N_("Showing a test result."),
    "START": N_("Passed: the engine may start."),
    "RESTART": N_("Free restart window."),
    "DRIVING": N_("Driving."),
    "RETEST": N_("A rolling retest is due."),
    "CODE": N_("Entering an unlock code."),
    "MENU": N_("In the menu."),
    "FAULT": N_("Fault. Call us."),
}

# the violation that started a violation lockout (fsm.records VIO_*; 0: the early-recall deadline passed)
CAUSES = {
    0: N_("no service visit before the early-recall deadline"),
    1: N_("a missed retest"),
    2: N_("a failed retest"),
    3: N_("a start without a passing test"),
    4: N_("the handset was disconnected"),
    5: N_("power cuts"),
    6: N_("tampering"),
    7: N_("a refused retest"),
    8: N_("a failed start test with no pass after it"),
}
UNKNOWN_STATE = N_("Not reported yet: the handset has not synced.")
