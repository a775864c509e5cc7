"""billing: the ledger (today's payments moved into it), payment methods, billing plans, charge attempts,
webhook events, invoices, agreements

Revision ID: 0004_billing
Revises: 0003_portal

The move, per account: every payment becomes a payment entry with its id, reference, amount, time, handset,
lockout and clear; a reset fee also becomes its charge, which its payment pays. The installments the account
had paid (`periods_paid`) become installment charges at the current installment on their due dates. If the
installment payments do not add up to those charges plus the credit held (the installment changed over the
account's life), one adjustment entry makes them: after the move, balance = -credit, the periods paid and the
next due date are what they were.
"""

import calendar
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = '0004_billing'
down_revision = '0003_portal'
branch_labels = None
depends_on = None


def _add_months(date: dt.date, months: int) -> dt.date:
    m = date.month - 1 + months
    year = date.year + m // 12
    month = m % 12 + 1
    return dt.date(year, month, min(date.day, calendar.monthrange(year, month)[1]))


def _due(first: dt.date, schedule: str, n: int) -> dt.date:
    # the schedules that existed before this revision (companion.app.schedule at 0003)
    if schedule == "weekly":
        return first + dt.timedelta(days=7 * n)
    if schedule == "biweekly":
        return first + dt.timedelta(days=14 * n)
    if schedule == "monthly":
        return _add_months(first, n)
    return _add_months(first, 2 * n)


def _date(v: object) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10])


def upgrade() -> None:
    """Apply."""
    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('handset_id', sa.Integer(), nullable=True),
    sa.Column('period', sa.BigInteger(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('charge_id', sa.Integer(), nullable=True),
    sa.Column('intent_id', sa.String(length=64), nullable=True),
    sa.Column('lockout_id', sa.BigInteger(), nullable=True),
    sa.Column('command_id', sa.Integer(), nullable=True),
    sa.Column('due_after', sa.Date(), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['charge_id'], ['ledger_entries.id'], ),
    sa.ForeignKeyConstraint(['command_id'], ['commands.id'], ),
    sa.ForeignKeyConstraint(['handset_id'], ['handsets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'period', name='uq_ledger_period'),
    sa.UniqueConstraint('account_id', 'reference', name='uq_ledger_reference')
    )
    op.create_index('ix_ledger_account', 'ledger_entries', ['account_id', 'id'], unique=False)
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('period_base', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_due', sa.Date(), nullable=True))
        batch_op.create_index('ix_accounts_next_due', ['next_due'], unique=False)

    op.create_table('payment_methods',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=16), nullable=False),
    sa.Column('token', sa.String(length=200), nullable=False),
    sa.Column('brand', sa.String(length=16), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('exp_month', sa.Integer(), nullable=False),
    sa.Column('exp_year', sa.Integer(), nullable=False),
    sa.Column('primary', sa.Boolean(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_payment_methods_account_id', 'payment_methods', ['account_id'], unique=False)
    op.create_table('billing_plans',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('autopay', sa.Boolean(), nullable=False),
    sa.Column('method_id', sa.Integer(), nullable=True),
    sa.Column('remind_days', sa.Integer(), nullable=False),
    sa.Column('reminders', sa.Boolean(), nullable=False),
    sa.Column('retry_period', sa.BigInteger(), nullable=True),
    sa.Column('retry_attempts', sa.Integer(), nullable=False),
    sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_decline', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['method_id'], ['payment_methods.id'], ),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('charge_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('intent_id', sa.String(length=64), nullable=True),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('method_id', sa.Integer(), nullable=True),
    sa.Column('handset_id', sa.Integer(), nullable=True),
    sa.Column('lockout_id', sa.BigInteger(), nullable=True),
    sa.Column('period', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('decline_code', sa.String(length=40), nullable=False),
    sa.Column('next_action_url', sa.String(length=300), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], ),
    sa.ForeignKeyConstraint(['handset_id'], ['handsets.id'], ),
    sa.ForeignKeyConstraint(['method_id'], ['payment_methods.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key', name='uq_charge_idempotency')
    )
    op.create_index('ix_charge_attempts_account_id', 'charge_attempts', ['account_id'], unique=False)
    op.create_index('ix_charge_intent', 'charge_attempts', ['intent_id'], unique=False)
    op.create_table('webhook_events',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('intent_id', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('charges_cents', sa.Integer(), nullable=False),
    sa.Column('payments_cents', sa.Integer(), nullable=False),
    sa.Column('balance_cents', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'period_start', name='uq_invoice_period'),
    sa.UniqueConstraint('number')
    )
    op.create_index('ix_invoices_account_id', 'invoices', ['account_id'], unique=False)
    op.create_table('agreements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=16), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('accepted_by', sa.Integer(), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['accepted_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_agreements_account_id', 'agreements', ['account_id'], unique=False)
    _move_payments()
    op.drop_table('payments')


def _move_payments() -> None:
    bind = op.get_bind()
    ledger = sa.table('ledger_entries', *(sa.column(c) for c in (
        'id', 'account_id', 'side', 'kind', 'method', 'amount_cents', 'reference', 'handset_id', 'period',
        'due_date', 'charge_id', 'intent_id', 'lockout_id', 'command_id', 'due_after', 'note', 'created_at')))
    accounts = bind.execute(sa.text("SELECT id, schedule, first_due, installment_cents, periods_paid, credit_cents "
                                    "FROM accounts ORDER BY id")).all()
    payments = bind.execute(sa.text("SELECT id, account_id, kind, amount_cents, reference, handset_id, lockout_id, "
                                    "command_id, due_after, created_at FROM payments ORDER BY id")).all()
    first_handset: dict[int, int] = {int(a): int(h) for a, h in bind.execute(sa.text(
        "SELECT account_id, MIN(id) FROM handsets WHERE account_id IS NOT NULL GROUP BY account_id")).all()}
    top = max([p.id for p in payments], default=0)
    rows: list[dict[str, object]] = []
    paid: dict[int, int] = {}
    for p in payments:  # the payments keep their ids (the clears' pages link to them)
        charge_id = None
        if p.kind == 'reset_fee':
            top += 1
            charge_id = top
            rows.append(dict(id=charge_id, account_id=p.account_id, side='charge', kind='reset_fee', method='',
                             amount_cents=p.amount_cents, reference='charge:' + p.reference,
                             handset_id=p.handset_id, period=None, due_date=_date(p.created_at), charge_id=None,
                             intent_id=None, lockout_id=p.lockout_id, command_id=None, due_after=None,
                             note='violation reset fee', created_at=p.created_at))
        else:
            paid[p.account_id] = paid.get(p.account_id, 0) + p.amount_cents
        rows.append(dict(id=p.id, account_id=p.account_id, side='payment', kind=p.kind,
                         method='portal' if str(p.reference).startswith('portal:') else 'backoffice',
                         amount_cents=p.amount_cents, reference=p.reference, handset_id=p.handset_id, period=None,
                         due_date=None, charge_id=charge_id, intent_id=None, lockout_id=p.lockout_id,
                         command_id=p.command_id, due_after=p.due_after, note='', created_at=p.created_at))
    now = dt.datetime.now(dt.UTC)
    for a in accounts:
        first = _date(a.first_due)
        for n in range(int(a.periods_paid)):
            top += 1
            rows.append(dict(id=top, account_id=a.id, side='charge', kind='installment', method='',
                             amount_cents=a.installment_cents, reference='installment:%d' % n,
                             handset_id=first_handset.get(a.id), period=n, due_date=_due(first, a.schedule, n),
                             charge_id=None, intent_id=None, lockout_id=None, command_id=None, due_after=None,
                             note='%s installment' % a.schedule, created_at=now))
        # installment payments = installments charged + credit held; otherwise one adjustment makes it so
        gap = paid.get(a.id, 0) - (int(a.periods_paid) * a.installment_cents + a.credit_cents)
        if gap:
            top += 1
            rows.append(dict(id=top, account_id=a.id, side='charge' if gap > 0 else 'payment', kind='adjustment',
                             method='' if gap > 0 else 'backoffice', amount_cents=abs(gap),
                             reference='migration:adjustment', handset_id=None, period=None,
                             due_date=_due(first, a.schedule, max(int(a.periods_paid) - 1, 0)) if gap > 0 else None,
                             charge_id=None, intent_id=None, lockout_id=None, command_id=None, due_after=None,
                             note='installment changed before the ledger', created_at=now))
        nxt = _due(first, a.schedule, int(a.periods_paid))
        bind.execute(sa.text("UPDATE accounts SET next_due = :d WHERE id = :i"), {"d": nxt, "i": a.id})
    # the charges before the payments that name them
    rows.sort(key=lambda r: (r['charge_id'] is not None, int(r['id'])))  # type: ignore[call-overload]
    for i in range(0, len(rows), 1000):
        op.bulk_insert(ledger, rows[i:i + 1000])
    if bind.dialect.name == 'postgresql':
        bind.execute(sa.text("SELECT setval(pg_get_serial_sequence('ledger_entries', 'id'), "
                             "GREATEST((SELECT MAX(id) FROM ledger_entries), 1))"))


def downgrade() -> None:
    """Revert: the payment entries go back to the payments table (fees and installments charged are dropped,
    as the table before this revision had no charges)."""
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('handset_id', sa.Integer(), nullable=True),
    sa.Column('lockout_id', sa.BigInteger(), nullable=True),
    sa.Column('command_id', sa.Integer(), nullable=True),
    sa.Column('due_after', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['command_id'], ['commands.id'], ),
    sa.ForeignKeyConstraint(['handset_id'], ['handsets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'reference', name='uq_payment_reference')
    )
    op.execute("INSERT INTO payments (id, account_id, kind, amount_cents, reference, handset_id, lockout_id, "
               "command_id, due_after, created_at) SELECT id, account_id, kind, amount_cents, "
               "SUBSTR(COALESCE(reference, 'entry:' || CAST(id AS VARCHAR(20))), 1, 64), handset_id, lockout_id, "
               "command_id, due_after, created_at FROM ledger_entries WHERE side = 'payment' AND method != 'refund' "
               "AND kind IN ('installment', 'reset_fee')")
    for table in ('agreements', 'invoices', 'webhook_events',
                  'charge_attempts', 'billing_plans', 'payment_methods'):
        op.drop_table(table)
    op.drop_index('ix_ledger_account', table_name='ledger_entries')
    op.drop_table('ledger_entries')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_accounts_next_due')
        batch_op.drop_column('next_due')
        batch_op.drop_column('period_base')
