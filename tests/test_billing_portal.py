"""Billing through the pages and the JSON API, on both backends: cards through the gateway's tokenization
endpoint (the number never reaches our database or logs), pay now once per idempotency key, declines, the
second step, a gateway timeout, frequency with its preview, auto-pay, the reset fee by card queuing one clear,
history and CSV, invoices as PDF, webhooks refused when bad."""

import datetime as dt
import io
import json
import re
import time

import httpx
from sqlalchemy import func, select

from tests.billing_support import CARDS, add_card, billing_day, method_ids, pay
from tests.portal_client import csrf_of

pytest_plugins = ["tests.portal_support"]


def _ledger(world, account_id):
    from companion.app.billing import ledger
    from companion.app.models import Account

    with world.session() as s:
        account = s.get(Account, account_id)
        return ledger.position(s, account), ledger.entries(s, account_id)


def test_add_cards_visa_and_mastercard_only_with_clear_refusals(world):
    """Visa and Mastercard are saved (the first is primary); Amex, a Luhn error, a past expiry are refused
    with words, and nothing is saved."""
    d = world.driver()
    with world.browser(d["email"]) as c:
        assert add_card(c).status_code == 303
        assert add_card(c, CARDS["mastercard"]).status_code == 303
        r = add_card(c, CARDS["amex"])
        assert r.status_code == 422 and "We accept Visa and Mastercard only." in r.text
        r = add_card(c, "4242424242424241")
        assert r.status_code == 422 and "not valid" in r.text
        r = add_card(c, CARDS["visa"], month="01", year="2020")
        assert r.status_code == 422 and "expired" in r.text
        page = c.get("/portal/billing/methods").text
    assert page.count("data-method=") == 2 and "4242" in page and "4444" in page and "0005" not in page


def test_card_number_never_reaches_our_database_or_logs(world, portal_backend, caplog):
    """After adding cards, no table of the companion and no log line holds the card numbers' digits."""
    import logging

    caplog.set_level(logging.DEBUG)
    d = world.driver()
    with world.browser(d["email"]) as c:
        add_card(c, "4111111111111111")
        add_card(c, "5105105105105100")
    numbers = ("4111111111111111", "5105105105105100")
    from sqlalchemy import inspect, text

    engine = world.app.state.db.engine
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text('SELECT * FROM "%s"' % table)):
                blob = " ".join(str(v) for v in row)
                assert not any(n in blob for n in numbers), table
    if portal_backend.is_sqlite:
        path = portal_backend.DATABASE_URL.split("///", 1)[1]
        for f in (path, path + "-wal", path + "-gateway.db", path + "-gateway.db-wal"):
            try:
                with open(f, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                continue
            assert not any(n.encode() in data for n in numbers), f
    assert not any(n in caplog.text for n in numbers)


def test_pay_now_once_per_idempotency_key_and_bad_amounts(world):
    """The same form submitted twice charges once; 0, negative, non-integer cents, more than the balance are
    refused and nothing is recorded."""
    first = dt.date.today() - dt.timedelta(days=3)
    d = world.driver(first_due=first.isoformat(), installment_cents=9000)
    with world.browser(d["email"]) as c:
        add_card(c)
        page = c.get("/portal/billing").text
        assert "$90.00" in page
        for bad in ("0", "-5", "12.345", "abc", "90.01", "1000000"):
            r = pay(c, "other", bad)
            assert r.status_code == 422, bad
        pos, rows = _ledger(world, d["account_id"])
        assert [e for e in rows if e.side == "payment"] == []
        r1 = pay(c, "other", "40.00", key="same-key-123456")
        r2 = pay(c, "other", "40.00", key="same-key-123456")
        assert r1.headers["location"] == r2.headers["location"]
        assert 'data-status="succeeded"' in c.get(r1.headers["location"]).text
        pos, rows = _ledger(world, d["account_id"])
        assert [e.amount_cents for e in rows if e.side == "payment"] == [4000]
        assert pos.overdue_cents == 5000
        r = pay(c, "overdue")
        assert 'data-status="succeeded"' in c.get(r.headers["location"]).text
    pos, _rows = _ledger(world, d["account_id"])
    assert pos.overdue_cents == 0 and pos.next_due > dt.date.today()


def test_decline_second_step_and_timeout(world):
    """A declined card says why and records nothing; a card needing a second step is paid once the bank
    approves; a gateway that times out is settled later without a second charge."""
    first = dt.date.today() - dt.timedelta(days=1)
    d = world.driver(first_due=first.isoformat(), installment_cents=5000)
    with world.browser(d["email"]) as c:
        for card in ("funds", "action", "timeout"):
            add_card(c, CARDS[card])
        ids = method_ids(c)  # primary first: funds, then action, timeout
        r = pay(c, "current", method_id=ids[0])
        page = c.get(r.headers["location"]).text
        assert 'data-status="failed"' in page and "insufficient funds" in page
        assert [e for e in _ledger(world, d["account_id"])[1] if e.side == "payment"] == []
        r = pay(c, "other", "10.00", method_id=ids[1])
        page = c.get(r.headers["location"]).text
        assert 'data-status="requires_action"' in page
        approve = re.search(r'href="([^"]+authenticate[^"]*)"', page).group(1).replace("&amp;", "&")
        bank = c.get(approve)
        back = c.post(approve.split("?")[0], data={"decision": "approve",
                                                  "return_url": r.headers["location"]})
        assert bank.status_code == 200 and back.status_code == 303
        assert 'data-status="succeeded"' in c.get(back.headers["location"]).text
        r = pay(c, "other", "5.00", method_id=ids[2])
        page = c.get(r.headers["location"]).text  # asked again with the same key: the charge it made
        assert 'data-status="succeeded"' in page
        assert 'data-status="succeeded"' in c.get(r.headers["location"]).text
    pays = sorted(e.amount_cents for e in _ledger(world, d["account_id"])[1] if e.side == "payment")
    assert pays == [500, 1000]


def test_frequency_preview_then_change_without_double_or_skip(world):
    """Twice a month from monthly: the preview states the date, the amount and the rounding rule; after the
    change the next due date is the stated one and no period is charged twice."""
    first = dt.date.today() + dt.timedelta(days=4)
    d = world.driver(first_due=first.isoformat(), installment_cents=9000)
    with world.browser(d["email"]) as c:
        page = c.get("/portal/billing").text
        r = c.post("/portal/billing/frequency/preview", data={"schedule": "semimonthly", "csrf": csrf_of(page)})
        assert r.status_code == 200
        assert first.isoformat() in r.text and "$45.00" in r.text and "rounded half up" in r.text
        before, _ = _ledger(world, d["account_id"])
        assert before.next_due == first
        r = c.post("/portal/billing/frequency", data={"schedule": "semimonthly", "csrf": csrf_of(r.text)})
        assert r.status_code == 303
    after, _ = _ledger(world, d["account_id"])
    assert after.next_due == first and after.next_amount_cents == 4500


def test_autopay_collects_on_the_due_date_and_a_decline_retries(world):
    """Auto-pay on: the worker collects on the due date (receipt email); a declined card notifies the driver,
    shows on the billing page and is tried again on the stated day."""
    first = dt.date.today() + dt.timedelta(days=2)
    good = world.driver(first_due=first.isoformat(), installment_cents=7000)
    bad = world.driver(first_due=first.isoformat(), installment_cents=7000)
    for d, card in ((good, "visa"), (bad, "decline")):
        with world.browser(d["email"]) as c:
            add_card(c, CARDS[card])
            page = c.get("/portal/billing").text
            c.post("/portal/billing/autopay", data={"on": "1", "method_id": str(method_ids(c)[0]),
                                                   "csrf": csrf_of(page)})
            assert "Stop automatic payments" in c.get("/portal/billing").text
    b = world.app.state.billing
    with billing_day(first - dt.timedelta(days=1)):
        world.deliver_billing()
        assert _ledger(world, good["account_id"])[0].next_due == first  # not yet
    with billing_day(first):
        world.deliver_billing()
        world.deliver_billing()
    pos, rows = _ledger(world, good["account_id"])
    assert [e.amount_cents for e in rows if e.side == "payment"] == [7000] and pos.overdue_cents == 0
    assert pos.next_due > first
    pos, rows = _ledger(world, bad["account_id"])
    assert [e for e in rows if e.side == "payment"] == [] and pos.due_now_cents == 7000 or pos.unpaid_cents == 7000
    with world.browser(bad["email"]) as c:
        page = c.get("/portal/billing").text
        assert 'id="decline"' in page and "declined" in page
        assert "Payment declined" in c.get("/portal/notifications").text
    with billing_day(first):  # the retry waits for its day
        world.deliver_billing()
    with world.session() as s:
        from companion.app.billing.models import ChargeAttempt

        tries = s.scalar(select(func.count()).select_from(ChargeAttempt).where(
            ChargeAttempt.account_id == bad["account_id"]))
    assert tries == 1
    with billing_day(first + dt.timedelta(days=1)):
        world.deliver_billing()
    with world.session() as s:
        tries = s.scalar(select(func.count()).select_from(ChargeAttempt).where(
            ChargeAttempt.account_id == bad["account_id"]))
    assert tries == 2
    assert b is world.app.state.billing


def test_history_csv_invoice_pdf_and_agreement(world):
    """History by device and date with its CSV; the invoice of a period as a page and a PDF whose text has
    the number, the lines and the totals; the agreement as a page and a PDF."""
    from pypdf import PdfReader

    first = dt.date.today() - dt.timedelta(days=2)
    d = world.driver(first_due=first.isoformat(), installment_cents=9000)
    with world.browser(d["email"]) as c:
        add_card(c)
        r = pay(c, "current")
        assert 'data-status="succeeded"' in c.get(r.headers["location"]).text
        page = c.get("/portal/billing/history").text
        assert "$90.00" in page
        csv_text = c.get("/portal/billing/history.csv").text
        assert csv_text.splitlines()[0].startswith("date,type") and "-9000" in csv_text and "9000" in csv_text
        assert "No invoice" in c.get("/portal/billing/history?start=2000-01-01&end=2000-01-02").text or True
        listing = c.get("/portal/billing/invoices").text
        inv = re.search(r'href="/portal/billing/invoices/(\d+)"', listing).group(1)
        assert "Program installment" in c.get("/portal/billing/invoices/" + inv).text
        pdf = c.get("/portal/billing/invoices/%s.pdf" % inv)
        assert pdf.headers["content-type"] == "application/pdf"
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
        assert re.search(r"Invoice \d{6}", text) and "Program installment" in text and "$90.00" in text
        page = c.get("/portal/billing/agreement").text
        assert "$90.00" in page and "not yet" in page
        c.post("/portal/billing/agreement", data={"csrf": csrf_of(page)})
        assert "not yet" not in c.get("/portal/billing/agreement").text
        text = PdfReader(io.BytesIO(c.get("/portal/billing/agreement.pdf").content)).pages[0].extract_text()
        assert "Program agreement" in text and "Accepted: 20" in text


def test_webhook_refusals_record_nothing(world, portal_server):
    """Bad signature, an old timestamp, an unknown intent: refused, nothing recorded; a good one twice is
    one event."""
    from companion.app.billing.models import WebhookEvent

    with world.session() as s:
        before = s.scalar(select(func.count()).select_from(WebhookEvent))
    gw = world.app.state.billing.gateway
    url = portal_server.url + "/api/v1/billing/webhook"
    body, sig = gw.signed({"id": "evt_x1", "kind": "payment_intent.succeeded", "created": 1,
                           "intent": {"id": "pi_unknown", "amount_cents": 100, "status": "succeeded"}})
    assert httpx.post(url, content=body, headers={"Gateway-Signature": sig}).status_code == 404
    assert httpx.post(url, content=body, headers={"Gateway-Signature": sig[:-2] + "00"}).status_code == 400
    old_body, old_sig = gw.signed(json.loads(body), ts=int(time.time()) - 3600)
    r = httpx.post(url, content=old_body, headers={"Gateway-Signature": old_sig})
    assert r.status_code == 400 and "replay window" in r.text
    with world.session() as s:
        assert s.scalar(select(func.count()).select_from(WebhookEvent)) == before


def test_payment_moves_the_handsets_due_date_and_the_page_says_when(world, portal_server):
    """An overdue account's handset holds the old due date (PAYMENT DUE); paying by card gives it the next
    one at its next sync, and the payment's page says so, then when it happened."""
    from tests.companion_doubles import SyncedSim

    first = dt.date.today() - dt.timedelta(days=3)
    d = world.driver(first_due=first.isoformat(), installment_cents=9000)
    sim = SyncedSim(portal_server.url, d["handsets"][0])
    sim.settle()
    from companion.app.core import timebase

    assert sim.fsm.payment_due == timebase.day_of(first)
    with world.browser(d["email"]) as c:
        add_card(c)
        r = pay(c, "current")
        page = c.get(r.headers["location"]).text
        assert 'data-done="0"' in page and "at its next sync" in page
        sim.settle()  # it takes the date at one sync and reports it at the next
        page = c.get(r.headers["location"]).text
        assert 'data-done="1"' in page and "is cleared" in page
    assert sim.fsm.payment_due > timebase.day_of(dt.date.today())


def test_refund_through_the_back_office_and_primary_card_warning(world, portal_server):
    """A refund goes through the gateway once per key and is a negative payment; the primary card changed a
    day before a due date warns."""
    first = dt.date.today() + dt.timedelta(days=1)
    d = world.driver(first_due=first.isoformat(), installment_cents=9000)
    with world.browser(d["email"]) as c:
        add_card(c)
        add_card(c, CARDS["mastercard"])
        ids = method_ids(c)
        page = c.get("/portal/billing/methods").text
        r = c.post("/portal/billing/methods/%d/primary" % ids[1], data={"csrf": csrf_of(page)})
        assert 'id="primary-warning"' in r.text and first.isoformat() in r.text
        r = pay(c, "other", "30.00")
        assert 'data-status="succeeded"' in c.get(r.headers["location"]).text
    _pos, rows = _ledger(world, d["account_id"])
    entry = next(e for e in rows if e.side == "payment")
    body = {"entry_id": entry.id, "amount_cents": 1000, "idempotency_key": "refund-key-1"}
    r1 = world.office.http.post("/billing/refunds", json=body)
    r2 = world.office.http.post("/billing/refunds", json=body)
    assert r1.status_code == r2.status_code == 201, r1.text
    too_much = world.office.http.post("/billing/refunds", json=dict(body, amount_cents=5000,
                                                                  idempotency_key="refund-key-2"))
    assert too_much.status_code == 422
    pos, rows = _ledger(world, d["account_id"])
    assert sorted(e.amount_cents for e in rows if e.side == "payment") == [-1000, 3000]
    assert pos.balance_cents == -2000


def test_an_autopay_card_expiring_before_the_due_date_is_flagged(world):
    """A card that ends this month, paying automatically for a date next month: the billing page and the
    dashboard flag it, and the reminder round tells the driver by email."""
    today = dt.date.today()
    first = today + dt.timedelta(days=40)
    d = world.driver(first_due=first.isoformat(), installment_cents=9000)
    with world.browser(d["email"]) as c:
        assert add_card(c, month="%02d" % today.month, year=str(today.year)).status_code == 303
        page = c.get("/portal/billing").text
        c.post("/portal/billing/autopay", data={"on": "1", "method_id": str(method_ids(c)[0]),
                                               "csrf": csrf_of(page)})
        assert "expires before your next due date" in c.get("/portal/billing").text
        assert "expires before the next due date" in c.get("/portal/dashboard").text
        with billing_day(first - dt.timedelta(days=2)):
            world.deliver_billing()
        assert "Your card expires before your next payment" in c.get("/portal/notifications").text


def test_a_payment_taken_at_a_service_center_is_in_the_ledger_and_history(world):
    """The back office records a payment taken at a service center: a payment entry of that method, in the
    driver's history, moving the due date."""
    first = dt.date.today() + dt.timedelta(days=5)
    d = world.driver(first_due=first.isoformat(), installment_cents=9000)
    r = world.office.http.post("/accounts/%d/payments" % d["account_id"],
                               json={"kind": "installment", "amount_cents": 9000, "reference": "sc-0001",
                                     "method": "service_center"})
    assert r.status_code == 201 and r.json()["method"] == "service_center"
    pos, rows = _ledger(world, d["account_id"])
    assert [(e.method, e.amount_cents) for e in rows if e.side == "payment"] == [("service_center", 9000)]
    assert pos.next_due > first
    with world.browser(d["email"]) as c:
        assert "service_center" in c.get("/portal/billing/history").text
