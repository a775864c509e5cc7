"""The service port's interlock group (SMP group GROUP): its command ids and its own error codes.

The handset serves it (service/ilgroup.py); the technician tool and its smpmgr plugin speak it
(technician/protocol.py). Requests and answers are CBOR maps with the fields given beside each command.
"""

from .const import const

GROUP = const(100)  # the application's group (64 is taken by smpmgr's built-in `ic`)

AUTH = const(0)  # read: {} -> {"nonce"}; write: {"tech_id", "expires", "mac"} -> {"tech_id", "expires"}
STATUS = const(1)  # read: {} -> {"status": {...}}
CALIBRATE = const(2)  # write: {"zero", "ref", "brac"} -> {}
MODULE = const(3)  # write: {"serial", "expiry"} -> {}
SERVICE = const(4)  # write: {"due"?} -> {"due"}
CLEAR = const(5)  # write: {"lockout_id"?} -> {}
POLICY = const(6)  # read: {} -> {"policy"}; write: {"policy": {name: int, "version"}} -> {"policy_version"}
CLOCK = const(7)  # read: {} -> {"wall"}; write: {"wall"} -> {"wall"}
PROVISION = const(8)  # write: {"device_id", "secret"} -> {"device_id"}; only while unprovisioned
LOGOUT = const(9)  # write: {} -> {}

# this group's error codes (SMP v2 "err": {"group": GROUP, "rc": ...})
ERR_OK = const(0)
ERR_UNKNOWN = const(1)
ERR_REFUSED = const(2)  # the state machine refused the change (logged there)
ERR_EXPIRED = const(3)  # technician token expired
ERR_BAD_TOKEN = const(4)  # wrong MAC: a wrong token or one for another handset
ERR_NO_CHALLENGE = const(5)  # answer without a fresh challenge (replay or too late)
ERR_TOKEN_TOO_LONG = const(6)  # token lifetime beyond what the handset accepts
ERR_UNPROVISIONED = const(7)  # the handset has no key: provision it first
ERR_PROVISIONED = const(8)  # the handset already has its key
