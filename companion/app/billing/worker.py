"""Billing's background work, one round at a time (called by `python -m companion worker`):

- auto-pay, per device: every handset with auto-pay on whose account's next due date has come is charged
  what is due on it (the charges booked to it; the primary handset also those booked to no handset), on its
  card, under the key `autopay:<account>:<handset>:<period>:<try>`; a decline notifies the driver and is tried
  again after BILLING_RETRY_DAYS (1, 3 and 5 days by default), then left to the driver;
  an account whose driver's pay now is being charged (written, no outcome yet) is passed by until it settles
  (pay now, the other way round, is refused while an auto-pay of the account is being charged: both take the
  lock on the account's row to write their attempt, so one of them always sees the other's);
- attempts left without an outcome (a gateway that timed out, a process killed mid-charge) are settled by
  asking the gateway again with their own key (which never charges twice);
- reminders by email ahead of each due date (days per account, off per the driver's email preferences; the
  notifications round calls `reminders`);
- an auto-pay card that expires before the next due date is flagged;
- the sandbox gateway's webhooks are delivered (a real processor sends its own);
- a reset fee's clear that expired before its handset took it (a locked-out car parked out of coverage longer
  than a command lives) is queued again while the handset still reports the lockout the fee paid for: the fee
  is paid once and a second payment for that lockout is refused, so nothing else would ever clear it.

Workers claim due devices in batches (FOR UPDATE SKIP LOCKED and a lease, as the outbox does), so any number
of them share the work without waiting on each other; a batch costs a fixed number of statements plus one
gateway call per device (see `collect_batch`). The idempotency keys make even a second try of the same
installment charge nothing twice.
"""

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import exists, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from companion.app import crud
from companion.app.accounts.models import DeviceLink, User
from companion.app.billing import ledger
from companion.app.billing import services as billing
from companion.app.billing.context import BillingContext
from companion.app.billing.models import BillingPlan, ChargeAttempt, DeviceAutopay, PaymentMethod
from companion.app.core import timebase
from companion.app.core.db import Database
from companion.app.core.problems import Problem
from companion.app.models import Account, Command, DesiredVersion, Handset, LedgerEntry
from companion.app.notifications import services as notes
from companion.app.notifications.models import Notification
from companion.app.portal.config import PortalSettings
from companion.app.service.models import Program

log = logging.getLogger("companion.billing")


def _running() -> Any:
    """Accounts whose program has not ended (an ended program is charged and reminded no more)."""
    return ~exists().where(Program.account_id == Account.id, Program.ended_at.is_not(None))


LEASE_S = 300  # a claimed device is another worker's again after this long (its worker died mid-batch)


def _wall() -> dt.datetime:
    """Leases are about processes staying alive: the system's clock, not billing's (tests move billing's)."""
    return dt.datetime.now(dt.UTC)


def _due_devices(day: dt.date, now: dt.datetime) -> Any:
    """Devices with auto-pay on whose account is due by `day`, not waiting for a retry."""
    return (select(DeviceAutopay.handset_id, DeviceAutopay.account_id)
            .join(Account, Account.id == DeviceAutopay.account_id)
            .where(DeviceAutopay.autopay.is_(True), DeviceAutopay.method_id.is_not(None), Account.next_due <= day,
                   or_(DeviceAutopay.retry_at.is_(None), DeviceAutopay.retry_at <= now), _running()))


def due_devices(session: Session, day: dt.date, now: dt.datetime, limit: int, after: int = 0) -> list[int]:
    """Handset ids with auto-pay on, due by `day`, not waiting for a retry (in id order, after `after`)."""
    q = _due_devices(day, now).where(DeviceAutopay.handset_id > after).order_by(DeviceAutopay.handset_id)
    return [h for h, _a in session.execute(q.limit(limit)).all()]


def claim(db: Database, day: dt.date, now: dt.datetime, limit: int, after: int) -> list[tuple[int, int]]:
    """Take up to `limit` due devices (handset, account) after handset `after` for this worker: their rows are
    locked FOR UPDATE SKIP LOCKED (another worker's claim skips them, never waits) and leased for LEASE_S, so
    the next claim of any worker passes them by until this one is done or dead."""
    wall = _wall()
    with db.write_session() as s:
        q = (_due_devices(day, now).where(DeviceAutopay.handset_id > after,
                                          or_(DeviceAutopay.lease_until.is_(None), DeviceAutopay.lease_until < wall))
             .order_by(DeviceAutopay.handset_id).limit(limit))
        if not db.settings.is_sqlite:
            q = q.with_for_update(of=DeviceAutopay, skip_locked=True)
        rows = [(int(h), int(a)) for h, a in s.execute(q).all()]
        if rows:
            s.execute(update(DeviceAutopay).where(DeviceAutopay.handset_id.in_([h for h, _ in rows]))
                      .values(lease_until=wall + dt.timedelta(seconds=LEASE_S))
                      .execution_options(synchronize_session=False))
        s.commit()
    return rows


def _release(db: Database, handsets: list[int]) -> None:
    with db.write_session() as s:
        s.execute(update(DeviceAutopay).where(DeviceAutopay.handset_id.in_(handsets)).values(lease_until=None)
                  .execution_options(synchronize_session=False))
        s.commit()


def _lock_accounts(session: Session, ids: list[int], postgres: bool) -> dict[int, Account]:
    """The accounts with their rows locked, in id order (two workers with one account lock in one order)."""
    q = select(Account).where(Account.id.in_(sorted(set(ids)))).order_by(Account.id)
    if postgres:
        q = q.with_for_update(key_share=True)
    return {a.id: a for a in session.scalars(q)}


def _rows_by_account(session: Session, ids: list[int]) -> dict[int, list[LedgerEntry]]:
    out: dict[int, list[LedgerEntry]] = {i: [] for i in ids}
    for e in session.scalars(select(LedgerEntry).where(LedgerEntry.account_id.in_(ids)).order_by(LedgerEntry.id)):
        out[e.account_id].append(e)
    return out


def _primaries(session: Session, ids: list[int]) -> dict[int, int]:
    return {int(a or 0): int(h) for a, h in session.execute(
        select(Handset.account_id, func.min(Handset.id)).where(Handset.account_id.in_(ids))
        .group_by(Handset.account_id)).all()}


def _accrue_many(session: Session, accounts: dict[int, Account], primaries: dict[int, int], day: dt.date) -> None:
    """ledger.accrue for many accounts in two statements (the caller holds their rows locked)."""
    last = {int(a): int(p) for a, p in session.execute(
        select(LedgerEntry.account_id, func.max(LedgerEntry.period)).where(
            LedgerEntry.account_id.in_(list(accounts)), LedgerEntry.side == "charge",
            LedgerEntry.kind == "installment").group_by(LedgerEntry.account_id)).all() if p is not None}
    rows = []
    for aid, account in accounts.items():
        n = max(last[aid] + 1 if aid in last else 0, account.period_base)
        posted = 0
        while True:
            due = ledger.installment_date(account, n)
            if due > day:
                break
            rows.append(dict(account_id=aid, side="charge", kind="installment", method="",
                             amount_cents=account.installment_cents, period=n, due_date=due,
                             handset_id=primaries.get(aid), reference="installment:%d" % n,
                             note="%s installment" % account.schedule, created_at=ledger.now()))
            n += 1
            posted += 1
            if posted > 10000:
                raise Problem(422, "invalid", "more than 10000 installments are missing: check the first due date")
    if rows:
        session.execute(insert(LedgerEntry), rows)


def _push_due_dates(session: Session, due: dict[int, dt.date]) -> None:
    """ledger.push_due_date for many accounts: one statement per distinct date, desired versions in bulk."""
    by_day: dict[int, list[int]] = {}
    for aid, d in due.items():
        by_day.setdefault(timebase.day_of(d), []).append(aid)
    versions = []
    for day, aids in by_day.items():
        moved = session.execute(
            update(Handset).where(Handset.account_id.in_(aids), Handset.payment_due_day != day)
            .values(payment_due_day=day, desired_version=Handset.desired_version + 1)
            .returning(Handset.id, Handset.desired_version).execution_options(synchronize_session=False)).all()
        versions += [dict(handset_id=h, version=int(v)) for h, v in moved]
    if versions:
        session.execute(insert(DesiredVersion), versions)


def _ask_all(b: BillingContext, todo: list[tuple[ChargeAttempt, str]], concurrency: int
             ) -> list[tuple[ChargeAttempt, Any]]:
    """The gateway's answer to each attempt (None: no answer), `concurrency` requests in flight at a time (each
    under its own idempotency key: a request repeated after a lost answer charges nothing twice)."""
    if concurrency <= 1 or len(todo) <= 1:
        return [(a, billing._ask_gateway(b, a, token)) for a, token in todo]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(todo)), thread_name_prefix="autopay") as pool:
        got = list(pool.map(lambda t: billing._ask_gateway(b, t[0], t[1]), todo))
    return [(a, i) for (a, _t), i in zip(todo, got, strict=True)]


def collect_batch(db: Database, b: BillingContext, claimed: list[tuple[int, int]]) -> dict[str, int]:
    """Collect what is due on a batch of claimed devices in three transactions, whatever the batch's size:

    1. the accounts locked in id order; missing installments posted in bulk; every ledger read in one query and
       each position derived in memory; one attempt per device under `autopay:<account>:<handset>:<period>:<try>`
       written in bulk and committed (an attempt already under that key is asked about again, never charged
       anew: the gateway answers a key it knows with the intent it made);
    2. the gateway asked for each attempt, BILLING_GATEWAY_CONCURRENCY at a time (no lock held while it
       answers);
    3. the accounts locked again; successes settled in bulk (payments, cached positions, handset due dates,
       attempts, retry state, receipts); declines, second steps and lost answers settled one by one as any
       other attempt is.

    A worker killed anywhere leaves committed attempts that the next round (same key) or `reconcile_round`
    settles; a device is charged at most once per key, and the key names its period."""
    counts: dict[str, int] = {}
    postgres = not db.settings.is_sqlite
    now = ledger.now()
    day = now.date()
    todo: list[tuple[ChargeAttempt, str]] = []  # (attempt, card token)
    with db.write_session() as s:
        accounts = _lock_accounts(s, [a for _h, a in claimed], postgres)
        ended = set(s.scalars(select(Program.account_id).where(Program.account_id.in_(list(accounts)),
                                                              Program.ended_at.is_not(None))))
        accounts = {k: v for k, v in accounts.items() if k not in ended}
        if not accounts:
            s.rollback()
            return counts
        # an account whose driver's pay now is being charged right now is left to the next round: its position
        # does not show that payment yet, and the two would take the same balance
        paying = set(s.scalars(select(ChargeAttempt.account_id).where(
            ChargeAttempt.account_id.in_(list(accounts)), ChargeAttempt.purpose == "pay_now",
            ChargeAttempt.status.in_(billing.IN_FLIGHT))))
        accounts = {k: v for k, v in accounts.items() if k not in paying}
        if not accounts:
            s.rollback()
            return counts
        primaries = _primaries(s, list(accounts))
        _accrue_many(s, accounts, primaries, day)
        rows = _rows_by_account(s, list(accounts))
        positions = {aid: ledger.derive(acc, rows[aid], day) for aid, acc in accounts.items()}
        plans = {d.handset_id: d for d in s.scalars(select(DeviceAutopay).where(
            DeviceAutopay.handset_id.in_([h for h, _a in claimed])))}
        owner = {int(h): a for h, a in s.execute(select(Handset.id, Handset.account_id).where(
            Handset.id.in_([h for h, _a in claimed]))).all()}
        cards = {m.id: m for m in s.scalars(select(PaymentMethod).where(
            PaymentMethod.id.in_({d.method_id for d in plans.values() if d.method_id})))}
        wanted: dict[str, dict[str, Any]] = {}
        for handset_id, aid in claimed:
            plan, pos = plans.get(handset_id), positions.get(aid)
            if plan is None or pos is None or plan.account_id != aid or not plan.autopay or plan.method_id is None \
                    or (plan.retry_at and plan.retry_at > now) or owner.get(handset_id) != aid:
                continue  # off, waiting for a retry, or the handset left the account (its auto-pay stays behind)
            amount = pos.due_for(handset_id, primaries.get(aid) == handset_id)
            if amount <= 0:
                continue
            period = pos.periods_paid
            tries = plan.retry_attempts if plan.retry_period == period else 0
            if plan.retry_period == period and plan.retry_at is None and tries > len(b.bs.RETRY_DAYS):
                continue  # retries used up: left to the driver
            card = cards.get(plan.method_id)
            if card is None or card.deleted or card.account_id != aid:
                continue
            key = "autopay:%d:%d:%d:%d" % (aid, handset_id, period, tries)
            wanted[key] = dict(account_id=aid, idempotency_key=key, purpose="installment", amount_cents=amount,
                               method_id=card.id, handset_id=handset_id, period=period, status="created",
                               decline_code="", next_action_url="", created_at=now, updated_at=now)
        if not wanted:
            s.commit()
            return counts
        old = {a.idempotency_key: a for a in s.scalars(select(ChargeAttempt).where(
            ChargeAttempt.idempotency_key.in_(list(wanted))))}
        fresh = [v for k, v in wanted.items() if k not in old]
        if fresh:
            s.execute(insert(ChargeAttempt), fresh)
        s.commit()
        for a in s.scalars(select(ChargeAttempt).where(ChargeAttempt.idempotency_key.in_(list(wanted)))):
            w = wanted[a.idempotency_key]
            if a.account_id != w["account_id"] or a.amount_cents != w["amount_cents"]:
                log.warning("auto-pay key %s was used for another amount: next round", a.idempotency_key)
                continue
            if a.status in ("created", "unknown"):
                todo.append((a, cards[w["method_id"]].token))
            else:
                counts[a.status] = counts.get(a.status, 0) + 1  # settled already: nothing to do
        s.expunge_all()
    answers = _ask_all(b, todo, 1 if db.settings.is_sqlite else b.bs.GATEWAY_CONCURRENCY)
    with db.write_session() as s:
        accounts = _lock_accounts(s, [a.account_id for a, _i in answers], postgres)
        current = {a.id: a for a in s.scalars(select(ChargeAttempt).where(
            ChargeAttempt.id.in_([a.id for a, _i in answers])))}
        quick = []
        for old_a, intent in answers:
            a = current[old_a.id]
            if intent is not None and intent.status == "succeeded" and a.entry_id is None \
                    and a.status in ("created", "unknown"):
                quick.append((a, intent))
            elif intent is None:
                if a.status == "created":
                    a.status, a.updated_at = "unknown", now
                counts[a.status] = counts.get(a.status, 0) + 1
            else:
                billing.settle(s, b, a, intent)
                counts[a.status] = counts.get(a.status, 0) + 1
        if quick:
            _settle_successes(s, b, accounts, quick, day)
            counts["succeeded"] = counts.get("succeeded", 0) + len(quick)
        s.commit()
    return counts


def _settle_successes(session: Session, b: BillingContext, accounts: dict[int, Account],
                      quick: list[tuple[ChargeAttempt, Any]], day: dt.date) -> None:
    """billing.settle for many succeeded intents at once (the caller holds the accounts locked)."""
    refs = {"intent:" + i.id: a for a, i in quick}
    seen = {r: eid for r, eid in session.execute(select(LedgerEntry.reference, LedgerEntry.id).where(
        LedgerEntry.account_id.in_(list(accounts)), LedgerEntry.reference.in_(list(refs)))).all()}
    entries: dict[int, LedgerEntry] = {}
    for a, intent in quick:
        ref = "intent:" + intent.id
        a.intent_id = a.intent_id or intent.id
        if ref in seen:  # a webhook settled it between the gateway's answer and now
            a.entry_id = seen[ref]
            continue
        e = LedgerEntry(account_id=a.account_id, side="payment", kind="installment", method="card",
                        amount_cents=a.amount_cents, reference=ref, handset_id=a.handset_id, intent_id=intent.id,
                        note="automatic payment", created_at=ledger.now())
        session.add(e)
        entries[a.id] = e
    session.flush()  # one multi-row INSERT .. RETURNING
    touched = sorted({a.account_id for a, _i in quick})
    rows = _rows_by_account(session, touched)
    due: dict[int, dt.date] = {}
    changes = []
    for aid in touched:
        account = accounts[aid]
        pos = ledger.derive(account, rows[aid], day)
        changes.append(dict(id=aid, periods_paid=pos.periods_paid, credit_cents=pos.partial_cents,
                            next_due=pos.next_due))
        due[aid] = pos.next_due
    session.execute(update(Account), changes)
    _push_due_dates(session, due)
    now = ledger.now()
    for a, _intent in quick:
        made = entries.get(a.id)
        if made is not None:
            made.due_after = due[a.account_id]
            a.entry_id = made.id
        a.status, a.updated_at = "succeeded", now
    session.execute(update(DeviceAutopay).where(DeviceAutopay.handset_id.in_([a.handset_id for a, _i in quick]))
                    .values(retry_period=None, retry_attempts=0, retry_at=None, last_decline="")
                    .execution_options(synchronize_session=False))
    # receipts: every driver of each account, once per intent (the dedupe keys already there are skipped)
    users: dict[int, list[User]] = {}
    for u in session.scalars(select(User).where(User.account_id.in_(touched), User.role == "driver",
                                                User.active.is_(True))):
        users.setdefault(int(u.account_id or 0), []).append(u)
    dedupes = ["receipt:" + i.id for _a, i in quick]
    sent = set(session.execute(select(Notification.user_id, Notification.dedupe).where(
        Notification.dedupe.in_(dedupes))).all())
    for a, intent in quick:
        params = {"amount": billing.money(a.amount_cents), "date": day.isoformat(), "reference": intent.id}
        for u in users.get(a.account_id, []):
            if (u.id, "receipt:" + intent.id) in sent:
                continue
            session.add(Notification(user_id=u.id, kind="receipt", params=params, link="/portal/billing/history",
                                     dedupe="receipt:" + intent.id, read=False))
            notes.enqueue_email(session, u.email, "receipt", params, u.language,
                                b.ctx.ps.BASE_URL + "/portal/billing/history", flush=False)
    session.flush()


def collect(session: Session, b: BillingContext, handset_id: int, postgres: bool) -> str:
    """Collect what is due on one device, one statement at a time (the path a batch's conflict falls back
    to; "" when nothing is due or the device is not on auto-pay; else the attempt's status). Commits."""
    d = session.get(DeviceAutopay, handset_id)
    if d is None:
        session.rollback()
        return ""
    q = select(Account).where(Account.id == d.account_id)
    q = q.with_for_update(key_share=True, skip_locked=True) if postgres else q
    account = session.scalars(q).first()
    if account is None:
        session.rollback()
        return ""
    now = ledger.now()
    plan = session.get(DeviceAutopay, handset_id, populate_existing=True)
    h = session.get(Handset, handset_id)
    if plan is None or plan.account_id != account.id or not plan.autopay or plan.method_id is None \
            or (plan.retry_at and plan.retry_at > now) or h is None or h.account_id != account.id:
        session.rollback()
        return ""
    if billing.in_flight(session, account.id, ("pay_now",)) is not None:
        session.rollback()  # the driver's pay now is being charged: the next round
        return ""
    ledger.accrue(session, account, now.date())  # charging what falls due today moves no due date
    pos = ledger.position(session, account, now.date())
    amount = pos.due_for(handset_id, ledger.primary_handset(session, account.id) == handset_id)
    if amount <= 0:
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
        a = billing.charge(session, b, account.id, "autopay:%d:%d:%d:%d" % (account.id, handset_id, period, tries),
                           "installment", amount, card, period=period, handset_id=handset_id)
    except Problem as exc:  # the key was used for another amount (the balance moved): next round
        session.rollback()
        log.warning("auto-pay of device %d skipped: %s", handset_id, exc.detail)
        return ""
    return a.status


def autopay_round(db: Database, b: BillingContext, limit: int = 500, shard: tuple[int, int] = (0, 1)
                  ) -> dict[str, int]:
    """Charge every due device once, in claimed batches of `limit`; returns counts by outcome. Any number of
    workers may run it at once: each claims its own batches (`shard` is kept for callers that split by id and
    is no longer needed). A batch that fails is retried one device at a time."""
    counts: dict[str, int] = {}
    now = ledger.now()
    after = 0
    while True:
        claimed = claim(db, now.date(), now, limit, after)
        if not claimed:
            break
        after = claimed[-1][0]
        if shard[1] > 1:
            claimed = [c for c in claimed if c[0] % shard[1] == shard[0]]
        try:
            got = collect_batch(db, b, claimed)
        except Exception:  # noqa: BLE001 -- a conflict or one bad device: the batch one device at a time
            log.exception("auto-pay batch failed; collecting its devices one at a time")
            got = {}
            for handset_id, _aid in claimed:
                with db.write_session() as session:
                    try:
                        status = collect(session, b, handset_id, not db.settings.is_sqlite)
                    except Exception:  # noqa: BLE001 -- one device's failure must not stop the others
                        session.rollback()
                        log.exception("auto-pay of device %d failed", handset_id)
                        status = "error"
                if status:
                    got[status] = got.get(status, 0) + 1
        finally:
            _release(db, [h for h, _a in claimed])
        for k, v in got.items():
            counts[k] = counts.get(k, 0) + v
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
        autos = [d for d in session.scalars(select(DeviceAutopay).where(
            DeviceAutopay.account_id == account.id, DeviceAutopay.autopay.is_(True),
            DeviceAutopay.method_id.is_not(None)))]
        for user in session.scalars(select(User).where(User.account_id == account.id, User.role == "driver",
                                                       User.active.is_(True))):
            if notes.notify(session, user, "payment-due", {"amount": billing.money(pos.next_amount_cents),
                                                           "date": due.isoformat()},
                            link="/portal/billing", base_url=ps.BASE_URL,
                            dedupe="payment-due:%s" % due.isoformat()):
                made += 1
        for method_id in sorted({d.method_id for d in autos if d.method_id}):
            card = session.get(PaymentMethod, method_id)
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


def _unneeded_fees() -> Any:
    """Card reset fees whose clear was refused or expired while the lockout it paid for is over (cleared at
    the service port, or by a code, before the handset synced; or the handset left the account), not refunded."""
    pay, back = LedgerEntry, aliased(LedgerEntry)
    refunded = exists().where(back.intent_id == pay.intent_id, back.method == "refund")
    return (select(pay.id, pay.account_id).join(Command, Command.id == pay.command_id)
            .join(Handset, Handset.id == pay.handset_id)
            .where(pay.side == "payment", pay.kind == "reset_fee", pay.method == "card", pay.amount_cents > 0,
                   pay.intent_id.is_not(None), Command.status.in_(("refused", "expired")),
                   or_(Handset.lockout_id != pay.lockout_id, Handset.account_id.is_distinct_from(pay.account_id)),
                   ~refunded)
            .order_by(pay.id))


def refund_unneeded_fees(db: Database, b: BillingContext, limit: int = 200) -> int:
    """Refund each card reset fee whose clear the handset never applied because the lockout had ended (as a
    fee paid for a lockout already over is refunded when it is charged): the money goes back to the card under
    the key `unneeded:<payment>` (asked again, it refunds nothing twice), the ledger posts the refund and a
    waiver of the fee's charge (the driver owes nothing for a clear that was not needed), the drivers are
    told. Returns how many were refunded."""
    with db.sessions() as s:
        rows = s.execute(_unneeded_fees().limit(limit)).all()
    done = 0
    for payment_id, account_id in rows:
        with db.write_session() as session:
            account = crud.lock_account(session, account_id)
            found = session.execute(_unneeded_fees().where(LedgerEntry.id == payment_id)).first()
            p = session.get(LedgerEntry, payment_id)
            a = session.scalar(select(ChargeAttempt).where(ChargeAttempt.intent_id == p.intent_id)) if p else None
            if found is None or p is None or account is None or a is None or not p.intent_id:
                session.rollback()
                continue
            try:
                intent = b.gateway.refund(p.intent_id, p.amount_cents, "unneeded:%d" % p.id)
            except Exception:  # noqa: BLE001 -- the gateway is down: the next round asks again (same key)
                session.rollback()
                log.exception("refund of reset fee %d failed", payment_id)
                continue
            billing.settle(session, b, a, intent)  # posts the refund (once per intent)
            if p.charge_id is not None:
                ledger.post_payment(session, account, "waiver", p.amount_cents, "waiver:%d" % p.id,
                                    kind="reset_fee", handset_id=p.handset_id, charge_id=p.charge_id,
                                    note="reset fee refunded: the lockout ended before the clear")
            a.status = "refunded"
            ledger.recompute(session, account)
            link = session.scalar(select(DeviceLink).where(DeviceLink.handset_id == p.handset_id,
                                                           DeviceLink.account_id == account.id))
            h = session.get(Handset, p.handset_id) if p.handset_id else None
            label = link.label if link else (h.serial if h else "")
            for user in session.scalars(select(User).where(User.account_id == account.id, User.role == "driver",
                                                           User.active.is_(True))):
                notes.notify(session, user, "fee-refunded", {"device": label,
                                                             "amount": billing.money(p.amount_cents)},
                             link="/portal/clears/%d" % p.id, base_url=b.ctx.ps.BASE_URL,
                             dedupe="fee-refunded:%d" % p.id)
            session.commit()
            done += 1
    return done


def run_once(db: Database, b: BillingContext) -> dict[str, int]:
    """One round of billing's background work."""
    counts = autopay_round(db, b)
    counts["reconciled"] = reconcile_round(db, b)
    counts["clears_requeued"] = requeue_clears(db, b)
    counts["fees_refunded"] = refund_unneeded_fees(db, b)
    deliver = getattr(b.gateway, "deliver_webhooks", None)
    if deliver is not None:
        try:
            counts["webhooks"] = deliver()
        except Exception:  # noqa: BLE001 -- the companion may not be up yet; the next round tries again
            log.exception("webhook delivery failed")
    return counts
