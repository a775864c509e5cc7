"""The technician service port: a byte pipe with a connection sense.

`SerialPort` is the interface the service task uses; `UartPort` is the board implementation on a
`machine.UART` (and an optional cable-sense `machine.Pin`) that the wiring file creates and hands in. The
host simulator implements the same interface on a pseudo-terminal (`host_sim/pty_port.py`).
"""


class SerialPort:
    """Byte pipe to the technician's cable."""

    def readinto(self, buf):
        """Copy bytes received so far into buf without waiting; return how many (0 when none)."""
        raise NotImplementedError

    def write(self, data):
        """Send all of data (blocks only while the transmit buffer is full)."""
        raise NotImplementedError

    def connected(self):
        """True while a technician's cable is attached (as far as the port can tell)."""
        raise NotImplementedError


class UartPort(SerialPort):
    """The service port on a UART, with an optional cable-sense pin (active level `sense_active`)."""

    def __init__(self, uart, sense=None, sense_active=1):
        self._uart = uart
        self._sense = sense
        self._active = sense_active

    def readinto(self, buf):
        """Bytes the UART holds, up to len(buf); never waits."""
        n = self._uart.any()
        if not n:
            return 0
        if n > len(buf):
            n = len(buf)
        got = self._uart.readinto(buf, n)
        return got or 0

    def write(self, data):
        """Queue every byte of data on the UART."""
        mv = memoryview(data)
        sent = 0
        while sent < len(mv):
            n = self._uart.write(mv[sent:])
            if n:
                sent += n

    def connected(self):
        """The cable-sense pin's level; without a pin, the port counts as always attached."""
        if self._sense is None:
            return True
        return self._sense.value() == self._active


class NoPort(SerialPort):
    """No serial port at all (the build could not open its UART): never attached, reads nothing, drops writes."""

    def readinto(self, buf):
        return 0

    def write(self, data):
        pass

    def connected(self):
        return False
