"""SMP file-system group (8), read-only: the event log and a view of the state as two files.

`/log/events.bin` is the log export (interlock.record: a header, then the held records back to back, hash
chained); `/state.json` is the reported state (`status()`) as JSON. A download starts at offset 0, which
takes a snapshot of the length (and of the state text), so records appended while it runs do not move
the end under the client. Each answer fills the port's buffer (MCUmgr buf_size). Every log download is
logged with the technician's id, from whatever offset it starts.
"""

import json

from micropython import const

from fsm import records
from service import smp

LOG_FILE = "/log/events.bin"
STATE_FILE = "/state.json"

TRANSFER = const(0)
STATUS = const(1)
CLOSE = const(4)

# FS_MGMT_ERR codes (SMP v2)
_RC_NOT_FOUND = const(3)
_RC_OFFSET_LARGER = const(12)
_RC_READ_ONLY = const(15)
V1_MAP = {_RC_NOT_FOUND: smp.ENOENT, _RC_OFFSET_LARGER: smp.EINVAL, _RC_READ_ONLY: smp.EACCESSDENIED}

_REPLY_FIXED = const(40)  # header + map + keys + the largest off/len integers + a 3-byte bytes head


def known(op, cmd):
    """True for the commands this group serves with that op."""
    return cmd == TRANSFER or (cmd == STATUS and op == smp.OP_READ) or (cmd == CLOSE and op == smp.OP_WRITE)


def _state_bytes(svc):
    """status() as JSON with sorted keys (MicroPython's json.dumps follows its unordered dicts)."""
    st = svc.handset.status()
    keys = sorted(st)
    return ("{" + ", ".join(json.dumps(k) + ": " + json.dumps(st[k]) for k in keys) + "}").encode()


def _open(svc, sess, name, off):
    """Start a download of name at off for the session: (size, snapshot), logging a log download; None when
    off lies beyond the end (nothing is logged then)."""
    if name == LOG_FILE:
        if off > svc.log.export_size():
            return None
        # logged first, so a download from the start carries the evidence of itself
        svc.logged(sess, records.SVC_DOWNLOAD, svc.log.next_seq() - 1)
        size, snap = svc.log.export_size(), None
    else:
        snap = _state_bytes(svc)
        size = len(snap)
        if off > size:
            return None
    sess.download = (name, size, snap)
    sess.dl_start = off
    sess.dl_next = off
    return sess.download


def chunk_size(svc):
    """Bytes of file data one answer carries: the packet limit less the header and map."""
    return svc.limit - _REPLY_FIXED


def handle(svc, sess, now_ms, op, cmd, req):
    """Serve one FS group request (see known()) for the connection's session sess."""
    name = req.get("name")
    if cmd == CLOSE:
        sess.download = None
        return {}
    if not isinstance(name, str):
        return smp.EINVAL
    if name != LOG_FILE and name != STATE_FILE:
        return smp.group_err(_RC_NOT_FOUND)
    if cmd == STATUS:
        if name == LOG_FILE:
            return {"len": svc.log.export_size()}
        return {"len": len(_state_bytes(svc))}
    if op == smp.OP_WRITE:
        return smp.group_err(_RC_READ_ONLY)
    off = req.get("off")
    if not isinstance(off, int) or isinstance(off, bool) or off < 0:
        return smp.EINVAL
    dl = sess.download
    # the download in progress goes on while the client asks for its next chunk or repeats one (a lost
    # answer); anything else (offset 0, another file, a jump) is a new download, and a log download is
    # logged from whatever offset it starts
    if off == 0 or dl is None or dl[0] != name or off < sess.dl_start or off > sess.dl_next:
        dl = _open(svc, sess, name, off)
        if dl is None:
            return smp.group_err(_RC_OFFSET_LARGER)
    size = dl[1]
    if off > size:
        return smp.group_err(_RC_OFFSET_LARGER)
    n = min(chunk_size(svc), size - off)
    if dl[2] is not None:
        data = dl[2][off:off + n]
    else:
        data = svc.log.export_read(off, n) if n else b""
    if off + n > sess.dl_next:
        sess.dl_next = off + n
    if off == 0:
        return {"off": off, "data": data, "len": size}
    return {"off": off, "data": data}
