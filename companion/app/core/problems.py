"""RFC 9457 problem details: every error is `application/problem+json` with a type, title, status and detail."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_TYPE = "application/problem+json"
BASE = "https://interlock.example/problems/"


class Problem(Exception):
    """An error answered as a problem body; `extra` members are added to it (e.g. server_time)."""

    def __init__(self, status: int, kind: str, detail: str, **extra: Any):
        self.status = status
        self.kind = kind
        self.detail = detail
        self.extra = extra


def problem_response(status: int, kind: str, detail: str, **extra: Any) -> JSONResponse:
    """A JSONResponse with a problem body."""
    body: dict[str, Any] = {"type": BASE + kind, "title": kind.replace("-", " "), "status": status,
                            "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE)


_TITLES = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
           405: "method-not-allowed", 409: "conflict", 413: "too-large", 415: "unsupported-media-type",
           422: "invalid", 429: "too-many", 503: "unavailable"}

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}},
    "additionalProperties": True}
_DESCRIPTIONS = {400: "malformed request", 401: "no valid X-API-Key (or, on /sync, no valid signature)",
                 403: "not allowed by the account's policy", 404: "no such resource",
                 409: "conflicts with the current state", 413: "body too large",
                 415: "the content is not of an accepted type",
                 422: "the request does not match the schema or cannot be stored",
                 429: "limit reached", 503: "the database is unavailable; retry after Retry-After seconds"}
COMMON = (400, 401, 404, 409, 413, 422, 503)


def responses(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for problem answers (application/problem+json) with these status codes;
    descriptions["r401"] overrides the description of 401."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"description": descriptions.get("r" + str(code), _DESCRIPTIONS[code]),
                     "content": {PROBLEM_TYPE: {"schema": _PROBLEM_SCHEMA}}}
        if code == 503:
            out[code]["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return out


def unavailable() -> JSONResponse:
    """503 with Retry-After: the database cannot be reached right now (the next request reconnects)."""
    resp = problem_response(503, "unavailable", "the database is unavailable; retry shortly")
    resp.headers["Retry-After"] = "1"
    return resp


def _operational(sqlstate: str | None) -> bool:
    """Whether psycopg raises an OperationalError (a 503 through SQLAlchemy, see install) for this SQLSTATE."""
    import psycopg

    try:
        return issubclass(psycopg.errors.lookup(sqlstate or ""), psycopg.OperationalError)
    except KeyError:
        return False


def install(app: FastAPI) -> None:
    """Route every error through a problem body; nothing unexpected leaks as a bare 500."""

    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    @app.exception_handler(DBAPIError)
    async def _db(_req: Request, exc: DBAPIError) -> JSONResponse:
        # a dropped or refused connection (or a locked SQLite file past its timeout): retry later
        if isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated:
            return unavailable()
        return problem_response(500, "internal", "unexpected error")

    async def _down(_req: Request, _exc: Exception) -> JSONResponse:
        return unavailable()

    # the sync fast path's driver: a connection lost or refused
    import asyncpg  # type: ignore[import-untyped]

    # (a backend terminated while a statement was being sent leaves the protocol mid-operation: asyncpg then
    # raises InternalClientError, or AdminShutdownError when the server's notice is read first)
    for cls in (asyncpg.exceptions.InterfaceError, asyncpg.exceptions.PostgresConnectionError,
                asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.OperatorInterventionError,
                asyncpg.exceptions.InternalClientError, ConnectionError):
        app.add_exception_handler(cls, _down)

    @app.exception_handler(asyncpg.exceptions.PostgresError)
    async def _postgres(_req: Request, exc: Exception) -> JSONResponse:
        # any other error PostgreSQL sent (a connection refused because there are too many, or because the
        # database takes none now): answered as the SQLAlchemy path answers psycopg's error of that SQLSTATE
        if _operational(getattr(exc, "sqlstate", None)):
            return unavailable()
        return problem_response(500, "internal", "unexpected error")

    @app.exception_handler(Problem)
    async def _problem(_req: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.kind, exc.detail, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _TITLES.get(exc.status_code, "error")
        resp = problem_response(exc.status_code, kind, str(exc.detail))
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
                  for e in exc.errors()]
        return problem_response(422, "invalid", "the request does not match the schema", errors=errors)
