"""The billing pages: overview, cards, pay now, the reset fee by card, frequency with its preview, auto-pay,
reminders, history and CSV, invoices and the agreement. Each handler reads the form, calls
`companion.app.billing`, and renders or redirects; the card number is never posted here (the card form posts
to the gateway's tokenization endpoint)."""

import datetime as dt
import secrets as pysecrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from companion.app import i18n
from companion.app.accounts.models import User
from companion.app.api.deps import SessionDep, WriteSessionDep
from companion.app.billing import invoices as billing_invoices
from companion.app.billing import ledger
from companion.app.billing import services as billing
from companion.app.billing.context import BillingContext
from companion.app.billing.models import ChargeAttempt
from companion.app.core.problems import Problem
from companion.app.portal import services as portal
from companion.app.web.messages import for_problem
from companion.app.web.session import Visitor, form_error, problem_words, redirect, render, submit, visitor

router = APIRouter(prefix="/portal/billing", include_in_schema=False)
F = Annotated[str, Form()]
SCHEDULES = ("weekly", "biweekly", "semimonthly", "monthly")


def _b(request: Request) -> BillingContext:
    return request.app.state.billing  # type: ignore[no-any-return]


def _driver(request: Request, session: Session) -> tuple[Visitor, User]:
    v = visitor(request, session)
    return v, v.require("driver")


def _overview(request: Request, session: Session, v: Visitor, template: str = "billing.html", status: int = 200,
              **values: object) -> Response:
    user = v.require("driver")
    o = billing.overview(session, _b(request), user)
    return render(v, template, status, o=o, schedules=SCHEDULES, **values)


@router.get("")
def overview(request: Request, session: SessionDep) -> Response:
    """Balance, overdue, the next payment, the schedule still to come, auto-pay, reminders."""
    v, _user = _driver(request, session)
    return _overview(request, session, v)


# ---- cards -------------------------------------------------------------------------------------------------
def _methods_page(request: Request, session: Session, v: Visitor, status: int = 200, **values: object) -> Response:
    user = v.require("driver")
    account = portal.driver_account(session, user)
    b = _b(request)
    return render(v, "billing_methods.html", status, methods=billing.methods(session, account.id),
                  tokenize_url=b.gateway.tokenize_url, today=ledger.today(), expired=billing.expired, **values)


@router.get("/methods")
def methods(request: Request, session: SessionDep) -> Response:
    """The saved cards and the form to add one (it posts to the gateway, not here)."""
    v, _user = _driver(request, session)
    return _methods_page(request, session, v)


@router.get("/methods/new")
def method_returned(request: Request, session: SessionDep, token: str = "", error: str = "") -> Response:
    """Where the gateway sends the browser back: the card it tokenized, to confirm; or the gateway's refusal."""
    v, _user = _driver(request, session)
    if error or not token:
        text = i18n.gettext_for(v.lang).gettext(for_problem(error[:40] or "invalid-token"))
        return _methods_page(request, session, v, 422, error=text)
    try:
        card = _b(request).gateway.card(token[:300])
    except Exception:  # noqa: BLE001 -- any unreadable token is the same refusal
        return _methods_page(request, session, v, 422,
                             error=i18n.gettext_for(v.lang).gettext(for_problem("invalid-token")))
    return render(v, "billing_method_new.html", card=card, token=token[:300])


@router.post("/methods")
def method_add(request: Request, session: WriteSessionDep, token: F = "", csrf: F = "") -> Response:
    """Save the confirmed card."""
    v, user = _driver(request, session)
    return submit(v, session, csrf, lambda: billing.add_method(session, _b(request), user, token),
                  lambda _: redirect("/portal/billing/methods"),
                  lambda exc: form_error(v, "billing_methods.html", exc,
                                         methods=billing.methods(session, user.account_id or 0),
                                         tokenize_url=_b(request).gateway.tokenize_url, today=ledger.today(),
                                         expired=billing.expired))


@router.post("/methods/{method_id}/primary")
def method_primary(request: Request, session: WriteSessionDep, method_id: int, csrf: F = "") -> Response:
    """Make a card the primary one (with the warning near a due date)."""
    v, user = _driver(request, session)
    return submit(v, session, csrf, lambda: billing.set_primary(session, _b(request), user, method_id)[1],
                  lambda warning: _methods_page(request, session, v, warning=warning, info=None if warning else ""),
                  _message(v))


@router.post("/methods/{method_id}/delete")
def method_delete(request: Request, session: WriteSessionDep, method_id: int, csrf: F = "") -> Response:
    """Remove a card."""
    v, user = _driver(request, session)
    return submit(v, session, csrf, lambda: billing.delete_method(session, user, method_id),
                  lambda _: redirect("/portal/billing/methods"), _message(v))


# ---- pay now -----------------------------------------------------------------------------------------------
def _pay_page(request: Request, session: Session, v: Visitor, status: int = 200, **values: object) -> Response:
    user = v.require("driver")
    o = billing.overview(session, _b(request), user, accrued=True)
    return render(v, "billing_pay.html", status, o=o, key=pysecrets.token_hex(12), **values)


@router.get("/pay")
def pay_form(request: Request, session: SessionDep) -> Response:
    """Pay the overdue balance, the current balance or another amount."""
    v, _user = _driver(request, session)
    return _pay_page(request, session, v)


@router.post("/pay")
def pay(request: Request, session: WriteSessionDep, choice: F = "", amount: F = "", method_id: F = "",
        key: F = "", csrf: F = "", shown_overdue: F = "", shown_current: F = "", shown_ahead: F = "") -> Response:
    """Charge the card once per form (its idempotency key) and show the payment. The form carries the overdue
    and current balances it showed: a balance that moved since is refused, nothing charged."""
    v, user = _driver(request, session)

    def charge() -> ChargeAttempt:  # pay_now commits the attempt and its outcome itself
        cents = billing.parse_dollars(amount) if choice == "other" else None
        shown = {"overdue": shown_overdue, "current": shown_current}.get(choice, "")
        return billing.pay_now(session, _b(request), user, choice, cents, _card(method_id), key,
                               int(shown) if shown.isdigit() and len(shown) <= 10 else None, shown_ahead == "1")

    return submit(v, session, csrf, charge, _to_payment,
                  lambda exc: form_error(v, "billing_pay.html", exc,
                                         o=billing.overview(session, _b(request), user, accrued=True),
                                         key=pysecrets.token_hex(12)), commit=False)


@router.get("/payments/{attempt_id}")
def payment(request: Request, session: WriteSessionDep, attempt_id: int) -> Response:
    """A payment's outcome (one still without an outcome is asked about again)."""
    v, user = _driver(request, session)
    a = billing.attempt_of(session, _b(request), user, attempt_id)
    words = billing.DECLINES.get(a.decline_code, billing.DECLINES["generic_decline"]) if a.status == "failed" else ""
    return render(v, "billing_payment.html", a=a, decline=words, handsets=billing.handsets_due(session, a),
                  code=billing.paid_code(session, _b(request), a))


def _code_page(request: Request, session: Session, v: Visitor, user: User, link_id: int, **extra: Any) -> Response:
    link = portal.device(session, user, link_id)
    account = portal.driver_account(session, user)
    return render(v, "billing_code.html", link=link, fee=account.code_fee_cents or 0,
                  methods=billing.methods(session, account.id), key=pysecrets.token_hex(12), **extra)


@router.get("/code/{link_id}")
def code_form(request: Request, session: SessionDep, link_id: int) -> Response:
    """An unlock code where the program charges for it: the fee, the card, then confirm."""
    v, user = _driver(request, session)
    return _code_page(request, session, v, user, link_id)


@router.post("/code/{link_id}")
def code(request: Request, session: WriteSessionDep, link_id: int, action: F = "clear", method_id: F = "",
         key: F = "", csrf: F = "") -> Response:
    """Charge the code fee; the payment's page shows the code once the payment succeeded."""
    v, user = _driver(request, session)
    try:
        v.check_csrf(csrf)
        if not method_id.isdigit() or len(method_id) > 10:
            raise Problem(422, "no-card", "choose a card", field="method_id")
        a = billing.buy_code(session, _b(request), user, link_id, action, int(method_id), key)
    except Problem as exc:
        session.rollback()
        link = portal.device(session, user, link_id)
        account = portal.driver_account(session, user)
        return form_error(v, "billing_code.html", exc, link=link, fee=account.code_fee_cents or 0,
                          methods=billing.methods(session, account.id), key=pysecrets.token_hex(12))
    return redirect("/portal/billing/payments/%d" % a.id)


@router.get("/reset-fee/{link_id}")
def reset_fee_form(request: Request, session: SessionDep, link_id: int) -> Response:
    """The reset fee by card."""
    v, user = _driver(request, session)
    link, h, fee = portal.reset_fee_terms(session, user, link_id)
    account = portal.driver_account(session, user)
    return render(v, "billing_reset_fee.html", link=link, fee=fee, lockout=h.lockout_id,
                  methods=billing.methods(session, account.id), key=pysecrets.token_hex(12))


@router.post("/reset-fee/{link_id}")
def reset_fee(request: Request, session: WriteSessionDep, link_id: int, method_id: F = "", key: F = "",
              csrf: F = "") -> Response:
    """Charge the reset fee; a success queues the clear."""
    v, user = _driver(request, session)

    def refused(exc: Problem) -> Response:
        link, h, fee = portal.reset_fee_terms(session, user, link_id)
        account = portal.driver_account(session, user)
        return form_error(v, "billing_reset_fee.html", exc, link=link, fee=fee, lockout=h.lockout_id,
                          methods=billing.methods(session, account.id), key=pysecrets.token_hex(12))

    return submit(v, session, csrf,
                  lambda: billing.pay_reset_fee(session, _b(request), user, link_id, _card(method_id), key),
                  _to_payment, refused, commit=False)


def _card(method_id: str) -> int:
    if not method_id.isdigit():
        raise Problem(422, "no-card", "choose a card", field="method_id")
    return int(method_id)


def _to_payment(a: ChargeAttempt) -> Response:
    return redirect("/portal/billing/payments/%d" % a.id)


# ---- frequency, auto-pay, reminders ------------------------------------------------------------------------
@router.post("/frequency/preview")
def frequency_preview(request: Request, session: SessionDep, schedule: F = "", csrf: F = "") -> Response:
    """The next payments under the chosen frequency, with a button to confirm."""
    v, user = _driver(request, session)
    return submit(v, session, csrf, lambda: billing.preview_frequency(session, user, schedule),
                  lambda p: render(v, "billing_frequency.html", p=p), _overview_again(request, session, v),
                  commit=False)


@router.post("/frequency")
def frequency(request: Request, session: WriteSessionDep, schedule: F = "", csrf: F = "") -> Response:
    """Make the previewed change."""
    v, user = _driver(request, session)
    return submit(v, session, csrf, lambda: billing.change_frequency(session, user, schedule), _to_overview,
                  _overview_again(request, session, v))


@router.post("/autopay")
def autopay(request: Request, session: WriteSessionDep, on: F = "", method_id: F = "", device_id: F = "",
            csrf: F = "") -> Response:
    """Turn automatic payments on with a card, or stop them (for one device, or every device)."""
    v, user = _driver(request, session)
    return submit(v, session, csrf,
                  lambda: billing.set_autopay(session, user, on == "1", int(method_id) if method_id.isdigit()
                                              else None,
                                              int(device_id) if device_id.isdigit() and len(device_id) < 10
                                              else None),
                  _to_overview, _overview_again(request, session, v))


@router.post("/reminders")
def reminders(request: Request, session: WriteSessionDep, on: F = "", days: F = "3", csrf: F = "") -> Response:
    """Reminders on or off and how many days ahead."""
    v, user = _driver(request, session)

    def remind() -> None:
        if not days.isdigit():
            raise Problem(422, "invalid", "days ahead is a number", field="remind_days")
        billing.set_reminders(session, user, on == "1", int(days))

    return submit(v, session, csrf, remind, _to_overview, _overview_again(request, session, v))


def _to_overview(_: object) -> Response:
    return redirect("/portal/billing")


def _overview_again(request: Request, session: Session, v: Visitor) -> Callable[[Problem], Response]:
    """The overview again with a refusal of one of its forms in words."""
    return lambda exc: _overview(request, session, v, status=exc.status, error=problem_words(v, exc))


def _message(v: Visitor) -> Callable[[Problem], Response]:
    return lambda exc: form_error(v, "message.html", exc)


# ---- history, invoices, agreement --------------------------------------------------------------------------
def _day(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/history")
def history(request: Request, session: SessionDep, device: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
            start: str | None = None, end: str | None = None) -> Response:
    """Charges and payments by device and date, with the CSV link."""
    v, user = _driver(request, session)
    lines = billing.history(session, user, device, _day(start), _day(end))
    devices = portal.devices(session, user)
    query = "&".join("%s=%s" % (k, val) for k, val in (("device", device), ("start", _day(start)),
                                                       ("end", _day(end))) if val)
    return render(v, "billing_history.html", lines=lines, devices=devices, device=device, start=_day(start),
                  end=_day(end), query=query)


@router.get("/history.csv")
def history_csv(request: Request, session: SessionDep,
                device: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                start: str | None = None, end: str | None = None) -> Response:
    """The history as CSV."""
    _v, user = _driver(request, session)
    text = billing.history_csv(billing.history(session, user, device, _day(start), _day(end)))
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="payments.csv"'})


@router.get("/invoices")
def invoices(request: Request, session: WriteSessionDep) -> Response:
    """The invoices of the billing periods so far (issued on first view)."""
    v, user = _driver(request, session)
    rows = billing_invoices.issue_due(session, user)
    session.commit()
    return render(v, "billing_invoices.html", invoices=rows)


@router.get("/invoices/{invoice_id}.pdf")
def invoice_pdf(request: Request, session: SessionDep, invoice_id: int) -> Response:
    """One invoice as a PDF."""
    _v, user = _driver(request, session)
    inv = billing_invoices.invoice_of(session, user, invoice_id)
    pdf = billing_invoices.invoice_pdf(inv, portal.driver_account(session, user), user)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": 'attachment; filename="invoice-%06d.pdf"' % inv.number})


@router.get("/invoices/{invoice_id}")
def invoice(request: Request, session: SessionDep, invoice_id: int) -> Response:
    """One invoice as a page."""
    v, user = _driver(request, session)
    inv = billing_invoices.invoice_of(session, user, invoice_id)
    return render(v, "billing_invoice.html", inv=inv, account=portal.driver_account(session, user))


@router.get("/agreement")
def agreement(request: Request, session: WriteSessionDep) -> Response:
    """The program agreement the driver accepted, and the order details."""
    v, user = _driver(request, session)
    ag = billing_invoices.agreement_of(session, user)
    session.commit()
    return render(v, "billing_agreement.html", ag=ag, order=billing_invoices.order_details(session, user))


@router.post("/agreement")
def agreement_accept(request: Request, session: WriteSessionDep, csrf: F = "") -> Response:
    """Accept the agreement."""
    v, user = _driver(request, session)
    return submit(v, session, csrf, lambda: billing_invoices.accept(session, user),
                  lambda _: redirect("/portal/billing/agreement"), _message(v))


@router.get("/agreement.pdf")
def agreement_pdf(request: Request, session: WriteSessionDep) -> Response:
    """The agreement as a PDF."""
    _v, user = _driver(request, session)
    ag = billing_invoices.agreement_of(session, user)
    session.commit()
    pdf = billing_invoices.agreement_pdf(ag, billing_invoices.order_details(session, user), user)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": 'attachment; filename="agreement.pdf"'})
