"""perf: ledger_entries.handset_id indexed for the dashboard's open reset fee per device

(The reminders' index on accounts.next_due comes with billing, 0004_billing.)

Revision ID: 0007_perf
Revises: 0006_presets
"""

from alembic import op

revision = '0007_perf'
down_revision = '0006_presets'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_index(op.f('ix_ledger_entries_handset_id'), 'ledger_entries', ['handset_id'], unique=False)


def downgrade() -> None:
    """Revert."""
    op.drop_index(op.f('ix_ledger_entries_handset_id'), table_name='ledger_entries')
