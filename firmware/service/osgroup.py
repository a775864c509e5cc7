"""SMP OS group (0): echo, datetime, reset, MCUmgr parameters, application info."""

import sys

from micropython import const

from interlock import timebase
from service import ilgroup, smp

ECHO = const(0)
DATETIME = const(4)
RESET = const(5)
PARAMS = const(6)
INFO = const(7)

_RC_INVALID_FORMAT = const(2)  # OS_MGMT_RET_RC


def known(op, cmd):
    """True for the commands this group serves with that op."""
    if cmd == ECHO or cmd == RESET:
        return op == smp.OP_WRITE
    if cmd == DATETIME:
        return True
    return (cmd == PARAMS or cmd == INFO) and op == smp.OP_READ


def _2(n):
    return ("0" + str(n)) if n < 10 else str(n)


def format_wall(wall):
    """ISO 8601 UTC text (no zone suffix, as Zephyr prints it) of device seconds."""
    y, m, d = timebase.civil_from_days(wall // 86400)
    s = wall % 86400
    return "%d-%s-%sT%s:%s:%s" % (y, _2(m), _2(d), _2(s // 3600), _2(s // 60 % 60), _2(s % 60))  # noqa: UP031 (MicroPython)


def _digits(part):
    """True when part is one or more ASCII digits (CPython's isdigit takes other scripts' digits too)."""
    if not part:
        return False
    for ch in part:
        if ch < "0" or ch > "9":
            return False
    return True


def _num(text, a, b):
    """The decimal number in text[a:b]; ValueError unless it is all ASCII digits."""
    part = text[a:b]
    if len(part) != b - a or not _digits(part):
        raise ValueError("bad number")
    return int(part)


def parse_wall(text):
    """Device seconds of 'YYYY-MM-DDTHH:MM:SS[.frac][Z|+HH:MM|-HH:MM]'; ValueError when malformed."""
    if len(text) < 19 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt " or text[13] != ":" \
            or text[16] != ":":
        raise ValueError("bad datetime")
    y, mo, d = _num(text, 0, 4), _num(text, 5, 7), _num(text, 8, 10)
    h, mi, s = _num(text, 11, 13), _num(text, 14, 16), _num(text, 17, 19)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        raise ValueError("bad datetime")
    rest = text[19:]
    if rest[:1] == ".":
        i = 1
        while i < len(rest) and _digits(rest[i]):
            i += 1
        if i == 1:
            raise ValueError("bad fraction")
        rest = rest[i:]
    offset = 0
    if rest in ("", "Z", "z"):
        pass
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        offset = (_num(rest, 1, 3) * 60 + _num(rest, 4, 6)) * 60
        if rest[0] == "-":
            offset = -offset
    else:
        raise ValueError("bad zone")
    day = timebase.days_from_civil(y, mo, d)
    if timebase.civil_from_days(day) != (y, mo, d):
        raise ValueError("no such date")
    wall = day * 86400 + h * 3600 + mi * 60 + s - offset
    if wall < 1 or wall > ilgroup.WALL_MAX:
        raise ValueError("out of range")
    return wall


def _info(svc, fmt):
    if fmt is None:
        fmt = "s"
    if not isinstance(fmt, str):
        return smp.EINVAL
    parts = {}
    fw = svc.firmware
    for ch in fmt:
        if ch not in "snrvbmpioa":
            return smp.group_err(_RC_INVALID_FORMAT)
        parts[ch] = 1
    every = "a" in parts
    out = []
    values = (("s", "interlock"), ("n", "handset-" + str(svc.handset.device_id)), ("r", fw), ("v", fw),
              ("b", ""), ("m", sys.platform), ("p", sys.platform), ("i", sys.platform),
              ("o", sys.implementation.name))
    for key, value in values:
        if (every or key in parts) and value:
            out.append(value)
    return {"output": " ".join(out)}


def handle(svc, sess, now_ms, op, cmd, req):
    """Serve one OS group request (see known()) for the connection's session sess."""
    if cmd == ECHO:
        d = req.get("d")
        if not isinstance(d, str):
            return smp.EINVAL
        return {"r": d}
    if cmd == PARAMS:
        return {"buf_size": svc.buf_size, "buf_count": 1}  # one reassembly buffer: requests in turn
    if cmd == INFO:
        return _info(svc, req.get("format"))
    if cmd == DATETIME:
        if op == smp.OP_READ:
            return {"datetime": format_wall(svc.handset.wall)}
        text = req.get("datetime")
        if not isinstance(text, str):
            return smp.EINVAL
        try:
            wall = parse_wall(text)
        except ValueError:
            return smp.EINVAL
        return ilgroup.set_clock(svc, sess, now_ms, wall, {})
    # RESET: answer first; the runtime resets once the reply is on the wire, and the session ends with it
    svc.logged(sess, ilgroup.SVC_RESET)
    svc.reset_requested = True
    return {}
