"""dataset.row_count and size_bytes in 64 bits: datasets of 2 GiB or more (PostgreSQL's INTEGER has 32)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

COLUMNS = ('row_count', 'size_bytes')


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        return  # SQLite's INTEGER has 64 bits
    for column in COLUMNS:
        op.alter_column('dataset', column, type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=True)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        return
    for column in COLUMNS:
        op.alter_column('dataset', column, type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=True)
