"""Billing's background work, one round at a time (called by `python -m companion worker`):

- auto-pay: every account with auto-pay on whose next due date has come is charged what is due, on its card,
  under the key `autopay:<account>:<period>:<try>`; a decline notifies the driver and is tried again after
  BILLING_RETRY_DAYS (1, 3 and 5 days by default), then left to the driver;
- attempts left without an outcome (a gateway that timed out, a process killed mid-charge) are settled by
  asking the gateway again with their own key (which never charges twice);
- reminders by email ahead of each due date (days per account, off per the driver's email preferences; the
  notifications round calls `reminders`);
- an auto-pay card that expires before the next due date is flagged;
- the sandbox gateway's webhooks are delivered (a real processor sends its own);
- a reset fee's clear that expired before its handset took it (a locked-out car parked out of coverage longer
  than a command lives) is queued again while the handset still reports the lockout the fee paid for: the fee
  is paid once and a second payment for that lockout is refused, so nothing else would ever clear it.

Two workers on PostgreSQL take accounts with FOR NO KEY UPDATE SKIP LOCKED, so each account is worked by one of
them at a time; the idempotency keys make even a second try of the same installment charge nothing twice.
"""

import datetime as dt
import logging
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, aliased

from companion.app import crud
from companion.app.accounts.models import User
from companion.app.billing import ledger
from companion.app.billing import services as billing
from companion.app.billing.context import BillingContext
from companion.app.billing.models import BillingPlan, ChargeAttempt, PaymentMethod
from companion.app.core.db import Database
from companion.app.core.problems import Problem
from companion.app.models import Account, Command, Handset, LedgerEntry
from companion.app.notifications import services as notes
from companion.app.portal.config import PortalSettings
from companion.app.service.models import Program

log = logging.getLogger("companion.billing")


def _running() -> Any:
    """Accounts whose program has not ended (an ended program is charged and reminded no more)."""
    return ~exists().where(Program.account_id == Account.id, Program.ended_at.is_not(None))


def due_accounts(session: Session, day: dt.date, now: dt.datetime, limit: int, after: int = 0) -> list[int]:
    """Ids of accounts with auto-pay on, due by `day`, not waiting for a retry (in id order, after `after`)."""
    q = (select(Account.id).join(BillingPlan, BillingPlan.account_id == Account.id)
         .where(BillingPlan.autopay.is_(True), BillingPlan.method_id.is_not(None), Account.next_due <= day,
                Account.id > after, or_(BillingPlan.retry_at.is_(None), BillingPlan.retry_at <= now),
                _running())
         .order_by(Account.id).limit(limit))
    return list(session.scalars(q))


def collect(session: Session, b: BillingContext, account_id: int, postgres: bool) -> str:
    """Collect what is due on one account ("" when another worker has it or nothing is due; else the attempt's
    status). Commits."""
    q = select(Account).where(Account.id == account_id)
    q = q.with_for_update(key_share=True, skip_locked=True) if postgres else q
    account = session.scalars(q).first()
    if account is None:
        session.rollback()
        return ""
    now = ledger.now()
    plan = session.get(BillingPlan, account_id)
    if plan is None or not plan.autopay or plan.method_id is None or (plan.retry_at and plan.retry_at > now):
        session.rollback()
        return ""
    ledger.accrue(session, account, now.date())  # charging what falls due today moves no due date
    pos = ledger.position(session, account, now.date())
    if pos.due_now_cents <= 0:
        session.commit()
        return ""
    period = pos.periods_paid
    tries = plan.retry_attempts if plan.retry_period == period else 0
    if plan.retry_period == period and plan.retry_at is None and tries > len(b.bs.RETRY_DAYS):
        session.commit()  # retries used up: left to the driver
        return ""
    card = session.get(PaymentMethod, plan.method_id)
    if card is None or card.deleted:
        session.commit()
        return ""
    try:
        a = billing.charge(session, b, account.id, "autopay:%d:%d:%d" % (account.id, period, tries), "installment",
                           pos.due_now_cents, card, period=period)
    except Problem as exc:  # the key was used for another amount (the balance moved): next round
        session.rollback()
        log.warning("auto-pay of account %d skipped: %s", account_id, exc.detail)
        return ""
    return a.status


def autopay_round(db: Database, b: BillingContext, limit: int = 1000, shard: tuple[int, int] = (0, 1)) -> dict[str, int]:
    """Charge every due account once (in pages of `limit`); returns counts by outcome."""
    counts: dict[str, int] = {}
    postgres = not db.settings.is_sqlite
    after = 0
    now = ledger.now()
    while True:
        with db.sessions() as s:
            ids = due_accounts(s, now.date(), now, limit, after)
        if not ids:
            break
        after = ids[-1]
        for account_id in ids:
            if shard[1] > 1 and account_id % shard[1] != shard[0]:
                continue
            with db.write_session() as session:
                try:
                    status = collect(session, b, account_id, postgres)
                except Exception:  # noqa: BLE001 -- one account's failure must not stop the others
                    session.rollback()
                    log.exception("auto-pay of account %d failed", account_id)
                    status = "error"
            if status:
                counts[status] = counts.get(status, 0) + 1
    return counts


def reconcile_round(db: Database, b: BillingContext, older_than_s: int = 60) -> int:
    """Settle attempts without an outcome older than older_than_s; returns how many were looked at."""
    cutoff = ledger.now() - dt.timedelta(seconds=older_than_s)
    with db.sessions() as s:
        ids = list(s.scalars(select(ChargeAttempt.id).where(
            ChargeAttempt.status.in_(("created", "unknown")), ChargeAttempt.updated_at <= cutoff).limit(500)))
    for attempt_id in ids:
        with db.write_session() as session:
            a = session.get(ChargeAttempt, attempt_id)
            if a is not None:
                crud.lock_account(session, a.account_id)
                billing.reconcile(session, b, a)
                session.commit()
    return len(ids)


def reminders(session: Session, ps: PortalSettings, day: dt.date | None = None) -> int:
    """Remind drivers by email ahead of each due date (the account's days ahead; none when turned off for the
    account or in the driver's email preferences); each due date once. Returns how many were new."""
    day = day or ledger.today()
    made = 0
    rows = session.execute(select(Account, BillingPlan).outerjoin(BillingPlan, BillingPlan.account_id == Account.id)
                           .where(Account.next_due >= day, Account.next_due <= day + dt.timedelta(days=14),
                                  _running())).all()
    for account, plan in rows:
        if plan is not None and not plan.reminders:
            continue
        ahead = plan.remind_days if plan is not None else ps.REMIND_DAYS
        due = crud.account_next_due(account)
        if not 0 <= (due - day).days <= ahead:
            continue
        pos = ledger.position(session, account, day)
        if pos.next_amount_cents <= 0:
            continue
        auto = bool(plan and plan.autopay)
        for user in session.scalars(select(User).where(User.account_id == account.id, User.role == "driver",
                                                       User.active.is_(True))):
            if notes.notify(session, user, "payment-due", {"amount": billing.money(pos.next_amount_cents),
                                                           "date": due.isoformat()},
                            link="/portal/billing", base_url=ps.BASE_URL,
                            dedupe="payment-due:%s" % due.isoformat()):
                made += 1
        if auto and plan is not None and plan.method_id:
            card = session.get(PaymentMethod, plan.method_id)
            if card is not None and billing.expires_before(card, due):
                for user in session.scalars(select(User).where(User.account_id == account.id,
                                                               User.role == "driver")):
                    notes.notify(session, user, "card-expiring", {"last4": card.last4, "date": due.isoformat()},
                                 link="/portal/billing/methods", base_url=ps.BASE_URL,
                                 dedupe="card-expiring:%d:%s" % (card.id, due.isoformat()))
    session.flush()
    return made


def requeue_clears(db: Database, b: BillingContext, limit: int = 200) -> int:
    """Queue again each paid clear that expired unapplied while its handset still reports the lockout it paid
    for (not one whose fee was refunded); returns how many were queued."""
    pay, back = LedgerEntry, aliased(LedgerEntry)
    refunded = exists().where(back.charge_id == pay.charge_id, back.method == "refund")
    with db.sessions() as s:
        rows = s.execute(select(pay.id, pay.account_id).join(Command, Command.id == pay.command_id)
                         .join(Handset, Handset.id == pay.handset_id)
                         .where(pay.side == "payment", pay.kind == "reset_fee", pay.amount_cents > 0,
                                Command.status == "expired", Handset.lockout_id == pay.lockout_id,
                                Handset.account_id == pay.account_id, ~refunded)
                         .order_by(pay.id).limit(limit)).all()
    queued = 0
    for payment_id, account_id in rows:
        with db.write_session() as session:
            crud.lock_account(session, account_id)
            p = session.get(LedgerEntry, payment_id)
            h = session.get(Handset, p.handset_id, with_for_update=True) if p and p.handset_id else None
            old = session.get(Command, p.command_id) if p and p.command_id else None
            if p is None or h is None or old is None or old.status != "expired" or not h.lockout_id \
                    or h.lockout_id != p.lockout_id or h.account_id != p.account_id:
                session.rollback()
                continue
            cmd = crud.queue_command(session, b.ctx.settings, h, "clear", h.lockout_id,
                                     dedupe="clear:" + str(h.lockout_id))
            p.command_id = cmd.id
            session.commit()
            queued += 1
    return queued


def run_once(db: Database, b: BillingContext) -> dict[str, int]:
    """One round of billing's background work."""
    counts = autopay_round(db, b)
    counts["reconciled"] = reconcile_round(db, b)
    counts["clears_requeued"] = requeue_clears(db, b)
    deliver = getattr(b.gateway, "deliver_webhooks", None)
    if deliver is not None:
        try:
            counts["webhooks"] = deliver()
        except Exception:  # noqa: BLE001 -- the companion may not be up yet; the next round tries again
            log.exception("webhook delivery failed")
    return counts
