"""An in-process BLE link to the handset's service port: no radio runs here, so the GATT exchange the board's
aioble task (firmware/service/ble.py `serve`) carries is played in process, through the firmware's own `Link`
and `Service`, with the ATT MTU enforced both ways: a write longer than MTU - 3 is refused, and every
notification the handset sends is checked against it.

`patch_smpclient(links)` puts bleak-shaped stand-ins (scanner and client) under smpclient's BLE transport, so the
technician's real client code (technician.client, `--ble NAME`) talks to a simulated handset unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from service.ble import CHARACTERISTIC_UUID, MIN_MTU, SERVICE_UUID, Link


class MtuError(Exception):
    """A write or a notification longer than the link's MTU allows."""


class GattLink:
    """One BLE connection between a central and the handset's SMP characteristic."""

    def __init__(self, service: Any, clock: Callable[[], int], mtu: int = MIN_MTU) -> None:
        self.service = service
        self.clock = clock
        self.peer = object()  # the connection's identity, as aioble's DeviceConnection is on the board
        self.link = Link(service, self.peer, mtu, clock())
        self.connected = True
        self.writes = 0
        self.notifications: list[int] = []  # sizes of the notifications sent
        self.on_notify: Callable[[bytes], Any] | None = None
        self.on_drop: Callable[[], Any] | None = None  # told when the handset ends the connection

    @property
    def chunk_size(self) -> int:
        """Value bytes per write or notification."""
        return self.link.chunk_size()

    def write(self, data: bytes) -> list[bytes]:
        """A write without response from the central; the notifications it caused, in order."""
        if not self.connected:
            raise ConnectionError("not connected")
        if len(data) > self.chunk_size:
            raise MtuError("write of %d bytes on a link that carries %d" % (len(data), self.chunk_size))
        self.writes += 1
        out = []
        for rsp in self.link.written(self.clock(), data):
            for part in self.link.chunks(rsp):
                if len(part) > self.chunk_size:
                    raise MtuError("notification of %d bytes on a link that carries %d" % (len(part),
                                                                                           self.chunk_size))
                self.notifications.append(len(part))
                out.append(bytes(part))
        return out

    def poll(self) -> bool:
        """The handset's turn (the board's task looks at least every ADV_WAIT_MS): it disconnects an idle
        connection (Link.idle), which ends its session. True when it did."""
        if self.connected and self.link.idle(self.clock()):
            self.drop()
            if self.on_drop is not None:
                self.on_drop()
            return True
        return False

    def drop(self) -> None:
        """The link is lost (out of range, the central went away): the handset ends the connection's session."""
        if self.connected:
            self.connected = False
            self.link.closed()


class _Characteristic:
    def __init__(self, link: GattLink) -> None:
        self.uuid = CHARACTERISTIC_UUID.lower()
        self.max_write_without_response_size = link.chunk_size


class _Services:
    def __init__(self, link: GattLink) -> None:
        self._char = _Characteristic(link)

    def get_characteristic(self, uuid: Any) -> _Characteristic | None:
        return self._char if str(uuid).lower() == self._char.uuid else None


class _Backend:
    """Neither BlueZ nor WinRT: smpclient takes the characteristic's write size as the MTU."""


def patch_smpclient(connect: Callable[[str], GattLink]) -> contextlib.AbstractContextManager[None]:
    """Within the context, smpclient's BLE transport finds a device named by any address and connects through
    connect(address) -> GattLink (a new link per connection)."""
    import smpclient.transport.ble as ble_transport
    from bleak.backends.device import BLEDevice

    class Scanner:
        @staticmethod
        async def find_device_by_address(address: str, timeout: float = 10) -> BLEDevice:
            return BLEDevice(address, "interlock", None)

        @staticmethod
        async def find_device_by_name(name: str, timeout: float = 10) -> BLEDevice:
            return BLEDevice(name, name, None)

    class Client:
        def __init__(self, device: BLEDevice, services: Any = None, winrt: Any = None, timeout: float = 10,
                     disconnected_callback: Callable[[Any], None] | None = None) -> None:
            assert services == (SERVICE_UUID.lower(),)
            self.address = device.address
            self._disconnected = disconnected_callback
            self._backend = _Backend()
            self._link: GattLink | None = None
            self._notify: Callable[[Any, bytes], Any] | None = None

        async def connect(self) -> None:
            self._link = connect(self.address)
            self._link.on_drop = lambda: self._disconnected(self) if self._disconnected is not None else None
            self.services = _Services(self._link)

        async def start_notify(self, uuid: Any, callback: Callable[[Any, bytes], Any]) -> None:
            self._notify = callback

        async def write_gatt_char(self, char: Any, data: bytes, response: bool = False) -> None:
            assert not response and self._link is not None and self._notify is not None
            for part in self._link.write(bytes(data)):
                await self._notify(char, part)

        async def disconnect(self) -> None:
            if self._link is not None:
                self._link.drop()
            if self._disconnected is not None:
                self._disconnected(self)

    @contextlib.contextmanager
    def patched() -> Iterator[None]:
        saved = ble_transport.BleakScanner, ble_transport.BleakClient
        ble_transport.BleakScanner, ble_transport.BleakClient = Scanner, Client  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            ble_transport.BleakScanner, ble_transport.BleakClient = saved  # type: ignore[misc]

    return patched()
