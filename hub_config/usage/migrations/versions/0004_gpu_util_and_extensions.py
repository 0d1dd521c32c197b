"""server_usage.gpu_util_mean/gpu_util_samples (GPU utilisation of each server) and
runtime_extension (members' extensions of run-time limits)

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('server_usage') as batch:
        batch.add_column(sa.Column('gpu_util_mean', sa.Float(), nullable=True))
        batch.add_column(sa.Column('gpu_util_samples', sa.Integer(), nullable=False, server_default='0'))
    op.create_table(
        'runtime_extension',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('usage_id', sa.Integer(), nullable=False),
        sa.Column('user', sa.String(length=255), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('seconds', sa.Integer(), nullable=False),
        sa.Column('new_limit', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['usage_id'], ['server_usage.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_runtime_extension_usage_id', 'runtime_extension', ['usage_id'])


def downgrade():
    op.drop_index('ix_runtime_extension_usage_id', table_name='runtime_extension')
    op.drop_table('runtime_extension')
    with op.batch_alter_table('server_usage') as batch:
        batch.drop_column('gpu_util_samples')
        batch.drop_column('gpu_util_mean')
