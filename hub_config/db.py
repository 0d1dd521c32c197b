"""The one engine factory and the one migration runner of every AI Studio database
(usage records, the datasets registry, announcements).

SQLite (the default, a file in the data folder) gets WAL, foreign keys and a busy
timeout; PostgreSQL or any other database comes by URL. Each database's schema is
owned by its Alembic migrations (``<concern>/migrations/``): :func:`upgrade` brings it
to the newest revision when a store opens, and stamps a database made before the
concern had migrations (its tables, no ``alembic_version``) at revision ``0001``, which
is exactly the schema of that time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine

BASELINE = "0001"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///"))
    return None


def make_engine(url: str, *, begin: str | None = None) -> Engine:
    """An engine for ``url``.

    ``begin`` (SQLite only): None leaves transactions to the driver, which begins one
    before the first write; ``"DEFERRED"`` or ``"IMMEDIATE"`` make every transaction
    begin explicitly, ``IMMEDIATE`` taking the write lock at BEGIN so that a
    read-check-write sequence is atomic across processes.
    """
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        if begin is not None:
            dbapi_connection.isolation_level = None  # BEGIN is issued below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives a killed process
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    if begin is not None:
        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql(f"BEGIN {begin}")

    return engine


def alembic_config(url: str, migrations: Path) -> Config:
    """Alembic's config for the migrations folder ``migrations`` on the database ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextlib.contextmanager
def _file_lock(engine: Engine):
    """Beside a SQLite database, a lock file held for the whole migration. It is taken
    before the first connection: that connection turns a new file into WAL mode, which
    needs the database to itself and fails at once ("database is locked") rather than
    waiting while another process migrates it."""
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    if path is None:
        yield
        return
    with open(f"{path}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _advisory_lock(engine: Engine, connection):
    """On PostgreSQL, the database's advisory lock held for the whole migration."""
    if engine.dialect.name != "postgresql":
        yield
        return
    key = int.from_bytes(hashlib.sha256(str(engine.url.database).encode()).digest()[:4], "big")
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def upgrade(engine: Engine, migrations: Path, *, baseline_table: str | None = None) -> None:
    """``alembic upgrade head`` on ``engine``'s database, with the migrations in ``migrations``.

    One migration at a time per database, across processes (the hub, its services and
    the CLI may open the same database at once): a lock file beside a SQLite database,
    an advisory lock on PostgreSQL.

    ``baseline_table``: a table of revision 0001. A database that has it but no
    ``alembic_version`` was made before migrations existed: it is stamped at 0001 first.
    """
    cfg = alembic_config(engine.url.render_as_string(hide_password=False), migrations)
    with _file_lock(engine), engine.connect() as connection, _advisory_lock(engine, connection):
        if connection.in_transaction():
            connection.commit()
        cfg.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if baseline_table and baseline_table in tables and "alembic_version" not in tables:
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")
        connection.commit()


def run_migrations(context, target_metadata) -> None:
    """The body of every ``migrations/env.py``: run on the connection :func:`upgrade` passes
    (batch mode on SQLite, whose ALTER TABLE is limited), or on the configured URL."""
    from sqlalchemy import engine_from_config, pool

    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                    poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(context, connection, target_metadata)
        engine.dispose()
    else:
        _run(context, connection, target_metadata)


def _run(context, connection, target_metadata) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
