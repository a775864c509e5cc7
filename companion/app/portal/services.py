"""Driver-facing services: devices (ownership checked), dashboard, unlock codes, the reset fee and the
remote clear's progress, profile. The pages and the JSON API call these; neither holds a rule of its own."""

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from companion.app import crud
from companion.app.accounts.models import DeviceLink, User
from companion.app.accounts.services import audit
from companion.app.core import timebase
from companion.app.core.problems import Problem
from companion.app.models import Account, Command, Handset, Payment
from companion.app.notifications import services as notes
from companion.app.notifications.messages import OPTIONAL_EMAIL
from companion.app.portal import handset_words
from companion.app.portal.context import PortalContext

NOT_FOUND = "no such device on your account"


# ---- ownership ---------------------------------------------------------------------------------------------
def driver_account(session: Session, user: User) -> Account:
    """The account of a driver (others have none here: 404)."""
    account = session.get(Account, user.account_id) if user.role == "driver" and user.account_id else None
    if account is None:
        raise Problem(404, "not-found", "no account")
    return account


def devices(session: Session, user: User) -> list[DeviceLink]:
    """The driver's devices, in the order they were linked."""
    if user.role != "driver" or not user.account_id:
        return []
    return list(session.scalars(select(DeviceLink).where(DeviceLink.account_id == user.account_id)
                                .order_by(DeviceLink.id)))


def device(session: Session, user: User, link_id: int) -> DeviceLink:
    """One of the driver's devices; another account's id (or no such id) is 404, the same answer."""
    link = session.get(DeviceLink, link_id) if 0 < link_id < 2**31 else None
    if link is None or user.role != "driver" or link.account_id != user.account_id:
        raise Problem(404, "not-found", NOT_FOUND)
    return link


def _handset(session: Session, link: DeviceLink) -> Handset:
    h = session.get(Handset, link.handset_id) if link.handset_id else None
    if h is None:
        raise Problem(409, "not-an-interlock", "this device takes no unlock codes or clears")
    return h


# ---- dashboard ---------------------------------------------------------------------------------------------
@dataclass
class DeviceCard:
    """What the dashboard shows for one device."""

    id: int
    label: str
    kind: str
    serial: str = ""
    state_text: str = handset_words.UNKNOWN_STATE
    state: str = ""
    locked: bool = False
    lockout: bool = False
    cause_text: str = ""
    until: dt.datetime | None = None  # the end of a temporary lock or the recall deadline
    until_kind: str = ""  # "temp-lock" | "recall"
    service_due: dt.date | None = None
    inspection_due: dt.date | None = None
    module_expiry: dt.date | None = None
    last_sync: dt.datetime | None = None
    open_clear: int | None = None  # the reset-fee payment whose clear is on its way


@dataclass
class Dashboard:
    """The driver's dashboard."""

    name: str
    next_due: dt.date
    amount_due_cents: int
    reset_fee_cents: int
    allow_codes: bool
    unread: int
    cards: list[DeviceCard] = field(default_factory=list)


def _wall(seconds: Any) -> dt.datetime | None:
    if not isinstance(seconds, int) or seconds <= 0:
        return None
    return timebase.EPOCH + dt.timedelta(seconds=seconds)


def card(row: Any, now: dt.datetime) -> DeviceCard:
    """A device's card from one row of the dashboard's statement (reads.py): the link, its handset's desired
    state and last reported status, and the open clear."""
    c = DeviceCard(id=row.link_id, label=row.label, kind=row.kind, open_clear=row.open_clear)
    if row.handset_id is None:
        c.state_text = ""
        return c
    if row.serial is None:  # the handset row is gone
        return c
    c.serial = row.serial
    c.service_due = timebase.date_of(row.service_due_day)
    c.inspection_due = timebase.date_of(row.inspection_due_day)
    c.last_sync = row.last_sync_at
    rep = row.reported if isinstance(row.reported, dict) else None
    if rep is not None:
        c.state = str(rep.get("state", ""))
        c.state_text = handset_words.STATES.get(c.state, handset_words.UNKNOWN_STATE)
        expiry = rep.get("module_expiry")
        c.module_expiry = timebase.date_of(expiry) if isinstance(expiry, int) and expiry > 0 else None
        c.lockout = bool(rep.get("lockout"))
        cause = rep.get("lock_cause")
        temp = _wall(rep.get("temp_lock_until"))
        recall = _wall(rep.get("recall_deadline"))
        if temp is not None and temp > now:
            c.until, c.until_kind, c.locked = temp, "temp-lock", True
        elif recall is not None and not c.lockout:
            c.until, c.until_kind = recall, "recall"
        if c.lockout:  # a violation lockout outlasts key-off: it is what the driver needs to know
            c.locked = True
            c.state_text = handset_words.STATES["VIOLATION"]
            if isinstance(cause, int):
                c.cause_text = handset_words.CAUSES.get(cause, "")
        elif c.state in ("TEMP_LOCK", "SERVICE_LOCK"):
            c.locked = True
    return c


def dashboard_of(user: User, rows: Sequence[Any]) -> Dashboard:
    """The dashboard from the rows of the dashboard's statement (reads.BY_SESSION or reads.BY_USER): next
    payment from the account's schedule, one card per device. Drivers only (others: 404)."""
    if user.role != "driver" or not user.account_id or not rows or rows[0].account_row is None:
        raise Problem(404, "not-found", "no account")
    a = rows[0]
    due = max(a.installment_cents - a.credit_cents, 0)
    # the row carries the columns account_next_due reads (first_due, schedule, periods_paid)
    d = Dashboard(name=user.name or a.account_name, next_due=crud.account_next_due(cast(Account, a)),
                  amount_due_cents=due, reset_fee_cents=a.reset_fee_cents, allow_codes=a.allow_codes,
                  unread=int(a.unread))
    now = dt.datetime.now(dt.UTC)
    d.cards = [card(row, now) for row in rows if row.link_id is not None]
    return d



# ---- codes -------------------------------------------------------------------------------------------------
@dataclass
class IssuedCode:
    """An unlock code as the driver sees it."""

    device_id: int
    label: str
    action: str
    code: str
    valid_until: dt.datetime
    counter: int


def request_code(session: Session, ctx: PortalContext, user: User, link_id: int, action: str = "clear"
                 ) -> IssuedCode:
    """Issue an unlock code for one of the driver's devices, within the account's policy and limit."""
    if action not in ("clear", "service"):
        raise Problem(422, "invalid", "the action is clear or service", field="action")
    link = device(session, user, link_id)
    h = _handset(session, link)
    account = session.get(Account, h.account_id) if h.account_id else None
    if account is not None and (account.code_fee_cents or 0) > 0:  # a paid code is issued by billing, once paid
        raise Problem(402, "code-fee", "an unlock code costs %d cents on this program: buy it by card"
                      % account.code_fee_cents, code_fee_cents=account.code_fee_cents)
    row, code = crud.issue_code(session, ctx.keyring, ctx.settings, h, action)
    until = timebase.EPOCH + dt.timedelta(hours=row.issue_hour + ctx.settings.CODE_VALID_H)
    notes.notify(session, user, "code-issued", {"device": link.label, "until": until.strftime("%Y-%m-%d %H:%M UTC")},
                 link="/portal/devices/%d/code" % link.id, base_url=ctx.ps.BASE_URL)
    audit(session, user, user, "code-issued", device=link.id, counter=row.counter)
    return IssuedCode(link.id, link.label, action, "%08d" % code, until, row.counter)


# ---- reset fee and the remote clear ------------------------------------------------------------------------
@dataclass
class ClearStep:
    """One step of a remote clear's way to the handset."""

    name: str  # paid | queued | delivered | applied | refused | expired
    at: dt.datetime | None
    done: bool


@dataclass
class ClearProgress:
    """A paid reset fee and where its clear is."""

    payment_id: int
    device_id: int
    label: str
    amount_cents: int
    status: str
    steps: list[ClearStep]
    final: bool


def reset_fee_terms(session: Session, user: User, link_id: int) -> tuple[DeviceLink, Handset, int]:
    """(device, handset, fee in cents) for the reset-fee page."""
    link = device(session, user, link_id)
    h = _handset(session, link)
    return link, h, driver_account(session, user).reset_fee_cents


def clear_progress(session: Session, user: User, payment_id: int) -> ClearProgress:
    """Where the clear paid by one of the driver's payments is: paid, queued, delivered, then applied (or
    refused / expired), each with its time."""
    p = session.get(Payment, payment_id) if 0 < payment_id < 2**31 else None
    if (p is None or user.role != "driver" or p.account_id != user.account_id or p.kind != "reset_fee"
            or p.side != "payment"):
        raise Problem(404, "not-found", "no such payment on your account")
    cmd = session.get(Command, p.command_id) if p.command_id else None
    # the payment's account's link: a handset moved since to another account has that account's label there
    link = session.scalar(select(DeviceLink).where(DeviceLink.handset_id == p.handset_id,
                                                   DeviceLink.account_id == p.account_id))
    status = cmd.status if cmd else "queued"
    steps = [ClearStep("paid", p.created_at, True),
             ClearStep("queued", cmd.created_at if cmd else None, cmd is not None),
             ClearStep("delivered", cmd.delivered_at if cmd else None,
                       cmd is not None and cmd.delivered_at is not None)]
    if status in ("refused", "expired"):
        steps.append(ClearStep(status, cmd.acked_at if cmd else None, True))
    else:
        steps.append(ClearStep("applied", cmd.acked_at if cmd and status == "applied" else None,
                               status == "applied"))
    return ClearProgress(p.id, link.id if link else 0, link.label if link else "", p.amount_cents, status, steps,
                         status in ("applied", "refused", "expired"))


# ---- profile -----------------------------------------------------------------------------------------------
PHONE = re.compile(r"^\+?[0-9 ().-]{7,20}$")
PROFILE_FIELDS = ("name", "phone", "address", "vehicles", "email_prefs", "language")


def _clean_text(value: Any, name: str, limit: int, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise Problem(422, "invalid", name + " must be text", field=name)
    value = value.strip().replace("\r\n", "\n")
    if len(value) > limit:
        raise Problem(422, "too-long", "%s is longer than %d characters" % (name, limit), field=name)
    bad = [ch for ch in value if (ord(ch) < 32 and not (multiline and ch == "\n")) or ord(ch) == 127]
    if bad:
        raise Problem(422, "invalid", name + " holds control characters", field=name)
    return value


def clean_profile(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate profile changes (all or nothing): a 422 problem naming the field, or the cleaned values."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in PROFILE_FIELDS:
            raise Problem(422, "invalid", "unknown field " + name[:40], field=name[:40])
        if name == "name":
            out[name] = _clean_text(value, name, 200)
            if not out[name]:
                raise Problem(422, "invalid", "the name cannot be empty", field=name)
        elif name == "phone":
            out[name] = _clean_text(value, name, 20)
            if out[name] and not PHONE.match(out[name]):
                raise Problem(422, "invalid-phone", "a phone number has 7 to 20 digits, spaces or ()+-.",
                              field=name)
        elif name == "address":
            out[name] = _clean_text(value, name, 400, multiline=True)
        elif name == "vehicles":
            if not isinstance(value, list) or len(value) > 5:
                raise Problem(422, "invalid", "vehicles is a list of at most 5", field=name)
            out[name] = [v for v in (_clean_text(v, name, 80) for v in value) if v]
        elif name == "email_prefs":
            if not isinstance(value, dict) or any(k not in OPTIONAL_EMAIL or not isinstance(v, bool)
                                                  for k, v in value.items()):
                raise Problem(422, "invalid", "email_prefs maps a notification kind to true or false",
                              field=name)
            out[name] = dict(value)
        elif name == "language":
            if value not in ("en", "es"):
                raise Problem(422, "invalid", "the language is en or es", field=name)
            out[name] = value
    return out


def update_profile(session: Session, user: User, changes: dict[str, Any], actor: User | None = None) -> User:
    """Change profile fields; each change is audited with its old and new value."""
    cleaned = clean_profile(changes)
    for name, value in cleaned.items():
        old = getattr(user, name)
        if name == "email_prefs":
            value = {**(old or {}), **value}
        if old != value:
            setattr(user, name, value)
            audit(session, actor or user, user, "profile-change", field=name, old=old, new=value)
    session.flush()
    return user
