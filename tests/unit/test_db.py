"""The one engine factory and migration runner (hub_config.db), on every database of the
studio: migrations build exactly the models' schema, a database made before migrations
existed (a copy made by release 0.1.0's code, tests/unit/data/*.sql) is stamped and kept,
and stores opening the same new database at once migrate it once."""

import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

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


def legacy_copy(tmp_path: Path, name: str) -> str:
    """A database as release 0.1.0 left it (tables made by create_all, no alembic_version)."""
    path = tmp_path / f"{name}.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript((DATA / f"{name}-0.1.0.sql").read_text())
    return f"sqlite:///{path}"


def schema(url: str) -> dict:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master"))


@pytest.mark.parametrize("name", sorted(DATABASES))
def test_migrations_build_the_models_schema(tmp_path, name):
    migrations, metadata = DATABASES[name]
    engine = db.make_engine(f"sqlite:///{tmp_path / 'new.sqlite'}")
    db.upgrade(engine, migrations)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0001"


@pytest.mark.parametrize("name", ["usage", "datasets"])
def test_a_legacy_database_is_stamped_and_upgraded_with_its_rows(tmp_path, name):
    url = legacy_copy(tmp_path, name)
    migrations, metadata = DATABASES[name]
    before = schema(url)
    engine = db.make_engine(url)
    db.upgrade(engine, migrations, baseline_table=next(iter(metadata.sorted_tables)).name)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0001"
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    # nothing else was created or dropped: the schema of 0.1.0 is revision 0001
    after = schema(url)
    assert {n: sql for n, sql in after.items() if "alembic_version" not in n} == before


def test_the_usage_store_opens_a_legacy_database_and_keeps_its_records(tmp_path):
    store = UsageStore(legacy_copy(tmp_path, "usage"))
    rows = store.rows()
    assert [(r.user, r.profile, r.gpus, r.groups) for r in rows] == [
        ("alice", "gpu-a100", 1, ("gpu-residents",)), ("bob", "cpu", 0, ("students",))]
    assert [s.user for s in store.active()] == ["bob"]  # still running
    assert store.gpu_hours(since=0, until=2e9, user="alice") == pytest.approx(2.0)


def test_the_datasets_store_opens_a_legacy_database_and_keeps_its_registry(tmp_path):
    store = DatasetStore(legacy_copy(tmp_path, "datasets"))
    assert [d.name for d in store.datasets()] == ["chest-xray"]
    assert store.get("chest-xray").tags == ["imaging"]
    assert [(g["kind"], g["principal"]) for g in store.grants("chest-xray")] == [("group", "gpu-residents")]
    assert [e["event"] for e in store.audit_events()] == ["add", "grant"]


def test_stores_opening_a_new_database_at_once_migrate_it_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'datasets.sqlite'}"
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
