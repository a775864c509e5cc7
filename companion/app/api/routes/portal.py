"""The portal's JSON API (for a phone app): OAuth2 password flow with rotating refresh tokens, then the same
services the pages call. Every error is problem+json; every driver route checks ownership (404)."""

import dataclasses
import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from companion.app.accounts import services as accounts
from companion.app.accounts.models import User
from companion.app.api.deps import SessionDep, WriteSessionDep
from companion.app.core import problems
from companion.app.core.problems import Problem
from companion.app.notifications import services as notes
from companion.app.portal import dashboard_parts
from companion.app.portal import help as helpdesk
from companion.app.portal import services as portal
from companion.app.portal.context import PortalContext
from companion.app.portal.schemas import (
    Accepted,
    AutopayCardPublic,
    ClearPublic,
    CodeIssued,
    CodeRequest,
    DashboardBillingPublic,
    DashboardPublic,
    DeviceAutopayPublic,
    EmailChange,
    Me,
    NextServicePublic,
    NextVisitPublic,
    NotificationPublic,
    PasswordChange,
    ProfileUpdate,
    ProgramPublic,
    ResetRequest,
    TokenOnly,
    TokenPair,
    TokenPassword,
)

router = APIRouter(prefix="/portal", tags=["portal"], responses=problems.responses(
    401, 403, 429, r401="no valid bearer access token", r403="not allowed (e.g. the password must be changed)"))
oauth2 = OAuth2PasswordBearer(tokenUrl="portal/token", auto_error=False,
                              description="A portal user's access token (POST /api/v1/portal/token)")
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def get_portal(request: Request) -> PortalContext:
    """The app's portal context."""
    return request.app.state.portal  # type: ignore[no-any-return]


PortalDep = Annotated[PortalContext, Depends(get_portal)]
BearerDep = Annotated[str | None, Depends(oauth2)]


def _bearer_user(session: Session, token: str | None) -> User:
    user = accounts.api_user(session, token)
    if user is None:
        raise Problem(401, "unauthenticated", "a valid bearer access token is required")
    return user


def current_user(session: SessionDep, token: BearerDep) -> User:
    """The API caller (a password change pending: 403 except on the password route)."""
    user = _bearer_user(session, token)
    if user.must_change_password:
        raise Problem(403, "password-change-required", "set a new password first (POST /portal/me/password)")
    return user


def current_user_w(session: WriteSessionDep, token: BearerDep) -> User:
    """The API caller, loaded in the write session."""
    return current_user(session, token)


UserDep = Annotated[User, Depends(current_user)]
WriteUserDep = Annotated[User, Depends(current_user_w)]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _pair(ctx: PortalContext, access: str, refresh: str) -> TokenPair:
    return TokenPair(access_token=access, expires_in=ctx.ps.ACCESS_TOKEN_S, refresh_token=refresh)


def _me(user: User) -> Me:
    return Me(id=user.id, email=user.email, role=user.role, name=user.name, phone=user.phone, address=user.address,
              vehicles=list(user.vehicles or []), email_prefs=dict(user.email_prefs or {}), language=user.language,
              must_change_password=user.must_change_password)


# ---- tokens ------------------------------------------------------------------------------------------------
@router.post("/token", responses=problems.responses(
    401, 429, r401="wrong credentials or refresh token", r429="too many attempts: throttled"))
def token(request: Request, session: WriteSessionDep, ctx: PortalDep,
          grant_type: Annotated[Literal["password", "refresh_token"], Form()],
          username: Annotated[str, Form(max_length=254)] = "",
          password: Annotated[str, Form(max_length=128)] = "",
          refresh_token: Annotated[str, Form(max_length=100)] = "") -> TokenPair:
    """OAuth2 token endpoint: `grant_type=password` (username = email or customer id) or
    `grant_type=refresh_token` (single-use: a reused refresh token ends its whole family)."""
    try:
        if grant_type == "password":
            user = accounts.authenticate(session, ctx, username, password, _address(request))
            access, refresh = accounts.issue_api_tokens(session, ctx, user)
        else:
            user, access, refresh = accounts.refresh_api_tokens(session, ctx, refresh_token)
        session.commit()
    except accounts.Kept:
        session.commit()
        raise
    return _pair(ctx, access, refresh)


@router.post("/sign-out", status_code=204)
def sign_out(session: WriteSessionDep, token: BearerDep) -> None:
    """End this access token and its refresh family."""
    _bearer_user(session, token)
    accounts.revoke_api_token(session, token or "")
    session.commit()


@router.post("/claim")
def claim(session: WriteSessionDep, ctx: PortalDep, data: TokenPassword) -> TokenPair:
    """Claim an account with the emailed token and a first password; signed in."""
    user = accounts.claim(session, ctx, data.token, data.password)
    pair = _pair(ctx, *accounts.issue_api_tokens(session, ctx, user))
    session.commit()
    return pair


@router.post("/password-reset", status_code=202)
def password_reset(request: Request, session: WriteSessionDep, ctx: PortalDep, data: ResetRequest) -> Accepted:
    """Email a reset link if the address has an account (the same answer either way)."""
    accounts.request_reset(session, ctx, data.email, _address(request))
    session.commit()
    return Accepted(detail="if this address has an account, a reset link is on its way")


@router.post("/password-reset/confirm", status_code=204)
def password_reset_confirm(session: WriteSessionDep, ctx: PortalDep, data: TokenPassword) -> None:
    """Set a new password with a reset token (single-use, expiring)."""
    accounts.reset_password(session, ctx, data.token, data.password)
    session.commit()


@router.post("/email/verify")
def email_verify(session: WriteSessionDep, ctx: PortalDep, data: TokenOnly) -> Accepted:
    """Make the verified new address the login."""
    user = accounts.verify_email_change(session, ctx, data.token)
    session.commit()
    return Accepted(detail="the sign-in email is now " + user.email)


# ---- the signed-in user ------------------------------------------------------------------------------------
@router.get("/me")
def me(user: UserDep) -> Me:
    """The signed-in user's profile."""
    return _me(user)


@router.patch("/me")
def update_me(session: WriteSessionDep, user: WriteUserDep, data: ProfileUpdate) -> Me:
    """Change profile fields (all or nothing; audited)."""
    portal.update_profile(session, user, data.model_dump(exclude_unset=True, exclude_none=True))
    out = _me(user)
    session.commit()
    return out


@router.post("/me/password", status_code=204)
def change_password(session: WriteSessionDep, ctx: PortalDep, token: BearerDep, data: PasswordChange) -> None:
    """Change the password (also the way out of a temporary password); other sessions end."""
    user = _bearer_user(session, token)
    accounts.change_password(session, ctx, user, data.current, data.new)
    session.commit()


@router.post("/me/email", status_code=202)
def change_email(session: WriteSessionDep, ctx: PortalDep, user: WriteUserDep, data: EmailChange) -> Accepted:
    """Send a verification link to the new address; the login changes when it is followed."""
    accounts.request_email_change(session, ctx, user, data.email, data.password)
    session.commit()
    return Accepted(detail="a confirmation link was sent to the new address")


# ---- driver ------------------------------------------------------------------------------------------------
@router.get("/dashboard")
def dashboard(session: SessionDep, ctx: PortalDep, user: UserDep) -> DashboardPublic:
    """The driver's dashboard, all the dashboard page shows: the next payment, one card per device, automatic
    payments per device with their card, the next service and the visit booked, the program's end, unread
    notifications. One statement, as the page (404 for other roles)."""
    return _dashboard(dashboard_parts.parts(session, ctx, user))


def _dashboard(p: dashboard_parts.DashboardParts) -> DashboardPublic:
    d, b, ns = p.d, p.billing, p.ns
    assert b is not None  # a driver with an account (parts_of answered 404 otherwise) has billing's lines
    devices = [DeviceAutopayPublic(
        device_id=x.device_id, label=x.label, autopay=x.autopay, next_autopay=x.next_autopay,
        next_autopay_cents=x.next_autopay_cents, card_expiring=x.card_expiring, decline=x.decline,
        retry_at=x.retry_at, card=None if x.method is None else AutopayCardPublic(
            id=x.method.id, brand=x.method.brand, last4=x.method.last4, exp_month=x.method.exp_month,
            exp_year=x.method.exp_year)) for x in b.devices]
    billing = DashboardBillingPublic(autopay=b.autopay, next_autopay=b.next_autopay,
                                     next_autopay_cents=b.next_autopay_cents, card_expiring=b.card_expiring,
                                     decline=b.decline, retry_at=b.retry_at, devices=devices)
    visit = None
    if ns.visit is not None and ns.visit.center is not None and ns.visit.local is not None:
        a, c = ns.visit.appt, ns.visit.center
        visit = NextVisitPublic(id=a.id, kind=a.kind, start=dt.datetime.fromtimestamp(a.starts_ts or 0, dt.UTC),
                                local=ns.visit.local.isoformat(), center_id=c.id, center_name=c.name,
                                center_tz=c.tz, can_change=ns.visit.can_change)
    program = None if p.prog is None else ProgramPublic(
        status=p.prog.status, ends_on=p.prog.ends_on, ended_at=p.prog.ended_at,
        certificate_doc_id=p.prog.certificate_doc_id, report_sent_at=p.prog.report_sent_at)
    return DashboardPublic(**{**dataclasses.asdict(d), "cards": [dataclasses.asdict(c) for c in d.cards]},
                           billing=billing, next_service=NextServicePublic(due=ns.due, visit=visit), program=program)


@router.post("/devices/{device_id}/unlock-codes", status_code=201)
def unlock_code(session: WriteSessionDep, ctx: PortalDep, user: WriteUserDep, device_id: ItemId,
                data: CodeRequest) -> CodeIssued:
    """Issue an unlock code for one of the driver's devices (403 not allowed, 429 limit reached)."""
    issued = portal.request_code(session, ctx, user, device_id, data.action)
    session.commit()
    return CodeIssued(device_id=issued.device_id, action=issued.action, code=issued.code,
                      valid_until=issued.valid_until, entry=helpdesk.entry_steps(issued.code))


@router.get("/clears/{payment_id}")
def clear(session: SessionDep, user: UserDep, payment_id: ItemId) -> ClearPublic:
    """Where a paid clear is: paid, queued, delivered, applied (or refused / expired), with times."""
    return _clear(portal.clear_progress(session, user, payment_id))


def _clear(p: portal.ClearProgress) -> ClearPublic:
    return ClearPublic(**dataclasses.asdict(p))


@router.get("/notifications")
def notifications(session: SessionDep, user: UserDep) -> list[NotificationPublic]:
    """The user's notifications, newest first, in their language."""
    out = []
    for n in notes.list_for(session, user):
        title, text = notes.render(n.kind, n.params or {}, user.language)
        out.append(NotificationPublic(id=n.id, kind=n.kind, title=title, text=text, link=n.link, read=n.read,
                                      created_at=n.created_at))
    return out


@router.post("/notifications/{notification_id}/read", status_code=204)
def notification_read(session: WriteSessionDep, user: WriteUserDep, notification_id: ItemId) -> None:
    """Mark one of the user's notifications read."""
    notes.mark_read(session, user, notification_id)
    session.commit()
