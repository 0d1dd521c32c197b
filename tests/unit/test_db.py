"""The one engine factory and migration runner (hub_config.db), on every database of the
studio, in SQLite and in PostgreSQL: migrations build exactly the models' schema, a
database made before migrations existed (a copy made by release 0.1.0's code,
tests/unit/data/*.sql) is stamped and kept, and stores opening the same new database at
once migrate it once."""

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, select, text

from hub_config import db
from hub_config.announcements import models as announcements_models
from hub_config.announcements.store import MIGRATIONS as ANNOUNCEMENTS_MIGRATIONS
from hub_config.datasets import models as datasets_models
from hub_config.datasets.store import MIGRATIONS as DATASETS_MIGRATIONS
from hub_config.datasets.store import DatasetStore
from hub_config.usage import models as usage_models
from hub_config.usage.store import MIGRATIONS as USAGE_MIGRATIONS
from hub_config.usage.store import UsageStore

DATA = Path(__file__).parent / "data"
DATABASES = {
    "usage": (USAGE_MIGRATIONS, usage_models.Base.metadata),
    "datasets": (DATASETS_MIGRATIONS, datasets_models.Base.metadata),
    "announcements": (ANNOUNCEMENTS_MIGRATIONS, announcements_models.Base.metadata),
}
HEAD = {"usage": "0004", "datasets": "0002", "announcements": "0003"}
# what revisions after 0001 change on PostgreSQL (SQLite's INTEGER has 64 bits already)
WIDENED = {"usage": {("server_usage", "memory")}, "datasets": {("dataset", "row_count"), ("dataset", "size_bytes")}}
# tables of 0.1.0 each store stamps by, and the tables later revisions added
BASELINE = {"usage": "server_usage", "datasets": "dataset"}
ADDED = {"usage": {"queue_entry", "member_contact", "runtime_extension"}, "datasets": set()}
ADDED_COLUMNS = {"usage": {("server_usage", "gpu_util_mean"), ("server_usage", "gpu_util_samples")}, "datasets": set()}


def legacy_copy(tmp_path: Path, name: str, database) -> str:
    """A database as release 0.1.0 left it (tables made by create_all, no alembic_version)."""
    url = database(name)
    path = db.sqlite_path(url) or tmp_path / f"{name}-0.1.0.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript((DATA / f"{name}-0.1.0.sql").read_text())
    if db.sqlite_path(url) is None:
        postgres_legacy_copy(url, path, DATABASES[name][0])
    return url


def postgres_legacy_copy(url: str, dump: Path, migrations: Path) -> None:
    """The same on PostgreSQL: the tables of revision 0001 (0.1.0's create_all) without
    alembic_version, holding the rows of the SQLite copy ``dump``."""
    engine = db.make_engine(url)
    cfg = db.alembic_config(url, migrations)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, db.BASELINE)
        conn.execute(text("DROP TABLE alembic_version"))
    tables = MetaData()
    tables.reflect(engine)
    source = create_engine(f"sqlite:///{dump}")
    with source.connect() as src, engine.begin() as dst:
        for table in tables.sorted_tables:
            rows = [dict(r._mapping) for r in src.execute(select(table))]
            for row in rows:
                # 0.1.0 kept memory in a 32-bit INTEGER, which on PostgreSQL holds less than 2 GiB
                if table.name == "server_usage":
                    row["memory"] = min(row["memory"], 2**31 - 1)
            if rows:
                dst.execute(table.insert(), rows)
            if rows and "id" in table.c:  # as 0.1.0's own inserts would have left the sequence
                dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                 f"(SELECT max(id) FROM {table.name}))"))
    source.dispose()
    engine.dispose()


def schema(url: str) -> dict:
    """Every table, index and column of the database at ``url``, as it declares them."""
    engine = create_engine(url)
    found = inspect(engine)
    out = {}
    for table in found.get_table_names():
        out[table] = [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)]
        out[f"{table} keys"] = (found.get_pk_constraint(table), found.get_foreign_keys(table),
                                found.get_unique_constraints(table))
        for index in found.get_indexes(table):
            out[index["name"]] = (table, index["column_names"], index["unique"])
    engine.dispose()
    return out


@pytest.mark.parametrize("name", sorted(DATABASES))
def test_migrations_build_the_models_schema(database, name):
    migrations, metadata = DATABASES[name]
    engine = db.make_engine(database(name))
    db.upgrade(engine, migrations)
    db.upgrade(engine, migrations)  # again: nothing to do
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD[name]
    engine.dispose()


@pytest.mark.parametrize("name", ["usage", "datasets"])
def test_a_legacy_database_is_stamped_and_upgraded_with_its_rows(tmp_path, database, name):
    url = legacy_copy(tmp_path, name, database)
    migrations, metadata = DATABASES[name]
    before = schema(url)
    engine = db.make_engine(url)
    db.upgrade(engine, migrations, baseline_table=BASELINE[name])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD[name]
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()
    # nothing else was created or dropped: the schema of 0.1.0 is revision 0001, and the
    # later revisions widen integers on PostgreSQL and add tables of their own
    after = {n: sql for n, sql in schema(url).items()
             if "alembic_version" not in n and not any(t in n for t in ADDED[name])}
    for table, column in WIDENED[name]:
        after[table] = [(c, "INTEGER" if c == column else t, n) for c, t, n in after[table]]
    for table, column in ADDED_COLUMNS[name]:
        after[table] = [c for c in after[table] if c[0] != column]
    assert after == before


def test_the_usage_store_opens_a_legacy_database_and_keeps_its_records(tmp_path, database):
    store = UsageStore(legacy_copy(tmp_path, "usage", database))
    rows = store.rows()
    assert [(r.user, r.profile, r.gpus, r.groups) for r in rows] == [
        ("alice", "gpu-a100", 1, ("gpu-residents",)), ("bob", "cpu", 0, ("students",))]
    assert [s.user for s in store.active()] == ["bob"]  # still running
    assert store.gpu_hours(since=0, until=2e9, user="alice") == pytest.approx(2.0)
    new = store.open("carol", "", [], "cpu", 0, None, 1, 128 * 2**30)  # a new record after the old ones
    assert new == 3 and [s.user for s in store.active(fresh=True)] == ["bob", "carol"]
    store.engine.dispose()


def test_the_datasets_store_opens_a_legacy_database_and_keeps_its_registry(tmp_path, database):
    store = DatasetStore(legacy_copy(tmp_path, "datasets", database))
    assert [d.name for d in store.datasets()] == ["chest-xray"]
    assert store.get("chest-xray").tags == ["imaging"]
    assert [(g["kind"], g["principal"]) for g in store.grants("chest-xray")] == [("group", "gpu-residents")]
    assert [e["event"] for e in store.audit_events()] == ["add", "grant"]
    store.grant("chest-xray", actor="steward", users=["alice"])
    assert [e["event"] for e in store.audit_events()] == ["add", "grant", "grant"]
    store.engine.dispose()


def test_stores_opening_a_new_database_at_once_migrate_it_once(database):
    url = database("datasets")
    errors, stores = [], []

    def open_store():
        try:
            stores.append(DatasetStore(url))
        except Exception as e:  # pragma: no cover - the failure this test is for
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 6
    with stores[0].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert "dataset" in inspect(conn).get_table_names()
    for store in stores:
        store.engine.dispose()


def test_a_postgresql_migration_waits_for_the_advisory_lock(postgres):
    """upgrade() takes the database's advisory lock: while another session holds it,
    nothing is migrated."""
    url = postgres.database("advisory_lock")
    name = url.rsplit("/", 1)[1]
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    holder = db.make_engine(url)
    engine = db.make_engine(url)
    done = threading.Event()
    with holder.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        worker = threading.Thread(target=lambda: (db.upgrade(engine, USAGE_MIGRATIONS), done.set()))
        worker.start()
        time.sleep(0.5)
        assert not done.is_set()
        assert "alembic_version" not in inspect(conn).get_table_names()
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        conn.commit()
    worker.join(30)
    assert done.is_set()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD["usage"]
    holder.dispose()
    engine.dispose()
    postgres.drop(url)


def test_sqlite_engines_use_wal_and_foreign_keys(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.sqlite'}")  # the folder is made
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_immediate_transactions_take_the_write_lock_at_begin(tmp_path):
    url = f"sqlite:///{tmp_path / 'lock.sqlite'}"
    writer, other = db.make_engine(url, begin="IMMEDIATE"), db.make_engine(url, begin="IMMEDIATE")
    with writer.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with writer.begin() as conn:
        conn.exec_driver_sql("SELECT 1")  # a read, yet the lock is held
        blocked = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0.1)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            blocked.execute("BEGIN IMMEDIATE")
        blocked.close()
    other.dispose()
