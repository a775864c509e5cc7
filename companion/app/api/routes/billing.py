"""Billing's JSON API: the driver's (bearer tokens, under /portal/billing) and the gateway's webhook."""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StringConstraints

from companion.app.api.deps import AdminDep, SessionDep, WriteSessionDep
from companion.app.api.routes.portal import ItemId, UserDep, WriteUserDep
from companion.app.billing import ledger
from companion.app.billing import services as billing
from companion.app.billing.context import BillingContext
from companion.app.billing.models import ChargeAttempt, PaymentMethod
from companion.app.billing.schemas import (
    AttemptPublic,
    AutopayRequest,
    BillingPublic,
    FrequencyPublic,
    FrequencyRequest,
    LinePublic,
    MethodAdd,
    MethodPublic,
    PayNow,
    PrimaryResult,
    RemindersRequest,
    ResetFeeCard,
    Upcoming,
)
from companion.app.core import problems
from companion.app.models import Account, LedgerEntry


def get_billing(request: Request) -> BillingContext:
    """The app's billing context."""
    return request.app.state.billing  # type: ignore[no-any-return]


BillingDep = Annotated[BillingContext, Depends(get_billing)]
router = APIRouter(prefix="/portal/billing", tags=["billing"], responses=problems.responses(
    401, 403, r401="no valid bearer access token", r403="not allowed (e.g. the password must be changed)"))
hooks = APIRouter(prefix="/billing", tags=["billing"])


def method_public(m: PaymentMethod) -> MethodPublic:
    """A card as the API shows it."""
    return MethodPublic(id=m.id, brand=m.brand, last4=m.last4, exp_month=m.exp_month, exp_year=m.exp_year,
                        primary=m.primary, expired=billing.expired(m, ledger.today()))


def attempt_public(session: SessionDep | WriteSessionDep, a: ChargeAttempt) -> AttemptPublic:
    """A payment attempt as the API shows it (with the clear's payment for a reset fee)."""
    clear = None
    if a.purpose == "reset_fee" and a.entry_id:
        e = session.get(LedgerEntry, a.entry_id)
        clear = e.id if e is not None else None
    return AttemptPublic(id=a.id, purpose=a.purpose, amount_cents=a.amount_cents, status=a.status,
                         decline_code=a.decline_code, next_action_url=a.next_action_url, entry_id=a.entry_id,
                         clear_payment_id=clear)


@router.get("")
def overview(session: SessionDep, b: BillingDep, user: UserDep) -> BillingPublic:
    """Balance, overdue, the next payment, the payments still to come, auto-pay."""
    o = billing.overview(session, b, user)
    p = o.position
    return BillingPublic(balance_cents=p.balance_cents, overdue_cents=p.overdue_cents,
                         current_cents=p.unpaid_cents, credit_cents=p.credit_cents, next_due=p.next_due,
                         next_amount_cents=p.next_amount_cents, schedule=o.schedule,
                         installment_cents=o.installment_cents, autopay=o.autopay,
                         autopay_method_id=o.autopay_method.id if o.autopay and o.autopay_method else None,
                         last_decline=o.last_decline, remind_days=o.remind_days, reminders=o.reminders,
                         upcoming=[Upcoming(due=u.due, amount_cents=u.amount_cents, owed_cents=u.owed_cents)
                                   for u in p.upcoming])


@router.get("/methods")
def list_methods(session: SessionDep, user: UserDep) -> list[MethodPublic]:
    """The saved cards, primary first."""
    account = billing.portal.driver_account(session, user)
    return [method_public(m) for m in billing.methods(session, account.id)]


@router.post("/methods", status_code=201)
def add_method(session: WriteSessionDep, b: BillingDep, user: WriteUserDep, data: MethodAdd) -> MethodPublic:
    """Save a card by its gateway token (Visa and Mastercard)."""
    m = billing.add_method(session, b, user, data.token)
    session.commit()
    return method_public(m)


@router.post("/methods/{method_id}/primary")
def primary(session: WriteSessionDep, b: BillingDep, user: WriteUserDep, method_id: ItemId) -> PrimaryResult:
    """Make a card the primary one; warns when a due date is less than 2 days away."""
    m, warning = billing.set_primary(session, b, user, method_id)
    session.commit()
    return PrimaryResult(method=method_public(m), warning=warning)


@router.delete("/methods/{method_id}", status_code=204)
def delete_method(session: WriteSessionDep, user: WriteUserDep, method_id: ItemId) -> None:
    """Remove a card."""
    billing.delete_method(session, user, method_id)
    session.commit()


@router.post("/pay", status_code=201)
def pay(session: WriteSessionDep, b: BillingDep, user: WriteUserDep, data: PayNow) -> AttemptPublic:
    """Pay now (once per idempotency key)."""
    a = billing.pay_now(session, b, user, data.choice, data.amount_cents, data.method_id, data.idempotency_key,
                        data.shown_cents, data.shown_ahead)
    return attempt_public(session, a)


@router.get("/payments/{attempt_id}")
def attempt(session: WriteSessionDep, b: BillingDep, user: WriteUserDep, attempt_id: ItemId) -> AttemptPublic:
    """A payment attempt (one without an outcome yet is asked about again)."""
    return attempt_public(session, billing.attempt_of(session, b, user, attempt_id))


@router.post("/devices/{device_id}/reset-fee", status_code=201)
def reset_fee(session: WriteSessionDep, b: BillingDep, user: WriteUserDep, device_id: ItemId,
              data: ResetFeeCard) -> AttemptPublic:
    """Pay the device's violation reset fee by card; a success queues the remote clear."""
    a = billing.pay_reset_fee(session, b, user, device_id, data.method_id, data.idempotency_key)
    return attempt_public(session, a)


def _freq(p: ledger.FrequencyPreview) -> FrequencyPublic:
    return FrequencyPublic(schedule=p.schedule, effective=p.effective, installment_cents=p.installment_cents,
                           rule=p.rule, payments=[Upcoming(due=u.due, amount_cents=u.amount_cents,
                                                           owed_cents=u.owed_cents) for u in p.payments])


@router.post("/frequency/preview")
def frequency_preview(session: SessionDep, user: UserDep, data: FrequencyRequest) -> FrequencyPublic:
    """The next payments under another frequency (nothing changes)."""
    return _freq(billing.preview_frequency(session, user, data.schedule))


@router.post("/frequency")
def frequency(session: WriteSessionDep, user: WriteUserDep, data: FrequencyRequest) -> FrequencyPublic:
    """Change the frequency, from the date it states."""
    p = billing.change_frequency(session, user, data.schedule)
    session.commit()
    return _freq(p)


@router.post("/autopay")
def autopay(session: WriteSessionDep, user: WriteUserDep, data: AutopayRequest) -> dict[str, object]:
    """Turn automatic payments on (with a card) or stop them."""
    plans = billing.set_autopay(session, user, data.on, data.method_id, data.device_id)
    session.commit()
    return {"autopay": data.on, "method_id": plans[0].method_id,
            "devices": [{"handset_id": d.handset_id, "autopay": d.autopay, "method_id": d.method_id}
                        for d in plans]}


@router.post("/reminders")
def reminders(session: WriteSessionDep, user: WriteUserDep, data: RemindersRequest) -> dict[str, object]:
    """Payment reminders on or off, and how many days ahead."""
    plan = billing.set_reminders(session, user, data.on, data.days)
    session.commit()
    return {"reminders": plan.reminders, "remind_days": plan.remind_days}


@router.get("/history")
def history(session: SessionDep, user: UserDep, device_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
            start: dt.date | None = None, end: dt.date | None = None) -> list[LinePublic]:
    """Charges and payments, newest first, by device and date."""
    return [LinePublic(id=ln.id, date=ln.date, side=ln.side, kind=ln.kind, method=ln.method,
                       amount_cents=ln.amount_cents, device=ln.device, note=ln.note)
            for ln in billing.history(session, user, device_id, start, end)]


@router.get("/history.csv", response_class=Response)
def history_csv(session: SessionDep, user: UserDep,
                device_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                start: dt.date | None = None, end: dt.date | None = None) -> Response:
    """The history as CSV."""
    text = billing.history_csv(billing.history(session, user, device_id, start, end))
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="payments.csv"'})


class RefundRequest(BaseModel):
    """Refund part or all of a card payment (a ledger payment entry)."""

    entry_id: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
    amount_cents: Annotated[int, Field(ge=1, le=10**9, strict=True)]
    idempotency_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{8,80}$")]


@hooks.post("/refunds", status_code=201)
def refund(session: WriteSessionDep, b: BillingDep, _admin: AdminDep, data: RefundRequest) -> dict[str, int]:
    """Back office: refund a card payment through the gateway (once per idempotency key); the refund is a
    negative payment in the ledger."""
    e = billing.refund(session, b, None, data.entry_id, data.amount_cents, data.idempotency_key)
    account = session.get(Account, e.account_id)
    assert account is not None
    return {"entry_id": e.id, "balance_cents": ledger.position(session, account).balance_cents}


@hooks.post("/webhook", responses=problems.responses(400, 404, r400="bad signature, stale or malformed",
                                                       r404="no payment of ours has this intent"))
async def webhook(request: Request, b: BillingDep) -> dict[str, str]:
    """The gateway's events, signed (`Gateway-Signature: t=..,v1=..`, HMAC-SHA256 over "t.body"), within the
    replay window; a repeated event is acknowledged and ignored."""
    from starlette.concurrency import run_in_threadpool

    body = await request.body()
    signature = request.headers.get("gateway-signature", "")
    db = request.app.state.db

    def work() -> str:
        with db.write_session() as session:
            return billing.webhook(session, b, body, signature)

    return {"status": await run_in_threadpool(work)}
