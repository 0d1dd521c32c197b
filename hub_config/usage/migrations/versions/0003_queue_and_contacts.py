"""queue_entry (members waiting for GPUs, reservations) and member_contact (e-mail addresses)

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'queue_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user', sa.String(length=255), nullable=False),
        sa.Column('server_name', sa.String(length=255), nullable=False),
        sa.Column('groups', sa.String(length=2000), nullable=False),
        sa.Column('profile', sa.String(length=255), nullable=False),
        sa.Column('user_options', sa.String(length=4000), nullable=False),
        sa.Column('gpus', sa.Integer(), nullable=False),
        sa.Column('gpu_type', sa.String(length=64), nullable=True),
        sa.Column('auto_start', sa.Boolean(), nullable=False),
        sa.Column('joined_at', sa.Float(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('reserved_at', sa.Float(), nullable=True),
        sa.Column('reserved_until', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user'),
    )
    op.create_table(
        'member_contact',
        sa.Column('user', sa.String(length=255), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('user'),
    )


def downgrade():
    op.drop_table('member_contact')
    op.drop_table('queue_entry')
