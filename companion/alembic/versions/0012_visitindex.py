"""visitindex: an account's appointments indexed by (account_id, status, starts_ts), replacing (account_id,
status): the dashboard's next booked visit is the first entry of the account's booked ones, where PostgreSQL
walked every account's future booked visits in time order to find the account's first

Revision ID: 0012_visitindex
Revises: 0011_syncorder
"""

from alembic import op

revision = '0012_visitindex'
down_revision = '0011_syncorder'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index('ix_appointments_account_start', ['account_id', 'status', 'starts_ts'], unique=False)
        batch_op.drop_index('ix_appointments_account')


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index('ix_appointments_account', ['account_id', 'status'], unique=False)
        batch_op.drop_index('ix_appointments_account_start')
