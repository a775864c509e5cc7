"""What staff do: open a driver's account and invite the driver, link devices, invite authority users."""

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from companion.app import crud
from companion.app.accounts import secrets
from companion.app.accounts.models import DEVICE_KINDS, DeviceLink, User
from companion.app.accounts.services import audit, issue_token, normalize_email
from companion.app.core.problems import Problem
from companion.app.models import Account, Handset
from companion.app.notifications import services as notes
from companion.app.portal.context import PortalContext
from companion.app.schemas import AccountCreate, HandsetUpdate


@dataclass
class Invitation:
    """A new user and the two ways in: the claim link (emailed) and customer id + temporary password."""

    user: User
    claim_url: str
    customer_id: str | None
    temporary_password: str | None


def _new_user(session: Session, ctx: PortalContext, actor: User | None, email: str, role: str, name: str,
              account_id: int | None, language: str, temporary: bool) -> Invitation:
    email = normalize_email(email)
    name = (name or "").strip()
    if len(name) > 200:
        raise Problem(422, "too-long", "the name is longer than 200 characters", field="name")
    if language not in ("en", "es"):
        raise Problem(422, "invalid", "the language is en or es", field="language")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Problem(409, "email-taken", "a user with this email exists", field="email")
    customer_id = temp = None
    if temporary:
        customer_id = secrets.new_customer_id()
        while session.scalar(select(User.id).where(User.customer_id == customer_id)) is not None:
            customer_id = secrets.new_customer_id()
        temp = secrets.new_temporary_password()
    user = User(email=email, role=role, account_id=account_id, name=name, customer_id=customer_id,
                password_hash=ctx.passwords.hash(temp) if temp else None, must_change_password=temp is not None,
                active=True, phone="", address="", vehicles=[], email_prefs={}, language=language)
    session.add(user)
    session.flush()
    token = issue_token(session, user, "claim", dt.timedelta(hours=ctx.ps.CLAIM_TOKEN_HOURS))
    url = ctx.ps.BASE_URL + "/portal/claim/" + token
    notes.enqueue_email(session, email, "claim", {}, language, url)
    audit(session, actor, user, "user-created", role=role, account_id=account_id)
    return Invitation(user, url, customer_id, temp)


def open_driver_account(session: Session, ctx: PortalContext, actor: User | None, terms: AccountCreate,
                        email: str, language: str = "en") -> tuple[Account, Invitation]:
    """Open an account (crud) and its driver user; the claim email goes to the outbox."""
    account = crud.create_account(session, terms)
    inv = _new_user(session, ctx, actor, email, "driver", terms.name, account.id, language, temporary=True)
    return account, inv


def invite_authority(session: Session, ctx: PortalContext, actor: User | None, email: str, name: str,
                     language: str = "en") -> Invitation:
    """Invite a monitoring-authority user (read-only role) with a claim link."""
    return _new_user(session, ctx, actor, email, "authority", name, None, language, temporary=False)


def invite_staff(session: Session, ctx: PortalContext, actor: User | None, email: str, name: str) -> Invitation:
    """Invite a staff user with a claim link."""
    return _new_user(session, ctx, actor, email, "staff", name, None, "en", temporary=False)


def link_device(session: Session, actor: User | None, account_id: int, kind: str = "interlock",
                handset_id: int | None = None, label: str = "") -> DeviceLink:
    """Link a device to an account; an interlock names its handset, which then follows the account."""
    account = session.get(Account, account_id)
    if account is None:
        raise Problem(404, "not-found", "no such account", field="account_id")
    if kind not in DEVICE_KINDS:
        raise Problem(422, "invalid", "unknown device kind", field="kind")
    label = (label or "").strip()
    if len(label) > 100:
        raise Problem(422, "too-long", "the label is longer than 100 characters", field="label")
    if kind == "interlock":
        h = session.get(Handset, handset_id) if handset_id else None
        if h is None:
            raise Problem(404, "not-found", "no such handset", field="handset_id")
        if session.scalar(select(DeviceLink.id).where(DeviceLink.handset_id == h.id)) is not None:
            raise Problem(409, "conflict", "this handset is linked already", field="handset_id")
        crud.update_handset(session, h.id, HandsetUpdate(account_id=account.id))
        label = label or h.serial
    elif handset_id is not None:
        raise Problem(422, "invalid", "only an interlock has a handset", field="handset_id")
    link = DeviceLink(account_id=account.id, kind=kind, handset_id=handset_id if kind == "interlock" else None,
                      label=label or kind)
    session.add(link)
    session.flush()
    audit(session, actor, None, "device-linked", account_id=account.id, kind=kind, handset_id=handset_id)
    return link


def create_staff_user(session: Session, ctx: PortalContext, email: str, password: str, name: str = "") -> User:
    """A staff user with a password (the command line's bootstrap; later staff are invited)."""
    from companion.app.accounts.services import check_password_rule

    check_password_rule(password)
    email = normalize_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Problem(409, "email-taken", "a user with this email exists", field="email")
    user = User(email=email, role="staff", name=name, password_hash=ctx.passwords.hash(password),
                must_change_password=False, active=True, phone="", address="", vehicles=[], email_prefs={},
                language="en")
    session.add(user)
    session.flush()
    audit(session, None, user, "user-created", role="staff")
    return user
