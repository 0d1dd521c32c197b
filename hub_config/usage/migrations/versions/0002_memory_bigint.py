"""server_usage.memory in 64 bits: servers of 2 GiB or more (PostgreSQL's INTEGER has 32)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        return  # SQLite's INTEGER has 64 bits
    op.alter_column('server_usage', 'memory', type_=sa.BigInteger(), existing_type=sa.Integer(),
                    existing_nullable=False)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        return
    op.alter_column('server_usage', 'memory', type_=sa.Integer(), existing_type=sa.BigInteger(),
                    existing_nullable=False)
