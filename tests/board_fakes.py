"""Bus stand-ins for the ESP32 board drivers' tests: product-grade fakes, shared by those test modules."""


class FakeI2C:
    """I2C bus stand-in: register memories per address, queued frames for plain reads, a write log."""

    def __init__(self):
        self.mem = {}
        self.frames = {}
        self.writes = []
        self.down = set()

    def add(self, addr, size=256, fill=0):
        self.mem[addr] = bytearray([fill]) * size

    def _check(self, addr):
        if addr in self.down or (addr not in self.mem and addr not in self.frames):
            raise OSError(19)

    def readfrom_mem_into(self, addr, reg, buf):
        self._check(addr)
        buf[:] = self.mem[addr][reg:reg + len(buf)]

    def writeto_mem(self, addr, reg, buf):
        self._check(addr)
        self.mem[addr][reg:reg + len(buf)] = buf
        self.writes.append((addr, reg, bytes(buf)))

    def writeto(self, addr, buf):
        self._check(addr)
        self.writes.append((addr, None, bytes(buf)))

    def readfrom_into(self, addr, buf):
        self._check(addr)
        buf[:] = self.frames[addr].pop(0)
