"""Who is asking: the session cookie, the CSRF token of every form, the language, and page rendering."""

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from companion.app import i18n
from companion.app.accounts import secrets
from companion.app.accounts import services as accounts
from companion.app.accounts.models import User, WebSession
from companion.app.core.problems import Problem
from companion.app.portal.context import PortalContext
from companion.app.web import messages

TEMPLATES = str(Path(__file__).resolve().parent / "templates")
SESSION_COOKIE = "portal_session"
CSRF_COOKIE = "portal_csrf"  # signed-out forms: the field must repeat this cookie (double submit)
LANG_COOKIE = "portal_lang"
T = TypeVar("T")


class SignInRequired(Exception):
    """The page needs a signed-in user (answered with a redirect to the sign-in page)."""


class PasswordChangeRequired(Exception):
    """The user signed in with a temporary password and must set their own first."""


@dataclass
class Visitor:
    """The request's user (if signed in), their session row, the language and the CSRF token for forms."""

    request: Request
    ctx: PortalContext
    user: User | None
    websession: WebSession | None
    lang: str
    csrf: str
    new_csrf_cookie: bool = False

    def require(self, *roles: str) -> User:
        """The signed-in user with one of roles (another role gets 404, as an unknown page does)."""
        if self.user is None:
            raise SignInRequired()
        if self.user.must_change_password:
            raise PasswordChangeRequired()
        if roles and self.user.role not in roles:
            raise Problem(404, "not-found", "no such page")
        return self.user

    def check_csrf(self, token: str) -> None:
        """403 unless token is this visitor's form token."""
        if not token or not self.csrf or self.new_csrf_cookie or not secrets.same(token, self.csrf):
            raise Problem(403, "csrf", "the form expired or came from elsewhere: reload the page and try again")

    @property
    def path(self) -> str:
        """The page's path as request.url.path gives it (Starlette escapes ?, # and \\ in it), without building
        the whole URL (the language form's `back`)."""
        path: str = self.request.scope["path"]
        return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")

    def address(self) -> str:
        """The client's address (for throttling)."""
        return self.request.client.host if self.request.client else "unknown"


def visitor(request: Request, session: Session) -> Visitor:
    """The visitor of a request."""
    ctx: PortalContext = request.app.state.portal
    found = accounts.session_user(session, request.cookies.get(SESSION_COOKIE))
    user, ws = found if found else (None, None)
    if user is not None:
        return signed_in(request, ctx, user, ws, ws.csrf if ws else "")
    lang = request.cookies.get(LANG_COOKIE) or ""
    if lang not in i18n.LANGUAGES:
        lang = i18n.pick_language(request.headers.get("accept-language"))
    csrf = request.cookies.get(CSRF_COOKIE) or ""
    if len(csrf) < 20 or len(csrf) > 100:
        return Visitor(request, ctx, None, None, lang, secrets.new_token(), new_csrf_cookie=True)
    return Visitor(request, ctx, None, None, lang, csrf)


def signed_in(request: Request, ctx: PortalContext, user: User, ws: WebSession | None, csrf: str) -> Visitor:
    """The visitor of a request whose session cookie signed user in (pages in the user's language)."""
    lang = user.language if user.language in i18n.LANGUAGES else i18n.DEFAULT
    return Visitor(request, ctx, user, ws, lang, csrf)


def session_token_hash(request: Request) -> str | None:
    """The hash of the request's session cookie (what the session table stores), None without a usable one."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    return secrets.token_hash(token)


def read_connection(request: Request) -> Connection:
    """A connection for a page that only reads, outside the ORM, with no transaction round trips."""
    return _reader_engine(request).connect()


def _reader_engine(request: Request) -> Engine:
    db = request.app.state.db
    engine = getattr(db, "portal_reader_engine", None)
    if engine is None:
        # PostgreSQL: autocommit (no BEGIN and ROLLBACK). SQLite's driver begins no transaction for a SELECT
        # anyway, and its AUTOCOMMIT switch runs a PRAGMA on every return to the pool after which SQLite
        # prepares every statement again (0.5 ms for the dashboard's): the plain engine there.
        engine = db.engine if db.settings.is_sqlite else db.engine.execution_options(isolation_level="AUTOCOMMIT")
        db.portal_reader_engine = engine
    return engine  # type: ignore[no-any-return]


async def run_read(request: Request, page: Callable[[Request], Response]) -> Response:
    """Run a page that only reads. On SQLite on the event loop itself: a read there is a local file read that
    waits for no writer (WAL), and the hop to a worker thread cost more than the page's query (0.3 ms of CPU,
    and the GIL hand-over under load). On PostgreSQL in the loop's thread pool, so a slow database stalls
    only that page."""
    if request.app.state.db.settings.is_sqlite:
        return page(request)
    return await asyncio.get_running_loop().run_in_executor(None, page, request)


def read_session(request: Request) -> Session:
    """A session for a page that only reads: autocommit, so no BEGIN and ROLLBACK round trips per page."""
    db = request.app.state.db
    maker = getattr(db, "portal_reader", None)
    if maker is None:
        maker = sessionmaker(_reader_engine(request), expire_on_commit=False)
        db.portal_reader = maker
    return maker()  # type: ignore[no-any-return]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Any, name: str, value: str, max_age: int | None = None) -> None:
    """An HttpOnly, SameSite cookie for the portal's paths (Secure over TLS)."""
    ctx: PortalContext = request.app.state.portal
    response.set_cookie(name, value, max_age=max_age, path="/portal", httponly=True,
                        samesite=ctx.ps.COOKIE_SAMESITE, secure=_secure(request))


def render(v: Visitor, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A page in the visitor's language."""
    env = i18n.environment(TEMPLATES, v.lang)
    tr = i18n.gettext_for(v.lang)
    html = env.get_template(template).render(v=v, user=v.user, csrf=v.csrf, T=tr.gettext, money=money,
                                             date=fmt_date, when=fmt_when, left=fmt_left, now=now(),
                                             **values)
    response = HTMLResponse(html, status_code=status)
    if v.new_csrf_cookie:
        set_cookie(v.request, response, CSRF_COOKIE, v.csrf)
    return response


def form_error(v: Visitor, template: str, exc: Problem, **values: Any) -> HTMLResponse:
    """The form again with the problem in words (and nothing changed)."""
    response = render(v, template, exc.status, error=problem_words(v, exc), error_field=exc.extra.get("field", ""),
                      **values)
    if exc.status == 429:
        response.headers["Retry-After"] = str(exc.extra.get("retry_after", 60))
    return response


def problem_words(v: Visitor, exc: Problem) -> str:
    """A refusal in words, in the visitor's language."""
    return i18n.gettext_for(v.lang).gettext(messages.for_problem(exc.kind))


def submit(v: Visitor, session: Session, csrf: str, action: Callable[[], T], done: Callable[[T], Response],
           refused: Callable[[Problem], Response] | None = None, commit: bool = True) -> Response:
    """Every form's POST: check the CSRF token, run the service call, commit, then `done` with its result
    (a redirect or a page). A refusal (Problem, the CSRF check's included) rolls back, or commits what the
    refusal must remember (accounts.Kept: a failed sign-in), and answers with `refused` (the form again with
    the problem in words), or, without one, raises it to the app's error page. `commit=False` for a form that
    only previews."""
    try:
        v.check_csrf(csrf)
        result = action()
        if commit:
            session.commit()
    except Problem as exc:
        if isinstance(exc, accounts.Kept):
            session.commit()
        else:
            session.rollback()
        if refused is None:
            raise
        return refused(exc)
    return done(result)


def redirect(to: str) -> RedirectResponse:
    """See other (after a POST)."""
    return RedirectResponse(to, status_code=303)


def now() -> dt.datetime:
    """Now, UTC."""
    return dt.datetime.now(dt.UTC)


def money(cents: int) -> str:
    """$12.34"""
    return "$%d.%02d" % (cents // 100, cents % 100)


def fmt_date(d: dt.date | None) -> str:
    """ISO date, or a dash."""
    return d.isoformat() if d else "—"


def fmt_when(t: dt.datetime | None) -> str:
    """Date and time in UTC, or a dash."""
    if t is None:
        return "—"
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_left(t: dt.datetime | None) -> str:
    """Time left until t as 'N d N h N min' (0 min when past)."""
    if t is None:
        return ""
    secs = max(int((t - now()).total_seconds()), 0)
    d, rest = divmod(secs, 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    return ("%d d " % d if d else "") + ("%d h " % h if d or h else "") + "%d min" % m
