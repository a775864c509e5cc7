"""Billing attacked at its edges: no charge of any kind after the program has ended (pay now, the invoices
page's accrual), whatever the billing clock says."""

import datetime as dt

from sqlalchemy import select

from tests.billing_support import add_card, billing_day, pay

pytest_plugins = ["tests.portal_support"]


def _end_program(world, account_id):
    from companion.app.service import programs
    from companion.app.service.models import Program
    from tests.service_support import set_program

    set_program(world, account_id, "AZ", dt.date.today())
    with world.session() as s:
        programs.end(s, world.ctx.ps, s.get(Program, account_id))
        s.commit()


def _charges(world, account_id):
    from companion.app.models import LedgerEntry

    with world.session() as s:
        return list(s.scalars(select(LedgerEntry).where(LedgerEntry.account_id == account_id,
                                                        LedgerEntry.side == "charge")))


def test_no_charge_after_the_program_has_ended(world):
    """An ended program: pay now finds nothing to pay (the next installment is not owed), and neither pay
    now nor the invoices page posts an installment that falls due after the end."""
    first = dt.date.today() + dt.timedelta(days=10)
    d = world.driver(first_due=first.isoformat())
    with world.browser(d["email"]) as c:
        assert add_card(c).status_code == 303
        _end_program(world, d["account_id"])
        with billing_day(first + dt.timedelta(days=40)):
            r = pay(c, "current")
            assert r.status_code == 422, r.text
            r = pay(c, "other", "10.00")
            assert r.status_code == 422, r.text
            assert c.get("/portal/billing/invoices").status_code == 200
    assert _charges(world, d["account_id"]) == []
    from companion.app.billing.models import ChargeAttempt

    with world.session() as s:
        assert s.scalar(select(ChargeAttempt.id).where(ChargeAttempt.account_id == d["account_id"])) is None


def test_the_dashboard_gives_the_due_date_the_ledger_derived(world):
    """The dashboard's one statement carries the ledger's next due date: after paying ahead, the page and the
    API give the date the payment moved (not the schedule's first date), and neither fails."""
    import httpx

    from companion.app.models import Account

    first = dt.date.today() + dt.timedelta(days=10)
    d = world.driver(first_due=first.isoformat())
    with world.browser(d["email"]) as c:
        assert add_card(c).status_code == 303
        assert pay(c, "current").status_code == 303
        assert c.get("/portal/dashboard").status_code == 200
    with world.session() as s:
        moved = s.get(Account, d["account_id"]).next_due
    assert moved is not None and moved > first
    token = world.api_token(d["email"])["access_token"]
    r = httpx.get(world.server.url + "/api/v1/portal/dashboard", headers={"authorization": "Bearer " + token})
    assert r.status_code == 200, r.text
    assert r.json()["next_due"] == moved.isoformat()
