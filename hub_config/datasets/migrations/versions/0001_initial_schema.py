"""initial schema: datasets, grants, access requests, audit log

Revision ID: 0001
Revises:
Create Date: 2026-12-01 23:43:43.085192
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dataset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('steward', sa.String(length=255), nullable=False),
    sa.Column('source_kind', sa.String(length=16), nullable=False),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('source_claim', sa.String(length=255), nullable=True),
    sa.Column('source_server', sa.String(length=255), nullable=True),
    sa.Column('source_path', sa.Text(), nullable=True),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('schema_json', sa.Text(), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=True),
    sa.Column('deid_method', sa.Text(), nullable=False),
    sa.Column('deid_date', sa.String(length=32), nullable=False),
    sa.Column('deid_steward', sa.String(length=255), nullable=False),
    sa.Column('licence', sa.String(length=255), nullable=False),
    sa.Column('terms', sa.Text(), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('tags_json', sa.Text(), nullable=False),
    sa.Column('quasi_identifiers_json', sa.Text(), nullable=False),
    sa.Column('min_k', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('scan_status', sa.String(length=16), nullable=False),
    sa.Column('scan_json', sa.Text(), nullable=False),
    sa.Column('scanned_at', sa.Float(), nullable=True),
    sa.Column('override_reason', sa.Text(), nullable=True),
    sa.Column('override_by', sa.String(length=255), nullable=True),
    sa.Column('override_at', sa.Float(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('dataset', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_status'), ['status'], unique=False)

    op.create_table('dataset_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('user', sa.String(length=255), nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dataset_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_audit_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_dataset_audit_dataset'), ['dataset'], unique=False)
        batch_op.create_index(batch_op.f('ix_dataset_audit_event'), ['event'], unique=False)
        batch_op.create_index(batch_op.f('ix_dataset_audit_user'), ['user'], unique=False)

    op.create_table('dataset_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('principal', sa.String(length=255), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=True),
    sa.Column('granted_by', sa.String(length=255), nullable=False),
    sa.Column('granted_at', sa.Float(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'kind', 'principal')
    )
    with op.batch_alter_table('dataset_grant', schema=None) as batch_op:
        batch_op.create_index('ix_dataset_grant_principal', ['kind', 'principal'], unique=False)

    op.create_table('dataset_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('user', sa.String(length=255), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('decided_at', sa.Float(), nullable=True),
    sa.Column('decided_by', sa.String(length=255), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('expires_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dataset_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_request_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dataset_request_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_dataset_request_user'), ['user'], unique=False)



def downgrade():
    with op.batch_alter_table('dataset_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_request_user'))
        batch_op.drop_index(batch_op.f('ix_dataset_request_status'))
        batch_op.drop_index(batch_op.f('ix_dataset_request_dataset_id'))

    op.drop_table('dataset_request')
    with op.batch_alter_table('dataset_grant', schema=None) as batch_op:
        batch_op.drop_index('ix_dataset_grant_principal')

    op.drop_table('dataset_grant')
    with op.batch_alter_table('dataset_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_audit_user'))
        batch_op.drop_index(batch_op.f('ix_dataset_audit_event'))
        batch_op.drop_index(batch_op.f('ix_dataset_audit_dataset'))
        batch_op.drop_index(batch_op.f('ix_dataset_audit_at'))

    op.drop_table('dataset_audit')
    with op.batch_alter_table('dataset', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_status'))

    op.drop_table('dataset')
