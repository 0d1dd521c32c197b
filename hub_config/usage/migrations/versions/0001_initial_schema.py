"""initial schema: server usage records and their groups

Revision ID: 0001
Revises:
Create Date: 2026-12-01 23:43:43.056438
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('server_usage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user', sa.String(length=255), nullable=False),
    sa.Column('server_name', sa.String(length=255), nullable=False),
    sa.Column('profile', sa.String(length=255), nullable=False),
    sa.Column('gpus', sa.Integer(), nullable=False),
    sa.Column('gpu_type', sa.String(length=64), nullable=True),
    sa.Column('cpu', sa.Float(), nullable=False),
    sa.Column('memory', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('stopped_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('server_usage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_server_usage_stopped_at'), ['stopped_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_server_usage_user'), ['user'], unique=False)
        batch_op.create_index('ix_server_usage_user_started', ['user', 'started_at'], unique=False)

    op.create_table('server_usage_group',
    sa.Column('usage_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['usage_id'], ['server_usage.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('usage_id', 'name')
    )
    with op.batch_alter_table('server_usage_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_server_usage_group_name'), ['name'], unique=False)



def downgrade():
    with op.batch_alter_table('server_usage_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_server_usage_group_name'))

    op.drop_table('server_usage_group')
    with op.batch_alter_table('server_usage', schema=None) as batch_op:
        batch_op.drop_index('ix_server_usage_user_started')
        batch_op.drop_index(batch_op.f('ix_server_usage_user'))
        batch_op.drop_index(batch_op.f('ix_server_usage_stopped_at'))

    op.drop_table('server_usage')
