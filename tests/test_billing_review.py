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


def test_a_reset_fee_of_nothing_is_refused_before_any_charge(world, portal_server):
    """A program with no reset fee: the reset-fee form is refused with words (not a server error), and no
    payment attempt is left behind waiting forever."""
    from companion.app.billing.models import ChargeAttempt
    from host_sim.http_modem import MemoryModem  # noqa: F401  (firmware on sys.path for the doubles)
    from tests.billing_support import method_ids
    from tests.companion_doubles import SyncedSim
    from tests.portal_client import csrf_of

    d = world.driver(reset_fee_cents=0)
    sim = SyncedSim(portal_server.url, d["handsets"][0])
    sim.violation_lockout()
    sim.settle()
    with world.browser(d["email"]) as c:
        assert add_card(c).status_code == 303
        form = c.get("/portal/billing/reset-fee/%d" % d["devices"][0])
        body = {"key": "ref-" + "z" * 12, "method_id": str(method_ids(c)[0]), "csrf": csrf_of(form.text)}
        r = c.post("/portal/billing/reset-fee/%d" % d["devices"][0], data=body)
        assert r.status_code == 422, r.text
    with world.session() as s:
        assert s.scalar(select(ChargeAttempt.id).where(ChargeAttempt.account_id == d["account_id"])) is None


def test_a_charge_the_gateway_refuses_outright_ends_as_failed(world, monkeypatch):
    """The gateway refuses the request itself (a token it no longer knows): the payment ends as failed with
    the driver told, not a server error with an attempt left waiting."""
    from companion.app.billing.gateway import GatewayError
    from companion.app.billing.models import ChargeAttempt

    d = world.driver(first_due=(dt.date.today() + dt.timedelta(days=10)).isoformat())
    gw = world.app.state.billing.gateway

    def refuse(*_a, **_k):
        raise GatewayError("invalid-token", "unknown card token")

    with world.browser(d["email"]) as c:
        assert add_card(c).status_code == 303
        monkeypatch.setattr(gw, "create_intent", refuse)
        r = pay(c, "current")
        assert r.status_code == 303, r.text
        page = c.get(r.headers["location"]).text
        assert 'data-status="failed"' in page
    with world.session() as s:
        a = s.scalar(select(ChargeAttempt).where(ChargeAttempt.account_id == d["account_id"]))
        assert a.status == "failed" and a.intent_id is None
