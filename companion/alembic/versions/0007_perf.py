"""perf: accounts.next_due (indexed) for the payment reminders, payments.handset_id indexed for the
dashboard's open reset fee

Revision ID: 0007_perf
Revises: 0003_portal
"""

import sqlalchemy as sa
from alembic import op

from companion.app import schedule

revision = '0007_perf'
down_revision = '0003_portal'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply: add the column, fill it from each account's schedule, index it; index payments.handset_id."""
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('next_due', sa.Date(), nullable=True))
    accounts = sa.table('accounts', sa.column('id', sa.Integer), sa.column('first_due', sa.Date),
                        sa.column('schedule', sa.String), sa.column('periods_paid', sa.BigInteger),
                        sa.column('next_due', sa.Date))
    conn = op.get_bind()
    rows = conn.execute(sa.select(accounts.c.id, accounts.c.first_due, accounts.c.schedule,
                                  accounts.c.periods_paid)).all()
    for row in rows:
        try:
            due = schedule.due_date(row.first_due, row.schedule, row.periods_paid)
        except (OverflowError, ValueError):
            continue
        conn.execute(accounts.update().where(accounts.c.id == row.id).values(next_due=due))
    op.create_index(op.f('ix_accounts_next_due'), 'accounts', ['next_due'], unique=False)
    op.create_index(op.f('ix_payments_handset_id'), 'payments', ['handset_id'], unique=False)


def downgrade() -> None:
    """Revert."""
    op.drop_index(op.f('ix_payments_handset_id'), table_name='payments')
    op.drop_index(op.f('ix_accounts_next_due'), table_name='accounts')
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('next_due')
