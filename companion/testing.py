"""Running a companion for tests, the bench and the demo: loopback servers (thread or process), a fresh
PostgreSQL database per run, and a small back-office client. Product code, used every day."""

import base64
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from companion.app.core import httpserver
from companion.app.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("COMPANION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_KEY = "test-" + secrets.token_hex(16)  # per process: a key in the source would be a published one


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_master_keys(kids: tuple[str, ...] = ("k1",)) -> str:
    """A MASTER_KEYS value with fresh random keys for the given key ids."""
    return ",".join(k + ":" + base64.b64encode(os.urandom(32)).decode() for k in kids)


def pg_unavailable_reason() -> str | None:
    """None when the PostgreSQL server answers, else why not (for a clear skip message)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 -- any failure means "not available"
        return "PostgreSQL at " + PG_ADMIN_URL + " is unreachable: " + str(exc).strip().splitlines()[0]


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "companion") -> Iterator[str]:
    """A new, empty PostgreSQL database for one run (so parallel runs never collide); dropped afterwards."""
    import psycopg

    name = (prefix + "_" + uuid.uuid4().hex[:12]).lower()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute("CREATE DATABASE " + name)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield base + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")


def settings_for(database_url: str, master_keys: str, **extra: Any) -> Settings:
    """Settings for a test companion on database_url."""
    return Settings(DATABASE_URL=database_url, MASTER_KEYS=master_keys, ADMIN_API_KEY=ADMIN_KEY,
                    _env_file=None, **extra)  # type: ignore[call-arg]


def env_for(settings: Settings) -> dict[str, str]:
    """Environment variables that give a child process the same settings."""
    env = dict(os.environ)
    env.update(DATABASE_URL=settings.DATABASE_URL, MASTER_KEYS=settings.MASTER_KEYS,
               MASTER_KEY_ID=settings.MASTER_KEY_ID, ADMIN_API_KEY=settings.ADMIN_API_KEY,
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    for name in ("SYNC_WINDOW_S", "COMMAND_TTL_S", "MAX_LOG_CHUNK", "DB_POOL_SIZE", "SYNC_ASYNCPG",
                 "DASHBOARD_CONNECTIONS"):
        env[name] = str(getattr(settings, name))
    return env


def wait_ready(base_url: str, timeout_s: float = 90.0) -> None:
    """Wait until the server answers its health endpoint (a liveness bound, not a speed check: a busy shared
    machine can take tens of seconds to start a process that imports the whole companion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(base_url + "/api/v1/utils/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("companion at " + base_url + " did not start")
        time.sleep(0.05)


class _CountingConnection:
    """An asyncpg connection that counts the statements sent through it."""

    def __init__(self, conn: Any, seen: list[str]):
        self._conn = conn
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._conn, name)
        if name not in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
            return attr

        def counted(query: str, *args: Any, **kwargs: Any) -> Any:
            self._seen.append(query)
            return attr(query, *args, **kwargs)

        return counted


@contextlib.contextmanager
def statements_of(app: Any) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs: through SQLAlchemy (an event on its engine) and
    through its asyncpg pools on PostgreSQL, the sync path's and the dashboard's (their connections wrapped).
    Counts all threads."""
    from sqlalchemy import event

    seen: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    engine = app.state.db.engine
    event.listen(engine, "before_cursor_execute", on_execute)
    pools = [p for p in (getattr(app.state, "pg_sync", None),
                         getattr(getattr(app.state, "portal_reads", None), "pool", None)) if p is not None]
    for pool in pools:
        pool.connection = _counted(pool.connection, seen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        for pool in pools:
            del pool.connection  # the class's method again


def _counted(plain: Any, seen: list[str]) -> Any:
    @contextlib.asynccontextmanager
    async def connection() -> Any:
        async with plain() as conn:
            yield _CountingConnection(conn, seen)

    return connection


class ServerThread:
    """A uvicorn server for settings on a free loopback port, in a thread of this process."""

    def __init__(self, settings: Settings, port: int | None = None, portal_settings: Any = None):
        from companion.main import create_app

        self.port = port or free_port()
        self.url = "http://127.0.0.1:" + str(self.port)
        self.app = create_app(settings, portal_settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                http=httpserver.SPEC)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        wait_ready(self.url)
        return self

    def client(self, api_key: str | None = ADMIN_KEY) -> httpx.Client:
        """An HTTP client of this server (with the admin key unless None)."""
        headers = {"X-API-Key": api_key} if api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class ServerProcess:
    """`python -m companion serve` for settings on a free loopback port, as a child process."""

    def __init__(self, settings: Settings, port: int | None = None, workers: int = 1):
        self.settings = settings
        self.port = port or free_port()
        self.workers = workers
        self.url = "http://127.0.0.1:" + str(self.port)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "ServerProcess":
        """Start the process and wait until it answers."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "companion", "serve", "--port", str(self.port), "--workers",
             str(self.workers)], env=env_for(self.settings), cwd=str(ROOT))
        try:
            wait_ready(self.url)
        except BaseException:
            self.kill()  # never leave a half-started server (or its Popen) behind
            raise
        return self

    def kill(self) -> None:
        """Kill at once (SIGKILL): what a crash looks like to the handsets."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        """Stop gracefully."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Backoffice:
    """The back office's calls, with the admin API key (raises on an unexpected status)."""

    def __init__(self, base_url: str, api_key: str = ADMIN_KEY):
        self.http = httpx.Client(base_url=base_url + "/api/v1", headers={"X-API-Key": api_key}, timeout=30)

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        """One call; the decoded JSON body."""
        r = self.http.request(method, path, **kw)
        if r.status_code != expect:
            raise AssertionError(method + " " + path + " -> " + str(r.status_code) + " " + r.text)
        return r.json()

    def account(self, schedule: str = "monthly", first_due: str = "2026-12-01", **kw: Any) -> Any:
        """Open an account."""
        body = {"name": "driver", "schedule": schedule, "first_due": first_due, "installment_cents": 9000}
        body.update(kw)
        return self.call("POST", "/accounts", 201, json=body)

    def handset(self, account_id: int | None = None, serial: str | None = None) -> Any:
        """Provision a handset (the answer holds its secret, hex)."""
        return self.call("POST", "/handsets", 201,
                         json={"serial": serial or "HS-" + uuid.uuid4().hex[:10], "account_id": account_id})

    def pay(self, account_id: int, kind: str, amount: int, reference: str | None = None,
            device_id: int | None = None, expect: int = 201) -> Any:
        """Record a payment."""
        body: dict[str, Any] = {"kind": kind, "amount_cents": amount,
                                "reference": reference or uuid.uuid4().hex[:16]}
        if device_id is not None:
            body["device_id"] = device_id
        return self.call("POST", "/accounts/" + str(account_id) + "/payments", expect, json=body)

    def commands(self, device_id: int) -> Any:
        """The handset's commands."""
        return self.call("GET", "/handsets/" + str(device_id) + "/commands")

    def handset_view(self, device_id: int) -> Any:
        """The handset as the API shows it."""
        return self.call("GET", "/handsets/" + str(device_id))

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()
