"""Nothing is charged twice on one PostgreSQL: two pay-now clicks with one idempotency key, two auto-pay
workers over the same due accounts, a worker killed mid-charge (SIGKILL), webhooks delivered twice, out of
order and late; every reset fee queues exactly one clear."""

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest
from sqlalchemy import func, select

from companion import testing
from companion.app.accounts.models import User
from companion.app.billing import context as billing_context
from companion.app.billing import ledger, worker
from companion.app.billing import services as billing
from companion.app.billing.models import BillingPlan, ChargeAttempt, DeviceAutopay, PaymentMethod
from companion.app.billing.sandbox import SandboxIntent
from companion.app.core import migrate
from companion.app.core.db import Database
from companion.app.core.keyring import Keyring
from companion.app.models import Account, Handset, LedgerEntry
from companion.app.portal.context import PortalContext
from tests.portal_support import fast_portal_settings

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg():
    reason = testing.pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with testing.fresh_pg_database("pytest_billing") as url:
        settings = testing.settings_for(url, testing.test_master_keys())
        migrate.upgrade(settings)
        yield settings


def _context(settings):
    ps = fast_portal_settings(1, "http://127.0.0.1:9")
    ctx = PortalContext.build(settings, ps, Keyring(settings))
    return billing_context.build(settings, ctx, billing_context.BillingSettings(_env_file=None, WEBHOOK_URL=""))


def _driver_with_card(db, b, first_due, installment=5000, autopay=True, card_token=None):
    with db.write_session() as s:
        account = Account(name="A", schedule="weekly", first_due=first_due, installment_cents=installment,
                          periods_paid=0, credit_cents=0, reset_fee_cents=7500, period_base=0, next_due=first_due)
        s.add(account)
        s.flush()
        user = User(email="d-%s@example.org" % uuid.uuid4().hex[:10], role="driver", account_id=account.id,
                    name="D", vehicles=[], email_prefs={}, language="en")
        s.add(user)
        token = card_token or b.gateway.tokenize("4242424242424242", "12", "2031", "123").token
        m = PaymentMethod(account_id=account.id, gateway="sandbox", token=token, brand="visa", last4="4242",
                          exp_month=12, exp_year=2031, primary=True, deleted=False)
        s.add(m)
        s.flush()
        s.add(BillingPlan(account_id=account.id, autopay=False, method_id=None, remind_days=3, reminders=True,
                          retry_attempts=0, last_decline="", updated_at=ledger.now()))
        h = Handset(serial="HS-%s" % uuid.uuid4().hex[:12], account_id=account.id, key_id="k", secret_nonce=b"",
                    secret_ct=b"")
        s.add(h)
        s.flush()
        s.add(DeviceAutopay(handset_id=h.id, account_id=account.id, autopay=autopay, method_id=m.id,
                            retry_attempts=0, last_decline="", updated_at=ledger.now()))
        s.commit()
        return account.id, user.id, m.id, h.id


def _sandbox_intents(b, prefix):
    with b.gateway.sessions() as s:
        return s.scalar(select(func.count()).select_from(SandboxIntent).where(
            SandboxIntent.idempotency_key.like(prefix + "%")))


def test_two_pay_now_clicks_with_one_key_charge_once(pg):
    """Eight threads submit the same pay-now form at once: one intent at the gateway, one payment."""
    db = Database(pg)
    b = _context(pg)
    try:
        account_id, user_id, method_id, _h = _driver_with_card(db, b, dt.date.today() - dt.timedelta(days=1))
        results, errors = [], []

        def click():
            try:
                with db.write_session() as s:
                    user = s.get(User, user_id)
                    a = billing.pay_now(s, b, user, "current", None, method_id, "click-key-0001", 5000)
                    results.append((a.id, a.status))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=click) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len({r[0] for r in results}) == 1
        assert _sandbox_intents(b, "paynow:%d:" % account_id) == 1
        with db.sessions() as s:
            pays = s.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account_id,
                                                       LedgerEntry.side == "payment")).all()
            assert [p.amount_cents for p in pays] == [5000]
    finally:
        b.gateway.close()  # type: ignore[attr-defined]
        db.close()


def test_two_workers_collect_each_due_date_once(pg):
    """Two auto-pay workers (threads, each its own connections) over 60 due accounts, three rounds each over
    three weekly due dates: every installment is charged exactly once."""
    db1, db2 = Database(pg), Database(pg)
    b1, b2 = _context(pg), _context(pg)
    first = dt.date(2027, 3, 1)
    ids = [_driver_with_card(db1, b1, first)[0] for _ in range(60)]
    try:
        for week in range(3):
            day = first + dt.timedelta(days=7 * week)
            ledger.set_clock(lambda day=day: dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC))
            threads = [threading.Thread(target=worker.autopay_round, args=(db, b)) for db, b in ((db1, b1), (db2, b2))
                       for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        with db1.sessions() as s:
            for account_id in ids:
                rows = ledger.entries(s, account_id)
                charges = [e.period for e in rows if e.side == "charge"]
                pays = [e.amount_cents for e in rows if e.side == "payment"]
                assert charges == [0, 1, 2] and pays == [5000, 5000, 5000], account_id
                assert ledger.position(s, s.get(Account, account_id), first + dt.timedelta(days=14)).unpaid_cents == 0
        assert _sandbox_intents(b1, "autopay:") >= 180
        with b1.gateway.sessions() as s:
            keys = s.scalars(select(SandboxIntent.idempotency_key).where(
                SandboxIntent.idempotency_key.like("autopay:%"))).all()
        assert len(keys) == len(set(keys))
        per_account = {}
        for k in keys:
            acc = int(k.split(":")[1])
            if acc in ids:
                per_account[acc] = per_account.get(acc, 0) + 1
        assert set(per_account.values()) == {3}
    finally:
        ledger.set_clock(None)
        for x in (b1, b2):
            x.gateway.close()  # type: ignore[attr-defined]
        db1.close()
        db2.close()


KILLED = r'''
import datetime as dt, os, signal, sys, time
from companion.app.billing import ledger, worker
from tests.test_billing_concurrency import _context
from companion import testing
from companion.app.core.db import Database
settings = testing.settings_for(sys.argv[1], sys.argv[2])
b = _context(settings)
real = b.gateway.create_intent
def charge_then_die(*a, **k):
    real(*a, **k)           # the gateway charged the card...
    print("charged", flush=True)
    time.sleep(60)          # ...and the worker is killed before it records the outcome
b.gateway.create_intent = charge_then_die
day = dt.date.fromisoformat(sys.argv[3])
ledger.set_clock(lambda: dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC))
db = Database(settings)
with db.write_session() as session:
    worker.collect(session, b, int(sys.argv[4]), True)
'''


def kill_when_charged(script, pg, *args):
    """Run a worker script (argv: database URL, master keys, *args) until it prints that the gateway charged,
    then SIGKILL it there: a crash between the charge and its record."""
    env = testing.env_for(pg)
    env["PYTHONPATH"] = str(testing.ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, str(script), pg.DATABASE_URL, pg.MASTER_KEYS, *args],
                            stdout=subprocess.PIPE, env=env, cwd=str(testing.ROOT))
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert b"charged" in line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]


def test_worker_killed_mid_charge_then_webhooks_twice_out_of_order_and_late(pg, tmp_path):
    """A worker process SIGKILLed after the gateway charged but before it recorded anything: the next worker
    asks the gateway again with the same key (no second charge) and records the payment; the webhooks that
    arrive afterwards, twice and in reverse order, change nothing."""
    db = Database(pg)
    b = _context(pg)
    day = dt.date(2027, 5, 3)
    account_id, _user_id, _m, handset_id = _driver_with_card(db, b, day)
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    kill_when_charged(script, pg, day.isoformat(), str(handset_id))
    try:
        with db.sessions() as s:
            a = s.scalar(select(ChargeAttempt).where(ChargeAttempt.account_id == account_id))
            assert a is not None and a.status == "created" and a.entry_id is None
        ledger.set_clock(lambda: dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC))
        with db.write_session() as s:  # the same key again: the gateway answers with the charge it made
            worker.collect(s, b, handset_id, True)
        ledger.set_clock(None)
        assert _sandbox_intents(b, "autopay:%d:" % account_id) == 1
        events = b.gateway.pending_events()  # type: ignore[attr-defined]
        with db.write_session() as s:
            mine = []
            for body, sig in events:
                try:
                    billing.webhook(s, b, body, sig)
                    mine.append((body, sig))
                except billing.Problem:
                    s.rollback()
        for body, sig in reversed(mine + mine):
            with db.write_session() as s:
                assert billing.webhook(s, b, body, sig) == "duplicate"
        with db.sessions() as s:
            pays = [e.amount_cents for e in ledger.entries(s, account_id) if e.side == "payment"]
        assert pays == [5000]
    finally:
        ledger.set_clock(None)
        b.gateway.close()  # type: ignore[attr-defined]
        db.close()


def _pause_gateway(b, prefix, during):
    """b's gateway runs `during()` when asked to charge a key starting with `prefix`, then charges (the other
    party acting while this one waits on the gateway, its attempt committed and no lock held)."""
    real = b.gateway.create_intent
    ran = []

    def create_intent(token, amount, key, meta):
        if key.startswith(prefix) and not ran:
            ran.append(during())
        return real(token, amount, key, meta)

    b.gateway.create_intent = create_intent
    return ran


def _payments(db, account_id):
    with db.sessions() as s:
        return [e.amount_cents for e in s.scalars(select(LedgerEntry).where(
            LedgerEntry.account_id == account_id, LedgerEntry.side == "payment"))]


def test_auto_pay_while_pay_now_is_charging_takes_nothing(pg):
    """The driver pays the $50 due now while the worker collects the same due date: the worker's round runs
    while pay now waits on the gateway. One of them is charged, not both."""
    db = Database(pg)
    b_web, b_worker = _context(pg), _context(pg)
    try:
        account_id, user_id, method_id, _h = _driver_with_card(db, b_web, dt.date.today() - dt.timedelta(days=1))
        ran = _pause_gateway(b_web, "paynow:", lambda: worker.autopay_round(db, b_worker))
        with db.write_session() as s:
            a = billing.pay_now(s, b_web, s.get(User, user_id), "current", None, method_id, "tab-key-0001", 5000)
            assert a.status == "succeeded"
        assert ran == [{}]  # the worker charged nothing
        assert _sandbox_intents(b_web, "autopay:%d:" % account_id) == 0
        assert _payments(db, account_id) == [5000]
        assert worker.autopay_round(db, b_worker).get("succeeded", 0) == 0  # settled: nothing is due any more
        assert _payments(db, account_id) == [5000]
    finally:
        for b in (b_web, b_worker):
            b.gateway.close()  # type: ignore[attr-defined]
        db.close()


def test_pay_now_while_auto_pay_is_charging_is_refused(pg):
    """The other order: the worker's charge is at the gateway when the driver submits pay now for the balance
    the page showed. Pay now is refused (payment in progress), nothing charged twice."""
    db = Database(pg)
    b_web, b_worker = _context(pg), _context(pg)
    try:
        account_id, user_id, method_id, _h = _driver_with_card(db, b_web, dt.date.today() - dt.timedelta(days=1))

        def driver_pays():
            with db.write_session() as s:
                try:
                    billing.pay_now(s, b_web, s.get(User, user_id), "current", None, method_id, "tab-key-0002",
                                    5000)
                except billing.Problem as exc:
                    return exc.kind
            return "charged"

        ran = _pause_gateway(b_worker, "autopay:", driver_pays)
        assert worker.autopay_round(db, b_worker).get("succeeded") == 1
        assert ran == ["payment-in-progress"]
        assert _sandbox_intents(b_web, "paynow:%d:" % account_id) == 0
        assert _payments(db, account_id) == [5000]
    finally:
        for b in (b_web, b_worker):
            b.gateway.close()  # type: ignore[attr-defined]
        db.close()
