"""Engine and sessions: SQLite (WAL) by default, PostgreSQL (psycopg) when DATABASE_URL names it."""

import contextlib
import threading
from collections.abc import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from companion.app.core.config import Settings


def make_engine(settings: Settings) -> Engine:
    """The engine for settings.DATABASE_URL, with SQLite put in WAL mode."""
    url = settings.sync_database_url
    if settings.is_sqlite:
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=settings.DB_POOL_SIZE, max_overflow=2 * settings.DB_POOL_SIZE)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_size=settings.DB_POOL_SIZE, max_overflow=2 * settings.DB_POOL_SIZE)


class Database:
    """The engine, its session factory, and (on SQLite, which has one writer) a lock that queues writers."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = make_engine(settings)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock() if settings.is_sqlite else None

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the single-writer lock on SQLite (a no-op on PostgreSQL, which locks rows)."""
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            yield

    @contextlib.contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session for one write transaction. On SQLite it starts with BEGIN IMMEDIATE: the database's write
        lock is taken before the first read, so what the transaction reads no other process (a second worker)
        can change before it commits. On PostgreSQL the rows a transaction changes from what it read are locked
        (SELECT ... FOR UPDATE, or an atomic UPDATE)."""
        with self.writer(), self.sessions() as session:
            if self._write_lock is not None:
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield session

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()
