"""Storage driver: the small filesystem verb set the event log and the state store use.

Verbs (paths are absolute, "/" separated; every write is committed when the call returns):

    open(path, mode) -> file          a raw file object ("rb", "wb", "ab"); the caller closes it
    read(path, off, n) -> bytes       up to n bytes from off (b"" past the end); OSError when missing
    readinto(path, off, buf) -> int   fill buf from off, return the count (no allocation for the data)
    write(path, data)                 create or replace the whole file, committed on return
    append(path, data)                add data at the end (create when missing), committed on return
    rename(old, new)                  atomic; replaces new
    remove(path)                      delete a file (missing is not an error)
    listdir(path) -> [names]          names in a directory ([] when it does not exist)
    mkdir(path)                       create a directory (existing is not an error)
    stat(path) -> size                file size in bytes, or -1 when missing
    sync()                            make everything before it durable

Why files can be trusted across a power cut: on littlefs a file's new content becomes visible only when it is
closed (or synced), in one metadata commit, so a write or an append is all or nothing, and rename is atomic.

Board implementation: `VfsFlash` on MicroPython's `os` module, whose root is the littlefs (VfsLfs2) filesystem
in the board's `vfs` flash partition. MicroPython's esp32 port formats and mounts it with `VfsLfs2(bdev)`
defaults: block size 4096 (the flash erase sector), read size 32, prog size 32, cache 128
(min(block, 4 * max(read, prog))), lookahead 32 bytes, block_cycles 100, and a 't' mtime attribute on files.
`host_sim.flash` builds the same geometry on a simulated NOR flash so its images mount on a board.
"""

import os


class VfsFlash:
    """The flash verbs on MicroPython's VFS (littlefs on the board; any `os` filesystem elsewhere)."""

    def __init__(self, root=""):
        self.root = root

    def _p(self, path):
        """Path under the root."""
        return self.root + path if self.root else path

    def open(self, path, mode):
        """A raw file object; the caller closes it (closing commits)."""
        return open(self._p(path), mode)

    def read(self, path, off=0, n=-1):
        """Up to n bytes from off (all when n < 0)."""
        with open(self._p(path), "rb") as f:
            if off:
                f.seek(off)
            return f.read() if n < 0 else f.read(n)

    def readinto(self, path, off, buf):
        """Fill buf with the bytes at off; the count read."""
        with open(self._p(path), "rb") as f:
            if off:
                f.seek(off)
            return f.readinto(buf)

    def write(self, path, data):
        """Create or replace path with data; committed on return."""
        with open(self._p(path), "wb") as f:
            f.write(data)

    def append(self, path, data):
        """Add data at the end of path; committed on return."""
        with open(self._p(path), "ab") as f:
            f.write(data)

    def rename(self, old, new):
        """Atomically give old the name new, replacing new."""
        os.rename(self._p(old), self._p(new))

    def remove(self, path):
        """Delete path; a missing file is not an error."""
        try:
            os.remove(self._p(path))
        except OSError:
            try:
                os.stat(self._p(path))  # still there: a real failure (errno numbers differ by port)
            except OSError:
                return
            raise

    def listdir(self, path):
        """Names in the directory path ([] when missing)."""
        try:
            return os.listdir(self._p(path))
        except OSError:
            return []

    def mkdir(self, path):
        """Create directory path; existing is fine."""
        try:
            os.mkdir(self._p(path))
        except OSError:
            try:
                os.stat(self._p(path))  # exists (ports differ in the errno they give for that)
            except OSError:
                raise

    def stat(self, path):
        """Size of path in bytes, or -1 when it does not exist."""
        try:
            return os.stat(self._p(path))[6]
        except OSError:
            return -1

    def sync(self):
        """Make every finished write durable (littlefs commits on close already)."""
        if hasattr(os, "sync"):
            os.sync()
