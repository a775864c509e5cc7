"""The ledger: the migration that moved the payments into it keeps every balance and due date; its
properties under any sequence of charges, payments, refunds, frequency changes and auto-pay runs (Hypothesis);
the frequency rule and rounding."""

import contextlib
import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from companion import testing
from companion.app import schedule
from companion.app.billing import ledger
from companion.app.models import Account, LedgerEntry

pytest_plugins = ["tests.companion_support"]


# ---- the migration -----------------------------------------------------------------------------------------
def _old_rows(c):
    c.execute(text("INSERT INTO accounts (id, name, schedule, first_due, installment_cents, periods_paid, "
                   "credit_cents, reset_fee_cents, allow_codes, codes_per_period, service_period_days, created_at) "
                   "VALUES (1, 'A', 'monthly', '2026-01-31', 9000, 3, 2500, 7500, true, 2, 30, CURRENT_TIMESTAMP), "
                   "(2, 'B', 'weekly', '2026-11-02', 2000, 0, 1500, 7500, true, 2, 30, CURRENT_TIMESTAMP), "
                   "(3, 'C', 'biweekly', '2026-10-01', 4000, 2, 0, 7500, true, 2, 30, CURRENT_TIMESTAMP)"))
    c.execute(text("INSERT INTO handsets (id, serial, account_id, key_id, secret_nonce, secret_ct, desired_version, "
                   "payment_due_day, service_due_day, inspection_due_day, expected_module, policy, command_seq, "
                   "code_counter, reported_version, last_command_seq, lockout_id, log_seq, log_hash, log_error, "
                   "syncs, created_at) VALUES (7, 'M-7', 1, 'k1', :b, :b, 3, 0, 0, 0, 0, '{}', 1, 0, 0, 0, 4, 0, "
                   "'', '', 0, CURRENT_TIMESTAMP)"), {"b": b"x"})
    c.execute(text("INSERT INTO commands (id, handset_id, seq, kind, arg, status, expires, dedupe, deliveries, "
                   "created_at) VALUES (11, 7, 1, 'clear', '4', 'applied', 99999999, 'clear:4', 1, "
                   "CURRENT_TIMESTAMP)"))
    # account 1: 3 periods + 25.00 credit = 29500 in installments; account 2: 15.00 credit; account 3: the
    # installment was 5000 when the first two were paid (10000 paid, 8000 charged now)
    for pid, acc, kind, amount, ref, hs, lock, cmd in (
            (1, 1, "installment", 20000, "p-1", None, None, None), (2, 1, "installment", 9500, "p-2", None, None, None),
            (3, 1, "reset_fee", 7500, "portal:fee-1", 7, 4, 11), (4, 2, "installment", 1500, "p-3", None, None, None),
            (5, 3, "installment", 5000, "p-4", None, None, None), (6, 3, "installment", 5000, "p-5", None, None, None)):
        c.execute(text("INSERT INTO payments (id, account_id, kind, amount_cents, reference, handset_id, lockout_id, "
                       "command_id, created_at) VALUES (:i, :a, :k, :m, :r, :h, :l, :c, CURRENT_TIMESTAMP)"),
                  {"i": pid, "a": acc, "k": kind, "m": amount, "r": ref, "h": hs, "l": lock, "c": cmd})


def test_migration_moves_payments_into_the_ledger_keeping_balances_and_due_dates(backend):
    """A database at 0003 holding payments upgrades to 0004: every payment is a payment entry with its id,
    the reset fee is a charge it pays (its clear kept), balance = -credit, the periods paid, the credit and the
    next due date are what they were; the downgrade gives the payments back."""
    from alembic import command

    from companion.app.core import migrate

    with contextlib.ExitStack() as stack:
        if backend.is_sqlite:
            url = backend.DATABASE_URL.replace("companion.db", "ledger-mig.db")
        else:
            url = stack.enter_context(testing.fresh_pg_database("pytest"))
        settings = testing.settings_for(url, testing.test_master_keys())
        cfg = migrate.alembic_config(settings)
        command.upgrade(cfg, "0003_portal")
        engine = create_engine(settings.sync_database_url)
        with engine.begin() as c:
            _old_rows(c)
        before = {1: (3, 2500, dt.date(2026, 4, 30)), 2: (0, 1500, dt.date(2026, 11, 2)),
                  3: (2, 0, dt.date(2026, 10, 29))}
        command.upgrade(cfg, "head")  # the later revisions only add: the ORM models read the head schema
        from sqlalchemy.orm import Session

        with Session(engine) as s:
            for account_id, (periods, credit, due) in before.items():
                account = s.get(Account, account_id)
                pos = ledger.position(s, account, dt.date(2026, 1, 1))
                assert pos.balance_cents == -credit, account_id
                assert (pos.periods_paid, pos.partial_cents, pos.next_due) == (periods, credit, due), account_id
                assert account.next_due == due
            pays = {e.id: e for e in s.query(LedgerEntry).filter(LedgerEntry.side == "payment")}
            assert {i: (e.amount_cents, e.reference) for i, e in pays.items() if i <= 6} == {
                1: (20000, "p-1"), 2: (9500, "p-2"), 3: (7500, "portal:fee-1"), 4: (1500, "p-3"),
                5: (5000, "p-4"), 6: (5000, "p-5")}
            fee = pays[3]
            assert fee.command_id == 11 and fee.lockout_id == 4 and fee.charge_id is not None
            assert s.get(LedgerEntry, fee.charge_id).amount_cents == 7500
        # a new entry after the move gets a fresh id (the PostgreSQL sequence follows the moved ids)
        with engine.begin() as c:
            c.execute(text("INSERT INTO ledger_entries (account_id, side, kind, method, amount_cents, note, created_at) "
                           "VALUES (2, 'payment', 'installment', 'backoffice', 100, '', CURRENT_TIMESTAMP)"))
        command.downgrade(cfg, "0003_portal")
        with engine.begin() as c:
            rows = c.execute(text("SELECT id, amount_cents, reference FROM payments WHERE id <= 6 ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [(1, 20000, "p-1"), (2, 9500, "p-2"), (3, 7500, "portal:fee-1"),
                                                (4, 1500, "p-3"), (5, 5000, "p-4"), (6, 5000, "p-5")]
        command.upgrade(cfg, "head")
        engine.dispose()


# ---- properties --------------------------------------------------------------------------------------------
def _account(**kw):
    base = dict(id=1, name="A", schedule="monthly", first_due=dt.date(2027, 1, 31), installment_cents=9000,
                periods_paid=0, credit_cents=0, reset_fee_cents=7500, period_base=0)
    base.update(kw)
    return Account(**base)


class Book:
    """An in-memory ledger driven like the database one (ids in order), for the properties."""

    def __init__(self, account):
        self.account = account
        self.rows: list[LedgerEntry] = []

    def add(self, **kw):
        e = LedgerEntry(id=len(self.rows) + 1, account_id=1, **kw)
        if e.created_at is None:
            e.created_at = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
        self.rows.append(e)
        return e

    def accrue(self, day):
        pos = ledger.derive(self.account, self.rows, day)
        n = max(pos.posted_periods, self.account.period_base)
        while ledger.installment_date(self.account, n) <= day:
            self.add(side="charge", kind="installment", method="", amount_cents=self.account.installment_cents,
                     period=n, due_date=ledger.installment_date(self.account, n))
            n += 1

    def change(self, new, day):
        pos = ledger.derive(self.account, self.rows, day)
        start = max(pos.posted_periods, self.account.period_base)
        eff = ledger.installment_date(self.account, start)
        self.account.installment_cents = schedule.installment_for(self.account.installment_cents,
                                                                  self.account.schedule, new)
        self.account.schedule, self.account.first_due, self.account.period_base = new, eff, start


ops = st.lists(st.one_of(
    st.tuples(st.just("days"), st.integers(0, 40)),
    st.tuples(st.just("pay"), st.integers(1, 30000)),
    st.tuples(st.just("refund"), st.integers(1, 5000)),
    st.tuples(st.just("fee"), st.integers(1, 9000)),
    st.tuples(st.just("freq"), st.sampled_from(["weekly", "biweekly", "monthly", "semimonthly"])),
    st.tuples(st.just("autopay"), st.just(0))), max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, first=st.dates(dt.date(2027, 1, 1), dt.date(2027, 3, 31)))
def test_ledger_properties(ops, first):
    """Any sequence keeps balance = charges - payments, charges every due date up to today exactly once (no
    period twice, none skipped, dates increasing), and the next due date is never before the oldest unpaid
    charge nor after the first installment the credit does not pay."""
    book = Book(_account(first_due=first))
    day = first - dt.timedelta(days=3)
    for op, arg in ops:
        if op == "days":
            day += dt.timedelta(days=arg)
            book.accrue(day)
        elif op == "pay":
            book.add(side="payment", kind="installment", method="card", amount_cents=arg)
        elif op == "refund":
            paid = sum(e.amount_cents for e in book.rows if e.side == "payment")
            if paid >= arg:
                book.add(side="payment", kind="installment", method="refund", amount_cents=-arg)
        elif op == "fee":
            charge = book.add(side="charge", kind="reset_fee", method="", amount_cents=arg, due_date=day)
            book.add(side="payment", kind="reset_fee", method="card", amount_cents=arg, charge_id=charge.id)
        elif op == "freq":
            book.accrue(day)
            book.change(arg, day)
        elif op == "autopay":
            book.accrue(day)
            pos = ledger.derive(book.account, book.rows, day)
            if pos.due_now_cents > 0:
                book.add(side="payment", kind="installment", method="card", amount_cents=pos.due_now_cents)
        pos = ledger.derive(book.account, book.rows, day)
        charges = sum(e.amount_cents for e in book.rows if e.side == "charge")
        payments = sum(e.amount_cents for e in book.rows if e.side == "payment")
        assert pos.balance_cents == charges - payments
        assert pos.unpaid_cents - pos.credit_cents == pos.balance_cents
        periods = [e.period for e in book.rows if e.side == "charge" and e.kind == "installment"]
        assert periods == list(range(len(periods)))  # each period once, none skipped
        dates = [e.due_date for e in book.rows if e.side == "charge" and e.kind == "installment"]
        assert dates == sorted(dates) and len(set(dates)) == len(dates)
        if dates:
            assert dates[-1] <= day
        assert ledger.installment_date(book.account, max(pos.posted_periods, book.account.period_base)) > day \
            or op not in ("days", "freq", "autopay")
        if pos.unpaid_cents > 0:
            assert pos.next_due == pos.oldest_unpaid and pos.next_due <= day
        else:
            assert pos.next_due > day or op not in ("days", "freq", "autopay")
        if op == "autopay":
            assert pos.due_now_cents == 0


def test_rounding_rule_and_semimonthly_dates():
    """Installments keep the yearly price, rounded half up to the cent; twice a month is the day and 15 days
    later."""
    assert schedule.installment_for(9000, "monthly", "weekly") == 2077  # 9000*12/52 = 2076.92
    assert schedule.installment_for(9000, "monthly", "semimonthly") == 4500
    assert schedule.installment_for(9000, "monthly", "biweekly") == 4154  # 4153.85
    assert schedule.installment_for(2077, "weekly", "monthly") == 9000  # 9000.33
    assert schedule.installment_for(1, "monthly", "weekly") == 1  # never 0
    first = dt.date(2027, 1, 20)
    assert [schedule.due_date(first, "semimonthly", n) for n in range(4)] == [
        dt.date(2027, 1, 20), dt.date(2027, 2, 4), dt.date(2027, 2, 20), dt.date(2027, 3, 7)]


def test_frequency_change_takes_effect_at_the_first_uncharged_installment():
    """Monthly to weekly after two charged months: the third month's date starts the weekly schedule; the
    charged months stay, and credit carries over in cents."""
    book = Book(_account(first_due=dt.date(2027, 1, 31)))
    book.accrue(dt.date(2027, 3, 1))  # Jan 31 and Feb 28 charged
    book.add(side="payment", kind="installment", method="card", amount_cents=18000 + 2077)
    book.change("weekly", dt.date(2027, 3, 1))
    pos = ledger.derive(book.account, book.rows, dt.date(2027, 3, 1), upcoming=3)
    assert book.account.first_due == dt.date(2027, 3, 31) and book.account.period_base == 2
    assert [u.due for u in pos.upcoming] == [dt.date(2027, 4, 7), dt.date(2027, 4, 14), dt.date(2027, 4, 21)]
    assert pos.next_due == dt.date(2027, 4, 7)  # the credit paid the Mar 31 week
