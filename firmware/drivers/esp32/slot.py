"""Sensor-module slot: the latch switch on a pin and the module's 24C02-style I2C EEPROM."""

from micropython import const

import board

# The image read: the module's data sits in the first bytes (fsm.module parses 32 of them).
SIZE = const(64)
# Reads tried before giving up: the first may meet contacts still settling.
_TRIES = const(3)
_PAGE = const(8)  # the 24C02 writes at most one 8-byte page per write cycle
_WRITE_POLLS = const(20)  # acknowledge polls (about 1 ms each) while a write cycle runs


class ModuleSlot(board.ModuleSlot):
    """Latch switch (pulled up, closes to ground when latched) debounced over `stable` polls, and the EEPROM.

    The runtime reads the EEPROM on the poll where present() changes; debouncing the latch means the
    contacts have settled by then.
    """

    def __init__(self, latch, i2c, addr=0x50, active_low=True, stable=3, sleep_ms=None):
        if stable < 1:
            raise ValueError("stable")
        self._sleep = sleep_ms or (lambda ms: None)
        self._latch = latch
        self._i2c = i2c
        self._addr = addr
        self._active = 0 if active_low else 1
        self._stable = stable
        self._buf = bytearray(SIZE)
        self._count = 0
        # Start from the pin as it reads at boot: a module already latched is present at once.
        self._state = self.sample()

    def sample(self):
        """True while the latch reads closed now (undebounced)."""
        return self._latch.value() == self._active

    def update(self, closed):
        """Take one latch sample; return the debounced state."""
        if closed != self._state:
            self._count += 1
            if self._count >= self._stable:
                self._state = closed
                self._count = 0
        else:
            self._count = 0
        return self._state

    def present(self):
        """True when a module is inserted and latched (debounced)."""
        return self.update(self.sample())

    def read_eeprom(self):
        """The 64-byte image, or None if the EEPROM does not answer (absent module, open contact).

        Returns the driver's own buffer, overwritten by the next call: copy it (bytes(img)) to keep it.
        """
        for _ in range(_TRIES):
            try:
                # One random read from address 0; the 24C02 streams on across its 8-byte pages.
                self._i2c.readfrom_mem_into(self._addr, 0, self._buf)
                return self._buf
            except OSError:
                pass
        return None

    def write_eeprom(self, image):
        """Write image page by page, waiting out each write cycle; True when it reads back identical."""
        page = bytearray(_PAGE)
        for off in range(0, len(image), _PAGE):
            n = min(_PAGE, len(image) - off)
            for i in range(n):
                page[i] = image[off + i]
            if not self._write_page(off, page if n == _PAGE else page[:n]):
                return False
        got = self.read_eeprom()
        if got is None:
            return False
        for i in range(len(image)):
            if got[i] != image[i]:
                return False
        return True

    def _write_page(self, off, data):
        for _ in range(_WRITE_POLLS):
            try:
                # the chip does not acknowledge while its previous write cycle runs: retry until it does
                self._i2c.writeto_mem(self._addr, off, data)
                return True
            except OSError:
                self._sleep(1)
        return False
