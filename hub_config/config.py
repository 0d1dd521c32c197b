"""The studio config: one YAML file, merged over documented defaults, validated by a
JSON Schema, with its paths resolved; and the values derived from it that several
parts need (accounts mode, database URLs, where services listen). ``configurer``
turns it into traitlets config."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import jsonschema
import yaml

from . import environments

HERE = Path(__file__).parent
DEFAULTS_PATH = HERE / "defaults.yaml"
SCHEMA_PATH = HERE / "schema" / "studio.schema.json"

# Environment variables through which `aistudio up` (and tests) hand settings to
# jupyterhub_config.py, which JupyterHub loads as a plain Python file.
ENV_CONFIG = "AISTUDIO_CONFIG"
ENV_DATA_DIR = "AISTUDIO_DATA_DIR"
ENV_PORT = "AISTUDIO_PORT"


class StudioConfigError(Exception):
    """The studio config is unusable; the message names the file and the key."""


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` over ``base``; nested dicts are merged, everything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def defaults() -> dict:
    return yaml.safe_load(DEFAULTS_PATH.read_text())


_validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def validate(config: dict, source: str = "<config>") -> None:
    errors = sorted(_validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for e in errors:
            key = ".".join(str(p) for p in e.absolute_path) or "(top level)"
            lines.append(f"{source}: {key}: {e.message}")
        raise StudioConfigError("\n".join(lines))


def resolve_paths(config: dict, base_dir: Path) -> dict:
    """Make the config's relative paths absolute, relative to ``base_dir``."""
    config = copy.deepcopy(config)

    def absolute(p):
        return str((base_dir / os.path.expanduser(p)).resolve())

    config["data_dir"] = absolute(config["data_dir"])
    config["profiles_dir"] = absolute(config["profiles_dir"])
    idle = (config.get("lifecycle") or {}).get("gpu_idle") or {}
    if idle.get("file"):
        idle["file"] = absolute(idle["file"])
    datasets = config.get("datasets") or {}
    datasets["manifests"] = [absolute(m) for m in datasets.get("manifests", [])]
    if (datasets.get("demo") or {}).get("files_dir"):
        datasets["demo"]["files_dir"] = absolute(datasets["demo"]["files_dir"])
    return config


def load(path: str | os.PathLike | None = None, *, data_dir=None, port=None) -> dict:
    """Load the studio config at ``path`` (defaults alone when None), apply
    command-line overrides, validate, and resolve paths."""
    override: dict = {}
    source = "<defaults>"
    base_dir = Path.cwd()
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            override = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise StudioConfigError(f"{path}: cannot be read: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise StudioConfigError(f"{path}: is not valid YAML: {e}") from None
        if not isinstance(override, dict):
            raise StudioConfigError(f"{path}: (top level): must be a mapping of settings")
        base_dir = path.resolve().parent
    base = defaults()
    # an environment's requirement file: the defaults' in the checkout, the config's beside it
    environments.resolve_requirement_paths(base["environments"], HERE.parent)
    environments.resolve_requirement_paths(override.get("environments"), base_dir)
    config = deep_merge(base, override)
    validate(config, source)
    problems = environments.check(config)
    if problems:
        raise StudioConfigError("\n".join(f"{source}: {line}" for line in problems))
    config = resolve_paths(config, base_dir)
    if data_dir is not None:
        config["data_dir"] = str(Path(data_dir).expanduser().resolve())
    if port is not None:
        config["hub"]["port"] = int(port)
        validate(config, source)
    return config


def load_from_env() -> dict:
    """The config that `aistudio up` asked for through the environment."""
    return load(
        os.environ.get(ENV_CONFIG) or None,
        data_dir=os.environ.get(ENV_DATA_DIR) or None,
        port=os.environ.get(ENV_PORT) or None,
    )


def user_accounts(config: dict) -> str:
    """``system`` or ``shared``, with ``auto`` decided by whether we are root."""
    wanted = config["local"]["user_accounts"]
    if wanted == "auto":
        return "system" if os.geteuid() == 0 else "shared"
    return wanted


def demo_groups(config: dict) -> dict[str, list[str]]:
    """Groups of each demo user, as the demo login reports them."""
    return {name: list(u.get("groups", [])) for name, u in config["auth"]["demo"]["users"].items()}


def service_url(config: dict, port: int) -> str:
    """Where the proxy reaches a hub-managed service (see hub.services_host)."""
    return f"http://{config['hub']['services_host']}:{port}"


def db_url(config: dict, section: str) -> str:
    """The database of ``hub`` (JupyterHub's own), ``usage``, ``datasets`` or
    ``announcements``: its ``db_url``, or a SQLite file named for it in the data folder."""
    name = "jupyterhub" if section == "hub" else section
    return config[section]["db_url"] or f"sqlite:///{Path(config['data_dir']) / f'{name}.sqlite'}"


def datasets_mount_root(config: dict) -> str:
    """Where servers find granted datasets: the configured folder locally, /datasets in pods."""
    return config["datasets"]["mount_root"] if config["mode"] == "local" else "/datasets"


def datasets_files_dir(config: dict) -> str:
    """Where the demo datasets are written: readable by members' accounts (data_dir is private)."""
    demo = config["datasets"]["demo"]
    if demo["files_dir"]:
        return demo["files_dir"]
    if config["mode"] == "local" and user_accounts(config) == "system":
        return "/srv/aistudio/demo-datasets"
    return str(Path(config["data_dir"]) / "demo-datasets")
