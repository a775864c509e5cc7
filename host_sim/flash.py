"""Simulated NOR flash under a real littlefs image, and the firmware's flash verbs on it.

`SimFlash` is the block device: a bytearray with NOR semantics (erase sets a 4096-byte block to 0xFF, program
can only clear bits), counters of every operation and byte, and a power cut at the N-th program or erase
operation (counted together from 1). At the cut the operation is torn (only the first half of its bytes
reach the flash) and the device is dead: it refuses every later program or erase, as a board that lost power
would. `LfsFlash` implements the verbs of `firmware/drivers/flash.py` over `littlefs.LittleFS` so the
firmware's storage code runs unchanged; after a cut its verbs raise OSError(EIO).

The geometry is the one MicroPython's esp32 port gives `VfsLfs2` (see drivers/flash.py): block 4096, read 32,
prog 32, cache 128, lookahead 32, block_cycles 100, littlefs on-disk version 2.1 (littlefs-python 0.19 wraps
littlefs 2.11; MicroPython's lib/littlefs is the lfs2-prefixed littlefs 2.8+, also on-disk 2.1, and a port
built with LFS2_MULTIVERSION=0x00020000 would write 2.0, which this side reads too), so an image written here
mounts on a board (write it to the `vfs` partition) and a board's partition dump opens here. Not yet checked
against a dump from real hardware: the WebAssembly MicroPython used here has no VfsLfs2.
"""

from __future__ import annotations

import errno

from littlefs import LittleFS, LittleFSError, UserContext, lfs

BLOCK_SIZE = 4096
BLOCKS = 512  # 2 MiB: the esp32 4 MiB layout's `vfs` partition
READ_SIZE = 32
PROG_SIZE = 32
CACHE_SIZE = 128  # min(block, 4 * max(read, prog)), as MicroPython computes it
LOOKAHEAD_SIZE = 32
BLOCK_CYCLES = 100
_IO = -5  # LFS_ERR_IO


class SimFlash(UserContext):
    """A NOR flash chip in RAM that counts its operations and can lose power at the N-th program or erase."""

    def __init__(self, blocks: int = BLOCKS, image: bytes | bytearray | None = None,
                 cut_at: int = 0, torn: bool = True) -> None:
        if image is not None:
            if len(image) % BLOCK_SIZE:
                raise ValueError("image size is not a multiple of the 4096-byte block")
            buf = bytearray(image)
        else:
            buf = bytearray(b"\xff" * (blocks * BLOCK_SIZE))
        super().__init__(buffer=buf)
        self.blocks = len(buf) // BLOCK_SIZE
        self.cut_at = cut_at  # 0 = never
        self.torn = torn
        self.ops = 0  # programs + erases so far
        self.progs = 0
        self.erases = 0
        self.prog_bytes = 0
        self.reads = 0
        self.dead = False
        self.journal: list | None = None  # when a list: every (block, off, data|None) in order

    def _cut(self) -> bool:
        """Count one operation; True when this one is the one the power cut tears."""
        if self.dead:
            return True
        self.ops += 1
        if self.cut_at and self.ops >= self.cut_at:
            self.dead = True
            return True
        return False

    def read(self, cfg, block, off, size):
        """Bytes as the chip holds them."""
        self.reads += 1
        start = block * BLOCK_SIZE + off
        return self.buffer[start:start + size]

    def prog(self, cfg, block, off, data):
        """Program (AND) data into erased flash; torn or refused after the cut."""
        first = not self.dead
        if self._cut():
            if first and self.torn:
                self._and(block, off, bytes(data[:len(data) // 2]))
            return _IO
        self.progs += 1
        self.prog_bytes += len(data)
        if self.journal is not None:
            self.journal.append((block, off, bytes(data)))
        self._and(block, off, data)
        return 0

    def _and(self, block, off, data):
        """NOR programming: bits only go from 1 to 0."""
        start = block * BLOCK_SIZE + off
        end = start + len(data)
        old = int.from_bytes(self.buffer[start:end], "little")
        self.buffer[start:end] = (old & int.from_bytes(data, "little")).to_bytes(len(data), "little")

    def erase(self, cfg, block):
        """Set a block to 0xFF; torn (half erased) or refused after the cut."""
        first = not self.dead
        start = block * BLOCK_SIZE
        if self._cut():
            if first and self.torn:
                self.buffer[start:start + BLOCK_SIZE // 2] = b"\xff" * (BLOCK_SIZE // 2)
            return _IO
        self.erases += 1
        if self.journal is not None:
            self.journal.append((block, 0, None))
        self.buffer[start:start + BLOCK_SIZE] = b"\xff" * BLOCK_SIZE
        return 0

    def sync(self, cfg):
        """Nothing is cached below littlefs."""
        return _IO if self.dead else 0

    def image(self) -> bytes:
        """A copy of the whole chip."""
        return bytes(self.buffer)

    def bytes_written(self) -> int:
        """Flash bytes changed by programs and erases (erase counts a whole block)."""
        return self.prog_bytes + self.erases * BLOCK_SIZE


def apply(buf: bytearray, op) -> None:
    """Apply one journalled operation (block, off, data|None) to an image buffer, as the chip would."""
    block, off, data = op
    start = block * BLOCK_SIZE + off
    if data is None:
        buf[start:start + BLOCK_SIZE] = b"\xff" * BLOCK_SIZE
    else:
        old = int.from_bytes(buf[start:start + len(data)], "little")
        buf[start:start + len(data)] = (old & int.from_bytes(data, "little")).to_bytes(len(data), "little")


def tear(buf: bytearray, op) -> None:
    """Apply the torn half of one operation: what a power cut during it leaves."""
    block, off, data = op
    start = block * BLOCK_SIZE + off
    if data is None:
        buf[start:start + BLOCK_SIZE // 2] = b"\xff" * (BLOCK_SIZE // 2)
    else:
        apply(buf, (block, off, data[:len(data) // 2]))


def _oserror(e: LittleFSError, path: str) -> OSError:
    """The OSError MicroPython would raise for a littlefs error code."""
    code = {-2: errno.ENOENT, -17: errno.EEXIST, -28: errno.ENOSPC, -20: errno.ENOTDIR,
            -21: errno.EISDIR, -39: errno.ENOTEMPTY, -22: errno.EINVAL}.get(e.code, errno.EIO)
    return OSError(code, f"littlefs error {e.code}", path)


class LfsFile:
    """A littlefs file handle that is closed exactly once even when the close itself fails (power cut).

    Its methods raise OSError, as a MicroPython file on VfsLfs2 does.
    """

    def __init__(self, fs: LittleFS, path: str, mode: str, dev: SimFlash | None = None) -> None:
        self._fs = fs.fs
        self._dev = dev
        self.path = path
        self._fh = self._do(lfs.file_open, path, mode, fs.filename_encoding)
        self.closed = False

    def _do(self, fn, *args):
        """One littlefs call with its error as OSError."""
        if self._dev is not None and self._dev.dead:
            raise OSError(errno.EIO, "power is off", self.path)
        try:
            return fn(self._fs, *args)
        except LittleFSError as e:
            raise _oserror(e, self.path) from None

    def read(self, n: int = -1) -> bytes:
        """Up to n bytes (all the rest when n < 0)."""
        if n < 0:
            n = self._do(lfs.file_size, self._fh) - self._do(lfs.file_tell, self._fh)
        return self._do(lfs.file_read, self._fh, max(n, 0))

    def readinto(self, buf) -> int:
        """Fill buf; the count read."""
        data = self._do(lfs.file_read, self._fh, len(buf))
        buf[0:len(data)] = data
        return len(data)

    def write(self, data) -> int:
        """Write data at the position (the end in append mode)."""
        return self._do(lfs.file_write, self._fh, bytes(data))

    def seek(self, off: int, whence: int = 0) -> int:
        """Move the position."""
        return self._do(lfs.file_seek, self._fh, off, whence)

    def flush(self) -> None:
        """Commit what was written so far (lfs_file_sync)."""
        self._do(lfs.file_sync, self._fh)

    def close(self) -> None:
        """Commit and release the handle, once."""
        if not self.closed:
            self.closed = True
            self._do(lfs.file_close, self._fh)

    def __enter__(self) -> LfsFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LfsFlash:
    """The firmware's flash verbs on a littlefs filesystem on a SimFlash (or any UserContext)."""

    def __init__(self, dev: SimFlash, format: bool = False) -> None:
        self.dev = dev
        self.fs = LittleFS(context=dev, mount=False, block_size=BLOCK_SIZE, block_count=dev.blocks,
                           read_size=READ_SIZE, prog_size=PROG_SIZE, cache_size=CACHE_SIZE,
                           lookahead_size=LOOKAHEAD_SIZE, block_cycles=BLOCK_CYCLES)
        try:
            if format:
                self.fs.format()
            self.fs.mount()
        except LittleFSError as e:
            raise _oserror(e, "/") from None

    @classmethod
    def fresh(cls, blocks: int = BLOCKS, cut_at: int = 0) -> LfsFlash:
        """A formatted, mounted, empty filesystem on a new chip."""
        return cls(SimFlash(blocks, cut_at=cut_at), format=True)

    def _call(self, fn, path, *args):
        """Run one littlefs call, mapping its errors to OSError.

        After the power cut nothing reaches littlefs any more: on a board the CPU stops with the power, and
        littlefs is not made to carry on after a failed program (it asserts on its half-flushed cache).
        """
        if getattr(self.dev, "dead", False):
            raise OSError(errno.EIO, "power is off", path)
        try:
            return fn(path, *args)
        except LittleFSError as e:
            raise _oserror(e, path) from None
        except FileNotFoundError as e:
            raise OSError(errno.ENOENT, str(e), path) from None
        except FileExistsError as e:
            raise OSError(errno.EEXIST, str(e), path) from None

    def open(self, path, mode):
        """An unbuffered littlefs file (LfsFile); the caller closes it."""
        return self._call(lambda p: LfsFile(self.fs, p, mode, self.dev), path)

    def read(self, path, off=0, n=-1):
        """Up to n bytes from off (all when n < 0)."""
        def go(p):
            with LfsFile(self.fs, p, "rb", self.dev) as f:
                if off:
                    f.seek(off)
                return f.read() if n < 0 else f.read(n)
        return self._call(go, path)

    def readinto(self, path, off, buf):
        """Fill buf with the bytes at off; the count read."""
        def go(p):
            with LfsFile(self.fs, p, "rb", self.dev) as f:
                if off:
                    f.seek(off)
                return f.readinto(buf)
        return self._call(go, path)

    def write(self, path, data):
        """Create or replace path with data; committed on return."""
        def go(p):
            with LfsFile(self.fs, p, "wb", self.dev) as f:
                f.write(data)
        self._call(go, path)

    def append(self, path, data):
        """Add data at the end of path; committed on return."""
        def go(p):
            with LfsFile(self.fs, p, "ab", self.dev) as f:
                f.write(data)
        self._call(go, path)

    def rename(self, old, new):
        """Atomically give old the name new, replacing new."""
        self._call(lambda p: self.fs.rename(p, new), old)

    def remove(self, path):
        """Delete path; a missing file is not an error."""
        try:
            self._call(self.fs.remove, path)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise

    def listdir(self, path):
        """Names in the directory path ([] when missing)."""
        try:
            return self._call(self.fs.listdir, path)
        except OSError:
            return []

    def mkdir(self, path):
        """Create directory path; existing is fine."""
        try:
            self._call(self.fs.mkdir, path)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise

    def stat(self, path):
        """Size of path in bytes, or -1 when it does not exist."""
        try:
            return self._call(self.fs.stat, path).size
        except OSError:
            return -1

    def sync(self):
        """littlefs commits on close; nothing is left to flush."""
        if self.dev.dead:
            raise OSError(errno.EIO, "power is off")


def open_image(path: str) -> LfsFlash:
    """Mount a flash image file (read into RAM; the file is not changed)."""
    with open(path, "rb") as f:
        data = f.read()
    return LfsFlash(SimFlash(image=data))


class FlashImage:
    """A simulated chip kept in an image file: loaded when the file exists, formatted otherwise.

    For the simulator: `img = FlashImage(path); log, state = img.storage()`; hand log and state to SimHandset;
    `img.save()` writes the chip back, ready for `python -m host_sim log PATH` or for a board's vfs partition.
    """

    def __init__(self, path: str | None = None, blocks: int = BLOCKS) -> None:
        self.path = path
        data = None
        if path is not None:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                data = None
        if data is None:
            self.flash = LfsFlash.fresh(blocks)
        else:
            self.flash = LfsFlash(SimFlash(image=data))

    def storage(self, **params):
        """The firmware's event log and state store on this chip (storage.on_flash)."""
        from storage import on_flash

        return on_flash(self.flash, **params)

    def save(self, path: str | None = None) -> str:
        """Write the chip to path (default: the file it came from); returns the path."""
        target = path or self.path
        if target is None:
            raise ValueError("no image path given")
        with open(target, "wb") as f:
            f.write(self.flash.dev.image())
        return target
