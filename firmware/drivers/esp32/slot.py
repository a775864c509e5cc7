"""Sensor-module slot: the latch switch on a pin and the module's 24C02-style I2C EEPROM."""

from micropython import const

import drivers

# The image read: the module's data sits in the first bytes (fsm.module parses 32 of them).
SIZE = const(64)
# Reads tried before giving up: the first may meet contacts still settling.
_TRIES = const(3)


class ModuleSlot(drivers.ModuleSlot):
    """Latch switch (pulled up, closes to ground when latched) debounced over `stable` polls, and the EEPROM.

    The runtime reads the EEPROM on the poll where present() changes; debouncing the latch means the
    contacts have settled by then.
    """

    def __init__(self, latch, i2c, addr=0x50, active_low=True, stable=3):
        if stable < 1:
            raise ValueError("stable")
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
