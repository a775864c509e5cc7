"""syncorder: the order of the report a handset's row holds, so a request held back and delivered after a newer
one cannot roll the reported state (and its lockout id) back

Revision ID: 0011_syncorder
Revises: 0010_billing2
"""

import sqlalchemy as sa
from alembic import op

revision = '0011_syncorder'
down_revision = '0010_billing2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('handsets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reported_order', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('handsets', schema=None) as batch_op:
        batch_op.drop_column('reported_order')
