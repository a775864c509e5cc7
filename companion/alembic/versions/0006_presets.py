"""presets: the account's state (jurisdiction) and the state preset in a handset's desired policy

Revision ID: 0006_presets
Revises: 0005_service
"""

import sqlalchemy as sa
from alembic import op

revision = '0006_presets'
down_revision = '0005_service'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jurisdiction', sa.String(length=2), nullable=True))
    with op.batch_alter_table('handsets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preset', sa.String(length=16), nullable=False, server_default=''))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('handsets', schema=None) as batch_op:
        batch_op.drop_column('preset')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('jurisdiction')
