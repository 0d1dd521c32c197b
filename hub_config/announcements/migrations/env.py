"""Alembic environment of the announcements database (run by ``hub_config.db.upgrade``)."""

from alembic import context

from hub_config.announcements.models import Base
from hub_config.db import run_migrations

run_migrations(context, Base.metadata)
