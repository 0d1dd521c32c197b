"""Alembic environment of the datasets registry (run by ``hub_config.db.upgrade``)."""

from alembic import context

from hub_config.datasets.models import Base
from hub_config.db import run_migrations

run_migrations(context, Base.metadata)
