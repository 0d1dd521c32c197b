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
    pass


def downgrade():
    pass
