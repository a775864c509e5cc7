"""The simulated handset's service port on a pseudo-terminal, for real SMP clients (smpmgr, smpclient,
the technician CLI) to connect to as if it were a USB-serial cable.

`PtyPort` implements the firmware's `drivers.serialport.SerialPort` on the pty master: a client opening the
slave (`port.path`) is "a cable plugged in"; when every client has closed it the master reports a hang-up,
which the service port sees as a disconnect. With `baud` set, both directions are paced to that line rate (10 bits a
byte), so throughput measured through the pty is what a real UART would give.

`PtyService` runs the firmware's SMP server (`service.server.Service`) and its pump (`service.task.pump`) on
a thread, under a lock the simulation shares, in real time; `SimServicePort` adds a simulated handset that
runs in real time (`python -m host_sim service-port` starts one); `UdpService` answers the same server over
UDP, each source address a connection of its own (`service-port --udp [HOST:]PORT` adds it).
"""

from __future__ import annotations

import errno
import os
import pty
import select
import threading
import time
import tty
from collections.abc import Callable
from typing import Any

from drivers.serialport import SerialPort
from interlock import timebase
from service import task
from service.server import Service


def ticks_ms() -> int:
    """Real-time milliseconds that wrap like MicroPython's ticks."""
    return int(time.monotonic() * 1000) & (timebase.TICKS_PERIOD - 1)


class PtyPort(SerialPort):
    """SerialPort on a pseudo-terminal master; clients open `path`."""

    def __init__(self, baud: int | None = None) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)  # no echo, no line editing: the bytes go through as they are
        self.path = os.ttyname(slave)
        os.close(slave)  # until a client opens it, the port reads as disconnected
        os.set_blocking(master, False)
        self.fd = master
        self.baud = baud
        self._poll = select.poll()
        self._poll.register(master, select.POLLIN | select.POLLHUP)
        self._line_free_at = 0.0  # when the paced line has sent everything written so far
        self.bytes_out = 0
        self.bytes_in = 0

    def connected(self) -> bool:
        """False while no client has the slave open (the master reads a hang-up)."""
        for _fd, ev in self._poll.poll(0):
            if ev & select.POLLHUP:
                return False
        return True

    def readinto(self, buf: Any) -> int:
        """Bytes a client wrote, without waiting."""
        try:
            data = os.read(self.fd, len(buf))
        except BlockingIOError:
            return 0
        except OSError as e:
            if e.errno == errno.EIO:  # no client: nothing to read
                return 0
            raise
        buf[: len(data)] = data
        self.bytes_in += len(data)
        if self.baud:
            # the bytes could not have arrived faster than the line carries them
            time.sleep(len(data) * 10 / self.baud)
        return len(data)

    def write(self, data: Any) -> None:
        """Send all of data to the client, paced to `baud` when set; dropped if the client is gone."""
        mv = memoryview(bytes(data))
        if self.baud:
            now = time.monotonic()
            start = max(now, self._line_free_at)
            self._line_free_at = start + len(mv) * 10 / self.baud
            if self._line_free_at > now:
                time.sleep(self._line_free_at - now)
        while len(mv):
            try:
                n = os.write(self.fd, mv)
            except BlockingIOError:
                select.select([], [self.fd], [], 0.05)
                continue
            except OSError as e:
                if e.errno == errno.EIO:
                    return
                raise
            self.bytes_out += n
            mv = mv[n:]

    def wait(self, timeout_s: float) -> None:
        """Block until a byte or a hang-up arrives, or timeout_s passes."""
        self._poll.poll(int(timeout_s * 1000))

    def close(self) -> None:
        """Close the master: clients see the port vanish."""
        try:
            os.close(self.fd)
        except OSError:
            pass


class PtyService:
    """The firmware's SMP server on a PtyPort, pumped by a thread in real time."""

    def __init__(self, handset: Any, log: Any, *, lock: threading.Lock | None = None,
                 clock: Callable[[], int] = ticks_ms, baud: int | None = None,
                 entropy: Callable[[int], bytes] = os.urandom, reset: Callable[[], None] | None = None,
                 buf_size: int | None = None) -> None:
        kw = {} if buf_size is None else {"buf_size": buf_size}
        self.service = Service(handset, log, entropy, **kw)
        self._entropy = entropy
        self.port = PtyPort(baud)
        self.path = self.port.path
        self.lock = lock or threading.Lock()
        self.clock = clock
        self.reset = reset
        self.crashed: BaseException | None = None  # an exception out of the firmware (tests assert None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service-pty", daemon=True)

    def start(self) -> PtyService:
        """Start pumping."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop pumping and close the pty."""
        self._stop.set()
        self._thread.join(5)
        self.port.close()

    def reboot(self, handset: Any) -> None:
        """Start the server over for a rebooted handset, as the board's task builds a new one after boot:
        sessions and the refusal window begin again; the login wait levels and the token clock come back from
        the handset's saved state. In place, so a UdpService sharing this server serves the new one too."""
        svc = self.service
        Service.__init__(svc, handset, svc.log, self._entropy, buf_size=svc.buf_size, firmware=svc.firmware)

    def __enter__(self) -> PtyService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        buf = bytearray(256)
        svc = self.service
        while not self._stop.is_set():
            try:
                with self.lock:
                    n = task.pump(svc, self.port, self.clock(), buf)
                while True:
                    with self.lock:
                        line = svc.next_line(self.clock())
                        if line is not None:
                            line = bytes(line)
                    if line is None:
                        break
                    # paced outside the lock, as a UART sends while the firmware runs on
                    self.port.write(line)
                if svc.reset_requested:
                    with self.lock:
                        svc.reset_requested = False
                        svc.end_session()
                        if self.reset is not None:
                            self.reset()
            except Exception as e:  # the firmware must never raise here: record it for the tests
                self.crashed = e
                raise
            if not n:
                if self.port.connected():
                    self.port.wait(0.005)
                else:
                    time.sleep(0.005)


class SimServicePort:
    """A simulated handset (host_sim.handset.SimHandset) running in real time, its service port on a pty.

    The simulation advances with the wall clock on its own thread; the service port pumps on another; both
    hold `lock` while they touch the firmware. An OS reset over SMP power-cycles the simulated handset.
    `log` is the flash log under the sim's TracedLog (it must offer export_size/export_read).
    """

    def __init__(self, sim: Any, log: Any, baud: int | None = None, buf_size: int | None = None) -> None:
        self.sim = sim
        self.log = log
        self.lock = threading.Lock()
        self.port = PtyService(sim.fsm, log, lock=self.lock, clock=sim.ticks, baud=baud, reset=self._reset,
                               buf_size=buf_size)
        self.path = self.port.path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-realtime", daemon=True)

    @property
    def service(self) -> Service:
        """The firmware's SMP server."""
        return self.port.service

    def _reset(self) -> None:
        # called by the pump with the lock held, after the reset reply went out
        self.sim.power_cut()
        self.sim.run(100)
        self.sim.power_on()
        self.port.reboot(self.sim.fsm)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.01):
            now = time.monotonic()
            ms = int((now - last) * 1000)
            if ms > 0:
                with self.lock:
                    self.sim.run(ms)
                last += ms / 1000

    def start(self) -> SimServicePort:
        """Start real time and the service port."""
        self.port.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop both threads and close the pty."""
        self._stop.set()
        self._thread.join(5)
        self.port.stop()

    def __enter__(self) -> SimServicePort:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class UdpService:
    """The same SMP server answering SMP packets over UDP (no serial framing), as a networked board would;
    smpclient's UDP transport talks to port 1337. Each source address is its own connection (peer): a session
    opened from one address is not usable from another. Give `service` to share one server (and its sessions,
    pacing and refusal log) with another transport, e.g. the pty of a SimServicePort."""

    def __init__(self, handset: Any, log: Any, *, lock: threading.Lock | None = None,
                 clock: Callable[[], int] = ticks_ms, port: int = 1337, host: str = "127.0.0.1",
                 entropy: Callable[[int], bytes] = os.urandom, service: Service | None = None) -> None:
        import socket

        self.service = service if service is not None else Service(handset, log, entropy)
        self.lock = lock or threading.Lock()
        self.clock = clock
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()  # a port taken by another process: no socket left open behind the error
            raise
        self.sock.settimeout(0.05)
        self.address = self.sock.getsockname()
        self.crashed: BaseException | None = None  # an exception out of the firmware (tests assert None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service-udp", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                with self.lock:
                    self.service.poll(self.clock())
                continue
            except OSError:
                return
            try:
                with self.lock:
                    rsp = self.service.handle(self.clock(), data, peer)
            except Exception as e:  # the firmware must never raise here: record it for the tests
                self.crashed = e
                raise
            if rsp is not None:
                self.sock.sendto(rsp, peer)

    def start(self) -> UdpService:
        """Start answering."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the socket."""
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def __enter__(self) -> UdpService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def flash_sim(**kw: Any) -> tuple[Any, Any]:
    """A SimHandset whose event log is a FlashLog on a fresh simulated littlefs flash: (sim, log)."""
    from host_sim.flash import LfsFlash
    from host_sim.handset import SimHandset
    from storage.log import FlashLog

    log = FlashLog(LfsFlash.fresh())
    return SimHandset(log=log, **kw), log


def main(argv: list[str] | None = None) -> int:
    """`python -m host_sim service-port [--baud N] [--udp [HOST:]PORT]`: a simulated handset in real time, its
    service port on a pty (the path is printed first) and, with --udp, the same server on UDP as well
    (printed as `udp HOST:PORT`; port 0 picks a free one)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m host_sim service-port", description=main.__doc__)
    ap.add_argument("--baud", type=int, default=None, help="pace the port to this line rate (e.g. 115200)")
    ap.add_argument("--device-id", type=int, default=1001)
    ap.add_argument("--token", help="also write a 1-hour technician token (tech id 1) to this JSON file")
    ap.add_argument("--udp", metavar="[HOST:]PORT", help="also answer SMP over UDP (127.0.0.1 unless HOST)")
    args = ap.parse_args(argv)
    udp_at = None
    if args.udp is not None:
        host, _, port = args.udp.rpartition(":")
        try:
            udp_at = (host or "127.0.0.1", int(port))
        except ValueError:
            ap.error("--udp takes [HOST:]PORT")
    sim, log = flash_sim(device_id=args.device_id)
    if args.token:
        import json

        from technician.token import mint

        tok = mint(sim.fsm.keys()[2], sim.fsm.device_id, 1, sim.fsm.wall + 3600)
        with open(args.token, "w") as f:
            json.dump(tok.to_json(), f)
    with SimServicePort(sim, log, baud=args.baud) as port:
        print(port.path, flush=True)
        udp = None
        if udp_at is not None:
            try:
                udp = UdpService(sim.fsm, log, lock=port.lock, clock=sim.ticks, host=udp_at[0], port=udp_at[1],
                                 service=port.service).start()
            except OSError as e:
                print("cannot serve UDP on %s:%d: %s" % (udp_at[0], udp_at[1], e.strerror), flush=True)
                return 1
            print("udp %s:%d" % udp.address[:2], flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            if udp is not None:
                udp.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
