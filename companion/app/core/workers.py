"""`python -m companion serve --workers N` (N > 1): N server processes on one port, each accepting on a listening
socket of its own (SO_REUSEPORT), kept running by a small supervisor.

uvicorn's own --workers shares one listening socket among its processes, and the process that wakes first
accepts every connection waiting: under the portal bench (50 keep-alive connections opened at once) one of two
workers held 48 of them, so one core served nearly all requests while the other idled, and the clients on the
busy one waited twice as long. With a socket per process the kernel spreads new connections across the
processes by a hash of their addresses, whichever process is awake. The sockets are made and kept by the
supervisor: a worker that dies is replaced on its own socket, and connections the kernel queued there in the
meantime wait for the replacement instead of being refused.

SO_REUSEPORT lets any process of the same user join the group on that port and take a share of its connections
(Linux refuses a process of another user: EADDRINUSE). So the port is first bound once without it: a port
another program holds, with SO_REUSEPORT or without, is refused before the group is made. Each worker stops
(gracefully) when the supervisor is gone, however it ended, so none keeps serving the port as an orphan.

Where SO_REUSEPORT does not exist (not Linux or a BSD), uvicorn's shared socket is used."""

import logging
import os
import signal
import socket
import threading
import time
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
    if port:
        with socket.socket(family, socket.SOCK_STREAM) as probe:  # in use (a SO_REUSEPORT group too): OSError
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
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


class Worker(Process):
    """uvicorn's worker process, which also stops (SIGTERM to itself: its requests finish) once the supervisor
    that started it is gone: killed with SIGKILL, say, which leaves it no chance to stop its workers."""

    def __init__(self, config: Config, sockets: list[socket.socket]):
        super().__init__(config, sockets)
        self.supervisor = os.getpid()

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover (the child)
        threading.Thread(target=self._watch_supervisor, daemon=True).start()
        super().target(sockets)

    def pong(self) -> None:  # pragma: no cover (the child)
        """Answer a health check once the server's event loop has run a callback. uvicorn's answers from its
        own thread whatever the loop does, so a worker whose loop is stuck (a request that never yields) was
        never replaced, and every connection the kernel hashed to its socket waited for ever."""
        self.child_conn.recv()
        servers = getattr(self.server, "servers", None) if self.server.started else None
        if servers:
            ran = threading.Event()
            try:
                servers[0].get_loop().call_soon_threadsafe(ran.set)
            except RuntimeError:  # the loop is closed: the worker is stopping
                ran.set()
            ran.wait()
        self.child_conn.send(self.server.started)

    def _watch_supervisor(self) -> None:  # pragma: no cover (the child)
        while os.getppid() == self.supervisor:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)


class Workers:
    """One uvicorn server process per socket; a process that dies or stops answering its health check (its
    event loop stuck for config.timeout_worker_healthcheck, 5 s) is replaced on the same socket; SIGINT, SIGTERM, SIGQUIT or SIGHUP stops them all (each finishes its requests).
    A worker that exits with an error before it ever served (the app does not import, its settings are
    invalid, its start-up failed) stops them all too: a new process would fail the same way."""

    def __init__(self, config: Config, sockets: list[socket.socket]):
        self.config = config
        self.sockets = sockets
        self.processes: list[Process] = []
        self.served: list[bool] = []  # per socket: whether its current process has reported that it serves
        self.should_exit = threading.Event()
        self.failed = False  # a worker failed to start

    def _start(self, index: int) -> Process:
        process = Worker(self.config, [self.sockets[index]])
        process.start()
        return process

    def _on_signal(self, *_: Any) -> None:
        self.should_exit.set()

    def run(self) -> None:
        """Serve until told to stop."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.processes = [self._start(i) for i in range(len(self.sockets))]
        self.served = [False] * len(self.processes)
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
                if not self.served[index]:
                    self.served[index] = process.is_ready(timeout=self.config.timeout_worker_healthcheck)
                continue
            process.kill()
            process.join()
            code = process.exitcode
            # an exit of its own with an error (not a signal) before it served: uvicorn's STARTUP_FAILURE, or an
            # exception while the app was imported (exit code 1)
            if code == STARTUP_FAILURE or (not self.served[index] and code is not None and code > 0):
                logger.error("worker [%s] failed to start (exit code %s): stopping", process.pid, code)
                self.failed = True
                self.should_exit.set()
                return
            logger.warning("worker [%s] died: starting another on its socket", process.pid)
            self.processes[index] = self._start(index)
            self.served[index] = False


def serve(config: Config) -> bool:
    """Run config.workers processes on config's host and port, a socket each. False when a worker failed to
    start (and so all were stopped)."""
    supervisor = Workers(config, reuse_port_sockets(config.host, config.port, config.workers, config.backlog))
    supervisor.run()
    return not supervisor.failed
