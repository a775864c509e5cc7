"""The flash event log and state store on the board's flash driver (VfsFlash): same bytes on both interpreters.

On MicroPython the driver runs on its in-memory filesystem, on CPython on a temporary directory.
"""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import binascii
import hashlib
import os
import sys

from drivers.flash import VfsFlash
from interlock import record
from storage.log import FlashLog
from storage.state import FileState, PairState


def _root():
    """An empty directory for the flash driver's root."""
    if sys.implementation.name == "micropython":
        path = "/conf_storage_log"
        os.mkdir(path)
        return path
    import tempfile

    return tempfile.mkdtemp()


def _hex(b):
    """Lowercase hex of bytes."""
    return binascii.hexlify(b).decode()


def main():
    """Append, acknowledge, free, export, remount; print what each step gives."""
    fl = VfsFlash(_root())
    log = FlashLog(fl, seg_records=7, capacity=60, reserve=10, retention=100)
    for i in range(45):
        seq = log.append(2000 + 13 * i, 1 + i % 25, i * 1000 - 7000, -i, i * i, i % 3)
        if i % 11 == 10:
            log.acknowledge(seq - 4, 2000 + 13 * i)
            print("ack", seq - 4, "first", log.first_seq(), "nearly_full", log.nearly_full())
    print("next", log.next_seq(), "head", _hex(log.head()[1]))
    print("read", log.read(40), log.read(45), log.read(1), log.read(46))
    size = log.export_size()
    data = log.export_read(0, size)
    print("export", size, _hex(hashlib.sha256(data).digest()))
    first, prev = record.parse_header(data)
    print("export verifies", record.verify(data[record.HEADER_SIZE:], prev, first)[0:2])
    again = FlashLog(fl, seg_records=7, capacity=60, reserve=10, retention=100)
    print("remount", again.next_seq(), again.acked(), again.first_seq(), again.head() == log.head())
    print("verify", again.verify()[0:2], sorted(fl.listdir("/log")))
    for cls in (FileState, PairState):
        st = cls(fl, "/st_" + cls.__name__)
        print(cls.__name__, st.load())
        st.save(b"lock=1")
        st.save(b"lock=0 codes=2")
        print(cls.__name__, cls(fl, "/st_" + cls.__name__).load())


main()
