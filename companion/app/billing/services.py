"""Driver-facing billing: payment methods, the overview, pay now, the reset fee by card, frequency, auto-pay,
history and its CSV, webhooks and refunds. The pages and the JSON API call these; neither holds a rule.

Charging, in two steps so that nothing is charged twice and no lock is held while the gateway answers:
1. with the account row locked, a `ChargeAttempt` is written under its idempotency key (unique) and committed;
   the same key again (a second click, a second worker) finds it and charges nothing;
2. the gateway is asked with that key (the gateway itself answers the same key with the same intent), and the
   answer is settled with the account locked again. A webhook, a retry after a timeout, or a worker that finds
   an attempt left unsettled (its process killed mid-charge) settles it the same way: the payment entry's
   reference is the intent's id, unique in the ledger, so it is posted once whatever arrives twice or late.
"""

import csv
import datetime as dt
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from companion.app import crud
from companion.app.accounts.models import DeviceLink, User
from companion.app.accounts.services import audit
from companion.app.billing import ledger
from companion.app.billing.context import BillingContext
from companion.app.billing.gateway import GatewayError, GatewayTimeout, Intent
from companion.app.billing.models import (
    BillingPlan,
    ChargeAttempt,
    DeviceAutopay,
    PaymentMethod,
    WebhookEvent,
)
from companion.app.core.problems import Problem
from companion.app.models import Account, Handset, LedgerEntry
from companion.app.notifications import services as notes
from companion.app.portal import services as portal

ACCEPTED_BRANDS = ("visa", "mastercard")
KEY = re.compile(r"^[A-Za-z0-9._:-]{8,80}$")
DOLLARS = re.compile(r"^\$?\s*([0-9]{1,7})(?:\.([0-9]{2}))?$")


def money(cents: int) -> str:
    """$12.34 (negative: -$12.34)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return "%s$%d.%02d" % (sign, cents // 100, cents % 100)


def parse_dollars(text: str) -> int:
    """Cents from "12.34", "$12", "12.30" (exactly two decimals or none); 422 otherwise."""
    m = DOLLARS.match((text or "").strip())
    if not m:
        raise Problem(422, "invalid-amount", "enter an amount in dollars and cents, like 45.00", field="amount")
    return int(m.group(1)) * 100 + int(m.group(2) or 0)


# ---- the plan and the account ------------------------------------------------------------------------------
def plan_of(session: Session, account_id: int) -> BillingPlan:
    """The account's billing plan (made with the defaults the first time)."""
    plan = session.get(BillingPlan, account_id)
    if plan is None:
        plan = BillingPlan(account_id=account_id, autopay=False, remind_days=3, reminders=True, retry_attempts=0,
                           last_decline="", updated_at=ledger.now())
        try:
            with session.begin_nested():
                session.add(plan)
                session.flush()
        except IntegrityError:
            plan = session.get(BillingPlan, account_id)
            assert plan is not None
    return plan


def device_plans(session: Session, account_id: int) -> list[DeviceAutopay]:
    """Auto-pay of each of the account's handsets (made, off, the first time), in handset order."""
    have = {d.handset_id: d for d in session.scalars(select(DeviceAutopay).where(
        DeviceAutopay.account_id == account_id))}
    out = []
    for hid in session.scalars(select(Handset.id).where(Handset.account_id == account_id).order_by(Handset.id)):
        d = have.get(hid)
        if d is None:
            d = DeviceAutopay(handset_id=hid, account_id=account_id, autopay=False, retry_attempts=0,
                              last_decline="", updated_at=ledger.now())
            try:
                with session.begin_nested():
                    session.add(d)
                    session.flush()
            except IntegrityError:
                found = session.get(DeviceAutopay, hid)
                assert found is not None
                d = found
        if d.account_id != account_id:  # the handset moved to this account: its old auto-pay does not follow
            d.account_id, d.autopay, d.method_id = account_id, False, None
            d.retry_period, d.retry_attempts, d.retry_at, d.last_decline = None, 0, None, ""
        out.append(d)
    return out


def _locked_account(session: Session, user: User) -> Account:
    account = portal.driver_account(session, user)
    locked = crud.lock_account(session, account.id)
    assert locked is not None
    return locked


# ---- payment methods ---------------------------------------------------------------------------------------
def methods(session: Session, account_id: int) -> list[PaymentMethod]:
    """The account's cards, primary first."""
    return list(session.scalars(select(PaymentMethod).where(PaymentMethod.account_id == account_id,
                                                            PaymentMethod.deleted.is_(False))
                                .order_by(PaymentMethod.primary.desc(), PaymentMethod.id)))


def method(session: Session, account_id: int, method_id: int) -> PaymentMethod:
    """One of the account's cards (another account's: 404)."""
    m = session.get(PaymentMethod, method_id) if 0 < method_id < 2**31 else None
    if m is None or m.account_id != account_id or m.deleted:
        raise Problem(404, "not-found", "no such card on your account", field="method_id")
    return m


def expired(m: PaymentMethod, day: dt.date) -> bool:
    """The card's expiry month is over."""
    return (m.exp_year, m.exp_month) < (day.year, day.month)


def expires_before(m: PaymentMethod, day: dt.date) -> bool:
    """The card will have expired by `day`."""
    return (m.exp_year, m.exp_month) < (day.year, day.month)


def add_method(session: Session, b: BillingContext, user: User, token: str) -> PaymentMethod:
    """Save the card behind a gateway token: Visa and Mastercard only, not expired. The first card is primary."""
    account = _locked_account(session, user)
    if not isinstance(token, str) or not 8 <= len(token) <= 300:
        raise Problem(422, "invalid-token", "the card token is missing", field="token")
    try:
        card = b.gateway.card(token)
    except GatewayError as exc:
        raise Problem(422, "invalid-token", "the card token is not valid", field="token") from exc
    if session.scalar(select(PaymentMethod.id).where(PaymentMethod.token == token,
                                                     PaymentMethod.account_id != account.id).limit(1)) is not None:
        # a token belongs to the account that saved it (it travels in a URL: logs, history, a shared screen)
        raise Problem(422, "invalid-token", "the card token is not valid", field="token")
    if card.brand not in ACCEPTED_BRANDS:
        raise Problem(422, "card-brand", "We accept Visa and Mastercard only.", field="token")
    if (card.exp_year, card.exp_month) < (ledger.today().year, ledger.today().month):
        raise Problem(422, "expired-card", "This card has expired.", field="token")
    if session.scalar(select(PaymentMethod.id).where(PaymentMethod.account_id == account.id,
                                                     PaymentMethod.token == token,
                                                     PaymentMethod.deleted.is_(False))) is not None:
        raise Problem(409, "duplicate", "this card is saved already", field="token")
    first = not methods(session, account.id)
    m = PaymentMethod(account_id=account.id, gateway=b.gateway.name, token=token, brand=card.brand,
                      last4=card.last4, exp_month=card.exp_month, exp_year=card.exp_year, primary=first,
                      deleted=False)
    session.add(m)
    session.flush()
    audit(session, user, user, "card-added", method=m.id, brand=m.brand, last4=m.last4)
    return m


def primary_warning(session: Session, b: BillingContext, account: Account) -> str:
    """The warning shown when the primary card changes close to a due date ("" when none)."""
    due = crud.account_next_due(account)
    days = (due - ledger.today()).days
    if 0 <= days < b.bs.PRIMARY_WARN_DAYS:
        return ("Your next payment is due on %s. A change of card this close to the due date may miss it: "
                "the payment may still be taken from the previous card." % due.isoformat())
    return ""


def set_primary(session: Session, b: BillingContext, user: User, method_id: int) -> tuple[PaymentMethod, str]:
    """Make a card the primary one (auto-pay then uses it); returns it and the warning, if any."""
    account = _locked_account(session, user)
    m = method(session, account.id, method_id)
    for other in methods(session, account.id):
        other.primary = other.id == m.id
    for d in device_plans(session, account.id):
        d.method_id = m.id
    session.flush()
    audit(session, user, user, "card-primary", method=m.id)
    return m, primary_warning(session, b, account)


def delete_method(session: Session, user: User, method_id: int) -> None:
    """Remove a card. Another card becomes primary; with none left, auto-pay stops."""
    account = _locked_account(session, user)
    m = method(session, account.id, method_id)
    m.deleted = True
    m.primary = False
    rest = methods(session, account.id)
    if rest and not any(x.primary for x in rest):
        rest[0].primary = True
    primary = next((x.id for x in rest if x.primary), None)
    for d in device_plans(session, account.id):
        if d.method_id == m.id or primary is None:
            d.method_id = primary
            d.autopay = d.autopay and primary is not None
    session.flush()
    audit(session, user, user, "card-deleted", method=m.id)


# ---- the overview ------------------------------------------------------------------------------------------
@dataclass
class Overview:
    """What the billing page shows."""

    position: ledger.Position
    schedule: str
    installment_cents: int
    autopay: bool
    autopay_method: PaymentMethod | None
    methods: list[PaymentMethod]
    last_decline: str
    retry_at: dt.datetime | None
    expiring: list[PaymentMethod] = field(default_factory=list)
    remind_days: int = 3
    reminders: bool = True
    devices: list["DeviceBilling"] = field(default_factory=list)


@dataclass
class DeviceBilling:
    """Auto-pay of one device as the pages show it: on or off, its card, its next automatic payment (what is
    due on it by the account's next due date), and its last decline."""

    device_id: int  # the portal's device (account_devices.id)
    handset_id: int
    label: str
    autopay: bool
    method: PaymentMethod | None
    next_autopay: dt.date | None
    next_autopay_cents: int
    decline: str
    retry_at: dt.datetime | None
    card_expiring: bool


def devices_billing(session: Session, account: Account, due: dt.date, amount_cents: int,
                    cards: dict[int, PaymentMethod] | None = None) -> list[DeviceBilling]:
    """Each of the account's handsets with its auto-pay (amount_cents: what the next due date asks, shown on
    the primary handset, which the account's installments are booked to; the others show what is booked to
    them and due by then)."""
    rows = session.execute(select(DeviceLink, DeviceAutopay).join(
        DeviceAutopay, DeviceAutopay.handset_id == DeviceLink.handset_id).where(
        DeviceLink.account_id == account.id, DeviceAutopay.account_id == account.id)
        .order_by(DeviceLink.handset_id)).all()
    if not rows:
        return []
    primary = ledger.primary_handset(session, account.id)
    cards = cards if cards is not None else {m.id: m for m in methods(session, account.id)}
    out = []
    for link, d in rows:
        on = bool(d.autopay and d.method_id)
        card = cards.get(d.method_id) if d.method_id else None
        cents = amount_cents if d.handset_id == primary else 0
        out.append(DeviceBilling(link.id, d.handset_id, link.label, on, card, due if on else None, cents,
                                 d.last_decline, d.retry_at, bool(on and card and expires_before(card, due))))
    return out


def overview(session: Session, b: BillingContext, user: User, upcoming: int = 6, accrued: bool = False) -> Overview:
    """Balance, overdue, next due date and amount, the schedule still to come, cards, auto-pay (accrued: with
    the installments fallen due and not posted yet counted, as pay now will count them)."""
    account = portal.driver_account(session, user)
    pos = ledger.position_accrued(session, account, upcoming) if accrued else \
        ledger.position(session, account, upcoming=upcoming)
    plan = session.get(BillingPlan, account.id)
    cards = methods(session, account.id)
    devs = devices_billing(session, account, pos.next_due, pos.next_amount_cents, {m.id: m for m in cards})
    on = [d for d in devs if d.autopay]
    chosen = next((d.method for d in on if d.method is not None), None)
    chosen = chosen or next((m for m in cards if m.primary), None)
    expiring = [m for m in cards if expires_before(m, pos.next_due)]
    declined = next((d for d in devs if d.decline), None)
    return Overview(pos, account.schedule, account.installment_cents, bool(on), chosen, cards,
                    declined.decline if declined else "", declined.retry_at if declined else None, expiring,
                    plan.remind_days if plan else 3, plan.reminders if plan else True, devs)


class _RowCard:
    """A device's auto-pay card as the dashboard's statement found it (what may be shown: brand, last four,
    expiry), read like a PaymentMethod; nothing changes through it."""

    __slots__ = ("id", "brand", "last4", "exp_month", "exp_year")

    def __init__(self, row: Any):
        self.id: int = row.autopay_method
        self.brand: str = row.card_brand
        self.last4: str = row.card_last4
        self.exp_month: int = row.card_exp_month
        self.exp_year: int = row.card_exp_year


@dataclass
class DashboardBilling:
    """What the dashboard adds about billing: the next automatic payment and a decline notice."""

    autopay: bool
    next_autopay: dt.date | None
    next_autopay_cents: int
    decline: str
    retry_at: dt.datetime | None
    card_expiring: bool
    devices: list[DeviceBilling] = field(default_factory=list)


def dashboard_billing_of(rows: Sequence[Any]) -> DashboardBilling | None:
    """The dashboard's billing lines from the rows of the dashboard's statement (portal/reads.py: one row per
    device with the account, the device's auto-pay and its card's brand, last four and expiry, and the account's
    first handset); None for a user without an account. The same rules as `devices_billing` and `overview`."""
    first = rows[0]
    if first.account_row is None:
        return None
    # the ledger's cached derivation (the dashboard is the most visited page: no ledger scan here)
    due = crud.account_next_due(first)
    amount = max(first.installment_cents - first.credit_cents, 0)
    devs = []
    for r in rows:  # one row per device; a device without an auto-pay row has nothing to show
        if r.link_id is None or r.autopay_row is None:
            continue
        on = bool(r.autopay and r.autopay_method)
        card = cast(PaymentMethod, _RowCard(r)) if r.autopay_method and r.card_exp_year is not None else None
        devs.append(DeviceBilling(r.link_id, r.handset_id, r.label, on, card, due if on else None,
                                  amount if r.handset_id == r.primary_handset else 0, r.last_decline or "",
                                  r.retry_at, bool(on and card and expires_before(card, due))))
    on_devs = [d for d in devs if d.autopay]
    declined = next((d for d in devs if d.decline), None)
    return DashboardBilling(bool(on_devs), due if on_devs else None, sum(d.next_autopay_cents for d in on_devs),
                            declined.decline if declined else "", declined.retry_at if declined else None,
                            any(d.card_expiring for d in devs), devs)


# ---- charging ----------------------------------------------------------------------------------------------
def _attempt(session: Session, account: Account, key: str, purpose: str, amount: int, m: PaymentMethod,
             **extra: Any) -> tuple[ChargeAttempt, bool]:
    """The attempt under key: (existing, False), or (new, True) written and flushed."""
    def same(old: ChargeAttempt) -> tuple[ChargeAttempt, bool]:
        if old.account_id != account.id or old.amount_cents != amount or old.purpose != purpose:
            raise Problem(409, "idempotency-conflict", "this idempotency key was used for another payment")
        return old, False

    a = ChargeAttempt(account_id=account.id, idempotency_key=key, purpose=purpose, amount_cents=amount,
                      method_id=m.id, status="created", decline_code="", next_action_url="", **extra)
    try:
        with session.begin_nested():
            session.add(a)
            session.flush()
    except IntegrityError:
        found = session.scalar(select(ChargeAttempt).where(ChargeAttempt.idempotency_key == key))
        if found is None:
            raise
        return same(found)
    return a, True


def _ask_gateway(b: BillingContext, a: ChargeAttempt, token: str) -> Intent | None:
    """Charge the attempt's card with its idempotency key; None when the gateway did not answer. A refusal of
    the request itself (not a decline) is a failed intent under the gateway's code, so the attempt ends."""
    try:
        return b.gateway.create_intent(token, a.amount_cents, a.idempotency_key,
                                       {"account_id": a.account_id, "attempt": a.idempotency_key,
                                        "purpose": a.purpose})
    except GatewayTimeout:
        return None
    except GatewayError as exc:
        return Intent("", a.amount_cents, "failed", exc.code[:40])


def charge(session: Session, b: BillingContext, account_id: int, key: str, purpose: str, amount: int,
           m: PaymentMethod, **extra: Any) -> ChargeAttempt:
    """Charge once under key (see the module's two steps). The caller holds the account row locked; this
    commits (the attempt first, then its outcome)."""
    account = session.get(Account, account_id)
    assert account is not None
    a, new = _attempt(session, account, key, purpose, amount, m, **extra)
    if not new and a.status not in ("created", "unknown"):
        return a
    token = m.token
    session.commit()
    intent = _ask_gateway(b, a, token)
    account = crud.lock_account(session, account_id)
    assert account is not None
    a = session.get(ChargeAttempt, a.id, populate_existing=True) or a
    if intent is None:
        if a.status == "created":
            a.status = "unknown"
            a.updated_at = ledger.now()
    else:
        settle(session, b, a, intent)
    session.commit()
    return a


def settle(session: Session, b: BillingContext, a: ChargeAttempt, intent: Intent) -> ChargeAttempt:
    """Apply what the gateway says of an attempt's intent (idempotent; any order, any number of times). The
    caller holds the account row locked."""
    a.intent_id = a.intent_id or intent.id or None  # "" when the gateway refused the request: no intent
    a.updated_at = ledger.now()
    account = session.get(Account, a.account_id)
    assert account is not None
    if intent.status == "requires_action":
        if a.status in ("created", "unknown"):
            a.status, a.next_action_url = "requires_action", intent.next_action_url
    elif intent.status == "failed":
        if a.status not in ("succeeded", "refunded"):
            first = a.status != "failed"
            a.status, a.decline_code = "failed", intent.decline_code
            if first:
                _declined(session, b, account, a)
    elif intent.status == "succeeded":
        if a.entry_id is None and a.status != "refunded":
            _succeeded(session, b, account, a, intent)
        if a.entry_id is None:  # refunded whole, never posted (a reset fee for a lockout paid or over)
            session.flush()
            return a
        refunded = -int(session.scalar(select(ledger_sum()).where(
            LedgerEntry.account_id == account.id, LedgerEntry.intent_id == intent.id,
            LedgerEntry.method == "refund")) or 0) if intent.refunded_cents else 0
        if intent.refunded_cents > refunded:
            paid = session.scalar(select(LedgerEntry).where(LedgerEntry.account_id == account.id,
                                                            LedgerEntry.reference == "intent:" + intent.id))
            ledger.post_payment(session, account, "refund", -(intent.refunded_cents - refunded),
                                "refund:%s:%d" % (intent.id, intent.refunded_cents),
                                kind=paid.kind if paid else "installment", intent_id=intent.id, note="refund",
                                charge_id=paid.charge_id if paid else None,
                                handset_id=paid.handset_id if paid else None)
            if intent.refunded_cents >= intent.amount_cents:
                a.status = "refunded"
            ledger.recompute(session, account)
    session.flush()
    return a


def ledger_sum() -> Any:
    """SUM(amount_cents) of ledger entries."""
    from sqlalchemy import func

    return func.coalesce(func.sum(LedgerEntry.amount_cents), 0)


def _drivers(session: Session, account_id: int) -> list[User]:
    return list(session.scalars(select(User).where(User.account_id == account_id, User.role == "driver",
                                                   User.active.is_(True))))


def _refund_whole(b: BillingContext, a: ChargeAttempt, intent: Intent) -> None:
    try:
        b.gateway.refund(intent.id, intent.amount_cents, "dup:" + a.idempotency_key)
    except GatewayError:  # left unsettled: the refund is asked again (same key) when it is next settled
        return
    a.status = "refunded"


def _code_paid(session: Session, b: BillingContext, account: Account, a: ChargeAttempt, intent: Intent
               ) -> LedgerEntry | None:
    """A code fee went through: issue the code (once: the attempt keeps it), and book the fee as a charge on
    the device with the card payment that pays it. When the code can no longer be issued (the limit was
    reached or codes were turned off meanwhile, the handset left the account), the money goes back and nothing
    is booked."""
    from companion.app.core import timebase

    h = session.get(Handset, a.handset_id) if a.handset_id else None
    try:
        if h is None or h.account_id != account.id:
            raise Problem(409, "not-an-interlock", "the handset is no longer on the account")
        with session.begin_nested():
            row, _code = crud.issue_code(session, b.ctx.keyring, b.ctx.settings, h, a.code_action or "clear")
    except Problem as exc:
        a.decline_code = exc.kind[:40]
        _refund_whole(b, a, intent)
        for user in _drivers(session, account.id):
            notes.notify(session, user, "payment-declined", {"amount": money(a.amount_cents),
                                                             "reason": "The code could not be issued: %s. The "
                                                             "payment was refunded." % exc.detail, "retry": ""},
                         link="/portal/billing/payments/%d" % a.id, base_url=b.ctx.ps.BASE_URL,
                         dedupe="code-refund:%d" % a.id)
        return None
    charge = ledger.post_charge(session, account, "code_fee", a.amount_cents, "codefee:%d" % a.id,
                                handset_id=h.id, note="unlock code")
    entry = ledger.post_payment(session, account, "card", a.amount_cents, "intent:" + intent.id, kind="code_fee",
                                handset_id=h.id, charge_id=charge.id, intent_id=intent.id, note="unlock code fee")
    a.code_id = row.id
    link = session.scalar(select(DeviceLink).where(DeviceLink.handset_id == h.id,
                                                   DeviceLink.account_id == account.id))
    for user in _drivers(session, account.id):
        until = timebase.EPOCH + dt.timedelta(hours=row.issue_hour + b.ctx.settings.CODE_VALID_H)
        notes.notify(session, user, "code-issued", {"device": link.label if link else str(h.id),
                                                    "until": until.strftime("%Y-%m-%d %H:%M UTC")},
                     link="/portal/billing/payments/%d" % a.id, base_url=b.ctx.ps.BASE_URL,
                     dedupe="code-paid:%d" % a.id)
    return entry


def _succeeded(session: Session, b: BillingContext, account: Account, a: ChargeAttempt, intent: Intent) -> None:
    ref = "intent:" + intent.id
    if a.purpose == "code_fee":
        if a.status == "refunded":
            return
        booked = _code_paid(session, b, account, a, intent)
        if booked is None:
            return
        entry = booked
    elif a.purpose == "reset_fee":
        paid = session.scalar(select(LedgerEntry.id).where(
            LedgerEntry.account_id == account.id, LedgerEntry.side == "payment", LedgerEntry.kind == "reset_fee",
            LedgerEntry.handset_id == a.handset_id, LedgerEntry.lockout_id == a.lockout_id,
            LedgerEntry.reference != ref))
        h = session.get(Handset, a.handset_id) if a.handset_id else None
        if paid is not None or h is None or h.lockout_id != a.lockout_id or h.account_id != account.id:
            # this lockout's fee is paid already (or the lockout is over, or the handset is no longer the
            # account's): one clear per lockout, money back
            a.status = "refunded"
            b.gateway.refund(intent.id, intent.amount_cents, "dup:" + a.idempotency_key)
            return
        entry, _cmd = crud.record_payment(session, b.ctx.settings, account, "reset_fee", a.amount_cents, ref,
                                          a.handset_id, a.lockout_id, method="card", intent_id=intent.id)
        link = session.scalar(select(DeviceLink).where(DeviceLink.handset_id == h.id,
                                                       DeviceLink.account_id == account.id))
        for user in _drivers(session, account.id):
            notes.notify(session, user, "fee-paid", {"device": link.label if link else str(h.id)},
                         link="/portal/clears/%d" % entry.id, base_url=b.ctx.ps.BASE_URL,
                         dedupe="fee-paid:%d" % entry.id)
    else:
        found = session.scalar(select(LedgerEntry).where(LedgerEntry.account_id == account.id,
                                                         LedgerEntry.reference == ref))
        if found is not None:
            entry = found
        else:
            entry = ledger.post_payment(session, account, "card", a.amount_cents, ref, intent_id=intent.id,
                                        handset_id=a.handset_id or ledger.primary_handset(session, account.id),
                                        note="automatic payment" if a.purpose == "installment" else "payment")
            pos = ledger.recompute(session, account)
            entry.due_after = pos.next_due
    a.entry_id = entry.id
    a.status = "succeeded"
    if a.purpose in ("installment", "pay_now"):
        reset_retries(session, account.id, a.handset_id if a.purpose == "installment" else None)
    for user in _drivers(session, account.id):
        notes.notify(session, user, "receipt", {"amount": money(a.amount_cents), "date": ledger.today().isoformat(),
                                                "reference": intent.id},
                     link="/portal/billing/history", base_url=b.ctx.ps.BASE_URL, dedupe="receipt:" + intent.id)


def reset_retries(session: Session, account_id: int, handset_id: int | None) -> None:
    """A payment went through: the auto-pay retry state of one device (None: every device of the account) ends."""
    from sqlalchemy import update

    q = update(DeviceAutopay).where(DeviceAutopay.account_id == account_id)
    if handset_id is not None:
        q = q.where(DeviceAutopay.handset_id == handset_id)
    session.execute(q.values(retry_period=None, retry_attempts=0, retry_at=None, last_decline="")
                    .execution_options(synchronize_session="fetch"))


def _declined(session: Session, b: BillingContext, account: Account, a: ChargeAttempt) -> None:
    words = DECLINES.get(a.decline_code, DECLINES["generic_decline"])
    found = session.get(DeviceAutopay, a.handset_id) if a.handset_id else None
    plan = found if found is not None and found.account_id == account.id else None
    retry = ""
    if a.purpose == "installment" and plan is not None:
        plan.retry_attempts += 1
        plan.retry_period = a.period
        days = b.bs.RETRY_DAYS
        if plan.retry_attempts <= len(days):
            plan.retry_at = ledger.now() + dt.timedelta(days=days[plan.retry_attempts - 1])
            retry = "We will try again on %s." % plan.retry_at.date().isoformat()
        else:
            plan.retry_at = None
            retry = "We will not try again: please pay now or change your card."
    if plan is not None:
        plan.last_decline = (words + " " + retry).strip()[:200]
    for user in _drivers(session, account.id):
        notes.notify(session, user, "payment-declined", {"amount": money(a.amount_cents), "reason": words,
                                                         "retry": retry},
                     link="/portal/billing", base_url=b.ctx.ps.BASE_URL, dedupe="declined:" + a.idempotency_key)


DECLINES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card was declined for insufficient funds.",
    "expired_card": "Your card has expired.",
    "authentication_failed": "Your bank did not approve the payment.",
}


def _key(key: str) -> str:
    if not isinstance(key, str) or not KEY.match(key):
        raise Problem(422, "invalid", "the idempotency key is missing or malformed", field="idempotency_key")
    return key


IN_FLIGHT = ("created", "unknown")  # an attempt whose charge may be under way at the gateway right now


def in_flight(session: Session, account_id: int, purposes: tuple[str, ...] = ("installment", "pay_now"),
              but: str | None = None) -> ChargeAttempt | None:
    """An attempt of the account paying its balance (auto-pay or pay now) that is being charged now (written,
    no outcome yet), other than the one under key `but`. The caller holds the account row locked: an attempt
    is written and committed under that lock, so whoever takes the lock next sees it."""
    q = select(ChargeAttempt).where(ChargeAttempt.account_id == account_id, ChargeAttempt.purpose.in_(purposes),
                                    ChargeAttempt.status.in_(IN_FLIGHT))
    if but is not None:
        q = q.where(ChargeAttempt.idempotency_key != but)
    return session.scalars(q.order_by(ChargeAttempt.id).limit(1)).first()


def pay_now(session: Session, b: BillingContext, user: User, choice: str, amount_cents: int | None,
            method_id: int, key: str, shown_cents: int | None = None, shown_ahead: bool = False) -> ChargeAttempt:
    """Pay the overdue balance, the current balance, or another amount (more than 0, at most the current
    balance or, when nothing is due yet, the next payment), with one of the account's cards, once per
    idempotency key. Commits.

    The overdue and current balances are what the form showed (`shown_cents`, required for those choices, and
    for the current balance whether it was the next installment paid ahead, nothing owed: `shown_ahead`):
    when the balance has moved since (another tab paid, auto-pay collected, an installment fell due), nothing
    is charged and a 409 `balance-moved` says so (the same $90 is not the same balance once it is the next
    installment's). While another payment of the balance is being charged
    (auto-pay or another pay now, written and not settled), a 409 `payment-in-progress`: the two cannot both
    take the same amount."""
    key = _key(key)
    account = _locked_account(session, user)
    full = "paynow:%d:%s" % (account.id, key)
    seen = session.scalar(select(ChargeAttempt).where(ChargeAttempt.idempotency_key == full))
    if seen is not None and seen.account_id == account.id:  # the same form again: the same payment
        card = session.get(PaymentMethod, seen.method_id) if seen.method_id else None
        if card is None or seen.status not in IN_FLIGHT:
            session.commit()
            return seen
        return charge(session, b, account.id, full, "pay_now", seen.amount_cents, card)
    ledger.accrue(session, account)
    pos = ledger.position(session, account)
    # nothing owed yet: the next installment may be paid ahead, unless the program has ended (none is coming)
    ahead = 0 if ledger.ended(session, account.id) else pos.next_amount_cents
    owed = pos.unpaid_cents if pos.unpaid_cents > 0 else ahead
    if choice == "overdue":
        amount = pos.overdue_cents
        if amount <= 0:
            raise Problem(422, "nothing-overdue", "nothing is overdue", field="choice")
    elif choice == "current":
        amount = owed
    elif choice == "other":
        amount = ledger.check_amount(amount_cents)
        if amount > owed:
            raise Problem(422, "invalid-amount", "the amount is more than the balance of %s" % money(owed),
                          field="amount")
    else:
        raise Problem(422, "invalid", "choose the overdue balance, the current balance or another amount",
                      field="choice")
    if amount <= 0:
        raise Problem(422, "invalid-amount", "nothing is due", field="choice")
    if choice != "other":
        if isinstance(shown_cents, bool) or not isinstance(shown_cents, int):
            raise Problem(422, "invalid", "the balance this payment is for is missing: reload the page",
                          field="shown_cents")
        if shown_cents != amount or (choice == "current" and bool(shown_ahead) != (pos.unpaid_cents <= 0)):
            raise Problem(409, "balance-moved", "the %s balance is %s now, not the %s shown: nothing was charged"
                          % (choice, money(amount), money(shown_cents)), field="choice", amount_cents=amount)
    busy = in_flight(session, account.id, but=full)
    if busy is not None:
        raise Problem(409, "payment-in-progress", "a payment of %s is being processed: look at your balance again "
                      "in a minute" % money(busy.amount_cents), attempt_id=busy.id)
    m = method(session, account.id, method_id)
    if expired(m, ledger.today()):
        raise Problem(422, "expired-card", "This card has expired: choose another.", field="method_id")
    a = charge(session, b, account.id, full, "pay_now", amount, m)
    audit(session, user, user, "pay-now", attempt=a.id, amount_cents=amount, status=a.status)
    session.commit()
    return a


def pay_reset_fee(session: Session, b: BillingContext, user: User, link_id: int, method_id: int, key: str
                  ) -> ChargeAttempt:
    """Pay a device's violation reset fee by card: a success queues the remote clear (once per lockout).
    Commits."""
    key = _key(key)
    link, h, fee = portal.reset_fee_terms(session, user, link_id)
    if fee <= 0:
        raise Problem(422, "invalid-amount", "this program has no reset fee to pay by card: call the service center")
    account = _locked_account(session, user)
    h = session.get(Handset, h.id, populate_existing=True) or h
    if not h.lockout_id:
        raise Problem(409, "no-lockout", "the handset has not reported a violation lockout")
    full = "resetfee:%d:%d:%s" % (h.id, h.lockout_id, key)
    seen = session.scalar(select(ChargeAttempt).where(ChargeAttempt.idempotency_key == full))
    if seen is not None and seen.account_id == account.id:  # the same form again: the same payment
        session.commit()
        return seen
    paid = session.scalar(select(LedgerEntry.id).where(
        LedgerEntry.account_id == account.id, LedgerEntry.side == "payment", LedgerEntry.kind == "reset_fee",
        LedgerEntry.handset_id == h.id, LedgerEntry.lockout_id == h.lockout_id))
    if paid is not None:
        raise Problem(409, "fee-paid", "the reset fee for this lockout is paid", payment_id=paid)
    m = method(session, account.id, method_id)
    a = charge(session, b, account.id, full, "reset_fee", fee, m,
               handset_id=h.id, lockout_id=h.lockout_id)
    audit(session, user, user, "reset-fee-card", device=link.id, attempt=a.id, status=a.status)
    session.commit()
    return a


def buy_code(session: Session, b: BillingContext, user: User, link_id: int, action: str, method_id: int,
             key: str) -> ChargeAttempt:
    """Buy an unlock code for one of the driver's devices at the account's code fee: the card is charged
    once per idempotency key, and the code is issued when the payment succeeds (at once, or when the bank's
    second step or the webhook says so); the fee is then booked on the device with its payment. The policy and
    the limit are checked before any charge. Commits."""
    key = _key(key)
    if action not in ("clear", "service"):
        raise Problem(422, "invalid", "the action is clear or service", field="action")
    link = portal.device(session, user, link_id)
    if not link.handset_id:
        raise Problem(409, "not-an-interlock", "this device takes no unlock codes or clears")
    account = _locked_account(session, user)
    h = session.get(Handset, link.handset_id)
    if h is None or h.account_id != account.id:
        raise Problem(409, "not-an-interlock", "this device takes no unlock codes or clears")
    full = "codefee:%d:%s" % (h.id, key)
    seen = session.scalar(select(ChargeAttempt).where(ChargeAttempt.idempotency_key == full))
    if seen is not None and seen.account_id == account.id:  # the same form again: the same payment
        session.commit()
        return seen
    fee = account.code_fee_cents or 0
    if fee <= 0:
        raise Problem(422, "code-free", "unlock codes are free on your program: get one on the code page")
    if not account.allow_codes or account.codes_per_period <= 0:
        raise Problem(403, "codes-not-allowed", "this account's policy does not allow unlock codes")
    if crud.codes_left(session, account, h) <= 0:
        raise Problem(429, "code-limit", "the codes for this service period are used up",
                      codes_per_period=account.codes_per_period)
    m = method(session, account.id, method_id)
    if expired(m, ledger.today()):
        raise Problem(422, "expired-card", "This card has expired: choose another.", field="method_id")
    a = charge(session, b, account.id, full, "code_fee", fee, m, handset_id=h.id, code_action=action)
    audit(session, user, user, "code-fee-card", device=link.id, attempt=a.id, status=a.status)
    session.commit()
    return a


@dataclass
class PaidCode:
    """The code a paid code fee issued."""

    label: str
    code: str
    valid_until: dt.datetime


def paid_code(session: Session, b: BillingContext, a: ChargeAttempt) -> PaidCode | None:
    """The unlock code a succeeded code fee issued (recomputed from its parameters), else None."""
    from companion.app.core import timebase
    from companion.app.models import UnlockCode

    if a.purpose != "code_fee" or a.status != "succeeded" or not a.code_id:
        return None
    row = session.get(UnlockCode, a.code_id)
    h = session.get(Handset, row.handset_id) if row else None
    if row is None or h is None:
        return None
    pk = b.ctx.keyring.purpose(h.id, h.key_id, h.secret_nonce, h.secret_ct)
    code = crud.code_for(pk.unlock, h.id, row.action, row.counter, row.issue_hour)
    link = session.scalar(select(DeviceLink).where(DeviceLink.handset_id == h.id,
                                                   DeviceLink.account_id == a.account_id))
    until = timebase.EPOCH + dt.timedelta(hours=row.issue_hour + b.ctx.settings.CODE_VALID_H)
    return PaidCode(link.label if link else str(h.id), "%08d" % code, until)


def attempt_of(session: Session, b: BillingContext, user: User, attempt_id: int, refresh: bool = True
               ) -> ChargeAttempt:
    """One of the driver's payment attempts; with refresh, an unsettled one is asked again (safe: same key)."""
    a = session.get(ChargeAttempt, attempt_id) if 0 < attempt_id < 2**31 else None
    if a is None or user.role != "driver" or a.account_id != user.account_id:
        raise Problem(404, "not-found", "no such payment on your account")
    if refresh and a.status in ("created", "unknown", "requires_action"):
        reconcile(session, b, a)
        session.commit()
    return a


def reconcile(session: Session, b: BillingContext, a: ChargeAttempt) -> ChargeAttempt:
    """Settle an attempt that has no outcome yet: ask the gateway about its intent (or ask again with its
    idempotency key, which never charges twice)."""
    m = session.get(PaymentMethod, a.method_id) if a.method_id else None
    try:
        if a.intent_id:
            intent: Intent | None = b.gateway.retrieve(a.intent_id)
        elif m is not None:
            intent = _ask_gateway(b, a, m.token)
        else:
            return a
    except GatewayError:
        return a
    crud.lock_account(session, a.account_id)
    if intent is not None:
        settle(session, b, a, intent)
    return a


@dataclass
class HandsetDue:
    """Where a handset is with the payment due date a payment gave it."""

    label: str
    due: dt.date | None  # the due date the companion gives the handset now
    reported: dt.date | None  # the one the handset last reported
    synced_at: dt.datetime | None  # that report's time
    done: bool  # the handset has the new date (its PAYMENT DUE is gone if the date is in the future)


def handsets_due(session: Session, a: ChargeAttempt) -> list[HandsetDue]:
    """For a successful payment, each of the account's handsets: has it taken the due date the payment moved
    (a PAYMENT DUE on it clears at that sync), and when."""
    from companion.app.core import timebase

    if a.status != "succeeded" or a.purpose == "reset_fee":
        return []
    entry = session.get(LedgerEntry, a.entry_id) if a.entry_id else None
    out = []
    for link, h in session.execute(select(DeviceLink, Handset).join(Handset, Handset.id == DeviceLink.handset_id)
                                   .where(DeviceLink.account_id == a.account_id).order_by(DeviceLink.id)).all():
        rep = h.reported if isinstance(h.reported, dict) else {}
        day = rep.get("payment_due")
        reported = timebase.date_of(day) if isinstance(day, int) and day > 0 else None
        after = entry is None or (h.last_sync_at is not None and h.last_sync_at >= entry.created_at)
        done = bool(after and isinstance(day, int) and day == h.payment_due_day)
        out.append(HandsetDue(link.label, timebase.date_of(h.payment_due_day) if h.payment_due_day else None,
                              reported, h.last_sync_at if done else None, done))
    return out


# ---- webhooks ----------------------------------------------------------------------------------------------
def webhook(session: Session, b: BillingContext, body: bytes, signature: str) -> str:
    """Accept a gateway webhook: a bad signature, an old timestamp or an unknown intent is refused and nothing
    is recorded; an event seen before is acknowledged and ignored. Commits."""
    try:
        event = b.gateway.verify_webhook(body, signature)
    except GatewayError as exc:
        raise Problem(400, "bad-webhook", exc.message) from None
    a = session.scalar(select(ChargeAttempt).where(ChargeAttempt.intent_id == event.intent.id))
    if a is None:
        # an intent we never saw settled: its attempt may be waiting on the answer (find it by the gateway's
        # own record of our key)
        try:
            meta_key = _intent_key(b, event.intent.id)
        except GatewayError:
            meta_key = None
        a = session.scalar(select(ChargeAttempt).where(ChargeAttempt.idempotency_key == meta_key)) if meta_key \
            else None
    if a is None:
        raise Problem(404, "unknown-intent", "no payment of ours has this intent")
    crud.lock_account(session, a.account_id)
    try:
        with session.begin_nested():
            session.add(WebhookEvent(id=event.id[:64], kind=event.kind[:40], intent_id=event.intent.id[:64]))
            session.flush()
    except IntegrityError:
        session.rollback()
        return "duplicate"
    a = session.get(ChargeAttempt, a.id, populate_existing=True) or a
    # the freshest state of the intent wins over the event's snapshot (events may arrive out of order)
    try:
        intent = b.gateway.retrieve(event.intent.id)
    except GatewayError:
        intent = event.intent
    settle(session, b, a, intent)
    session.commit()
    return "ok"


def _intent_key(b: BillingContext, intent_id: str) -> str | None:
    from companion.app.billing.sandbox import SandboxGateway, SandboxIntent

    gw = b.gateway
    if isinstance(gw, SandboxGateway):
        with gw.sessions() as s:
            row = s.get(SandboxIntent, intent_id)
            return row.idempotency_key if row else None
    return None


# ---- refunds (staff) ---------------------------------------------------------------------------------------
def refund(session: Session, b: BillingContext, actor: User | None, entry_id: int, amount_cents: int,
           key: str) -> LedgerEntry:
    """Refund part or all of a card payment through the gateway; the refund entry is posted once."""
    key = _key(key)
    e = session.get(LedgerEntry, entry_id) if 0 < entry_id < 2**31 else None
    if e is None or e.side != "payment" or e.method != "card" or not e.intent_id:
        raise Problem(404, "not-found", "no such card payment")
    ledger.check_amount(amount_cents)
    account = crud.lock_account(session, e.account_id)
    assert account is not None
    try:
        intent = b.gateway.refund(e.intent_id, amount_cents, key)
    except GatewayError as exc:
        raise Problem(422, "refund-refused", exc.message) from None
    a = session.scalar(select(ChargeAttempt).where(ChargeAttempt.intent_id == e.intent_id))
    if a is not None:
        settle(session, b, a, intent)
    session.commit()
    if actor is not None:
        audit(session, actor, None, "refund", entry=e.id, amount_cents=amount_cents)
        session.commit()
    return e


# ---- frequency and auto-pay --------------------------------------------------------------------------------
def preview_frequency(session: Session, user: User, schedule: str) -> ledger.FrequencyPreview:
    """The next payments under another frequency, before confirming."""
    return ledger.preview_frequency(session, portal.driver_account(session, user), schedule)


def change_frequency(session: Session, user: User, schedule: str) -> ledger.FrequencyPreview:
    """Change the frequency (from the date the preview states)."""
    account = _locked_account(session, user)
    old = account.schedule
    p = ledger.change_frequency(session, account, schedule)
    audit(session, user, user, "frequency", old=old, new=schedule, effective=p.effective.isoformat(),
          installment_cents=p.installment_cents)
    return p


def set_autopay(session: Session, user: User, on: bool, method_id: int | None = None,
                device_id: int | None = None) -> list[DeviceAutopay]:
    """Turn auto-pay on with a card (the primary one by default), or stop automatic payments, for one device
    (`device_id`, one of the driver's devices) or, without one, for every handset of the account. Returns the
    devices changed."""
    account = _locked_account(session, user)
    plans = device_plans(session, account.id)
    if device_id is not None:
        link = portal.device(session, user, device_id)
        plans = [d for d in plans if d.handset_id == link.handset_id]
        if not plans:
            raise Problem(422, "no-handset", "this device has no interlock handset to pay for", field="device_id")
    elif not plans:
        raise Problem(422, "no-handset", "the account has no handset to pay for yet")
    m = None
    if on:
        cards = methods(session, account.id)
        m = method(session, account.id, method_id) if method_id else next((c for c in cards if c.primary), None)
        if m is None:
            raise Problem(422, "no-card", "add a card before turning on automatic payments", field="method_id")
        if expired(m, ledger.today()):
            raise Problem(422, "expired-card", "This card has expired: choose another.", field="method_id")
    for d in plans:
        d.autopay = on
        if m is not None:
            d.method_id = m.id
        d.retry_period, d.retry_attempts, d.retry_at = None, 0, None
        d.updated_at = ledger.now()
    session.flush()
    audit(session, user, user, "autopay", on=on, method=m.id if m else None,
          handsets=[d.handset_id for d in plans])
    return plans


def set_reminders(session: Session, user: User, on: bool, days: int) -> BillingPlan:
    """Reminders by email ahead of each due date: on or off, and how many days ahead (0 to 14)."""
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 14:
        raise Problem(422, "invalid", "reminders go 0 to 14 days ahead", field="remind_days")
    account = _locked_account(session, user)
    plan = plan_of(session, account.id)
    plan.reminders, plan.remind_days = on, days
    session.flush()
    return plan


# ---- history -----------------------------------------------------------------------------------------------
@dataclass
class Line:
    """A history line."""

    id: int
    at: dt.datetime
    date: dt.date
    side: str
    kind: str
    method: str
    amount_cents: int
    device: str
    note: str
    reference: str


def history(session: Session, user: User, device_id: int | None = None, start: dt.date | None = None,
            end: dt.date | None = None) -> list[Line]:
    """Every charge and payment, newest first, filtered by device (one of the driver's) and by date."""
    account = portal.driver_account(session, user)
    handset = None
    if device_id:
        link = portal.device(session, user, device_id)
        handset = link.handset_id or -1
    labels = {h: label for h, label in session.execute(select(DeviceLink.handset_id, DeviceLink.label).where(
        DeviceLink.account_id == account.id)).all()}
    q = select(LedgerEntry).where(LedgerEntry.account_id == account.id).order_by(LedgerEntry.id.desc())
    if handset is not None:
        q = q.where(LedgerEntry.handset_id == handset)
    out = []
    for e in session.scalars(q):
        day = e.due_date if e.side == "charge" and e.due_date else e.created_at.date()
        if (start and day < start) or (end and day > end):
            continue
        out.append(Line(e.id, e.created_at, day, e.side, e.kind, e.method, e.amount_cents,
                        labels.get(e.handset_id, "") if e.handset_id else "", e.note, e.reference or ""))
    return out


def history_csv(lines: list[Line]) -> str:
    """The history as CSV (amounts in cents and in dollars)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["date", "type", "kind", "method", "amount_cents", "amount", "device", "note", "reference"])
    for ln in lines:
        signed = ln.amount_cents if ln.side == "charge" else -ln.amount_cents
        w.writerow([ln.date.isoformat(), ln.side, ln.kind, ln.method, signed, money(signed), ln.device,
                    _cell(ln.note), _cell(ln.reference)])
    return buf.getvalue()


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
