"""64-bit columns for the handset's u32 numbers and the counters; desired-state versions; log tampering

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# (table, column): values that reach 2^31 (a handset's u32 numbers, counters that only grow)
WIDE = [('accounts', 'periods_paid'),
        ('handsets', 'desired_version'), ('handsets', 'command_seq'), ('handsets', 'code_counter'),
        ('handsets', 'reported_version'), ('handsets', 'last_command_seq'), ('handsets', 'log_seq'),
        ('handsets', 'syncs'),
        ('commands', 'seq'),
        ('unlock_codes', 'counter'), ('unlock_codes', 'issue_hour')]


def upgrade() -> None:
    """Apply."""
    if op.get_bind().dialect.name != 'sqlite':  # SQLite's INTEGER is 64-bit already
        for table, column in WIDE:
            op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer(),
                            existing_nullable=False)
    op.create_table('desired_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handset_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handset_id'], ['handsets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('handset_id', 'version', name='uq_desired_version')
    )
    # every handset's current version, so the next one allocated is unique against it too
    op.execute("INSERT INTO desired_versions (handset_id, version, created_at) "
               "SELECT id, desired_version, created_at FROM handsets")
    op.create_table('log_tampering',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handset_id', sa.Integer(), nullable=False),
    sa.Column('first_seq', sa.BigInteger(), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handset_id'], ['handsets.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('log_tampering', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_log_tampering_handset_id'), ['handset_id'], unique=False)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('log_tampering', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_log_tampering_handset_id'))
    op.drop_table('log_tampering')
    op.drop_table('desired_versions')
    if op.get_bind().dialect.name != 'sqlite':
        for table, column in WIDE:
            op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger(),
                            existing_nullable=False)
