"""Three-button unlock codes: HOTP-style one-time values bound to the device, an action and an issue hour.

code = HOTP dynamic truncation of HMAC-SHA256(unlock_key, "UC" | device_id u32 | action u8 | counter u32 |
issue_hour u32), 8 digits, where issue_hour = device seconds // 3600. The handset accepts a code whose counter is
at or above its next unused counter (within a look-ahead window, for codes issued while it was offline) and
whose issue hour lies within the validity; accepting counter c voids every counter <= c.
"""

import struct

from . import crypto

ACTION_CLEAR = 1  # clear a violation lockout
ACTION_SERVICE = 2  # extend the service / inspection interval by the policy's grace
DIGITS = 8


def message(device_id, action, counter, issue_hour):
    """The bytes a code's HMAC covers."""
    return b"UC" + struct.pack(">IBII", device_id, action, counter, issue_hour)


def code_for(unlock_key, device_id, action, counter, issue_hour, digits=DIGITS, mac=crypto.hmac_sha256):
    """The code (an int) for these parameters; the companion issues with this, the handset verifies with it.

    mac(key, msg) is HMAC-SHA256 (the firmware's by default; the companion passes the standard library's).
    """
    return crypto.truncate(mac(unlock_key, message(device_id, action, counter, issue_hour)), digits)
