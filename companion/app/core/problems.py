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
           422: "invalid", 429: "too-many"}


def install(app: FastAPI) -> None:
    """Route every error through a problem body; nothing unexpected leaks as a bare 500."""

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
