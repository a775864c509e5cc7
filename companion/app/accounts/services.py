"""Accounts: sign-in and sign-out, sessions, claim, password change and reset, email change, API tokens.

Every function takes the database session and the portal context, changes nothing on a refusal (raises a
Problem), and leaves committing to its caller. Refusals that must still be remembered (a failed sign-in
counts towards throttling) raise `Kept`, which the caller commits before answering.
"""

import datetime as dt
import re
import secrets as pysecrets

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from companion.app.accounts import secrets
from companion.app.accounts.models import AuditEntry, AuthToken, LoginFailure, User, WebSession
from companion.app.core.problems import Problem
from companion.app.models import utcnow
from companion.app.notifications import services as notes
from companion.app.portal.context import PortalContext

EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
CUSTOMER_ID = re.compile(r"^C\d{9}$")
BAD_SIGN_IN = "the email (or customer id) or the password is not right"


class Kept(Problem):
    """A refusal whose bookkeeping (a failed attempt) the caller commits before answering."""


def normalize_email(email: str) -> str:
    """The email in lower case, or a 422 problem when it is not an address."""
    email = (email or "").strip()
    if len(email) > 254 or not EMAIL.match(email):
        raise Problem(422, "invalid-email", "this is not an email address", field="email")
    return email.lower()


def check_password_rule(password: str, field: str = "password") -> None:
    """A 422 problem unless the password has at least 8 characters and one number."""
    if not secrets.password_ok(password or ""):
        raise Problem(422, "weak-password", "a password needs at least 8 characters and at least one number",
                      field=field)


def audit(session: Session, actor: User | None, subject: User | None, action: str, **detail: object) -> None:
    """Record who did what to whom."""
    session.add(AuditEntry(actor_id=actor.id if actor else None, subject_id=subject.id if subject else None,
                           action=action, detail=detail, at=utcnow()))


# ---- throttling --------------------------------------------------------------------------------------------
def _failures(session: Session, ctx: PortalContext, scope: str) -> int:
    since = utcnow() - dt.timedelta(seconds=ctx.ps.THROTTLE_WINDOW_S)
    return int(session.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.scope == scope, LoginFailure.at >= since)) or 0)


def throttle(session: Session, ctx: PortalContext, kind: str, identity: str, address: str) -> None:
    """429 when identity or address has used up its attempts in the window (identity need not exist)."""
    if (_failures(session, ctx, kind + ":id:" + identity) >= ctx.ps.THROTTLE_PER_ACCOUNT
            or _failures(session, ctx, kind + ":addr:" + address) >= ctx.ps.THROTTLE_PER_ADDRESS):
        raise Problem(429, "throttled", "too many attempts: wait a few minutes and try again",
                      retry_after=ctx.ps.THROTTLE_WINDOW_S)


def _count_attempt(session: Session, kind: str, identity: str, address: str) -> None:
    now = utcnow()
    session.add(LoginFailure(scope=kind + ":id:" + identity, at=now))
    session.add(LoginFailure(scope=kind + ":addr:" + address, at=now))
    session.flush()


# ---- sign-in -----------------------------------------------------------------------------------------------
def _find_login(session: Session, identity: str) -> User | None:
    identity = identity.strip()
    if CUSTOMER_ID.match(identity.upper()):
        return session.scalar(select(User).where(User.customer_id == identity.upper()))
    return session.scalar(select(User).where(User.email == identity.lower()))


def authenticate(session: Session, ctx: PortalContext, identity: str, password: str, address: str) -> User:
    """The user with this email (or customer id) and password; throttled per identity and per address.
    A wrong password and an unknown identity give the same answer after the same work."""
    identity = (identity or "").strip()[:254]
    key = identity.lower()
    throttle(session, ctx, "login", key, address)
    user = _find_login(session, identity) if identity else None
    ok = ctx.passwords.verify(password or "", user.password_hash if user else None)
    if not ok or user is None or not user.active:
        _count_attempt(session, "login", key, address)
        raise Kept(401, "bad-sign-in", BAD_SIGN_IN)
    session.execute(delete(LoginFailure).where(LoginFailure.scope == "login:id:" + key))
    audit(session, user, user, "sign-in")
    return user


def start_session(session: Session, ctx: PortalContext, user: User) -> tuple[str, WebSession]:
    """A new browser session for user: (cookie token, row with its CSRF token)."""
    token = secrets.new_token()
    row = WebSession(token_hash=secrets.token_hash(token), user_id=user.id, csrf=secrets.new_token(),
                     created_at=utcnow(), expires_at=utcnow() + dt.timedelta(hours=ctx.ps.SESSION_HOURS))
    session.add(row)
    session.flush()
    return token, row


_SESSION_Q = (select(WebSession, User).join(User, User.id == WebSession.user_id)
              .where(WebSession.token_hash == bindparam("h")))  # built once: every page asks it


def session_user(session: Session, token: str | None) -> tuple[User, WebSession] | None:
    """The signed-in user of a session cookie (None when absent, unknown, expired or the user is disabled)."""
    if not token or len(token) > 100:
        return None
    found = session.execute(_SESSION_Q, {"h": secrets.token_hash(token)}).first()
    if found is None:
        return None
    row, user = found
    if not session_live(row.expires_at, user.active):
        return None
    return user, row


def session_live(expires_at: dt.datetime, active: bool) -> bool:
    """A session row still signs its user in: not expired, and the user not disabled."""
    return _aware(expires_at) > utcnow() and active


def end_session(session: Session, token: str | None) -> None:
    """Sign out: the session row is deleted."""
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == secrets.token_hash(token)))


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


# ---- single-use tokens -------------------------------------------------------------------------------------
def issue_token(session: Session, user: User, kind: str, lifetime: dt.timedelta, payload: str = "",
                family: str = "") -> str:
    """A new single-use token of kind for user; only its hash is stored."""
    token = secrets.new_token()
    session.add(AuthToken(token_hash=secrets.token_hash(token), kind=kind, user_id=user.id, payload=payload,
                          family=family, expires_at=utcnow() + lifetime, created_at=utcnow()))
    session.flush()
    return token


def consume_token(session: Session, token: str, kind: str) -> AuthToken:
    """Use a token once: unknown, expired or used tokens give the same 400 problem."""
    bad = Problem(400, "bad-token", "this link or token is not valid (used, expired or mistyped)")
    if not token or len(token) > 100:
        raise bad
    row = session.scalar(select(AuthToken).where(AuthToken.token_hash == secrets.token_hash(token),
                                                 AuthToken.kind == kind))
    if row is None or row.used_at is not None or _aware(row.expires_at) <= utcnow():
        raise bad
    # the conditional update makes the use single even when two requests race
    done = session.execute(update(AuthToken).where(AuthToken.id == row.id, AuthToken.used_at.is_(None))
                           .values(used_at=utcnow()))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise bad
    return row


def peek_token(session: Session, token: str, kind: str) -> AuthToken | None:
    """The token's row when it is still usable (for showing a form), without using it."""
    if not token or len(token) > 100:
        return None
    row = session.scalar(select(AuthToken).where(AuthToken.token_hash == secrets.token_hash(token),
                                                 AuthToken.kind == kind))
    if row is None or row.used_at is not None or _aware(row.expires_at) <= utcnow():
        return None
    return row


def _forget_sessions(session: Session, user: User, keep: WebSession | None = None) -> None:
    q = delete(WebSession).where(WebSession.user_id == user.id)
    if keep is not None:
        q = q.where(WebSession.id != keep.id)
    session.execute(q)
    session.execute(update(AuthToken).where(AuthToken.user_id == user.id, AuthToken.kind.in_(("access", "refresh")),
                                            AuthToken.used_at.is_(None)).values(used_at=utcnow()))


# ---- claim, passwords --------------------------------------------------------------------------------------
def claim(session: Session, ctx: PortalContext, token: str, password: str) -> User:
    """Claim an account from the emailed link: set the first password."""
    check_password_rule(password)
    row = consume_token(session, token, "claim")
    user = session.get(User, row.user_id)
    assert user is not None
    user.password_hash = ctx.passwords.hash(password)
    user.must_change_password = False
    audit(session, user, user, "claim")
    session.flush()
    return user


def change_password(session: Session, ctx: PortalContext, user: User, current: str, new: str,
                    keep: WebSession | None = None) -> None:
    """Change the password (the current one is asked for); other sessions and API tokens end."""
    if not ctx.passwords.verify(current or "", user.password_hash):
        raise Problem(422, "wrong-password", "the current password is not right", field="current")
    check_password_rule(new, "new")
    if secrets.same(current, new):
        raise Problem(422, "same-password", "the new password must differ from the current one", field="new")
    user.password_hash = ctx.passwords.hash(new)
    user.must_change_password = False
    _forget_sessions(session, user, keep)
    audit(session, user, user, "password-change")
    notes.notify(session, user, "password-changed", {}, email=True)
    session.flush()


def request_reset(session: Session, ctx: PortalContext, email: str, address: str) -> None:
    """Email a reset link when the address has an account; the same answer (and work) either way."""
    try:
        email = normalize_email(email)
    except Problem:
        email = (email or "").strip().lower()[:254]
    throttle(session, ctx, "reset", email, address)
    _count_attempt(session, "reset", email, address)
    user = session.scalar(select(User).where(User.email == email))
    token = secrets.new_token()  # made either way: the same work
    if user is None or not user.active:
        return
    session.execute(update(AuthToken).where(AuthToken.user_id == user.id, AuthToken.kind == "reset",
                                            AuthToken.used_at.is_(None)).values(used_at=utcnow()))
    session.add(AuthToken(token_hash=secrets.token_hash(token), kind="reset", user_id=user.id,
                          expires_at=utcnow() + dt.timedelta(minutes=ctx.ps.RESET_TOKEN_MINUTES)))
    notes.enqueue_email(session, user.email, "reset", {"minutes": ctx.ps.RESET_TOKEN_MINUTES}, user.language,
                        ctx.ps.BASE_URL + "/portal/reset/" + token)
    audit(session, None, user, "reset-requested")
    session.flush()


def reset_password(session: Session, ctx: PortalContext, token: str, password: str) -> User:
    """Set a new password from a reset link; every session and API token of the user ends."""
    check_password_rule(password)
    row = consume_token(session, token, "reset")
    user = session.get(User, row.user_id)
    assert user is not None
    user.password_hash = ctx.passwords.hash(password)
    user.must_change_password = False
    _forget_sessions(session, user)
    audit(session, None, user, "password-reset")
    session.flush()
    return user


# ---- email change ------------------------------------------------------------------------------------------
def request_email_change(session: Session, ctx: PortalContext, user: User, new_email: str,
                         password: str) -> None:
    """Send a verification link to the new address; the login changes only when it is followed."""
    new_email = normalize_email(new_email)
    if not ctx.passwords.verify(password or "", user.password_hash):
        raise Problem(422, "wrong-password", "the current password is not right", field="password")
    if new_email == user.email:
        raise Problem(422, "same-email", "this is already your email address", field="email")
    audit(session, user, user, "email-change-requested", new=new_email)
    taken = session.scalar(select(User.id).where(User.email == new_email))
    if taken is not None:
        return  # nothing is sent; the answer is the same, so nobody learns that the address has an account
    token = issue_token(session, user, "email", dt.timedelta(hours=ctx.ps.EMAIL_TOKEN_HOURS), payload=new_email)
    notes.enqueue_email(session, new_email, "email-verify", {"email": new_email}, user.language,
                        ctx.ps.BASE_URL + "/portal/verify-email/" + token)
    session.flush()


def verify_email_change(session: Session, ctx: PortalContext, token: str) -> User:
    """Make the verified address the login; the old address is told."""
    row = consume_token(session, token, "email")
    user = session.get(User, row.user_id)
    assert user is not None
    if session.scalar(select(User.id).where(User.email == row.payload)) is not None:
        raise Problem(409, "email-taken", "this address now belongs to another account")
    old = user.email
    user.email = row.payload
    audit(session, user, user, "email-changed", old=old, new=row.payload)
    notes.notify(session, user, "email-changed", {"email": row.payload}, link="/portal/profile", email=False)
    notes.enqueue_email(session, old, "email-changed", {"email": row.payload}, user.language)
    session.flush()
    return user


# ---- JSON API tokens (OAuth2 password flow) ----------------------------------------------------------------
def issue_api_tokens(session: Session, ctx: PortalContext, user: User, family: str | None = None
                     ) -> tuple[str, str]:
    """(access token, refresh token): the access token is short-lived, the refresh token single-use."""
    family = family or pysecrets.token_hex(8)
    access = issue_token(session, user, "access", dt.timedelta(seconds=ctx.ps.ACCESS_TOKEN_S), family=family)
    refresh = issue_token(session, user, "refresh", dt.timedelta(days=ctx.ps.REFRESH_TOKEN_DAYS), family=family)
    return access, refresh


def refresh_api_tokens(session: Session, ctx: PortalContext, refresh: str) -> tuple[User, str, str]:
    """Rotate: a refresh token gives a new pair once; using it again ends its whole family (a stolen copy)."""
    if refresh and len(refresh) <= 100:
        row = session.scalar(select(AuthToken).where(AuthToken.token_hash == secrets.token_hash(refresh),
                                                     AuthToken.kind == "refresh"))
        if row is not None and row.used_at is not None and row.family:
            session.execute(update(AuthToken).where(AuthToken.family == row.family, AuthToken.used_at.is_(None))
                            .values(used_at=utcnow()))
            raise Kept(401, "bad-token", "this refresh token was already used; sign in again")
    try:
        row = consume_token(session, refresh, "refresh")
    except Problem as exc:
        raise Problem(401, "bad-token", exc.detail) from None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise Problem(401, "bad-token", "sign in again")
    access, new_refresh = issue_api_tokens(session, ctx, user, row.family)
    return user, access, new_refresh


def api_user(session: Session, access: str | None) -> User | None:
    """The user of a bearer access token (None when absent, unknown, expired or revoked)."""
    row = peek_token(session, access or "", "access")
    if row is None:
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def revoke_api_token(session: Session, access: str) -> None:
    """Sign an API client out: its access token and its refresh family end."""
    row = peek_token(session, access, "access")
    if row is not None:
        session.execute(update(AuthToken).where(AuthToken.family == row.family, AuthToken.used_at.is_(None))
                        .values(used_at=utcnow()))
