"""Purpose keys, unlock codes and technician token keys from fixed secrets: the companion's test compares
these lines with its own derivation, and both interpreters must print the same bytes."""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import hashlib
import struct

from interlock import codes, crypto


def secret(i):
    """A fixed 32-byte secret for case i."""
    return hashlib.sha256(b"sync keys case " + str(i).encode()).digest()


def main():
    """One line per case: secret, sync key, unlock key, tech key, a code, a technician token key."""
    for i in range(6):
        s = secret(i)
        sync = crypto.derive(s, crypto.LABEL_SYNC)
        unlock = crypto.derive(s, crypto.LABEL_UNLOCK)
        tech = crypto.derive(s, crypto.LABEL_TECH)
        device = 1000 + i * 7919
        code = codes.code_for(unlock, device, codes.ACTION_CLEAR if i % 2 else codes.ACTION_SERVICE, i + 1,
                              25000 + i)
        token = crypto.hmac_sha256(tech, b"TT" + struct.pack(">III", device, 40 + i, 91000000 + i * 3600))
        print(" ".join((crypto.hexlify(s), crypto.hexlify(sync), crypto.hexlify(unlock), crypto.hexlify(tech),
                        str(device), "{:08d}".format(code), crypto.hexlify(token))))  # noqa: UP032


main()
