"""The ESP32's hardware watchdog (machine.WDT), why the chip started, and a fault counter in the RTC's slow
memory, which keeps its bytes across every reset but a power loss."""

import board

_MAGIC = 0xA5


class Watchdog(board.Watchdog):
    """board.Watchdog on machine.WDT and machine.RTC().memory()."""

    def __init__(self, wdt_class, timeout_ms, cause, rtc):
        self._wdt_class = wdt_class
        self._timeout_ms = timeout_ms
        self._wdt = None
        self._cause = cause
        self._rtc = rtc

    def feed(self):
        """Start the watchdog at the first call (so a long boot is not cut short), then feed it."""
        wdt = self._wdt
        if wdt is None:
            wdt = self._wdt = self._wdt_class(timeout=self._timeout_ms)
        wdt.feed()

    def reset_cause(self):
        """board.RESET_* of this boot."""
        return self._cause

    def fault_boots(self):
        """The count kept by set_fault_boots, 0 when the memory holds something else (after a power loss)."""
        mem = self._rtc.memory()
        if len(mem) >= 2 and mem[0] == _MAGIC:
            return mem[1]
        return 0

    def set_fault_boots(self, n):
        """Keep n (0..255) for the next boot."""
        self._rtc.memory(bytes((_MAGIC, n if n < 255 else 255)))
