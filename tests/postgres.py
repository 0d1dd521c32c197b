"""A throwaway PostgreSQL server for the tests: Debian's PostgreSQL (installed by
scripts/setup.sh --test), `initdb` into a temporary folder, started with `pg_ctl` on a
free loopback port with its unix socket in that folder, one database per test
(CREATE DATABASE), stopped by its PID when the last user of it is done.

initdb refuses to run as root: as root the server runs as the `postgres` system
account (runuser), which owns the temporary folder. A user other than root runs it
as themselves. Without PostgreSQL the tests that need it fail with a message that
says how to install it (CI runs scripts/setup.sh --test, which installs it).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness import free_ports

INSTALL_HINT = ("install Debian's PostgreSQL: run scripts/setup.sh --test as root "
                "(or apt-get install postgresql), or deselect these tests with -k 'not postgres'")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started; the message says why and what to do."""


def bindir() -> Path:
    """The newest Debian PostgreSQL's programs (/usr/lib/postgresql/N/bin), else initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    initdb = found[-1] if found else shutil.which("initdb")
    if not initdb:
        raise PostgresUnavailable(f"PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): {INSTALL_HINT}")
    return Path(initdb).parent


class PostgresServer:
    """One server; ``database()`` makes a new, empty database and returns its URL."""

    def __init__(self):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise PostgresUnavailable("the PostgreSQL driver psycopg is not installed: run scripts/setup.sh --test "
                                      "(the test extras of pyproject.toml)") from None
        self.bin = bindir()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            try:
                self.account = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(f"there is no postgres system account: {INSTALL_HINT}") from None
        self.root = Path(tempfile.mkdtemp(prefix="aistudio-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.password = secrets.token_hex(16)
        self.port: int | None = None
        self.pid: int | None = None
        self._count = 0
        self._lock = threading.Lock()

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        r = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if r.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise PostgresUnavailable(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}\n{log}")
        return r

    def start(self, tries: int = 3) -> PostgresServer:
        if self.as_postgres:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.as_postgres:
            os.chown(pwfile, self.account.pw_uid, self.account.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                  "--no-sync")
        pwfile.unlink()
        for attempt in range(tries):
            self.port = free_ports(1)[0]
            options = " ".join([
                "-c listen_addresses=127.0.0.1", f"-p {self.port}", f"-c unix_socket_directories={self.root}",
                # a throwaway server: durability is not what the tests check
                "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
                "-c max_connections=200",
            ])
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                          "-w", "-t", "60", "start", timeout=90)
                break
            except PostgresUnavailable:
                if attempt == tries - 1 or "could not bind" not in self.log.read_text(errors="replace"):
                    raise
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def database(self, hint: str = "db") -> str:
        """A new, empty database (named after ``hint``) and its SQLAlchemy URL."""
        with self._lock:
            self._count += 1
            name = f"{re.sub(r'[^a-z0-9]+', '_', hint.lower())[:40].strip('_') or 'db'}_{self._count}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.password,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def drop(self, url: str) -> None:
        """Drop the database of ``url``, ending its connections (engines a test left open)."""
        self._admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def stop(self) -> None:
        """Fast shutdown of the postmaster by its PID, then the folder goes."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and _alive(self.pid):
                    time.sleep(0.05)
                if _alive(self.pid):
                    os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# One server per test process, shared by every conftest that uses it, stopped when the
# last of them is done (and at exit, should a run end early).
_server: PostgresServer | None = None
_failure: str | None = None
_users = 0


def acquire() -> PostgresServer:
    global _server, _failure, _users
    if _failure is not None:
        raise PostgresUnavailable(_failure)
    if _server is None:
        server = None
        try:
            server = PostgresServer()
            _server = server.start()
        except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as e:
            _failure = f"cannot start a PostgreSQL server for the tests: {e}"
            if server is not None:
                server.stop()
            raise PostgresUnavailable(_failure) from None
        atexit.register(server.stop)
    _users += 1
    return _server


def release() -> None:
    global _server, _users
    _users -= 1
    if _users == 0 and _server is not None:
        _server.stop()
        _server = None


def postgres_fixture():
    """The body of the session fixture ``postgres``: the shared server, or a test failure
    (not a skip) naming what is missing."""
    import pytest

    try:
        server, failure = acquire(), None
    except PostgresUnavailable as e:
        server, failure = None, str(e)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield server
    finally:
        release()
