"""A stand-in `bluetooth` module (MicroPython's C module on a board with a radio) so the import-heap bench can
import aioble and build the service port's GATT table off the board. It is imported before the baseline of the
aioble step is taken, so its own objects are not counted: on the board the module is in C and its BLE object's
state (NimBLE) lives on the ESP-IDF heap, not the Python heap."""

FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010


class UUID:
    def __init__(self, value):
        self.value = value


class BLE:
    def __init__(self):
        self._active = False

    def active(self, *args):
        if args:
            self._active = bool(args[0])
        return self._active

    def config(self, *args, **kwargs):
        return None

    def irq(self, handler):
        pass

    def gatts_register_services(self, services):
        # one value handle per characteristic and per descriptor, in order (what the C module returns)
        out = []
        handle = 1
        for svc in services:
            handles = []
            for char in svc[1]:
                handles.append(handle)
                handle += 1
                if len(char) > 2:
                    for _ in char[2]:
                        handles.append(handle)
                        handle += 1
            out.append(tuple(handles))
        return tuple(out)

    def gatts_write(self, handle, data, send_update=False):
        pass

    def gatts_read(self, handle):
        return b""

    def gatts_set_buffer(self, handle, size, append=False):
        pass

    def gatts_notify(self, conn, handle, data=None):
        pass

    def gap_advertise(self, interval_us, adv_data=None, resp_data=None, connectable=True):
        pass

    def gap_disconnect(self, conn):
        return True


# ports without a radio may lack asyncio.ThreadSafeFlag (aioble's events, set from the BLE IRQ on a board):
# Event stands in for it here
import asyncio  # noqa: E402

if not hasattr(asyncio, "ThreadSafeFlag"):
    asyncio.ThreadSafeFlag = asyncio.Event
