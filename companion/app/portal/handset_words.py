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

# fsm.records LOCK_* -> the cause
CAUSES = {
    1: N_("a failed breath test"),
    2: N_("too many aborted tests"),
    3: N_("violations (missed retests, power cuts or failed tests)"),
    4: N_("an overdue inspection"),
    5: N_("an overdue payment"),
    6: N_("the log is nearly full: let the handset sync"),
    7: N_("too many wrong unlock codes"),
    8: N_("the saved state was lost"),
}
UNKNOWN_STATE = N_("Not reported yet: the handset has not synced.")
