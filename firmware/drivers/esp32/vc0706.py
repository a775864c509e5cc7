"""VC0706 serial JPEG camera over a UART: freeze a frame, optionally copy it to a file, release the frame.

Without a filesystem the photo is only counted (the id goes into the log record) and the frame is released
at once. With one (any object with open(path, mode), such as the `os`-mounted flash via a thin wrapper), the
JPEG is copied to `<dir>/<id>.jpg` in 512-byte chunks: a 20 KB VGA frame takes about 6 s at the module's
default 38400 baud (under 2 s at 115200), during which capture() blocks the caller.
"""

from micropython import const

import board

_CMD_FBUF_CTRL = b"\x56\x00\x36\x01\x00"    # stop (freeze) the current frame
_CMD_RESUME = b"\x56\x00\x36\x01\x03"       # resume live video, releasing the frame buffer
_CMD_FBUF_LEN = b"\x56\x00\x34\x01\x00"     # length of the frozen frame
_CHUNK = const(512)
_ID_MAX = const(0x3FFFFFFF)     # ids stay small ints on a 32-bit port


class Camera(board.Camera):
    """VC0706 on `uart` (created by the wiring with a read timeout); photos kept as <photo_id>.jpg."""

    def __init__(self, uart, fs=None, directory="/photos"):
        self._uart = uart
        self._fs = fs
        self._dir = directory
        self._resp = bytearray(9)
        self._read = bytearray(16)
        self._read[0:5] = b"\x56\x00\x32\x0c\x00"
        self._read[5] = 0x0A           # transfer mode: MCU reads through the UART
        self._read[14] = 0x00          # delay between data blocks, units of 0.01 ms
        self._read[15] = 0x0A
        self._chunk = bytearray(_CHUNK)
        self._chunk_mv = memoryview(self._chunk)

    def capture(self, reason, photo_id):
        """Take a photo kept as photo_id; return photo_id, or 0 if the camera did not answer."""
        if not 0 < photo_id <= _ID_MAX or not self._command(_CMD_FBUF_CTRL, 5):
            return 0
        ok = True
        if self._fs is not None:
            ok = self._save(photo_id)
        # Always release the frame, even after a failed copy, so the next capture sees a live image.
        self._command(_CMD_RESUME, 5)
        return photo_id if ok else 0

    def _drain(self):
        uart = self._uart
        while uart.any():
            uart.readinto(self._resp)

    def _command(self, cmd, reply_len):
        # Replies start 0x76, serial 0, the command byte, status 0 on success.
        self._drain()
        self._uart.write(cmd)
        resp = self._resp
        n = self._uart.readinto(resp, reply_len)
        return n == reply_len and resp[0] == 0x76 and resp[2] == cmd[2] and resp[3] == 0

    def _length(self):
        if not self._command(_CMD_FBUF_LEN, 9):
            return 0
        r = self._resp
        return (r[5] << 24) | (r[6] << 16) | (r[7] << 8) | r[8]

    def _save(self, photo):
        length = self._length()
        if length <= 0:
            return False
        try:
            f = self._fs.open(self._dir + "/" + str(photo) + ".jpg", "wb")
        except OSError:
            return False
        try:
            return self._copy(f, length)
        finally:
            f.close()

    def _copy(self, f, length):
        uart = self._uart
        read = self._read
        chunk = self._chunk
        addr = 0
        while addr < length:
            n = min(_CHUNK, length - addr)
            put32(read, 6, addr)
            put32(read, 10, n)
            self._drain()
            uart.write(read)
            # Reply header, n data bytes, then the same 5-byte header again.
            if uart.readinto(self._resp, 5) != 5 or self._resp[0] != 0x76 or self._resp[3] != 0:
                return False
            if uart.readinto(chunk, n) != n:
                return False
            if uart.readinto(self._resp, 5) != 5:
                return False
            f.write(self._chunk_mv[:n])
            addr += n
        return True


def put32(buf, at, value):
    """Store value big-endian in buf[at:at + 4]."""
    buf[at] = (value >> 24) & 0xFF
    buf[at + 1] = (value >> 16) & 0xFF
    buf[at + 2] = (value >> 8) & 0xFF
    buf[at + 3] = value & 0xFF
