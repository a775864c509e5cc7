"""Payment reminders scale: accounts.next_due (migration 0007_perf) follows every change of an account's terms
through the ORM, the reminder check reads only the accounts coming due through its index, and the migration
fills the column for the accounts that exist."""

import datetime as dt

from sqlalchemy import select, text

from companion import testing
from companion.app import crud
from companion.app.core import migrate
from companion.app.core.db import Database
from companion.app.models import Account
from companion.app.notifications import worker
from companion.app.portal.config import PortalSettings
from companion.app.schemas import AccountCreate, AccountUpdate


def _db(tmp_path):
    settings = testing.settings_for("sqlite:///" + str(tmp_path / "r.db"), testing.test_master_keys())
    migrate.upgrade(settings)
    return settings, Database(settings)


def _open(s, first_due, schedule="monthly"):
    return crud.create_account(s, AccountCreate(name="d", schedule=schedule, first_due=first_due,
                                                installment_cents=9000))


def test_next_due_follows_payments_and_schedule_changes(tmp_path):
    """The stored next due date is the schedule's after opening, each installment and a schedule change."""
    settings, db = _db(tmp_path)
    try:
        with db.sessions() as s:
            a = _open(s, dt.date(2030, 1, 31))
            s.commit()
            assert a.next_due == dt.date(2030, 1, 31)
            crud.record_payment(s, settings, a, "installment", 9000, "ref-0001", None, None)
            s.commit()
            assert a.next_due == dt.date(2030, 2, 28) == crud.account_next_due(a)
            crud.update_account(s, a, AccountUpdate(schedule="weekly"))
            s.commit()
            assert a.next_due == dt.date(2030, 2, 7) == crud.account_next_due(a)
            s.expire_all()
            assert s.get(Account, a.id).next_due == dt.date(2030, 2, 7)
    finally:
        db.close()


def test_the_reminder_check_reads_only_the_accounts_coming_due(tmp_path, monkeypatch):
    """300 accounts due later, one overdue, two within REMIND_DAYS: the check computes two due dates, and
    its query is a search of the index on accounts.next_due (not a scan)."""
    settings, db = _db(tmp_path)
    today = dt.datetime.now(dt.UTC).date()
    try:
        with db.sessions() as s:
            for i in range(300):
                _open(s, today + dt.timedelta(days=10 + i % 50))
            _open(s, today - dt.timedelta(days=5))
            soon = [_open(s, today + dt.timedelta(days=1)).id, _open(s, today + dt.timedelta(days=3)).id]
            s.commit()
            seen = []
            real = crud.account_next_due

            def counted(account):
                seen.append(account.id)
                return real(account)

            monkeypatch.setattr(crud, "account_next_due", counted)
            worker.notice_events(s, PortalSettings(_env_file=None, REMIND_DAYS=3))
            assert sorted(seen) == soon
            q = worker.coming_due(today, 3).compile(db.engine, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(r) for r in s.execute(text("EXPLAIN QUERY PLAN " + str(q))).all())
            assert "USING INDEX ix_accounts_next_due" in plan and "SCAN accounts" not in plan, plan
    finally:
        db.close()


def test_the_migration_fills_next_due_for_existing_accounts(tmp_path):
    """Accounts opened before 0007_perf get their next due date when it is applied."""
    from alembic import command

    settings = testing.settings_for("sqlite:///" + str(tmp_path / "m.db"), testing.test_master_keys())
    cfg = migrate.alembic_config(settings)
    command.upgrade(cfg, "0003_portal")
    db = Database(settings)
    try:
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO accounts (id, name, schedule, first_due, installment_cents, periods_paid, "
                              "credit_cents, reset_fee_cents, allow_codes, codes_per_period, service_period_days, "
                              "created_at) VALUES (1, 'a', 'monthly', '2030-01-31', 9000, 1, 0, 5000, 1, 2, 30, "
                              "'2030-01-01 00:00:00'), (2, 'b', 'biweekly', '2030-01-01', 9000, 2, 0, 5000, 1, 2, 30, "
                              "'2030-01-01 00:00:00')"))
        command.upgrade(cfg, "0007_perf")
        with db.sessions() as s:
            got = dict(s.execute(select(Account.id, Account.next_due)).all())
        assert got == {1: dt.date(2030, 2, 28), 2: dt.date(2030, 1, 29)}
    finally:
        db.close()
