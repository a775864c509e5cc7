"""presets2: programs.starts_on, the program's first day (Michigan's violation classes count from it)

Revision ID: 0009_presets2
Revises: 0008_service3
"""

import sqlalchemy as sa
from alembic import op

revision = '0009_presets2'
down_revision = '0008_service3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('programs') as batch:
        batch.add_column(sa.Column('starts_on', sa.Date(), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('programs') as batch:
        batch.drop_column('starts_on')
