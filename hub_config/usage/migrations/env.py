"""Alembic environment of the usage database (run by ``hub_config.db.upgrade``)."""

from alembic import context

from hub_config.db import run_migrations
from hub_config.usage.models import Base

run_migrations(context, Base.metadata)
