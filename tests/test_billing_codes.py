"""Unlock-code fees as real charges: the code page shows the fee before confirming; a paid fee issues the code
(booked on the device: the charge and the card payment that pays it); a declined card issues nothing and books
nothing; a second click, a second step and webhooks delivered twice or under another event id issue one code
and charge once; a free program issues codes as before, and a paid one refuses the free route."""

import json
import re

import httpx
from sqlalchemy import func, select

from tests.billing_support import CARDS, add_card, method_ids
from tests.portal_client import csrf_of

pytest_plugins = ["tests.portal_support"]


def _codes(world, handset_id):
    from companion.app.models import UnlockCode

    with world.session() as s:
        return s.scalar(select(func.count()).select_from(UnlockCode).where(UnlockCode.handset_id == handset_id))


def _book(world, account_id):
    from companion.app.billing import ledger

    with world.session() as s:
        return [(e.side, e.kind, e.amount_cents, e.handset_id) for e in ledger.entries(s, account_id)
                if e.kind == "code_fee"]


def _buy(c, link_id, method_id, key=None, action="clear"):
    page = c.get("/portal/billing/code/%d" % link_id).text
    form_key = key or re.search(r'name="key" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return c.post("/portal/billing/code/%d" % link_id, data={"action": action, "method_id": str(method_id),
                                                            "key": form_key, "csrf": csrf_of(page)})


def test_the_fee_is_shown_then_a_paid_fee_issues_the_code_once(world):
    """$4.00 a code: the code page and the confirmation show it; paying shows the code on the payment's page;
    the fee is a charge on the device paid by the card payment; the same form twice is the same payment."""
    d = world.driver(code_fee_cents=400)
    link, handset = d["devices"][0], d["handsets"][0]["device_id"]
    with world.browser(d["email"]) as c:
        page = c.get("/portal/devices/%d/code" % link).text
        assert 'id="code-fee"' in page and "$4.00" in page and "/portal/billing/code/%d" % link in page
        add_card(c)
        page = c.get("/portal/billing/code/%d" % link).text
        assert "The code costs $4.00" in page and "Pay $4.00 and get the code" in page
        assert _codes(world, handset) == 0 and _book(world, d["account_id"]) == []  # nothing before confirming
        key = re.search(r'name="key" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = _buy(c, link, method_ids(c)[0], key=key)
        assert r.status_code == 303, r.text
        again = _buy(c, link, method_ids(c)[0], key=key)  # a double click: the same payment
        assert again.headers["location"] == r.headers["location"]
        paid = c.get(r.headers["location"]).text
        assert 'data-status="succeeded"' in paid and 'id="paid-code"' in paid
        code = re.search(r'<p class="code"[^>]*>(\d{8})</p>', paid)
        assert code, paid
    assert _codes(world, handset) == 1
    assert _book(world, d["account_id"]) == [("charge", "code_fee", 400, handset), ("payment", "code_fee", 400,
                                                                                    handset)]
    from companion.app.billing import ledger
    from companion.app.models import Account

    with world.session() as s:
        assert ledger.position(s, s.get(Account, d["account_id"])).balance_cents == 0


def test_a_declined_card_issues_no_code_and_books_nothing(world):
    """The card is declined: the payment's page says why, no code, no charge or payment in the ledger."""
    d = world.driver(code_fee_cents=400)
    link, handset = d["devices"][0], d["handsets"][0]["device_id"]
    with world.browser(d["email"]) as c:
        add_card(c, CARDS["decline"])
        r = _buy(c, link, method_ids(c)[0])
        page = c.get(r.headers["location"]).text
        assert 'data-status="failed"' in page and "declined" in page and 'id="paid-code"' not in page
    assert _codes(world, handset) == 0 and _book(world, d["account_id"]) == []


def test_second_step_then_webhooks_twice_and_under_another_id_issue_one_code(world, portal_server):
    """A card that needs the bank's approval: no code until approved; then the webhooks arrive twice, and once
    more under another event id: one code, one charge, one payment."""
    d = world.driver(code_fee_cents=250)
    link, handset = d["devices"][0], d["handsets"][0]["device_id"]
    gw = world.app.state.billing.gateway
    url = portal_server.url + "/api/v1/billing/webhook"
    with world.browser(d["email"]) as c:
        add_card(c, CARDS["action"])
        r = _buy(c, link, method_ids(c)[0])
        page = c.get(r.headers["location"]).text
        assert 'data-status="requires_action"' in page and 'id="paid-code"' not in page
        assert _codes(world, handset) == 0
        approve = re.search(r'href="([^"]+authenticate[^"]*)"', page).group(1).replace("&amp;", "&")
        intent_id = approve.split("/intents/")[1].split("/")[0]
        c.get(approve)
        c.post(approve.split("?")[0], data={"decision": "approve", "return_url": r.headers["location"]})
        mine = [(body, sig) for body, sig in gw.pending_events() if intent_id.encode() in body]
        assert mine
        for body, sig in mine + mine:
            assert httpx.post(url, content=body, headers={"Gateway-Signature": sig}).status_code == 200
        event = json.loads(mine[-1][0])
        event["id"] = event["id"] + "x"
        body, sig = gw.signed(event)
        assert httpx.post(url, content=body, headers={"Gateway-Signature": sig}).status_code == 200
        page = c.get(r.headers["location"]).text
        assert 'data-status="succeeded"' in page and 'id="paid-code"' in page
    assert _codes(world, handset) == 1
    assert [x[:3] for x in _book(world, d["account_id"])] == [("charge", "code_fee", 250),
                                                              ("payment", "code_fee", 250)]


def test_a_free_program_issues_codes_as_before_and_a_paid_one_refuses_the_free_route(world):
    """code_fee_cents 0: the code page issues at once, nothing booked, and the buy page says codes are free;
    a program with a fee: the free route (page and API) refuses and issues nothing."""
    free = world.driver()
    with world.browser(free["email"]) as c:
        page = c.get("/portal/devices/%d/code" % free["devices"][0]).text
        assert 'id="code-fee"' not in page
        r = c.post("/portal/devices/%d/code" % free["devices"][0], data={"action": "clear", "csrf": csrf_of(page)})
        assert r.status_code == 200 and re.search(r"\d{8}", r.text)
        assert "Unlock codes are free" in c.get("/portal/billing/code/%d" % free["devices"][0]).text
    assert _book(world, free["account_id"]) == []
    paid = world.driver(code_fee_cents=400)
    link, handset = paid["devices"][0], paid["handsets"][0]["device_id"]
    with world.browser(paid["email"]) as c:
        page = c.get("/portal/devices/%d/code" % link).text
        r = c.post("/portal/devices/%d/code" % link, data={"action": "clear", "csrf": csrf_of(page)})
        assert r.status_code == 402 and "fee" in r.text
    token = world.api_token(paid["email"])["access_token"]
    r = httpx.post(world.server.url + "/api/v1/portal/devices/%d/unlock-codes" % link, json={"action": "clear"},
                   headers={"authorization": "Bearer " + token})
    assert r.status_code == 402, r.text
    assert _codes(world, handset) == 0 and _book(world, paid["account_id"]) == []
