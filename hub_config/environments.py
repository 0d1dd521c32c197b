"""Members' Python environments: named, separate from the hub's, each built from a pinned
requirement file (``images/environments/*.txt``) and, on Kubernetes, an image.

Locally an environment is a venv under the environments root, built by ``aistudio env
build``; a marker file in it records what it was built from, so a build is skipped while
the requirement files (and the studio's JupyterLab extension) are unchanged. Nothing here
needs a hub.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARKER = "aistudio-environment.json"
SERVER_COMMAND = "jupyterhub-singleuser"
# what the wheel of the extension is made of (its front end is kept built in aistudio_lab/labextension)
_EXTENSION_PARTS = ("pyproject.toml", "aistudio_lab", "jupyter-config")


@dataclass(frozen=True)
class Environment:
    name: str
    description: str
    requirements: str  # absolute path of its requirement file
    image: str | None  # the pod image on Kubernetes
    path: str  # where it is built on this machine
    pip_args: tuple = ()

    @property
    def server_command(self) -> str:
        return os.path.join(self.path, "bin", SERVER_COMMAND)

    @property
    def python(self) -> str:
        return os.path.join(self.path, "bin", "python")


class EnvironmentNotBuilt(Exception):
    """A server was asked for in an environment this machine does not have."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(
            f"Environment {name} is not built on this machine: run `aistudio env build {name}` "
            "(or ask an administrator to)."
        )


# --------------------------------------------------------------------------- the config's view


def root(config: dict) -> str:
    """Where environments are built: the configured root; else, as root, a place every
    account may read (servers run as per-user accounts), otherwise the data folder."""
    section = config["environments"]
    if section.get("root"):
        return section["root"]
    if os.geteuid() == 0:
        return "/opt/aistudio/user-envs"
    return str(Path(config["data_dir"]) / "user-envs")


def configured(config: dict) -> dict[str, Environment]:
    """Every environment of the config, by name, the default first."""
    section = config["environments"]
    base = root(config)
    envs = {
        name: Environment(
            name=name,
            description=spec.get("description", ""),
            requirements=spec["requirements"],
            image=spec.get("image"),
            path=os.path.join(base, name),
            pip_args=tuple(spec.get("pip_args", ())),
        )
        for name, spec in section["available"].items()
    }
    default = section["default"]
    return {default: envs[default], **{n: e for n, e in envs.items() if n != default}} if default in envs else envs


def default_name(config: dict) -> str:
    return config["environments"]["default"]


def resolve_requirement_paths(section: dict, base_dir: Path) -> None:
    """Make the ``requirements`` of each environment absolute, relative to ``base_dir``
    (the checkout for the defaults, the config file's folder for the config's own)."""
    available = section.get("available") if isinstance(section, dict) else None
    for spec in (available or {}).values():
        if isinstance(spec, dict) and isinstance(spec.get("requirements"), str):
            spec["requirements"] = str((base_dir / os.path.expanduser(spec["requirements"])).resolve())


def check(config: dict) -> list[str]:
    """Problems of the ``environments`` section the schema cannot see, one line each."""
    section = config["environments"]
    problems = []
    if section["default"] not in section["available"]:
        problems.append(f"environments.default: {section['default']!r} is not one of environments.available "
                        f"({', '.join(section['available']) or 'none'})")
    if config["mode"] == "local":
        for name, spec in section["available"].items():
            if not Path(spec["requirements"]).is_file():
                problems.append(f"environments.available.{name}.requirements: {spec['requirements']} is not a file")
    return problems


# --------------------------------------------------------------------------- what is built


def requirement_files(path: str | Path) -> list[Path]:
    """The requirement file and every file it includes with ``-r`` (in reading order)."""
    seen: list[Path] = []

    def visit(p: Path):
        p = p.resolve()
        if p in seen:
            return
        seen.append(p)
        for line in p.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) == 2 and words[0] in ("-r", "--requirement"):
                visit(p.parent / words[1])

    visit(Path(path))
    return seen


def requirements_hash(env: Environment) -> str:
    """What a rebuild depends on: the requirement files' contents and the pip arguments."""
    digest = hashlib.sha256()
    for f in requirement_files(env.requirements):
        digest.update(f.read_bytes())
    digest.update("\0".join(env.pip_args).encode())
    return digest.hexdigest()


def extension_dir() -> Path:
    """The studio's JupyterLab extension in this checkout, which local builds install. Only a
    checkout has it: the hub's image builds no environments (servers' images carry it)."""
    return REPO / "extensions" / "lab"


def extension_hash(directory: Path | None = None) -> str:
    """What the studio's JupyterLab extension's wheel is made of (a change reinstalls it)."""
    directory = directory or extension_dir()
    digest = hashlib.sha256()
    for part in _EXTENSION_PARTS:
        base = directory / part
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for f in files:
            if "__pycache__" in f.parts:
                continue
            digest.update(str(f.relative_to(directory)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def read_marker(env: Environment) -> dict | None:
    try:
        return json.loads(Path(env.path, MARKER).read_text())
    except (OSError, ValueError):
        return None


def is_built(env: Environment) -> bool:
    """Whether a server can start in ``env`` here (a finished build left its marker)."""
    return read_marker(env) is not None and os.access(env.server_command, os.X_OK)


def size_bytes(path: str) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(folder, f)).st_size
            except OSError:
                pass
    return total


def status(env: Environment, *, with_size: bool = False) -> dict:
    """One environment as ``aistudio env list`` shows it."""
    marker = read_marker(env)
    built = is_built(env)
    row = {
        "name": env.name,
        "path": env.path,
        "built": built,
        "up_to_date": built and marker.get("requirements_hash") == requirements_hash(env)
        and marker.get("extension_hash") == extension_hash(),
        "built_at": marker.get("built_at") if marker else None,
        "requirements": env.requirements,
        "image": env.image,
        "description": env.description,
    }
    if with_size:
        row["size_mb"] = round(size_bytes(env.path) / 1e6) if built else None
    return row
