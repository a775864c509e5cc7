"""SMP (MCUmgr) message constants and the response packet: header, success map, v1 and v2 errors.

Header, 8 bytes big-endian: version (bits 4..3) and op (bits 2..0); flags; payload length; group; sequence;
command. A response has op + 1 and echoes the rest. Errors: v1 `{"rc": n}`; v2 `{"err": {"group": g,
"rc": n}}` for a group's own codes, while protocol-level ones (MGMT_ERR) stay `{"rc": n}` in both.
"""

import struct

from micropython import const

from interlock import smpgroup
from service import cbor

HEADER = const(8)

OP_READ = const(0)
OP_READ_RSP = const(1)
OP_WRITE = const(2)
OP_WRITE_RSP = const(3)

V1 = const(0)
V2 = const(1)

G_OS = const(0)
G_FS = const(8)
G_INTERLOCK = smpgroup.GROUP  # the interlock group (interlock.smpgroup)

# MGMT_ERR: protocol-level return codes
OK = const(0)
EUNKNOWN = const(1)
ENOMEM = const(2)
EINVAL = const(3)
ETIMEOUT = const(4)
ENOENT = const(5)
EBADSTATE = const(6)
EMSGSIZE = const(7)
ENOTSUP = const(8)
ECORRUPT = const(9)
EBUSY = const(10)
EACCESSDENIED = const(11)
ETOONEW = const(13)  # UNSUPPORTED_TOO_NEW: a header version this server does not speak

# A handler returns a dict (success), an MGMT_ERR int, or GROUP_ERR | rc for a code of its own group.
GROUP_ERR = const(0x10000)


def group_err(rc):
    """The handler result for the group-specific error code rc."""
    return GROUP_ERR | rc


def parse_header(packet):
    """(version, op, flags, length, group, seq, cmd) of a packet with at least HEADER bytes."""
    b0, flags, length, group, seq, cmd = struct.unpack_from(">BBHHBB", packet, 0)
    return (b0 >> 3) & 3, b0 & 7, flags, length, group, seq, cmd


_HEAD0 = bytes(HEADER)


def response_into(out, version, op, flags, group, seq, cmd, body):
    """Write the response packet for a request header and a CBOR-encodable body map into the bytearray out
    (emptied first; its allocation is reused) and return out. CborError if body cannot be encoded."""
    out[:] = b""
    out.extend(_HEAD0)
    cbor.encode_into(out, body)
    struct.pack_into(">BBHHBB", out, 0, ((version & 3) << 3) | ((op + 1) & 7), flags, len(out) - HEADER, group,
                     seq, cmd)
    return out


def response(version, op, flags, group, seq, cmd, body):
    """The response packet (bytes) for a request header and a CBOR-encodable body map."""
    return bytes(response_into(bytearray(), version, op, flags, group, seq, cmd, body))


def error_body(version, group, result, v1_map=None):
    """The error map for a handler result that is not a dict."""
    if result & GROUP_ERR:
        rc = result & 0xFFFF
        if version >= V2:
            return {"err": {"group": group, "rc": rc}}
        # SMP v1 has only the common codes: translate the group's code
        return {"rc": v1_map.get(rc, EUNKNOWN) if v1_map else EUNKNOWN}
    return {"rc": result}
