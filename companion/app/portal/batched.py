"""The dashboard's reads on PostgreSQL, coalesced: while this process's dashboard connections are all busy, the
sessions of the dashboard requests that arrive queue up, and the next free connection reads all of them in one
statement (reads.BY_SESSIONS) instead of one statement each. Nothing is cached: every request's rows are read
by a statement that starts after the request arrived, and when a connection is free a request is read at once,
alone (reads.BY_SESSION), so a quiet server answers as before. Under load PostgreSQL's fixed cost per statement
(locks, executor start-up for the plan's ~40 nodes, a round trip) is paid once per batch: measured on the
portal bench's database, its CPU per dashboard is 0.15 ms alone, 0.08 ms in a batch of 4, 0.05 ms in one of 8.

The connections are this path's own (core/pgpool.Pool), opened with plan_cache_mode=force_generic_plan: the
batch statement takes an array, and with PostgreSQL's default it plans that statement again on every run
(1.2 ms) because a plan for the array's actual length always looks cheaper than the generic one."""

import asyncio
import functools
import re
from collections.abc import Sequence

from companion.app.core.pgpool import Pool
from companion.app.portal import reads

# what secrets.token_hash makes, the only hashes web_sessions holds; anything else (a NUL, a lone surrogate)
# could make PostgreSQL or the driver refuse the whole batch's statement
_HASH = re.compile("[0-9a-f]{64}")
# at most this many sessions per statement (a larger queue is read by several statements in turn)
BATCH = 64


class DashboardReads:
    """reads.by_session on an asyncpg pool of `size` connections, the requests that wait for a connection read
    together (see the module)."""

    def __init__(self, dsn: str, size: int):
        self.pool = Pool(dsn, size, server_settings={"plan_cache_mode": "force_generic_plan",
                                                     "application_name": "portal-dashboard"})
        self.size = size
        self.queue: list[tuple[str, asyncio.Future[reads.SignedIn | None]]] = []
        self.running: set[asyncio.Task[None]] = set()
        self.largest = 0  # the largest batch read so far (the bench and the tests show it)
        self.closing = False

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        """Stop: the requests waiting and the batches under way are cancelled (their requests get
        CancelledError), idle connections closed."""
        self.closing = True
        queued, self.queue = self.queue, []
        for _, answer in queued:
            answer.cancel()
        for task in list(self.running):
            task.cancel()
        if self.running:
            await asyncio.wait(list(self.running))
        await self.pool.close()

    async def signed_in(self, token_hash: str) -> reads.SignedIn | None:
        """The user of a live session with the dashboard's rows (reads.by_session), read by a statement that
        starts after this call; None when the session is unknown, expired or the user disabled. Raises what
        the driver raised when the read failed."""
        if self.closing:
            raise ConnectionError("the dashboard's reads are closed")  # answered 503, as a database gone
        if not _HASH.fullmatch(token_hash):
            return None  # no session's (secrets.token_hash): not read, so that it fails no other request's read
        answer: asyncio.Future[reads.SignedIn | None] = asyncio.get_running_loop().create_future()
        self.queue.append((token_hash, answer))
        if len(self.running) < self.size:
            self._next()
        return await answer  # cancelled (the client went away): the batch skips this answer

    def _next(self) -> None:
        """Read the queue's first BATCH sessions on a connection of their own (in a task, so that a request
        cancelled while its batch runs cancels nobody else's read)."""
        batch, self.queue = self.queue[:BATCH], self.queue[BATCH:]
        task = asyncio.get_running_loop().create_task(self._read(batch))
        self.running.add(task)
        task.add_done_callback(functools.partial(self._ended, batch))

    def _ended(self, batch: Sequence[tuple[str, asyncio.Future[reads.SignedIn | None]]],
               task: asyncio.Task[None]) -> None:
        """A batch's task ended. Its answers still open are cancelled: those of a batch cancelled while it
        read, and all of one cancelled before it first ran (close() just after the batch started), which ran none
        of _read. None of its requests is left waiting."""
        self.running.discard(task)
        for _, answer in batch:
            if not answer.done():
                answer.cancel()

    async def _read(self, batch: Sequence[tuple[str, asyncio.Future[reads.SignedIn | None]]]) -> None:
        try:
            live = [(h, f) for h, f in batch if not f.done()]  # a request cancelled while queued is not read
            if live:
                self.largest = max(self.largest, len(live))
                async with self.pool.connection() as conn:
                    if len(live) == 1:
                        found = [await reads.by_session_asyncpg(conn, live[0][0])]
                    else:
                        found = await reads.by_sessions_asyncpg(conn, [h for h, _ in live])
                for (_, answer), mine in zip(live, found, strict=True):
                    if not answer.done():
                        answer.set_result(mine)
        except Exception as exc:  # (cancelled: _ended cancels the answers still open)
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
        finally:
            self.running.discard(asyncio.current_task())  # type: ignore[arg-type]
            if self.queue and len(self.running) < self.size and not self.closing:
                self._next()
