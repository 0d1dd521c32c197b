"""residency applications and the studio-side membership they grant

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('residency_applications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('area', sa.String(length=32), nullable=False),
    sa.Column('reserves', sa.Text(), nullable=False),
    sa.Column('team', sa.Text(), nullable=False),
    sa.Column('wants', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('residency_applications', schema=None) as batch_op:
        batch_op.create_index('ix_residency_applications_status', ['status', 'id'], unique=False)

    op.create_table('residency_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['residency_applications.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('residency_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_residency_events_application_id'), ['application_id'], unique=False)

    op.create_table('studio_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('user', sa.String(length=255), nullable=True),
    sa.Column('groups', sa.Text(), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('invite_hash', sa.String(length=64), nullable=True),
    sa.Column('invite_expires', sa.DateTime(), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email'),
    sa.UniqueConstraint('invite_hash'),
    sa.UniqueConstraint('user')
    )


def downgrade():
    op.drop_table('studio_members')
    with op.batch_alter_table('residency_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_residency_events_application_id'))

    op.drop_table('residency_events')
    with op.batch_alter_table('residency_applications', schema=None) as batch_op:
        batch_op.drop_index('ix_residency_applications_status')

    op.drop_table('residency_applications')
