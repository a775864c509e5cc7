"""POST /sync: the handset's authenticated exchange (see firmware/interlock/wire.py for the format)."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from companion.app.core import problems, wire
from companion.app.core.db import Database
from companion.app.core.problems import Problem
from companion.app.schemas import SyncRequest
from companion.app.sync.dbapi_store import DbApiStore
from companion.app.sync.protocol import SyncResult


class PlainRoute(APIRoute):
    """A route documented in OpenAPI like any FastAPI route, and served as a plain Starlette one: the endpoint
    takes the Request and returns a Response, with no dependency solving or body parsing in between (the sync
    exchange is the hot path: that handling costs more than its HMAC)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself: FastAPI wraps it as the route's ASGI app, as Starlette would."""
        return self.endpoint


router = APIRouter(tags=["sync"], route_class=PlainRoute)


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """The schema with its local $defs references replaced by the definitions (for openapi_extra)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref[len("#/$defs/"):]], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


_BODY_SCHEMA = SyncRequest.model_json_schema()
_BODY_SCHEMA = _inline(_BODY_SCHEMA, _BODY_SCHEMA.get("$defs", {}))

_AUTH_HEADERS: list[dict[str, Any]] = [
    {"name": name, "in": "header", "required": True, "schema": {"type": "string"}, "description": desc}
    for name, desc in ((wire.H_DEVICE, "device id"), (wire.H_TIME, "device seconds"),
                       (wire.H_NONCE, "16-64 hex digits, never reused"),
                       (wire.H_DIGEST, "hex SHA-256 of the body"),
                       (wire.H_SIG, "hex HMAC-SHA256 under the handset's sync key"))
]


@router.post(
    "/sync",
    responses={200: {"description": "signed answer (x-signature header)"},
               **problems.responses(*problems.COMMON,
                                    r401="unauthenticated, bad signature or clock skew (server_time given)",
                                    r409="replayed nonce, or another exchange of the handset in progress")},
    openapi_extra={"parameters": _AUTH_HEADERS,
                   "requestBody": {"required": True, "content": {"application/json": {
                       "schema": _BODY_SCHEMA}}}},
)
async def sync(request: Request) -> Response:
    """One sync exchange: report, acknowledgements and log chunk in; desired state, commands, log ack out."""
    # no dependencies on this route (PlainRoute): it reads the app's state itself
    state = request.app.state
    limit = state.settings.MAX_BODY_BYTES
    length = request.headers.get("content-length")
    if length is not None and (not length.isascii() or not length.isdigit() or int(length) > limit):
        raise Problem(413, "too-large", f"the body exceeds {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, "too-large", f"the body exceeds {limit} bytes")
    headers = request.headers
    fast = state.pg_sync
    if fast is not None:
        result = await fast.handle(headers, body)
    else:
        result = await run_in_threadpool(_handle, state.db, state.sync_store, dict(headers), body)
    return Response(result.body, media_type="application/json", headers={wire.H_SIG: result.signature})


def _handle(db: Database, store: DbApiStore, headers: dict[str, str], body: bytes) -> SyncResult:
    with db.writer(), db.sessions() as session:
        return store.handle(session, headers, body)
