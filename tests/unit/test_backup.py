"""`aistudio backup` and `aistudio restore`: a studio's four databases and its cookie
secret, backed up and restored into a new data folder (SQLite, and all four on
PostgreSQL); a changed file is refused by its sha256; restore refuses while the studio
runs and over existing databases; a backup taken while a writer writes is consistent."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from hub_config import config as studio_config
from hub_config import processes
from hub_config.announcements.store import Store
from hub_config.cli import backup as backup_cli
from hub_config.datasets.store import DatasetStore
from hub_config.usage.store import UsageStore

SECTIONS = ("hub", "usage", "datasets", "announcements")
SECRET = b"\x01\x02cookie-secret-bytes\xff"


def write_config(tmp_path, name, urls=None) -> Path:
    data = tmp_path / name
    body = {"data_dir": str(data)}
    for section, url in (urls or {}).items():
        body[section] = {"db_url": url}
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(body))
    return config


def urls_of(config: Path) -> dict:
    cfg = studio_config.load(config)
    return {s: studio_config.db_url(cfg, s) for s in SECTIONS}


def fill(config: Path) -> None:
    """A studio with content in every database, made through the stores and JupyterHub's orm."""
    from jupyterhub import orm

    urls = urls_of(config)
    data = Path(studio_config.load(config)["data_dir"])
    data.mkdir(parents=True, exist_ok=True)
    session = orm.new_session_factory(urls["hub"])()
    session.add(orm.User(name="alice"))
    session.add(orm.User(name="bob"))
    session.commit()
    session.close()
    usage = UsageStore(urls["usage"])
    usage.close(usage.open("alice", "", ["gpu-residents"], "gpu-small", 1, "a100", 4, 16 << 30, now=1000.0), now=4600.0)
    usage.engine.dispose()
    datasets = DatasetStore(urls["datasets"])
    datasets.add("chest-xray", actor="steward", path="/srv/data/chest-xray", title="Chest X-rays")
    datasets.grant("chest-xray", actor="steward", users=["alice"], groups=["gpu-residents"])
    datasets.engine.dispose()
    news = Store(urls["announcements"])
    news.create({"kind": "news", "title": "Welcome to the studio"}, "organiser")
    news.reader.dispose()
    news.writer.dispose()
    (data / "jupyterhub_cookie_secret").write_bytes(SECRET)
    (data / "jupyterhub.pid").write_text("12345")  # not state: not backed up


def check(config: Path) -> None:
    """The restored studio has the content ``fill`` made."""
    from jupyterhub import orm

    urls = urls_of(config)
    session = orm.new_session_factory(urls["hub"])()
    assert sorted(u.name for u in session.query(orm.User)) == ["alice", "bob"]
    session.close()
    usage = UsageStore(urls["usage"])
    assert [(r.user, r.profile, r.gpus) for r in usage.rows()] == [("alice", "gpu-small", 1)]
    usage.engine.dispose()
    datasets = DatasetStore(urls["datasets"])
    assert [d.name for d in datasets.datasets()] == ["chest-xray"]
    assert sorted((g["kind"], g["principal"]) for g in datasets.grants("chest-xray")) == [
        ("group", "gpu-residents"), ("user", "alice")]
    datasets.engine.dispose()
    news = Store(urls["announcements"])
    assert [i["title"] for i in news.all_items()] == ["Welcome to the studio"]
    news.reader.dispose()
    news.writer.dispose()
    data = Path(studio_config.load(config)["data_dir"])
    assert (data / "jupyterhub_cookie_secret").read_bytes() == SECRET
    assert not (data / "jupyterhub.pid").exists()


def aistudio(config: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub_config.cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=180)


def one_line_error(out: subprocess.CompletedProcess, start: str) -> None:
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith(start), out.stderr


def test_backup_and_restore_into_a_new_data_folder(tmp_path):
    old = write_config(tmp_path, "old")
    fill(old)
    out = aistudio(old, "backup", str(tmp_path / "backup"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [*SECTIONS, "jupyterhub_cookie_secret", "manifest"]
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["studio_version"] and manifest["created_at"]
    assert [(i["name"], i["kind"], i["file"]) for i in manifest["items"]] == [
        ("hub", "sqlite", "hub.sqlite"), ("usage", "sqlite", "usage.sqlite"), ("datasets", "sqlite", "datasets.sqlite"),
        ("announcements", "sqlite", "announcements.sqlite"), ("jupyterhub_cookie_secret", "file", "jupyterhub_cookie_secret")]
    assert oct((tmp_path / "backup").stat().st_mode & 0o777) == "0o700"

    again = aistudio(old, "backup", str(tmp_path / "backup"))
    one_line_error(again, f"aistudio: backup: {tmp_path / 'backup'} is not empty")
    assert aistudio(old, "backup", "--force", str(tmp_path / "backup")).returncode == 0

    new = write_config(tmp_path, "new")
    out = aistudio(new, "restore", str(tmp_path / "backup"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith("hub: ")
    assert "nothing to do" in out.stdout and "jupyterhub upgrade-db" in out.stdout
    check(new)

    # a second restore would write over the studio it made
    out = aistudio(new, "restore", str(tmp_path / "backup"))
    one_line_error(out, "aistudio: restore: hub: sqlite:///")
    assert "exists already" in out.stderr and "--force" in out.stderr
    assert aistudio(new, "restore", "--force", str(tmp_path / "backup")).returncode == 0
    check(new)


def test_all_four_databases_on_postgresql(tmp_path, postgres):
    made = []

    def database(name):
        made.append(postgres.database(f"backup_{name}"))
        return made[-1]

    try:
        old = write_config(tmp_path, "old", {s: database(f"old_{s}") for s in SECTIONS})
        fill(old)
        out = aistudio(old, "backup", str(tmp_path / "backup"))
        assert out.returncode == 0, out.stderr
        assert postgres.password not in out.stdout + out.stderr
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        assert [i["kind"] for i in manifest["items"]] == ["postgresql"] * 4 + ["file"]
        assert postgres.password not in json.dumps(manifest)

        new = write_config(tmp_path, "new", {s: database(f"new_{s}") for s in SECTIONS})
        out = aistudio(new, "restore", str(tmp_path / "backup"))
        assert out.returncode == 0, out.stderr
        check(new)
        out = aistudio(new, "restore", str(tmp_path / "backup"))
        one_line_error(out, "aistudio: restore: hub: postgresql+psycopg://postgres:***@")
        out = aistudio(new, "restore", "--force", str(tmp_path / "backup"))
        assert out.returncode == 0, out.stderr
        check(new)

        # a SQLite backup does not go into a PostgreSQL database
        sqlite = write_config(tmp_path, "sqlite")
        fill(sqlite)
        assert aistudio(sqlite, "backup", str(tmp_path / "sqlite-backup")).returncode == 0
        out = aistudio(new, "restore", "--force", str(tmp_path / "sqlite-backup"))
        one_line_error(out, "aistudio: restore: hub: the backup is sqlite but the configured database")
    finally:
        for url in made:
            postgres.drop(url)


def test_a_changed_backup_file_is_refused(tmp_path):
    old = write_config(tmp_path, "old")
    fill(old)
    assert aistudio(old, "backup", str(tmp_path / "backup")).returncode == 0
    usage = tmp_path / "backup" / "usage.sqlite"
    with sqlite3.connect(usage) as conn:
        conn.execute("DELETE FROM server_usage")
    conn.close()
    new = write_config(tmp_path, "new")
    out = aistudio(new, "restore", str(tmp_path / "backup"))
    assert out.stderr.strip() == (f"aistudio: restore: {usage} does not match its sha256 in the manifest "
                                  "(damaged or changed); use another backup")
    assert out.returncode == 1
    assert not (tmp_path / "new").exists()  # nothing was written

    (tmp_path / "backup" / "manifest.json").unlink()
    one_line_error(aistudio(new, "restore", str(tmp_path / "backup")), "aistudio: restore: ")


def test_restore_refuses_while_the_studio_runs(tmp_path):
    old = write_config(tmp_path, "old")
    fill(old)
    assert aistudio(old, "backup", str(tmp_path / "backup")).returncode == 0
    new = write_config(tmp_path, "new")
    (tmp_path / "new").mkdir()
    hub = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "jupyterhub"],
                           env={**os.environ, processes.MARK_ENV: processes.mark_of(tmp_path / "new")})
    try:
        out = aistudio(new, "restore", str(tmp_path / "backup"))
    finally:
        hub.kill()
        hub.wait()
    assert out.returncode == 1
    assert out.stderr.strip() == f"aistudio: restore: the studio of {tmp_path / 'new'} is running (pid {hub.pid}); stop it first"
    assert list((tmp_path / "new").iterdir()) == []


def test_a_backup_while_a_writer_writes_is_consistent(tmp_path, capsys):
    config = write_config(tmp_path, "busy")
    cfg = studio_config.load(config)
    url = studio_config.db_url(cfg, "usage")
    store = UsageStore(url)
    stop = threading.Event()
    written = [0]

    def write():
        while not stop.is_set():
            store.open("alice", "", ["g1", "g2", "g3"], "gpu-small", 1, "a100", 4, 1 << 30)
            written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while written[0] < 50:
            time.sleep(0.01)
        backup_cli.backup(cfg, tmp_path / "backup")
        during = written[0]
    finally:
        stop.set()
        writer.join()
    store.engine.dispose()
    assert written[0] > 0
    copy = tmp_path / "backup" / "usage.sqlite"
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = conn.execute("SELECT count(*) FROM server_usage").fetchone()[0]
    groups = conn.execute("SELECT count(*) FROM server_usage_group").fetchone()[0]
    conn.close()
    assert 50 <= rows <= during and groups == 3 * rows  # whole transactions only
    assert not Path(f"{copy}-wal").exists()
    assert "usage: " in capsys.readouterr().out
    restored = UsageStore(f"sqlite:///{copy}")
    assert len(restored.rows()) == rows
    restored.engine.dispose()
