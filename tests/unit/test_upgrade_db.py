"""`aistudio upgrade-db`: the databases of the previous release (0.1.0: usage and datasets
made before migrations existed) are brought to this release's schema with their rows;
a second run has nothing to do; it refuses while the studio runs; errors are one line."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml
from sqlalchemy import text

from hub_config import db, processes
from hub_config.datasets.store import DatasetStore
from hub_config.usage.store import UsageStore

DATA = Path(__file__).parent / "data"


def studio(tmp_path, **sections) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("usage", "datasets"):  # what 0.1.0 left in its data folder
        with sqlite3.connect(data / f"{name}.sqlite") as conn:
            conn.executescript((DATA / f"{name}-0.1.0.sql").read_text())
    config = tmp_path / "aistudio.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(data), **sections}))
    return config


def upgrade_db(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub_config.cli", "--config", str(config), "upgrade-db"],
                          capture_output=True, text=True, timeout=120)


def revision(url: str) -> str:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    return value


def test_the_previous_releases_databases_are_upgraded_with_their_rows(tmp_path):
    config = studio(tmp_path)
    data = tmp_path / "data"
    # the hub's own database, as JupyterHub made it
    from jupyterhub import orm

    orm.new_session_factory(f"sqlite:///{data / 'jupyterhub.sqlite'}")().close()
    out = upgrade_db(config)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("usage: ") and "upgraded from a database made before migrations to 0004" in lines[0]
    assert lines[1].startswith("datasets: ") and "made before migrations" in lines[1]
    assert lines[2].startswith("announcements: ") and "upgraded from new to" in lines[2]
    assert lines[3].startswith("hub: ") and "jupyterhub upgrade-db" in lines[3]
    assert out.stderr == ""
    assert revision(f"sqlite:///{data / 'usage.sqlite'}") == "0004"
    assert revision(f"sqlite:///{data / 'datasets.sqlite'}") == "0002"
    usage = UsageStore(f"sqlite:///{data / 'usage.sqlite'}")
    assert [r.user for r in usage.rows()] == ["alice", "bob"]
    usage.engine.dispose()
    datasets = DatasetStore(f"sqlite:///{data / 'datasets.sqlite'}")
    assert [d.name for d in datasets.datasets()] == ["chest-xray"]
    datasets.engine.dispose()
    again = upgrade_db(config)
    assert again.returncode == 0, again.stderr
    assert all("nothing to do" in line for line in again.stdout.splitlines()[:3]), again.stdout


def test_without_a_hub_database_it_says_the_hub_makes_one(tmp_path):
    out = upgrade_db(studio(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("hub: ") and "creates it at its first start" in out.stdout


def test_it_refuses_while_the_studio_runs(tmp_path):
    config = studio(tmp_path)
    mark = processes.mark_of(tmp_path / "data")
    hub = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "jupyterhub"],
                           env={**os.environ, processes.MARK_ENV: mark})
    try:
        out = upgrade_db(config)
    finally:
        hub.kill()
        hub.wait()
    assert out.returncode == 1
    assert out.stderr.strip() == f"aistudio: upgrade-db: the studio of {tmp_path / 'data'} is running (pid {hub.pid}); stop it first"


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'a-file' / 'usage.sqlite'}"
    out = upgrade_db(studio(tmp_path, usage={"db_url": url}))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith(f"aistudio: upgrade-db: usage ({url}): ")
