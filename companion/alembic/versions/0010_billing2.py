"""billing: unlock-code fees (accounts.code_fee_cents; a code-fee attempt's action and issued code), auto-pay per device (device_autopay), the account's auto-pay settings copied to each of its
handsets; billing_plans keeps its columns (reminders are read there; the auto-pay ones are no longer read)

Revision ID: 0010_billing2
Revises: 0009_presets2
"""

import sqlalchemy as sa
from alembic import op

revision = '0010_billing2'
down_revision = '0009_presets2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply: the table, then every account's auto-pay (on/off, card, retry state) on each of its handsets."""
    op.create_table(
        'device_autopay',
        sa.Column('handset_id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('autopay', sa.Boolean(), nullable=False),
        sa.Column('method_id', sa.Integer(), nullable=True),
        sa.Column('retry_period', sa.BigInteger(), nullable=True),
        sa.Column('retry_attempts', sa.Integer(), nullable=False),
        sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_decline', sa.String(length=200), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.ForeignKeyConstraint(['handset_id'], ['handsets.id']),
        sa.ForeignKeyConstraint(['method_id'], ['payment_methods.id']),
        sa.PrimaryKeyConstraint('handset_id'))
    op.create_index(op.f('ix_device_autopay_account_id'), 'device_autopay', ['account_id'], unique=False)
    op.execute(
        "INSERT INTO device_autopay (handset_id, account_id, autopay, method_id, retry_period, retry_attempts, "
        "retry_at, last_decline, lease_until, updated_at) "
        "SELECT h.id, p.account_id, p.autopay, p.method_id, p.retry_period, p.retry_attempts, p.retry_at, p.last_decline, "
        "NULL, p.updated_at FROM billing_plans p JOIN handsets h ON h.account_id = p.account_id")
    op.add_column('accounts', sa.Column('code_fee_cents', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('charge_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code_action', sa.String(length=8), server_default='', nullable=False))
        batch_op.add_column(sa.Column('code_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_charge_attempts_code_id', 'unlock_codes', ['code_id'], ['id'])


def downgrade() -> None:
    """Revert (an account's auto-pay is on if any of its devices had it on, as billing_plans still says)."""
    with op.batch_alter_table('charge_attempts', schema=None) as batch_op:
        batch_op.drop_constraint('fk_charge_attempts_code_id', type_='foreignkey')
        batch_op.drop_column('code_id')
        batch_op.drop_column('code_action')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('code_fee_cents')
    op.drop_index(op.f('ix_device_autopay_account_id'), table_name='device_autopay')
    op.drop_table('device_autopay')
