"""`python -m companion serve --workers N` (N > 1): N server processes on one port, each accepting on a listening
socket of its own (SO_REUSEPORT), kept running by a small supervisor.

uvicorn's own --workers shares one listening socket among its processes, and the process that wakes first
accepts every connection waiting: under the portal bench (50 keep-alive connections opened at once) one of two
workers held 48 of them, so one core served nearly all requests while the other idled, and the clients on the
busy one waited twice as long. With a socket per process the kernel spreads new connections across the
processes by a hash of their addresses, whichever process is awake. The sockets are made and kept by the
supervisor: a worker that dies is replaced on its own socket, and connections the kernel queued there in the
meantime wait for the replacement instead of being refused.

Where SO_REUSEPORT does not exist (not Linux or a BSD), uvicorn's shared socket is used."""

import logging
import signal
import socket
import threading
from typing import Any

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Process

logger = logging.getLogger("uvicorn.error")


def available() -> bool:
    """Whether this system can give each worker a socket of its own."""
    return hasattr(socket, "SO_REUSEPORT")


def reuse_port_sockets(host: str, port: int, n: int, backlog: int = 2048) -> list[socket.socket]:
    """n listening sockets on (host, port) in one SO_REUSEPORT group (port 0: the first one's free port for all).
    Raises OSError (the port in use by another program, say) with nothing left open."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    out: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket(family, socket.SOCK_STREAM)
            out.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, out[0].getsockname()[1] if len(out) > 1 else port))
            sock.listen(backlog)
            sock.set_inheritable(True)
    except OSError:
        for sock in out:
            sock.close()
        raise
    return out


class Workers:
    """One uvicorn server process per socket; a process that dies or stops answering its health check is
    replaced on the same socket; SIGINT, SIGTERM or SIGQUIT stops them all (each finishes its requests)."""

    def __init__(self, config: Config, sockets: list[socket.socket]):
        self.config = config
        self.sockets = sockets
        self.processes: list[Process] = []
        self.should_exit = threading.Event()

    def _start(self, index: int) -> Process:
        process = Process(self.config, [self.sockets[index]])
        process.start()
        return process

    def _on_signal(self, *_: Any) -> None:
        self.should_exit.set()

    def run(self) -> None:
        """Serve until told to stop."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(sig, self._on_signal)
        self.processes = [self._start(i) for i in range(len(self.sockets))]
        logger.info("%d workers, a socket each (SO_REUSEPORT)", len(self.processes))
        while not self.should_exit.wait(0.5):
            self.keep_alive()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join()
        for sock in self.sockets:
            sock.close()

    def keep_alive(self) -> None:
        """Replace each worker that died or hangs; stop all when one failed before it could serve (the app or
        its settings are broken, and a new process would fail the same way)."""
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logger.error("worker [%s] failed to start: stopping", process.pid)
                self.should_exit.set()
                return
            logger.warning("worker [%s] died: starting another on its socket", process.pid)
            self.processes[index] = self._start(index)


def serve(config: Config) -> None:
    """Run config.workers processes on config's host and port, a socket each."""
    Workers(config, reuse_port_sockets(config.host, config.port, config.workers, config.backlog)).run()
