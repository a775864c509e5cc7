"""service3: the locator's index on service_centers (active, lat, lon): nearest centers by bounding box

Revision ID: 0008_service3
Revises: 0007_perf
"""

from alembic import op

revision = '0008_service3'
down_revision = '0007_perf'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_index('ix_service_centers_place', 'service_centers', ['active', 'lat', 'lon'], unique=False)


def downgrade() -> None:
    """Revert."""
    op.drop_index('ix_service_centers_place', table_name='service_centers')
