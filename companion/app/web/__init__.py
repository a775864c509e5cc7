"""The portal's web pages (Jinja2, server-rendered, no script needed) and their security headers."""

import inspect
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

from companion.app.core.config import Settings
from companion.app.core.keyring import Keyring
from companion.app.portal.config import PortalSettings
from companion.app.portal.context import PortalContext

STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI, settings: Settings, keyring: Keyring, ps: PortalSettings | None) -> None:
    """Add the portal (pages, JSON API context, static files, security headers) to the companion's app."""
    from companion.app.billing import context as billing_context
    from companion.app.billing import sandbox
    from companion.app.web import billing_pages, pages, rules_pages, service_pages
    from companion.app.web.headers import SecurityHeaders

    app.state.portal = PortalContext.build(settings, ps or PortalSettings(), keyring)
    app.state.billing = billing_context.build(settings, app.state.portal)
    app.include_router(pages.router)
    app.include_router(billing_pages.router)
    if app.state.billing.gateway.name == "sandbox":  # the sandbox's tokenization endpoint and approval page
        app.include_router(sandbox.router(lambda request: request.app.state.billing.gateway))
    # the dashboard, the most visited page, is matched first: a plain route ahead of the ~70 API and page
    # routes (FastAPI tries routes in order, ~10 µs each)
    app.router.routes.insert(0, Route("/portal/dashboard", pages.dashboard, methods=["GET"]))
    app.include_router(service_pages.router)
    app.include_router(rules_pages.router)
    app.mount("/portal/static", StaticFiles(directory=STATIC), name="portal-static")
    app.add_middleware(SecurityHeaders)
    _page_errors(app)


def _page_errors(app: FastAPI) -> None:
    """Under /portal/ (not the JSON API), refusals are pages: sign-in redirects, HTML 404/403/429."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import RedirectResponse, Response
    from starlette.exceptions import HTTPException

    from companion.app.core import problems
    from companion.app.web import pages
    from companion.app.web.session import PasswordChangeRequired, SignInRequired

    def is_page(request: Request) -> bool:
        return request.url.path.startswith("/portal") and not request.url.path.startswith("/portal/static")

    async def sign_in(_request: Request, _exc: Exception) -> Response:
        return RedirectResponse("/portal/sign-in", status_code=303)

    async def password(_request: Request, _exc: Exception) -> Response:
        return RedirectResponse("/portal/password", status_code=303)

    async def problem(request: Request, exc: Exception) -> Response:
        if isinstance(exc, problems.Problem):
            status, kind = exc.status, exc.kind
        elif isinstance(exc, HTTPException):
            status, kind = exc.status_code, "not-found" if exc.status_code == 404 else "invalid"
        else:  # a malformed path or query (e.g. a non-numeric id): as good as an unknown page
            status, kind = 404, "not-found"
        if is_page(request):
            return pages.error_page(request, status, kind)
        for cls, handler in _json_handlers.items():
            if isinstance(exc, cls):
                answer = handler(request, exc)
                return await answer if inspect.isawaitable(answer) else answer
        raise exc

    _json_handlers = {cls: app.exception_handlers[cls]
                      for cls in (problems.Problem, HTTPException, RequestValidationError)}
    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(PasswordChangeRequired, password)
    for cls in (problems.Problem, HTTPException, RequestValidationError):
        app.add_exception_handler(cls, problem)
