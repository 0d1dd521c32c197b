"""``aistudio upgrade-db``: bring every database of the studio to this release's schema.

The studio's own databases (usage records, the datasets registry, announcements) with
their Alembic migrations (``hub_config.db.upgrade``, which also adopts a database made
before migrations existed), then the hub's own with ``jupyterhub upgrade-db``, which
backs a SQLite file up first. Run it with the studio stopped, after installing a new
release; the stores also upgrade their database when they open it.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module
from pathlib import Path

from sqlalchemy import inspect

from .. import config as studio_config
from .. import db, processes
from . import load_config

# (config section, store module, a table of revision 0001 for databases older than migrations)
DATABASES = (
    ("usage", "hub_config.usage.store", "server_usage"),
    ("datasets", "hub_config.datasets.store", "dataset"),
    ("announcements", "hub_config.announcements.store", None),
)


def revision(engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        if "alembic_version" not in inspect(conn).get_table_names():
            return None
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_studio_database(section: str, module: str, baseline: str | None, url: str) -> str:
    """Upgrade one database; a line saying from which revision to which."""
    migrations = import_module(module).MIGRATIONS
    engine = db.make_engine(url)
    try:
        before = revision(engine)
        tables = inspect(engine).get_table_names()
        db.upgrade(engine, migrations, baseline_table=baseline)
        after = revision(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        return f"{section}: {where} is at {after}, nothing to do"
    was = before or ("a database made before migrations" if tables else "new")
    return f"{section}: {where} upgraded from {was} to {after}"


def cmd_upgrade_db(args) -> int:
    cfg = load_config(args)
    running = [pid for pid, cmd in processes.marked(processes.mark_of(cfg["data_dir"])) if "jupyterhub" in cmd]
    if running:
        print(f"aistudio: upgrade-db: the studio of {cfg['data_dir']} is running (pid {running[0]}); stop it first",
              file=sys.stderr)
        return 1
    Path(cfg["data_dir"]).mkdir(parents=True, exist_ok=True)
    for section, module, baseline in DATABASES:
        url = studio_config.db_url(cfg, section)
        try:
            print(upgrade_studio_database(section, module, baseline, url), flush=True)
        except Exception as e:  # one line, what and where; the database is left as it was
            print(f"aistudio: upgrade-db: {section} ({url}): {type(e).__name__}: {str(e).splitlines()[0]}",
                  file=sys.stderr)
            return 1
    hub_url = studio_config.db_url(cfg, "hub")
    sqlite = db.sqlite_path(hub_url)
    if sqlite is not None and not sqlite.exists():
        print(f"hub: {hub_url} does not exist yet; the hub creates it at its first start")
        return 0
    jupyterhub = Path(sys.prefix) / "bin" / "jupyterhub"
    out = subprocess.run([str(jupyterhub) if jupyterhub.exists() else "jupyterhub", "upgrade-db", f"--db={hub_url}"],
                         capture_output=True, text=True, cwd=cfg["data_dir"])
    if out.returncode:
        last = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"aistudio: upgrade-db: hub ({hub_url}): jupyterhub upgrade-db failed: {last[0]}", file=sys.stderr)
        return 1
    print(f"hub: {hub_url} upgraded by jupyterhub upgrade-db (SQLite files are backed up beside them first)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("upgrade-db", help="upgrade every database of the studio to this release (studio stopped)")
    p.set_defaults(func=cmd_upgrade_db)
