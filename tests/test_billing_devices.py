"""Auto-pay per device: the migration that copies each account's auto-pay to its handsets, on or off per device
through the pages and the API, the worker collecting only the devices that have it on, the dashboard's line per
device; and a worker killed mid-batch on PostgreSQL (every due device charged exactly once after a restart)."""

import contextlib
import datetime as dt
import time
import uuid

import httpx
import pytest
from sqlalchemy import MetaData, Table, create_engine, func, inspect, select, text
from sqlalchemy.orm import Session

from companion import testing
from companion.app.billing import ledger
from companion.app.billing.models import BillingPlan, DeviceAutopay, PaymentMethod
from companion.app.models import Account, Handset
from tests.billing_support import add_card, billing_day, method_ids
from tests.portal_client import csrf_of

pytest_plugins = ["tests.portal_support"]


# ---- the migration -----------------------------------------------------------------------------------------
def test_migration_copies_each_accounts_autopay_to_every_handset_of_it(portal_backend):
    """At 0009 an account with auto-pay on (a card, two declines, a retry date) and two handsets, one with
    auto-pay off and one handset, one without a plan: after 0010 each handset has its account's settings, none
    lost (0010_billing2); the downgrade drops the table and keeps billing_plans as it was."""
    from alembic import command

    from companion.app.core import migrate

    with contextlib.ExitStack() as stack:
        if portal_backend.is_sqlite:
            url = portal_backend.DATABASE_URL.rsplit("/", 1)[0] + "/devices-mig-%s.db" % uuid.uuid4().hex[:6]
        else:
            url = stack.enter_context(testing.fresh_pg_database("pytest"))
        settings = testing.settings_for(url, testing.test_master_keys())
        cfg = migrate.alembic_config(settings)
        command.upgrade(cfg, "0009_presets2")
        engine = create_engine(settings.sync_database_url)
        stack.callback(engine.dispose)  # closed even when an assertion fails (no connection left to the GC)
        retry = dt.datetime(2027, 2, 3, 12, tzinfo=dt.UTC)
        with Session(engine) as s:
            ids_ = []
            for n in ("on", "off", "none"):  # the 0009 columns (the model has 0010's)
                ids_.append(s.execute(text(
                    "INSERT INTO accounts (name, schedule, first_due, installment_cents, periods_paid, credit_cents, "
                    "reset_fee_cents, allow_codes, codes_per_period, service_period_days, period_base, created_at) "
                    "VALUES (:n, 'weekly', '2027-01-04', 5000, 0, 0, 7500, true, 2, 30, 0, CURRENT_TIMESTAMP) "
                    "RETURNING id"), {"n": n}).scalar_one())
            on, off, none = ids_
            # handsets as the schema at this revision has them: the model's columns that exist (with their
            # Python-side defaults), not the ones later migrations add
            present = {c["name"] for c in inspect(engine).get_columns("handsets")}
            handsets = Table("handsets", MetaData(), *(c._copy() for c in Handset.__table__.columns
                                                       if c.name in present))
            hids = [s.execute(handsets.insert().values(
                serial="M-%d" % i, account_id=acc, key_id="k1", secret_nonce=b"", secret_ct=b"")
                .returning(handsets.c.id)).scalar_one() for i, acc in enumerate((on, on, off, none))]
            card = PaymentMethod(account_id=on, gateway="sandbox", token="tok_x" * 3, brand="visa", last4="4242",
                                 exp_month=12, exp_year=2031, primary=True, deleted=False)
            s.add(card)
            s.flush()
            s.add(BillingPlan(account_id=on, autopay=True, method_id=card.id, remind_days=5, reminders=True,
                              retry_period=3, retry_attempts=2, retry_at=retry, last_decline="Your card was declined."))
            s.add(BillingPlan(account_id=off, autopay=False, method_id=None, remind_days=3, reminders=True,
                              retry_attempts=0, last_decline=""))
            s.commit()
            ids = hids
            card_id = card.id
        command.upgrade(cfg, "head")
        with Session(engine) as s:
            got = {d.handset_id: d for d in s.scalars(select(DeviceAutopay))}
            assert sorted(got) == ids[:3]  # the account without a plan has nothing to copy
            for h in ids[:2]:
                d = got[h]
                assert (d.account_id, d.autopay, d.method_id, d.retry_period, d.retry_attempts, d.last_decline) == (
                    on, True, card_id, 3, 2, "Your card was declined."), h
                assert d.retry_at is not None and d.retry_at.replace(tzinfo=dt.UTC) == retry
            assert (got[ids[2]].account_id, got[ids[2]].autopay, got[ids[2]].method_id) == (off, False, None)
        command.downgrade(cfg, "0009_presets2")
        with engine.connect() as c:
            assert tuple(c.execute(text("SELECT autopay, method_id FROM billing_plans WHERE account_id = :a"),
                                   {"a": on}).one()) == (True, card_id)
        command.upgrade(cfg, "head")
        engine.dispose()


# ---- through the pages -------------------------------------------------------------------------------------
def _autopay(c, on, device_id=None, method_id=None):
    page = c.get("/portal/billing").text
    data = {"on": "1" if on else "0", "csrf": csrf_of(page)}
    if device_id is not None:
        data["device_id"] = str(device_id)
    if method_id is not None:
        data["method_id"] = str(method_id)
    return c.post("/portal/billing/autopay", data=data)


def _payments(world, account_id):
    with world.session() as s:
        return [(e.amount_cents, e.handset_id) for e in ledger.entries(s, account_id) if e.side == "payment"]


def test_autopay_is_per_device_and_the_worker_collects_only_the_devices_on_it(world):
    """Two handsets: auto-pay on the second only collects nothing (the installments are booked to the first);
    on for the first, the worker collects on the due date and books the payment to it; the dashboard shows
    the next automatic payment per device; stopping the first stops the next collection."""
    first = dt.date.today() + dt.timedelta(days=3)
    d = world.driver(devices=2, first_due=first.isoformat(), installment_cents=6000)
    car1, car2 = d["devices"]
    h1, h2 = (h["device_id"] for h in d["handsets"])
    with world.browser(d["email"]) as c:
        add_card(c)
        assert _autopay(c, True, device_id=car2, method_id=method_ids(c)[0]).status_code == 303
        page = c.get("/portal/billing").text
        assert 'id="autopay-device-%d"' % car2 in page and "Turn on automatic payments (Car 1)" in page
        assert "Stop automatic payments (Car 2)" in page
    with world.session() as s:
        plans = {p.handset_id: p.autopay for p in s.scalars(select(DeviceAutopay).where(
            DeviceAutopay.account_id == d["account_id"]))}
    assert plans == {h1: False, h2: True}
    with billing_day(first):
        world.deliver_billing()
    assert _payments(world, d["account_id"]) == []  # nothing is booked to car 2
    with world.browser(d["email"]) as c:
        assert _autopay(c, True, device_id=car1).status_code == 303
        dash = c.get("/portal/dashboard").text
        assert 'id="autopay-devices"' in dash
        assert "Car 1: Next automatic payment: $60.00 on" in dash and "Car 2: Next automatic payment: $0.00" in dash
    with billing_day(first):
        world.deliver_billing()
    assert _payments(world, d["account_id"]) == [(6000, h1)]
    with world.browser(d["email"]) as c:  # stop car 1: the next due date is not collected
        assert _autopay(c, False, device_id=car1).status_code == 303
        assert "Turn on automatic payments (Car 1)" in c.get("/portal/billing").text
    with world.session() as s:
        nxt = s.get(Account, d["account_id"]).next_due
    with billing_day(nxt):
        world.deliver_billing()
    assert _payments(world, d["account_id"]) == [(6000, h1)]


def test_autopay_for_another_accounts_device_is_refused_and_nothing_changes(world):
    """The API with a device id of another account: 404, and neither account's auto-pay changed."""
    mine = world.driver()
    other = world.driver()
    with world.browser(mine["email"]) as c:
        add_card(c)
    token = world.api_token(mine["email"])["access_token"]
    url = world.server.url + "/api/v1/portal/billing/autopay"
    r = httpx.post(url, json={"on": True, "device_id": other["devices"][0]},
                            headers={"Authorization": "Bearer " + token})
    assert r.status_code == 404, r.text
    r = httpx.post(url, json={"on": True, "device_id": "1"},
                            headers={"Authorization": "Bearer " + token})
    assert r.status_code == 422, r.text
    with world.session() as s:
        assert s.scalar(select(func.count()).select_from(DeviceAutopay).where(DeviceAutopay.autopay.is_(True),
                        DeviceAutopay.account_id.in_((mine["account_id"], other["account_id"])))) == 0
    r = httpx.post(url, json={"on": True, "device_id": mine["devices"][0]},
                            headers={"Authorization": "Bearer " + token})
    assert r.status_code == 200 and r.json()["devices"][0]["autopay"] is True, r.text


# ---- a worker killed mid-batch (PostgreSQL) ----------------------------------------------------------------
KILLED = r'''
import datetime as dt, sys, time
from companion.app.billing import ledger, worker
from tests.test_billing_concurrency import _context
from companion import testing
from companion.app.core.db import Database
settings = testing.settings_for(sys.argv[1], sys.argv[2])
b = _context(settings)
worker.LEASE_S = 1
real = b.gateway.create_intent
done = [0]
def charge_then_die(*a, **k):
    out = real(*a, **k)
    done[0] += 1
    if done[0] == 7:        # seven cards charged, none recorded: the worker is killed here
        print("charged", flush=True)
        time.sleep(60)
    return out
b.gateway.create_intent = charge_then_die
day = dt.date.fromisoformat(sys.argv[3])
ledger.set_clock(lambda: dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC))
db = Database(settings)
worker.autopay_round(db, b, limit=12)
'''


@pytest.mark.postgres
def test_worker_killed_mid_batch_then_restarted_charges_every_due_device_once(tmp_path):
    """20 due devices; a worker (batches of 12) is SIGKILLed after the gateway charged 7 of its first batch
    and before it recorded any: a restarted worker (after the lease runs out) and the reconciler leave every
    device charged exactly once: one intent per account at the gateway, one payment per account."""
    from companion.app.billing import worker
    from companion.app.billing.sandbox import SandboxIntent
    from companion.app.core import migrate
    from companion.app.core.db import Database
    from tests.test_billing_concurrency import _context, _driver_with_card, kill_when_charged

    reason = testing.pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with testing.fresh_pg_database("pytest_billing_batch") as url:
        pg = testing.settings_for(url, testing.test_master_keys())
        migrate.upgrade(pg)
        db = Database(pg)
        b = _context(pg)
        day = dt.date(2027, 8, 2)
        ids = [_driver_with_card(db, b, day)[0] for _ in range(20)]
        script = tmp_path / "killed_batch.py"
        script.write_text(KILLED)
        kill_when_charged(script, pg, day.isoformat())
        try:
            with db.sessions() as s:
                assert all(not [e for e in ledger.entries(s, i) if e.side == "payment"] for i in ids)
            time.sleep(1.2)  # the killed worker's lease runs out
            ledger.set_clock(lambda: dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC))
            counts = worker.autopay_round(db, b, limit=12)
            assert counts.get("succeeded") == 20, counts
            assert worker.autopay_round(db, b, limit=12) == {}  # nothing left due
            with b.gateway.sessions() as s:  # type: ignore[attr-defined]
                keys = s.scalars(select(SandboxIntent.idempotency_key).where(
                    SandboxIntent.idempotency_key.like("autopay:%"))).all()
            assert sorted(int(k.split(":")[1]) for k in keys) == sorted(ids)
            with db.sessions() as s:
                for i in ids:
                    assert [e.amount_cents for e in ledger.entries(s, i) if e.side == "payment"] == [5000], i
                    assert s.get(Account, i).next_due == day + dt.timedelta(days=7)
        finally:
            ledger.set_clock(None)
            b.gateway.close()  # type: ignore[attr-defined]
            db.close()
