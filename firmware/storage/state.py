"""Persistent state on flash: the bytes the state machine hands over, written so a power cut never halves them.

Each stored copy is a 16-byte header and the data:
    0  4  magic b"IST1"
    4  4  generation u32 (one more at every save)
    8  4  length of the data
   12  4  CRC-32 of bytes 4..11 then the data (so a damaged generation or length is caught too)
load() returns the data only when magic, length and CRC agree, otherwise None (the caller fails safe).

The handset's identity (device id and secret, written once at provisioning) is kept apart from the state, in a
store of the same kind beside it (`path.id` for FileState, `path.id.a` / `path.id.b` for PairState), with its
own header and CRC: save_identity(data) / load_identity(). A state that is lost or corrupt leaves the identity
whole, so the handset can still be serviced and still syncs.

Two ways to make save atomic, both provided, both exercised at every power-cut point by
tests/test_storage_powercut.py:
    FileState  write the new copy to `path.tmp`, then rename it over `path` (littlefs rename is atomic). One
               file, one copy on flash. The default.
    PairState  two slots `path.a` / `path.b`; save overwrites the slot NOT holding the newest valid copy, and
               load takes the valid slot with the higher generation. Does not depend on rename or on whole-
               file commits, so it also holds on a filesystem that could tear a file (e.g. FAT).
"""

import binascii
import struct

from micropython import const

_HDR = const(16)
_MAGIC = b"IST1"


def _pack(gen, data):
    """Header and data of one stored copy."""
    buf = bytearray(_HDR + len(data))
    buf[0:4] = _MAGIC
    struct.pack_into("<II", buf, 4, gen & 0xFFFFFFFF, len(data))
    buf[_HDR:] = data
    struct.pack_into("<I", buf, 12, _crc(buf))
    return buf


def _crc(buf):
    """CRC-32 of the generation, the length and the data of a stored copy."""
    mv = memoryview(buf)
    return binascii.crc32(mv[_HDR:], binascii.crc32(mv[4:12])) & 0xFFFFFFFF


def _unpack(buf):
    """(generation, data) of a stored copy, or None when it is not whole."""
    if buf is None or len(buf) < _HDR or bytes(buf[0:4]) != _MAGIC:
        return None
    gen, n, crc = struct.unpack_from("<III", buf, 4)
    if len(buf) != _HDR + n:
        return None
    if _crc(buf) != crc:
        return None
    return gen, bytes(buf[_HDR:])


def _read(flash, path):
    """Whole file or None when missing or unreadable."""
    if flash.stat(path) < 0:
        return None
    try:
        return flash.read(path)
    except OSError:
        return None


class FileState:
    """StateStore: temp file then atomic rename."""

    def __init__(self, flash, path="/state"):
        self.flash = flash
        self.path = path
        self.tmp = path + ".tmp"
        self._gen = -1
        self._stamp = bytearray(8)
        self._id = None

    def _identity(self):
        if self._id is None:
            self._id = FileState(self.flash, self.path + ".id")
        return self._id

    def load_identity(self):
        """The identity bytes last saved, or None when missing or corrupt."""
        return self._identity().load()

    def save_identity(self, data):
        """Replace the identity; after a power cut load_identity() gives the old or the new bytes, whole."""
        self._identity().save(data)

    def load(self):
        """The last saved bytes, or None when missing or corrupt."""
        got = _unpack(_read(self.flash, self.path))
        self.flash.remove(self.tmp)  # a cut before the rename: the old copy stays current
        if got is None:
            self._gen = 0
            return None
        self._gen = got[0]
        return got[1]

    def generation(self):
        """Generation of the copy load() or save() last saw (0 = none)."""
        return self._gen

    def save(self, data):
        """Replace the state with data; after a power cut load() gives the old or the new bytes, whole."""
        if self._gen < 0:
            self.load()
        gen = self._gen + 1
        self.flash.write(self.tmp, _pack(gen, data))
        self.flash.rename(self.tmp, self.path)
        self._gen = gen

    def stamp(self, wall):
        """Note that the handset was alive at device time wall, in an 8-byte file of its own.

        The heartbeat behind the power-gap measurement comes every minute; rewriting the whole state for it
        cost a block erase each time. A file this small lives inline in littlefs metadata, and a write
        commits at close, whole or not at all.
        """
        struct.pack_into("<II", self._stamp, 0, wall & 0xFFFFFFFF, ~wall & 0xFFFFFFFF)
        self.flash.write(self.path + ".alive", self._stamp)

    def last_stamp(self):
        """Device time of the last stamp, or 0 when there is none (or it does not check)."""
        buf = _read(self.flash, self.path + ".alive")
        if buf is None or len(buf) != 8:
            return 0
        wall, inv = struct.unpack("<II", buf)
        return wall if wall == ~inv & 0xFFFFFFFF else 0


class PairState:
    """StateStore: two slots with a generation counter; the older slot is overwritten."""

    def __init__(self, flash, path="/state"):
        self.flash = flash
        self.slots = (path + ".a", path + ".b")
        self._gen = -1
        self._cur = -1  # slot index holding the newest valid copy
        self._path = path
        self._id = None

    def _identity(self):
        if self._id is None:
            self._id = PairState(self.flash, self._path + ".id")
        return self._id

    def load_identity(self):
        """The identity bytes last saved, or None when neither of its slots holds a whole copy."""
        return self._identity().load()

    def save_identity(self, data):
        """Replace the identity; the older identity slot is overwritten."""
        self._identity().save(data)

    def load(self):
        """The newest whole copy, or None when neither slot holds one."""
        best = None
        self._cur = -1
        self._gen = 0
        for i in range(2):
            got = _unpack(_read(self.flash, self.slots[i]))
            if got is not None and (best is None or got[0] > best[0]):
                best = got
                self._cur = i
        if best is None:
            return None
        self._gen = best[0]
        return best[1]

    def generation(self):
        """Generation of the copy load() or save() last saw (0 = none)."""
        return self._gen

    def save(self, data):
        """Write data to the other slot; the newest copy stays intact until this one is whole."""
        if self._gen < 0:
            self.load()
        i = 1 if self._cur == 0 else 0
        gen = self._gen + 1
        self.flash.write(self.slots[i], _pack(gen, data))
        self._gen = gen
        self._cur = i
