"""support requests and field-test scenarios

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('support_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('description_html', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('support_requests', schema=None) as batch_op:
        batch_op.create_index('ix_support_requests_status', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_support_requests_user'), ['user'], unique=False)

    op.create_table('support_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('assignee', sa.String(length=255), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['support_requests.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('support_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_support_events_request_id'), ['request_id'], unique=False)

    op.create_table('scenarios',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('partner_kind', sa.String(length=32), nullable=False),
    sa.Column('partner', sa.String(length=200), nullable=False),
    sa.Column('setting', sa.Text(), nullable=False),
    sa.Column('trial', sa.Text(), nullable=False),
    sa.Column('requirements', sa.Text(), nullable=False),
    sa.Column('data_available', sa.Text(), nullable=False),
    sa.Column('contact', sa.String(length=300), nullable=False),
    sa.Column('window_from', sa.DateTime(), nullable=False),
    sa.Column('window_to', sa.DateTime(), nullable=False),
    sa.Column('draft', sa.Boolean(), nullable=False),
    sa.Column('partner_token', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('partner_token')
    )

    op.create_table('scenario_applications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scenario_id', sa.Integer(), nullable=False),
    sa.Column('user', sa.String(length=255), nullable=False),
    sa.Column('project', sa.String(length=200), nullable=False),
    sa.Column('proposal', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scenario_id', 'user', name='uq_scenario_applications_scenario_user')
    )
    with op.batch_alter_table('scenario_applications', schema=None) as batch_op:
        batch_op.create_index('ix_scenario_applications_status', ['status', 'id'], unique=False)

    op.create_table('scenario_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['scenario_applications.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('scenario_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scenario_events_application_id'), ['application_id'], unique=False)


def downgrade():
    with op.batch_alter_table('scenario_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scenario_events_application_id'))
    op.drop_table('scenario_events')
    with op.batch_alter_table('scenario_applications', schema=None) as batch_op:
        batch_op.drop_index('ix_scenario_applications_status')
    op.drop_table('scenario_applications')
    op.drop_table('scenarios')
    with op.batch_alter_table('support_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_support_events_request_id'))
    op.drop_table('support_events')
    with op.batch_alter_table('support_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_support_requests_user'))
        batch_op.drop_index('ix_support_requests_status')
    op.drop_table('support_requests')
