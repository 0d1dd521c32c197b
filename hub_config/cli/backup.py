"""``aistudio backup DIR`` and ``aistudio restore DIR``: all the state of a studio.

The four databases (the hub's own, usage records, the datasets registry, announcements)
and the small state files of the data folder (the hub's cookie secret). A SQLite
database is copied through SQLite's online backup API, a consistent copy also while the
studio runs and writes; a PostgreSQL database with ``pg_dump -Fc`` (its password goes
in the environment, never on the command line). ``DIR/manifest.json`` says what came
from where, when, with which release, and each file's sha256; it is written last, so a
backup cut short has none and is not restored.

Restore writes into the databases and data folder of the config it is given (so a
config with a new ``data_dir`` makes a new studio of the backup), with the studio
stopped, after checking every file against the manifest, and then runs ``upgrade-db``
so that a backup of an older release comes up at this release's schema.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

import hub_config

from .. import config as studio_config
from .. import db, processes
from . import load_config

SECTIONS = ("hub", "usage", "datasets", "announcements")
STATE_FILES = ("jupyterhub_cookie_secret",)
MANIFEST = "manifest.json"
FORMAT = 1


class BackupError(Exception):
    """What is wrong and what to do, in one line."""


# ---------------------------------------------------------------------------- helpers

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def kind_of(url: str) -> str:
    if db.sqlite_path(url) is not None:
        return "sqlite"
    if url.startswith(("postgresql", "postgres")):
        return "postgresql"
    raise BackupError(f"{hidden(url)} is neither a SQLite file nor PostgreSQL; back it up with its own tools")


def hidden(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the configured URL"


def pg_program(name: str) -> str:
    """``pg_dump`` or ``pg_restore``: the newest Debian PostgreSQL's, else the one on PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3])
                   if Path(p).parts[-3].isdigit() else 0)
    program = found[-1] if found else shutil.which(name)
    if not program:
        raise BackupError(f"{name} is not installed; install PostgreSQL's client programs (apt-get install postgresql-client)")
    return program


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq(url: str) -> tuple[str, dict]:
    """A SQLAlchemy PostgreSQL URL as a libpq conninfo (no password) and the environment
    that carries the password."""
    u = make_url(url)
    parts = {"dbname": u.database, "host": u.host, "port": u.port, "user": u.username}
    parts.update({k: v if isinstance(v, str) else v[-1] for k, v in u.query.items()})
    conninfo = " ".join(f"{k}={_quote(str(v))}" for k, v in parts.items() if v not in (None, ""))
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if u.password:
        env["PGPASSWORD"] = u.password
    return conninfo, env


def _pg(program: str, args: list[str], url: str, what: str) -> None:
    conninfo, env = libpq(url)
    out = subprocess.run([pg_program(program), *args, "-d", conninfo], capture_output=True, text=True, env=env)
    if out.returncode:
        last = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BackupError(f"{what}: {program} failed: {last[0]}")


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of the database ``source`` into ``target`` through the backup API."""
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
            if dst.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()


def _running(cfg) -> int | None:
    running = [pid for pid, cmd in processes.marked(processes.mark_of(cfg["data_dir"])) if "jupyterhub" in cmd]
    return running[0] if running else None


# ---------------------------------------------------------------------------- backup

def backup(cfg: dict, folder: Path, force: bool = False) -> None:
    if folder.exists() and not folder.is_dir():
        raise BackupError(f"{folder} is a file; name a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise BackupError(f"{folder} is not empty; name a new or empty folder, or pass --force to write over it")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)  # the cookie secret and members' records
    items = []
    for section in SECTIONS:
        url = studio_config.db_url(cfg, section)
        kind = kind_of(url)
        if kind == "sqlite":
            source = db.sqlite_path(url)
            if not source.is_file():
                print(f"{section}: {source} does not exist yet, nothing to back up", flush=True)
                continue
            name = f"{section}.sqlite"
            try:
                _sqlite_copy(source, folder / name)
            except sqlite3.Error as e:
                raise BackupError(f"{section}: cannot copy {source}: {e}") from None
        else:
            name = f"{section}.pgdump"
            _pg("pg_dump", ["-Fc", "--no-password", "-f", str(folder / name)], url, section)
        items.append({"name": section, "kind": kind, "source": hidden(url), "file": name,
                      "bytes": (folder / name).stat().st_size, "sha256": sha256(folder / name)})
        print(f"{section}: {hidden(url)} -> {folder / name} ({items[-1]['bytes']} bytes)", flush=True)
    data = Path(cfg["data_dir"])
    for name in STATE_FILES:
        source = data / name
        if not source.is_file():
            print(f"{name}: {source} does not exist yet, nothing to back up", flush=True)
            continue
        shutil.copyfile(source, folder / name)
        os.chmod(folder / name, 0o600)
        items.append({"name": name, "kind": "file", "source": str(source), "file": name,
                      "bytes": (folder / name).stat().st_size, "sha256": sha256(folder / name)})
        print(f"{name}: {source} -> {folder / name}", flush=True)
    manifest = {"format": FORMAT, "studio_version": hub_config.__version__,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "data_dir": str(data), "items": items}
    partial = folder / f".{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.replace(folder / MANIFEST)
    print(f"manifest: {folder / MANIFEST} ({len(items)} items, studio {hub_config.__version__})", flush=True)


# ---------------------------------------------------------------------------- restore

def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{path} does not exist: {folder} is not a complete backup (aistudio backup writes it last)")
    try:
        manifest = json.loads(path.read_text())
        items = manifest["items"]
        assert manifest.get("format") == FORMAT and isinstance(items, list)
        for item in items:
            assert item["kind"] in ("sqlite", "postgresql", "file") and Path(item["file"]).name == item["file"]
            assert item["name"] in SECTIONS + STATE_FILES and isinstance(item["sha256"], str)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise BackupError(f"{path} is not a manifest of aistudio backup (format {FORMAT}); use another backup") from None
    return manifest


def verify(folder: Path, manifest: dict) -> None:
    for item in manifest["items"]:
        path = folder / item["file"]
        if not path.is_file():
            raise BackupError(f"{path} is missing from the backup; use another backup")
        if sha256(path) != item["sha256"]:
            raise BackupError(f"{path} does not match its sha256 in the manifest (damaged or changed); "
                              "use another backup")


def _pg_has_tables(url: str) -> bool:
    engine = db.make_engine(url)
    try:
        return bool(inspect(engine).get_table_names())
    except Exception as e:
        raise BackupError(f"cannot open {hidden(url)}: {type(e).__name__}: {str(e).strip().splitlines()[0]}") from None
    finally:
        engine.dispose()


def plan(cfg: dict, manifest: dict, force: bool) -> list[tuple[dict, str]]:
    """(item, target) for each item: the target URL or file; refuses mismatched kinds
    and, without ``force``, anything there already."""
    planned = []
    for item in manifest["items"]:
        if item["kind"] == "file":
            target = str(Path(cfg["data_dir"]) / item["name"])
            there = Path(target).exists()
        else:
            target = studio_config.db_url(cfg, item["name"])
            kind = kind_of(target)
            if kind != item["kind"]:
                raise BackupError(f"{item['name']}: the backup is {item['kind']} but the configured database "
                                  f"{hidden(target)} is {kind}; configure a {item['kind']} database to restore into")
            if kind == "sqlite":
                path = db.sqlite_path(target)
                there = path.is_file() and path.stat().st_size > 0
            else:
                there = _pg_has_tables(target)
        if there and not force:
            raise BackupError(f"{item['name']}: {hidden(target) if item['kind'] != 'file' else target} exists "
                              "already; restore into a new data folder or empty databases, or pass --force to replace it")
        planned.append((item, target))
    return planned


def restore(cfg: dict, folder: Path, force: bool = False) -> None:
    manifest = read_manifest(folder)
    verify(folder, manifest)
    pid = _running(cfg)
    if pid is not None:
        raise BackupError(f"the studio of {cfg['data_dir']} is running (pid {pid}); stop it first")
    planned = plan(cfg, manifest, force)
    data = Path(cfg["data_dir"])
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    for item, target in planned:
        source = folder / item["file"]
        if item["kind"] == "file":
            shutil.copyfile(source, target)
            os.chmod(target, 0o600)
            print(f"{item['name']}: {source} -> {target}", flush=True)
            continue
        if item["kind"] == "sqlite":
            path = db.sqlite_path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                _sqlite_copy(source, path)
            except sqlite3.Error as e:
                raise BackupError(f"{item['name']}: cannot write {path}: {e}") from None
        else:
            _pg("pg_restore", ["--clean", "--if-exists", "--no-owner", "--single-transaction", "--no-password",
                               str(source)], target, item["name"])
        print(f"{item['name']}: {source} -> {hidden(target)}", flush=True)
    for section in SECTIONS:
        if section not in {item["name"] for item in manifest["items"]}:
            print(f"{section}: not in the backup, left as it is", flush=True)


# ---------------------------------------------------------------------------- commands

def cmd_backup(args) -> int:
    cfg = load_config(args)
    try:
        backup(cfg, Path(args.dir).expanduser().absolute(), force=args.force)
    except (BackupError, OSError) as e:
        print(f"aistudio: backup: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_restore(args) -> int:
    from . import upgrade

    cfg = load_config(args)
    folder = Path(args.dir).expanduser().absolute()
    try:
        restore(cfg, folder, force=args.force)
    except (BackupError, OSError) as e:
        print(f"aistudio: restore: {e}", file=sys.stderr)
        return 1
    # a backup of an older release: bring it to this release's schema
    return upgrade.cmd_upgrade_db(args)


def add_parser(sub) -> None:
    p = sub.add_parser("backup", help="copy every database and the state files of the studio into DIR "
                                      "(also while it runs)")
    p.add_argument("dir", metavar="DIR", help="a new or empty folder")
    p.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="restore a backup into the configured data folder and databases "
                                       "(studio stopped), then upgrade-db")
    p.add_argument("dir", metavar="DIR", help="a folder written by aistudio backup")
    p.add_argument("--force", action="store_true", help="replace databases and files that exist already")
    p.set_defaults(func=cmd_restore)
