"""``aistudio env``: build members' Python environments on this machine, and list them
(``hub_config.environments``)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .. import environments
from ..environments import MARKER, Environment
from . import load_config
from .output import print_table


class BuildFailed(Exception):
    """A step of a build failed; the message names the step and ends with pip's last lines."""


def say(name: str, message: str) -> None:
    print(f"env {name}: {message}", flush=True)


def run_step(name: str, what: str, command: list[str]) -> None:
    say(name, what)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        tail = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("WARNING: Location"))[-2000:]
        raise BuildFailed(f"{what} failed ({' '.join(command[:6])} ...):\n{tail}")


def pip(env: Environment) -> list[str]:
    return [env.python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"]


def write_marker(env: Environment, marker: dict) -> None:
    tmp = Path(env.path, MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2) + "\n")
    tmp.replace(Path(env.path, MARKER))


@contextlib.contextmanager
def build_lock(env: Environment):
    """One build of an environment at a time on this machine (the environments root is
    shared: two studios, or the tests beside `make up`); a second build waits, then finds
    the first one's work done."""
    with open(os.path.join(os.path.dirname(env.path), f".{env.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(env: Environment, python: str, *, force: bool = False) -> str:
    """Build ``env`` (or bring its extension up to date); return what was done. Idempotent:
    nothing happens while its requirement files and the extension are unchanged."""
    wanted_reqs, wanted_ext = environments.requirements_hash(env), environments.extension_hash()
    marker = environments.read_marker(env) if not force else None
    if marker and environments.is_built(env) and marker.get("requirements_hash") == wanted_reqs:
        if marker.get("extension_hash") == wanted_ext:
            return "up to date"
        install_extension(env)
        write_marker(env, {**marker, "extension_hash": wanted_ext})
        return "extension reinstalled"
    started = time.monotonic()
    if os.path.exists(env.path):
        say(env.name, f"removing the earlier build in {env.path}")
        shutil.rmtree(env.path)
    os.makedirs(os.path.dirname(env.path), mode=0o755, exist_ok=True)
    run_step(env.name, f"creating a venv in {env.path} ({python})", [python, "-m", "venv", env.path])
    run_step(env.name, f"installing {os.path.basename(env.requirements)} (minutes the first time)",
             [*pip(env), *env.pip_args, "-r", env.requirements])
    install_extension(env)
    write_marker(env, {
        "name": env.name,
        "requirements": env.requirements,
        "requirements_hash": wanted_reqs,
        "extension_hash": wanted_ext,
        "pip_args": list(env.pip_args),
        "built_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(time.monotonic() - started),
    })
    size = environments.size_bytes(env.path) / 1e6
    return f"built in {time.monotonic() - started:.0f} s ({size:.0f} MB)"


def install_extension(env: Environment) -> None:
    """The studio's JupyterLab extension, without its dependencies (the requirement file pins them)."""
    run_step(env.name, "installing the studio's JupyterLab extension (extensions/lab)",
             [*pip(env), "--no-deps", "--force-reinstall", str(environments.extension_dir())])


def cmd_env_build(args) -> int:
    cfg = load_config(args)
    envs = environments.configured(cfg)
    unknown = [n for n in args.names if n not in envs]
    if unknown:
        print(f"aistudio env build: no environment {', '.join(unknown)} (configured: {', '.join(envs)})", file=sys.stderr)
        return 2
    root = environments.root(cfg)
    os.umask(0o022)  # servers run as other accounts: everything built must be readable
    os.makedirs(root, mode=0o755, exist_ok=True)
    for name in args.names or list(envs):
        try:
            with build_lock(envs[name]):
                outcome = build(envs[name], cfg["environments"]["python"], force=args.force)
        except BuildFailed as e:
            print(f"aistudio env build: {name}: {e}", file=sys.stderr)
            return 1
        say(name, outcome)
    return 0


def cmd_env_list(args) -> int:
    cfg = load_config(args)
    rows = [environments.status(e, with_size=args.size or args.format == "json")
            for e in environments.configured(cfg).values()]
    default = environments.default_name(cfg)
    for row in rows:
        row["default"] = row["name"] == default
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    table = [("NAME", "BUILT", "SIZE", "PATH", "REQUIREMENTS")]
    for r in rows:
        built = ("yes" if r["up_to_date"] else "yes, out of date") if r["built"] else "no"
        size = f"{r['size_mb']} MB" if r.get("size_mb") is not None else "-"
        table.append((r["name"] + (" (default)" if r["default"] else ""), built, size, r["path"],
                      os.path.relpath(r["requirements"])))
    print_table(table)
    return 0


def add_parser(sub) -> None:
    env = sub.add_parser("env", help="members' Python environments").add_subparsers(dest="action", required=True)
    build_ = env.add_parser("build", help="build environments on this machine (skipped while unchanged)")
    build_.add_argument("names", nargs="*", help="environments to build (default: every configured one)")
    build_.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    build_.set_defaults(func=cmd_env_build)
    list_ = env.add_parser("list", help="every configured environment and whether it is built here")
    list_.add_argument("--format", choices=["table", "json"], default="table")
    list_.add_argument("--size", action="store_true", help="measure each built environment (the table)")
    list_.set_defaults(func=cmd_env_list)
