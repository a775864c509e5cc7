"""The gate in front of every route (plain ASGI, before any body is read): the admin key is checked from the
headers alone, and no body larger than the limit is taken. A refused request's body is never read: the answer
goes out at once and the connection is closed."""

import hmac
import json
from typing import Any

from starlette.exceptions import HTTPException

from companion.app.core.problems import BASE, PROBLEM_TYPE

Scope = dict[str, Any]


class _TooLarge(HTTPException):
    """Raised while the body streams past the limit (FastAPI passes an HTTPException on: a 413 problem)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the body exceeds {limit} bytes", headers={"connection": "close"})


async def _problem(send: Any, status: int, kind: str, detail: str) -> None:
    body = json.dumps({"type": BASE + kind, "title": kind.replace("-", " "), "status": status,
                       "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Admin routes (under prefix, except the sync exchange, /utils, the schema and open_prefixes such as the
    portal's API, which authenticates its own users) need the X-API-Key header; every request body is at most
    limit bytes (413 beyond, from Content-Length or while it streams)."""

    def __init__(self, app: Any, admin_key: str, limit: int, prefix: str, open_paths: tuple[str, ...],
                 open_prefixes: tuple[str, ...] = (), uploads: tuple[str, ...] = (), upload_limit: int = 0):
        self.app = app
        self.uploads = uploads  # paths that take a file: their bodies may reach upload_limit
        self.upload_limit = max(upload_limit, limit)
        self.key = admin_key.encode()
        self.limit = limit
        self.prefix = prefix + "/"
        self.utils = prefix + "/utils/"
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes
        self.sync_path = prefix + "/sync"

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == self.sync_path:
            # the sync route authenticates by signature and bounds its own body (its hot path stays as it was)
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.upload_limit if path in self.uploads else self.limit
        key = length = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key = value
            elif name == b"content-length":
                length = value
        if (path.startswith(self.prefix) and not path.startswith(self.utils) and path not in self.open_paths
                and not path.startswith(self.open_prefixes)
                and (key is None or not hmac.compare_digest(key, self.key))):
            await _problem(send, 401, "unauthenticated", "a valid X-API-Key header is required")
            return
        if length is not None:
            if not length.isdigit() or len(length) > 18:
                await _problem(send, 400, "bad-request", "malformed Content-Length")
                return
            if int(length) > limit:
                await _problem(send, 413, "too-large", f"the body exceeds {limit} bytes")
                return
        seen = 0
        started = False

        async def bounded_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def watched_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except _TooLarge:
            if started:
                raise
            await _problem(send, 413, "too-large", f"the body exceeds {limit} bytes")
