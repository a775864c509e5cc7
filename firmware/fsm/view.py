"""What the driver sees: the screen drawn from the state machine's state, every poll, without allocating.

`render` writes the 2 x 16 screen for the current state into the machine's scratch buffer and hands it to the
display only when it differs from what is shown (the buffers are swapped, not copied).
"""

from fsm import breath, records
from fsm.states import (
    S_CODE,
    S_DISCONNECTED,
    S_DRIVING,
    S_FAULT,
    S_INSPECTION,
    S_MENU,
    S_MODULE_EXP,
    S_NO_MODULE,
    S_OFF,
    S_PAYMENT,
    S_RESTART,
    S_RESULT,
    S_RETEST,
    S_SERVICE_LOCK,
    S_START,
    S_TEMP_LOCK,
    S_TEST,
    S_VIOLATION,
)
from interlock import timebase


def render(m, now):
    """Draw the screen for m's state; send it to the display only when it changed."""
    s = m.screen
    s.clear()
    state = m.state
    if state == S_OFF or state == S_DISCONNECTED:
        pass
    elif state == S_TEST or state == S_RETEST:
        _test(m, now, s)
    elif state == S_RESULT:
        _verdict(m, s)
    elif state == S_START:
        _verdict(m, s)
        col = s.text(1, 0, b"START ")
        s.mmss(1, col, m.policy.start_window_s - timebase.diff(now, m._state_since) // 1000)
    elif state == S_RESTART:
        s.text(0, 0, b"RESTART OK")
        s.mmss(1, 0, m.restart_until - m.wall)
    elif state == S_DRIVING:
        s.text(0, 0, b"DRIVE SAFELY")
        notice_line(m, s, 1)
    elif state == S_VIOLATION:
        s.message(b"VIOLATION LOCKOUT")
    elif state == S_TEMP_LOCK:
        col = s.text(0, 0, b"LOCK ")
        s.mmss(0, col, m.temp_until - m.wall)
        s.text(1, 0, b"TOO MANY ABORTS" if m.temp_kind == records.LOCK_ABORT else b"FAILED TEST")
    elif state == S_NO_MODULE:
        s.text(0, 0, b"INSERT MODULE")
    elif state == S_MODULE_EXP:
        s.text(0, 0, b"MODULE EXP")
        s.text(1, 0, b"REPLACE MODULE")
    elif state == S_INSPECTION:
        s.text(0, 0, b"INSPECTION DUE")
        s.text(1, 0, b"CALL SERVICE")
    elif state == S_PAYMENT:
        s.text(0, 0, b"PAYMENT DUE")
        s.text(1, 0, b"PAY TO UNLOCK")
    elif state == S_SERVICE_LOCK:
        s.text(0, 0, b"SERVICE REQUIRED")
        s.text(1, 0, b"LOG FULL" if m.storage_lock and not m.state_lock else b"CALL SERVICE")
    elif state == S_CODE:
        _code(m, s)
    elif state == S_MENU:
        m.menu.render(s, m)
    elif state == S_FAULT:
        s.text(0, 0, b"HEATER FAULT")
        s.text(1, 0, b"CALL SERVICE")
    if s.buf != m._shown:
        m._shown, s.buf = s.buf, m._shown
        m.board.show(m._shown)

def _verdict(m, s):
    kind = m._result_kind
    if kind == records.PASS:
        s.text(0, 0, b"PASS")
    else:
        col = s.text(0, 0, b"WARN " if kind == records.WARN else b"FAIL ")
        s.brac(0, col, m.test.result)

def _test(m, now, s):
    t = m.test
    retest = m.state == S_RETEST
    if retest and m._module is None:
        s.text(0, 0, b"INSERT MODULE")
    elif m._notice and t.phase == breath.READY:
        s.text(0, 0, _ABORT_TEXT[m._notice])
    elif retest and m._fail_shown:
        col = s.text(0, 0, b"FAIL ")
        s.brac(0, col, m._fail_brac)
    elif t.phase == breath.HEAT:
        col = s.text(0, 0, b"HEATING ")
        s.number(0, col, t.progress, 2, False)
        s.text(0, col + 2, b"%")
    elif t.phase == breath.ANALYZE:
        s.text(0, 0, b"ANALYZING")
    elif t.phase == breath.BLOW:
        s.text(0, 0, b"BLOWING")
    else:
        s.text(0, 0, b"RETEST - BLOW" if retest else b"BLOW")
    if retest:
        if m._retest_missed:
            s.text(1, 0, b"MISSED TEST" if not m._fail_shown else b"ALARM ON")
        else:
            s.mmss(1, 0, m.retest_deadline - m.wall)
    else:
        notice_line(m, s, 1)

def notice_line(m, s, line):
    """The most urgent reminder: recall countdown, payment, module expiry, service."""
    if m.recall_deadline:
        col = s.text(line, 0, b"LOCKOUT IN ")
        hours = (m.recall_deadline - m.wall + 3599) // 3600
        col = s.digits(line, col, hours)
        s.text(line, col, b"H")
        return True
    day = m.wall // timebase.DAY
    if m.payment_due and day >= m.payment_due:
        s.text(line, 0, b"PAYMENT DUE")
        return True
    if m._module is not None and m._module.expiry_day - day <= m.policy.module_warn_days:
        col = s.text(line, 0, b"MODULE DUE ")
        col = s.digits(line, col, m._module.expiry_day - day)
        s.text(line, col, b"D")
        return True
    due = m._inspection_day()
    if due and due - day <= m.policy.service_remind_days:
        col = s.text(line, 0, b"SERVICE IN ")
        col = s.digits(line, col, due - day if due > day else 0)
        s.text(line, col, b"D")
        return True
    return False

def _code(m, s):
    if m._code_msg == 1:
        s.text(0, 0, b"CODE ACCEPTED")
    elif m._code_msg == 2:
        s.text(0, 0, b"WRONG CODE")
        if m.code_wait_until > m.wall:
            col = s.text(1, 0, b"WAIT ")
            s.mmss(1, col, m.code_wait_until - m.wall)
    elif not m.policy.codes_per_period:
        s.text(0, 0, b"CODES DISABLED")
    elif m.codes_used >= m.policy.codes_per_period:
        s.text(0, 0, b"NO CODES LEFT")
        s.text(1, 0, b"CALL SERVICE")
    elif m.wall < m.code_wait_until:
        s.text(0, 0, b"ENTER CODE")
        col = s.text(1, 0, b"WAIT ")
        s.mmss(1, col, m.code_wait_until - m.wall)
    else:
        s.text(0, 0, b"ENTER CODE")
        m.entry.render(s, 1)


_ABORT_TEXT = (b"", b"BLOW LONGER", b"BLOW HARDER", b"BLOW SOFTER", b"DON'T INHALE", b"BREATH TOO COLD",
               b"HUM STRONGER", b"NO SAMPLE")
