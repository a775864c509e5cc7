"""Adversarial review of the money, sync and service-port paths: each test here failed on the code before
its fix (or is a strict xfail naming what is left)."""

import datetime as dt
import re

import httpx
from sqlalchemy import select

from tests.billing_support import CARDS, add_card, method_ids
from tests.portal_client import csrf_of

pytest_plugins = ["tests.portal_support"]


def _position(world, account_id):
    from companion.app.billing import ledger
    from companion.app.models import Account

    with world.session() as s:
        account = s.get(Account, account_id)
        return ledger.position(s, account), ledger.entries(s, account_id)


def _deliver_webhooks(world, portal_server):
    """Every event the sandbox holds, posted to the companion's webhook as the gateway would."""
    gw = world.app.state.billing.gateway
    url = portal_server.url + "/api/v1/billing/webhook"
    for body, sig in gw.pending_events(limit=1000):
        httpx.post(url, content=body, headers={"Gateway-Signature": sig})


def _reset_fee(c, link_id, method_id):
    form = c.get("/portal/billing/reset-fee/%d" % link_id)
    key = re.search(r'name="key" value="([^"]+)"', form.text).group(1)
    return c.post("/portal/billing/reset-fee/%d" % link_id,
                  data={"key": key, "method_id": str(method_id), "csrf": csrf_of(form.text)})


def test_a_second_reset_fee_refunded_is_not_charged_to_the_driver_by_its_refund_event(world, portal_server):
    """Two reset-fee payments for one lockout (one waiting on the bank's second step while the other
    succeeds): the late one is refunded. Its refund event must not post a refund of a payment the ledger
    never took (that made the driver owe the fee again)."""
    from companion.app.billing.models import ChargeAttempt
    from host_sim.http_modem import MemoryModem  # noqa: F401  (firmware on sys.path for the doubles)
    from tests.companion_doubles import SyncedSim

    d = world.driver(reset_fee_cents=7500, first_due=(dt.date.today() + dt.timedelta(days=20)).isoformat())
    sim = SyncedSim(portal_server.url, d["handsets"][0])
    sim.violation_lockout()
    sim.settle()
    gw = world.app.state.billing.gateway
    with world.browser(d["email"]) as c:
        assert add_card(c, CARDS["action"]).status_code == 303
        assert add_card(c).status_code == 303
        action, visa = method_ids(c)
        r1 = _reset_fee(c, d["devices"][0], action)
        assert r1.status_code == 303, r1.text
        assert 'data-status="requires_action"' in c.get(r1.headers["location"]).text
        r2 = _reset_fee(c, d["devices"][0], visa)
        assert r2.status_code == 303, r2.text
        assert 'data-status="succeeded"' in c.get(r2.headers["location"]).text
        before, rows_before = _position(world, d["account_id"])
        with world.session() as s:
            late = s.get(ChargeAttempt, int(r1.headers["location"].rsplit("/", 1)[1]))
            intent_id = late.intent_id
        gw.authenticate(intent_id, True)  # the bank approves the first one after all
        c.get(r1.headers["location"])  # the payment page asks the gateway: the late success is refunded
        _deliver_webhooks(world, portal_server)
        c.get(r1.headers["location"])
    with world.session() as s:
        assert s.get(ChargeAttempt, late.id).status == "refunded"
    assert gw.retrieve(intent_id).refunded_cents == 7500
    after, rows = _position(world, d["account_id"])
    assert [e.amount_cents for e in rows if e.intent_id == intent_id] == []
    assert after.balance_cents == before.balance_cents
    assert len(rows) == len(rows_before)



def test_pay_now_from_two_tabs_takes_the_balance_they_showed_once(world):
    """Two pay-now forms (two tabs, so two idempotency keys) both showing $90 owed: the first pays it; the
    second, for the same shown balance, must not take another $90 (it paid the next installment ahead: "the
    current balance" was recomputed at submit time). It is refused in words, nothing charged."""
    from tests.billing_support import pay

    d = world.driver(first_due=(dt.date.today() - dt.timedelta(days=1)).isoformat(), installment_cents=9000)
    with world.browser(d["email"]) as c1, world.browser(d["email"]) as c2:
        assert add_card(c1).status_code == 303
        page2 = c2.get("/portal/billing/pay").text
        assert "$90.00" in page2
        key2 = re.search(r'name="key" value="([^"]+)"', page2).group(1)
        shown = re.search(r'name="shown_current" value="(\d+)"', page2).group(1)
        assert shown == "9000"
        assert pay(c1, "current").status_code == 303
        r2 = c2.post("/portal/billing/pay", data={"choice": "current", "amount": "", "key": key2,
                                                 "shown_current": shown, "shown_overdue": "9000",
                                                 "method_id": str(method_ids(c2)[0]), "csrf": csrf_of(page2)})
        assert r2.status_code == 409, r2.text
        assert "Your balance changed since this page was shown" in r2.text
    _pos, rows = _position(world, d["account_id"])
    assert sorted(e.amount_cents for e in rows if e.side == "payment") == [9000]


def test_pay_now_by_the_api_is_refused_when_the_balance_moved(world):
    """The JSON API the same: the balance the client showed is required for overdue/current, and a balance
    that moved since is a 409 with nothing charged."""
    d = world.driver(first_due=(dt.date.today() - dt.timedelta(days=1)).isoformat(), installment_cents=9000)
    with world.browser(d["email"]) as c:
        assert add_card(c).status_code == 303
        card = method_ids(c)[0]
    url = world.server.url + "/api/v1/portal/billing/pay"
    bearer = {"authorization": "Bearer " + world.api_token(d["email"])["access_token"]}
    body = {"choice": "current", "method_id": card, "idempotency_key": "api-tab-one-0001"}
    r = httpx.post(url, json=body, headers=bearer)
    assert r.status_code == 422, r.text  # what was shown is required
    r = httpx.post(url, json=dict(body, shown_cents=9000), headers=bearer)
    assert r.status_code == 201, r.text
    r = httpx.post(url, json=dict(body, shown_cents=9000, idempotency_key="api-tab-two-0002"), headers=bearer)
    assert r.status_code == 409, r.text
    assert r.json()["kind"] == "balance-moved" if "kind" in r.json() else "balance-moved" in r.text
    _pos, rows = _position(world, d["account_id"])
    assert sorted(e.amount_cents for e in rows if e.side == "payment") == [9000]


def test_a_handset_moved_to_another_account_is_no_longer_the_first_drivers(world):
    """Staff attach a handset to another driver's account (the admin API's PATCH /handsets/{id}, as after a
    removal and a new install). The first driver's old device link must give them nothing of it: no unlock
    code from the new account's allowance, no record of the new driver's events, no reset fee."""
    a = world.driver(allow_codes=True, codes_per_period=3)
    b = world.driver(devices=0, allow_codes=True, codes_per_period=3)
    device_id = a["handsets"][0]["device_id"]
    link = a["devices"][0]
    r = world.office.http.patch("/handsets/%d" % device_id, json={"account_id": b["account_id"]})
    assert r.status_code == 200, r.text
    with world.browser(a["email"]) as c:
        for path in ("/portal/devices/%d/code" % link, "/portal/record/%d" % link,
                     "/portal/billing/reset-fee/%d" % link):
            assert c.get(path).status_code == 404, path
        r = c.post("/portal/devices/%d/code" % link, data={"action": "clear", "csrf": csrf_of(
            c.get("/portal/dashboard").text)})
        assert r.status_code == 404, r.text
    token = world.api_token(a["email"])["access_token"]
    r = httpx.post(world.server.url + "/api/v1/portal/devices/%d/unlock-codes" % link, json={"action": "clear"},
                   headers={"authorization": "Bearer " + token})
    assert r.status_code == 404, r.text
    from companion.app.models import UnlockCode

    with world.session() as s:
        assert s.scalar(select(UnlockCode.id).where(UnlockCode.handset_id == device_id)) is None


def test_a_handset_detached_from_its_account_leaves_the_drivers_devices(world):
    """Staff detach a handset (account_id null): the driver's old link gives no code and no record."""
    a = world.driver(allow_codes=True, codes_per_period=3)
    link = a["devices"][0]
    r = world.office.http.patch("/handsets/%d" % a["handsets"][0]["device_id"], json={"account_id": None})
    assert r.status_code == 200, r.text
    with world.browser(a["email"]) as c:
        assert c.get("/portal/devices/%d/code" % link).status_code == 404
        assert c.get("/portal/record/%d" % link).status_code == 404


def test_a_card_token_saved_by_one_account_cannot_be_saved_by_another(world):
    """The gateway sends the browser back with the card's token in the URL (so it lands in access logs and
    browser history). Another driver who gets hold of it must not be able to save that card and pay with it:
    a token belongs to the account that saved it first."""
    import urllib.parse

    a = world.driver(first_due=(dt.date.today() - dt.timedelta(days=1)).isoformat())
    b = world.driver(first_due=(dt.date.today() - dt.timedelta(days=1)).isoformat())
    with world.browser(a["email"]) as c:
        page = c.get("/portal/billing/methods").text
        action = re.search(r'<form method="post" action="([^"]+)" id="card-form"', page).group(1)
        r = c.post(action, data={"number": CARDS["visa"], "exp_month": "12", "exp_year": "2031", "cvc": "123",
                                 "return_url": "/portal/billing/methods/new"})
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["location"]).query)["token"][0]
        back = c.get(r.headers["location"])
        assert c.post("/portal/billing/methods", data={"token": token, "csrf": csrf_of(back.text)}
                      ).status_code == 303
    bearer = {"authorization": "Bearer " + world.api_token(b["email"])["access_token"]}
    r = httpx.post(world.server.url + "/api/v1/portal/billing/methods", json={"token": token}, headers=bearer)
    assert r.status_code in (409, 422), r.text
    r = httpx.get(world.server.url + "/api/v1/portal/billing/methods", headers=bearer)
    assert r.json() == []


def test_a_reset_fee_approved_after_its_handset_left_the_account_is_refunded(world, portal_server):
    """The reset fee waits on the bank's second step; meanwhile staff attach the handset to another account.
    When the bank approves, the charge cannot clear a handset that is no longer the driver's: it is refunded
    (it was a server error on every look and every webhook, the money kept with nothing in the ledger)."""
    from companion.app.billing.models import ChargeAttempt
    from host_sim.http_modem import MemoryModem  # noqa: F401  (firmware on sys.path for the doubles)
    from tests.companion_doubles import SyncedSim

    d = world.driver(reset_fee_cents=7500)
    other = world.driver(devices=0)
    sim = SyncedSim(portal_server.url, d["handsets"][0])
    sim.violation_lockout()
    sim.settle()
    gw = world.app.state.billing.gateway
    with world.browser(d["email"]) as c:
        assert add_card(c, CARDS["action"]).status_code == 303
        r = _reset_fee(c, d["devices"][0], method_ids(c)[0])
        assert r.status_code == 303, r.text
        attempt_id = int(r.headers["location"].rsplit("/", 1)[1])
        with world.session() as s:
            intent_id = s.get(ChargeAttempt, attempt_id).intent_id
        moved = world.office.http.patch("/handsets/%d" % d["handsets"][0]["device_id"],
                                        json={"account_id": other["account_id"]})
        assert moved.status_code == 200, moved.text
        gw.authenticate(intent_id, True)
        page = c.get(r.headers["location"])
        assert page.status_code == 200, page.text
        assert 'data-status="refunded"' in page.text
    _deliver_webhooks(world, portal_server)
    assert gw.retrieve(intent_id).refunded_cents == 7500
    _pos, rows = _position(world, d["account_id"])
    assert [e for e in rows if e.intent_id == intent_id] == []


def test_a_paid_clear_that_expired_before_the_handset_synced_is_sent_again(world, portal_server):
    """A locked-out car may stay parked, its handset out of coverage, longer than a command lives (72 h). The
    fee is paid once; a clear that expired unsent must not leave the driver locked out with the fee paid and
    a second payment refused: the worker queues the paid clear again while the handset still reports that
    lockout, and the next sync applies it."""
    from sqlalchemy import update

    from companion.app.core import timebase
    from companion.app.models import Command, Payment
    from host_sim.http_modem import MemoryModem  # noqa: F401  (firmware on sys.path for the doubles)
    from tests.companion_doubles import SyncedSim

    d = world.driver(reset_fee_cents=7500)
    hs = d["handsets"][0]
    sim = SyncedSim(portal_server.url, hs)
    lockout = sim.violation_lockout()
    sim.settle()
    paid = world.office.pay(d["account_id"], "reset_fee", 7500, device_id=hs["device_id"])
    with world.session() as s:
        first = s.get(Payment, paid["id"]).command_id
        s.execute(update(Command).where(Command.id == first).values(expires=timebase.device_now() - 1))
        s.commit()
    sim.settle()
    with world.session() as s:
        assert s.get(Command, first).status == "expired"
    assert sim.fsm.vlock and sim.fsm.lockout_id == lockout
    world.deliver_billing()
    sim.settle()
    assert not sim.fsm.vlock
    with world.session() as s:
        p = s.get(Payment, paid["id"])
        assert p.command_id != first and s.get(Command, p.command_id).status == "applied"
        # one clear per lockout: the worker sends nothing more now it is applied
    world.deliver_billing()
    with world.session() as s:
        assert len(s.scalars(select(Command).where(Command.handset_id == hs["device_id"],
                                                   Command.kind == "clear")).all()) == 2


def test_a_refunded_reset_fee_gets_no_new_clear(world, portal_server):
    """The paid clear expired, but the fee was refunded: the worker queues nothing (no free clear)."""
    from sqlalchemy import update

    from companion.app.core import timebase
    from companion.app.models import Command, Payment
    from host_sim.http_modem import MemoryModem  # noqa: F401  (firmware on sys.path for the doubles)
    from tests.companion_doubles import SyncedSim

    d = world.driver(reset_fee_cents=7500)
    hs = d["handsets"][0]
    sim = SyncedSim(portal_server.url, hs)
    sim.violation_lockout()
    sim.settle()
    with world.browser(d["email"]) as c:
        assert add_card(c).status_code == 303
        r = _reset_fee(c, d["devices"][0], method_ids(c)[0])
        assert 'data-status="succeeded"' in c.get(r.headers["location"]).text
    with world.session() as s:
        p = s.scalar(select(Payment).where(Payment.account_id == d["account_id"], Payment.side == "payment",
                                           Payment.kind == "reset_fee"))
        s.execute(update(Command).where(Command.id == p.command_id).values(expires=timebase.device_now() - 1))
        s.commit()
        payment_id = p.id
    r = world.office.http.post("/billing/refunds", json={"entry_id": payment_id, "amount_cents": 7500,
                                                         "idempotency_key": "refund-fee-%d" % payment_id})
    assert r.status_code == 201, r.text
    sim.settle()
    world.deliver_billing()
    sim.settle()
    assert sim.fsm.vlock
    with world.session() as s:
        assert len(s.scalars(select(Command).where(Command.handset_id == hs["device_id"],
                                                   Command.kind == "clear")).all()) == 1


def test_a_second_back_office_reset_fee_for_one_lockout_is_refused(world, portal_server):
    """Two reset-fee payments recorded by the back office for one lockout under different references (two
    clerks, a payment keyed in twice): the second took the money again for the one clear queued. It is
    refused, nothing recorded; the same reference again is still the first payment."""
    from host_sim.http_modem import MemoryModem  # noqa: F401  (firmware on sys.path for the doubles)
    from tests.companion_doubles import SyncedSim

    d = world.driver(reset_fee_cents=7500)
    hs = d["handsets"][0]
    sim = SyncedSim(portal_server.url, hs)
    sim.violation_lockout()
    sim.settle()
    first = world.office.pay(d["account_id"], "reset_fee", 7500, reference="clerk-a-1", device_id=hs["device_id"])
    _before, rows_before = _position(world, d["account_id"])
    r = world.office.http.post("/accounts/%d/payments" % d["account_id"], json={
        "kind": "reset_fee", "amount_cents": 7500, "reference": "clerk-b-1", "device_id": hs["device_id"]})
    assert r.status_code == 409, r.text
    assert "paid already" in r.text
    _after, rows = _position(world, d["account_id"])
    assert len(rows) == len(rows_before)
    again = world.office.pay(d["account_id"], "reset_fee", 7500, reference="clerk-a-1", device_id=hs["device_id"])
    assert again["id"] == first["id"]


def test_a_clear_paid_before_its_handset_moved_shows_the_payers_label_not_the_new_drivers(world):
    """The first driver paid the reset fee; then staff moved the handset to another account and linked it
    there as "Van of driver two". The first driver's clear page and the clear's notification looked the label
    up by handset and showed the new driver's label: they look it up by the payment's account."""
    from sqlalchemy import update

    from companion.app.accounts import staff
    from companion.app.accounts.models import User
    from companion.app.models import Command, Handset, Payment, utcnow
    from companion.app.notifications.models import Notification

    a = world.driver(reset_fee_cents=7500)
    b = world.driver(devices=0)
    hs = a["handsets"][0]
    with world.session() as s:  # the handset reported a violation lockout
        s.execute(update(Handset).where(Handset.id == hs["device_id"]).values(lockout_id=42))
        s.commit()
    paid = world.office.pay(a["account_id"], "reset_fee", 7500, device_id=hs["device_id"])
    r = world.office.http.patch("/handsets/%d" % hs["device_id"], json={"account_id": b["account_id"]})
    assert r.status_code == 200, r.text
    with world.session() as s:
        staff.link_device(s, None, b["account_id"], "interlock", hs["device_id"], label="Van of driver two")
        cmd_id = s.get(Payment, paid["id"]).command_id
        s.execute(update(Command).where(Command.id == cmd_id).values(status="applied", acked_at=utcnow(),
                                                                     delivered_at=utcnow()))
        s.commit()
    world.deliver()
    with world.browser(a["email"]) as c:
        page = c.get("/portal/clears/%d" % paid["id"])
        assert page.status_code == 200, page.text
        assert "Van of driver two" not in page.text
    with world.session() as s:
        notes = s.scalars(select(Notification).join(User, User.id == Notification.user_id).where(
            User.account_id == a["account_id"], Notification.kind == "clear-applied")).all()
        assert notes and all("Van of driver two" not in str(n.params) for n in notes)



def test_a_reset_fee_paid_for_a_lockout_cleared_at_the_service_port_is_refunded(world, portal_server):
    """A technician clears the lockout at the service port; before the handset syncs, the driver pays the
    reset fee by card (the companion still sees the lockout). At the sync the handset refuses the clear (its
    lockout is over): the fee was kept with nothing to show for it. It is refunded to the card, the charge is
    waived (nothing owed), the driver is told, and a second round refunds nothing more."""
    from companion.app.models import Command, Payment
    from companion.app.notifications.models import Notification
    from fsm import records
    from tests.companion_doubles import SyncedSim

    d = world.driver(reset_fee_cents=7500)
    hs = d["handsets"][0]
    sim = SyncedSim(portal_server.url, hs)
    sim.violation_lockout()
    sim.settle()
    before, _rows = _position(world, d["account_id"])
    sim.fsm.clear_violation(records.SRC_TECH, 7)  # at the service port, not synced yet
    gw = world.app.state.billing.gateway
    with world.browser(d["email"]) as c:
        assert add_card(c).status_code == 303
        r = _reset_fee(c, d["devices"][0], method_ids(c)[0])
        assert 'data-status="succeeded"' in c.get(r.headers["location"]).text
    sim.settle()
    with world.session() as s:
        p = s.scalar(select(Payment).where(Payment.account_id == d["account_id"], Payment.side == "payment",
                                           Payment.kind == "reset_fee", Payment.method == "card"))
        assert s.get(Command, p.command_id).status == "refused"
        payment_id, intent_id = p.id, p.intent_id
    world.deliver_billing()
    world.deliver_billing()
    assert gw.retrieve(intent_id).refunded_cents == 7500
    after, rows = _position(world, d["account_id"])
    assert after.balance_cents == before.balance_cents and after.unpaid_cents == before.unpaid_cents
    assert sorted((e.method, e.amount_cents) for e in rows if e.side == "payment") == [
        ("card", 7500), ("refund", -7500), ("waiver", 7500)]
    with world.session() as s:
        told = s.scalars(select(Notification).where(Notification.kind == "fee-refunded")).all()
        assert [n.link for n in told] == ["/portal/clears/%d" % payment_id]


def test_two_handsets_reporting_the_same_lockout_number_each_take_their_fee(world):
    """Lockout ids are numbers in each handset's own log, so two handsets of one account can report the same
    one. The first handset's fee (back office) must not make the second's look paid: its card payment is
    taken and queues its own clear (it was refused as paid, or refunded)."""
    from sqlalchemy import update

    from companion.app.models import Command, Handset, Payment

    d = world.driver(devices=2, reset_fee_cents=7500)
    one, two = (h["device_id"] for h in d["handsets"])
    with world.session() as s:
        s.execute(update(Handset).where(Handset.id.in_([one, two])).values(lockout_id=42))
        s.commit()
    world.office.pay(d["account_id"], "reset_fee", 7500, device_id=one)
    with world.browser(d["email"]) as c:
        assert add_card(c).status_code == 303
        r = _reset_fee(c, d["devices"][1], method_ids(c)[0])
        assert r.status_code == 303, r.text
        assert 'data-status="succeeded"' in c.get(r.headers["location"]).text
    with world.session() as s:
        paid = s.scalars(select(Payment).where(Payment.account_id == d["account_id"], Payment.side == "payment",
                                               Payment.kind == "reset_fee")).all()
        assert sorted(p.handset_id for p in paid) == sorted([one, two])
        assert {s.get(Command, p.command_id).handset_id for p in paid} == {one, two}
