"""Helpers of the billing tests: cards through the sandbox's tokenization endpoint, a moved billing clock."""

import contextlib
import datetime as dt
import re

import httpx

from tests.portal_client import csrf_of

CARDS = {
    "visa": "4242424242424242",
    "mastercard": "5555555555554444",
    "decline": "4000000000000002",
    "funds": "4000000000009995",
    "expired": "4000000000000069",
    "action": "4000002760003184",
    "timeout": "4000000000000119",
    "amex": "378282246310005",
}


def add_card(c: httpx.Client, number: str = CARDS["visa"], month: str = "12", year: str = "2031",
             cvc: str = "123") -> httpx.Response:
    """Add a card through the pages: the form posts to the gateway, which sends the browser back with a
    token; the confirmation page saves it. Returns the last response."""
    page = c.get("/portal/billing/methods").text
    action = re.search(r'<form method="post" action="([^"]+)" id="card-form"', page)
    assert action, "no card form"
    r = c.post(action.group(1), data={"number": number, "exp_month": month, "exp_year": year, "cvc": cvc,
                                      "return_url": "/portal/billing/methods/new"})
    assert r.status_code == 303, r.text
    back = c.get(r.headers["location"])
    if back.status_code != 200:
        return back
    token = re.search(r'name="token" value="([^"]+)"', back.text)
    assert token
    return c.post("/portal/billing/methods", data={"token": token.group(1), "csrf": csrf_of(back.text)})


def method_ids(c: httpx.Client) -> list[int]:
    """The ids of the saved cards, primary first."""
    return [int(x) for x in re.findall(r'data-method="(\d+)"', c.get("/portal/billing/methods").text)]


def pay(c: httpx.Client, choice: str, amount: str = "", method_id: int | None = None,
        key: str | None = None) -> httpx.Response:
    """Submit the pay-now form."""
    page = c.get("/portal/billing/pay").text
    form_key = key or re.search(r'name="key" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    mid = method_id or method_ids(c)[0]
    shown = dict(re.findall(r'name="(shown_(?:overdue|current|ahead))" value="(\d*)"', page))
    return c.post("/portal/billing/pay", data={"choice": choice, "amount": amount, "method_id": str(mid),
                                               "key": form_key, "csrf": csrf_of(page), **shown})


@contextlib.contextmanager
def billing_day(day: dt.date):
    """Billing's clock on `day` (noon UTC) for the block."""
    from companion.app.billing import ledger

    ledger.set_clock(lambda: dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC))
    try:
        yield
    finally:
        ledger.set_clock(None)
