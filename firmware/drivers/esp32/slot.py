"""Sensor-module slot: the latch switch on a pin and the module's 24C02-style I2C EEPROM."""

from micropython import const

import drivers

# The module's data occupies the first 64 bytes (see fsm.module for the layout).
SIZE = const(64)


class ModuleSlot(drivers.ModuleSlot):
    """Latch switch (pulled up, closes to ground when latched by default) and EEPROM image reader."""

    def __init__(self, latch, i2c, addr=0x50, active_low=True):
        self._latch = latch
        self._i2c = i2c
        self._addr = addr
        self._active = 0 if active_low else 1
        self._buf = bytearray(SIZE)

    def present(self):
        """True when a module is inserted and latched."""
        return self._latch.value() == self._active

    def read_eeprom(self):
        """The 64-byte image, or None on an I2C error (absent module, contact bounce).

        Returns the driver's own buffer, overwritten by the next call: copy it (bytes(img)) to keep it.
        """
        try:
            # One random read from address 0; the 24C02 streams on across its 8-byte pages.
            self._i2c.readfrom_mem_into(self._addr, 0, self._buf)
        except OSError:
            return None
        return self._buf
