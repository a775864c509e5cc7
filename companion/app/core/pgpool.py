"""A small pool of asyncpg connections for the paths that skip SQLAlchemy on PostgreSQL (the sync exchange, the
portal's dashboard): connections open on first use up to a size, are handed out first come, first served
(FairSlots), and one that saw an unexpected error is dropped rather than reused."""

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from companion.app.core.problems import Problem


class FairSlots:
    """The pool's free connections, handed out first come, first served. With an asyncio.Queue a request that
    arrives just as a connection is put back takes it, while the waiter the put woke has not run yet; that
    waiter then queues again at the back, and under load some requests lost many turns in a row (the portal
    bench's dashboard: p50 6 ms, p99 130-200 ms). Here a connection put back goes straight to the oldest
    waiter. Entries are connections, or None for a slot whose connection was dropped."""

    def __init__(self) -> None:
        self.free: collections.deque[Any] = collections.deque()
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()

    def empty(self) -> bool:
        return not self.free

    def get_nowait(self) -> Any:
        return self.free.popleft()

    async def get(self) -> Any:
        """The oldest free entry when nobody waits; else wait behind the others."""
        if self.free and not self.waiters:
            return self.free.popleft()
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())  # handed over as the request was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
            raise

    def put_nowait(self, entry: Any) -> None:
        """Give the entry to the oldest waiter, or keep it free."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(entry)
                return
        self.free.append(entry)


class Pool:
    """Up to `size` asyncpg connections to `dsn`, opened with `options` (asyncpg.connect's keyword arguments)."""

    def __init__(self, dsn: str, size: int, **options: Any):
        self.dsn = dsn
        self.size = size
        self.options = options
        self.idle: FairSlots | None = None
        self.opened = 0
        self.closing = False

    async def start(self) -> None:
        """Get ready to connect (connections open on first use, up to `size`)."""
        self.idle = FairSlots()
        self.opened = 0

    async def close(self) -> None:
        """Close the idle connections (busy ones close when their request ends)."""
        self.closing = True
        while self.idle is not None and not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn is not None:
                await conn.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A connection of the pool (FairSlots: cheaper than asyncpg's pool per request); a connection that saw
        an unexpected error is dropped rather than reused."""
        import asyncpg  # type: ignore[import-untyped]

        assert self.idle is not None
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            conn = None  # a free slot: connect below
        else:
            conn = await self.idle.get()  # a connection, or None for a slot whose connection was dropped
        if conn is None:
            try:
                conn = await asyncpg.connect(self.dsn, **self.options)
            except BaseException:
                self.idle.put_nowait(None)  # keep the slot for the next request
                raise
        healthy = False
        try:
            yield conn
            healthy = True
        except Problem:
            healthy = True  # a refused request: the transaction (if any) was rolled back cleanly
            raise
        finally:
            if healthy and not conn.is_closed() and not self.closing:
                self.idle.put_nowait(conn)
            else:
                conn.terminate()
                self.idle.put_nowait(None)
