"""The studio config: one YAML file, merged over documented defaults, validated by
a JSON Schema, and turned into traitlets config by small pure functions."""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import jsonschema
import yaml

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
    if config["local"].get("python_env"):
        config["local"]["python_env"] = absolute(config["local"]["python_env"])
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
    config = deep_merge(defaults(), override)
    validate(config, source)
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


def python_env(config: dict) -> str:
    """Environment whose jupyterhub-singleuser starts servers (real path: users
    cannot pass through a symlink inside a folder they may not read)."""
    return os.path.realpath(config["local"]["python_env"] or sys.prefix)


def demo_groups(config: dict) -> dict[str, list[str]]:
    """Groups of each demo user, as the demo login reports them."""
    return {name: list(u.get("groups", [])) for name, u in config["auth"]["demo"]["users"].items()}


# --------------------------------------------------------------------------- traitlets


def hub_traitlets(config: dict) -> dict:
    hub, data = config["hub"], Path(config["data_dir"])
    return {
        "JupyterHub": {
            "ip": hub["ip"],
            "port": hub["port"],
            "hub_ip": "127.0.0.1",
            "hub_port": hub["hub_port"],
            "base_url": hub["base_url"],
            "db_url": hub["db_url"] or f"sqlite:///{data / 'jupyterhub.sqlite'}",
            "cookie_secret_file": str(data / "jupyterhub_cookie_secret"),
            "pid_file": str(data / "jupyterhub.pid"),
            "cleanup_servers": hub["stop_servers_on_exit"],
            "cleanup_proxy": True,
        }
    }


def proxy_traitlets(config: dict) -> dict:
    if config["hub"].get("proxy_api_url"):
        # an external proxy (its own Deployment on Kubernetes): the hub starts none and
        # reads the API token from CONFIGPROXY_AUTH_TOKEN, which the proxy shares
        return {"ConfigurableHTTPProxy": {"api_url": config["hub"]["proxy_api_url"], "should_start": False}}
    data = Path(config["data_dir"])
    env_bin = Path(sys.prefix) / "bin" / "configurable-http-proxy"
    command = str(env_bin) if env_bin.exists() else "configurable-http-proxy"
    return {
        "ConfigurableHTTPProxy": {
            "api_url": f"http://127.0.0.1:{config['hub']['proxy_api_port']}",
            "command": [command],
            "pid_file": str(data / "jupyterhub-proxy.pid"),
        }
    }


def auth_traitlets(config: dict) -> dict:
    """Login: the demo users, or OpenID Connect (``hub_config.oidc``, which reads the
    client secret and asks the provider for its endpoints)."""
    auth = config["auth"]
    if auth["type"] == "oidc":
        from . import oidc

        return oidc.traitlets(config)
    demo = auth["demo"]
    admins = set(auth["admin_users"]) | {n for n, u in demo["users"].items() if u.get("admin")}
    return {
        "JupyterHub": {"authenticator_class": "hub_config.auth.DemoAuthenticator"},
        "Authenticator": {"admin_users": admins, "manage_groups": True},
        "DemoAuthenticator": {"users": demo["users"], "shared_password": demo["password"] or ""},
    }


def service_url(config: dict, port: int) -> str:
    """Where the proxy reaches a hub-managed service (see hub.services_host)."""
    return f"http://{config['hub']['services_host']}:{port}"


def listen_address(url: str) -> str:
    """Address a service of ``url`` binds: loopback stays private, any other host means all addresses."""
    host = url.split("//", 1)[-1].split(":", 1)[0].split("/", 1)[0]
    return host if host in ("127.0.0.1", "localhost", "::1") else ""


def usage_db_url(config: dict) -> str:
    return config["usage"]["db_url"] or f"sqlite:///{Path(config['data_dir']) / 'usage.sqlite'}"


ANNOUNCEMENTS_WRITE_SCOPE = "custom:announcements:write"


def announcements_db_url(config: dict) -> str:
    return config["announcements"]["db_url"] or f"sqlite:///{Path(config['data_dir']) / 'announcements.sqlite'}"


def announcements_services(config: dict, services: list, roles: list) -> dict:
    """The announcements service (/services/announcements/, extensions/announcements): every user
    may read it; the organiser groups hold the custom write scope through a role, and the service's
    OAuth client may carry it, so a member's login token has it exactly when the member does.
    Returns the other JupyterHub settings it needs: the scope and the home page with the banner."""
    ann = config["announcements"]
    if not ann["enabled"]:
        return {}
    import secrets

    try:
        from aistudio_announcements.banner import Banner
    except ImportError:
        raise StudioConfigError(
            "announcements.enabled: the aistudio-announcements package (extensions/announcements) is not installed; "
            "install it (pip install ./extensions/announcements) or set announcements.enabled: false"
        ) from None

    access = "access:services!service=announcements"
    url = ann["url"] or service_url(config, ann["service_port"])
    token = secrets.token_hex(32)  # the service's API token, new at each start; the hub's banner uses it
    services.append({
        "name": "announcements",
        "url": url,
        "api_token": token,
        "command": [sys.executable, "-m", "aistudio_announcements"],
        "environment": {
            "AISTUDIO_ANNOUNCEMENTS_DB_URL": announcements_db_url(config),
            "AISTUDIO_ANNOUNCEMENTS_TIMEZONE": ann["timezone"],
            "AISTUDIO_ANNOUNCEMENTS_BODY_MAX": str(ann["max_body_chars"]),
        },
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": [ANNOUNCEMENTS_WRITE_SCOPE],
        "info": {"description": "Seminars, the incubation programme and news"},
    })
    user_role = next((r for r in roles if r["name"] == "user"), None)
    if user_role is None:
        user_role = {"name": "user", "scopes": ["self"]}
        roles.append(user_role)
    user_role["scopes"].append(access)
    roles.append({"name": "announcements-organisers", "scopes": [ANNOUNCEMENTS_WRITE_SCOPE, access],
                  "groups": list(ann["organiser_groups"]), "users": list(ann["organiser_users"])})
    roles.append({"name": "announcements-service", "scopes": [access], "services": ["announcements"]})
    prefix = config["hub"]["base_url"].rstrip("/") + "/services/announcements/"
    return {
        "custom_scopes": {ANNOUNCEMENTS_WRITE_SCOPE: {
            "description": "Create, edit and delete announcements; review incubation applications."}},
        "template_paths": [str(HERE / "templates" / "hub")],
        "template_vars": {"announcements": Banner(url, prefix, token)},
    }


def services_traitlets(config: dict) -> dict:
    """Hub-managed services: the usage page for admins, and jupyterhub-idle-culler."""
    services = [{
        "name": "usage",
        "url": service_url(config, config["usage"]["service_port"]),
        "command": [sys.executable, "-m", "hub_config.usage_service"],
        "environment": {"AISTUDIO_USAGE_DB_URL": usage_db_url(config), "AISTUDIO_PROFILES_DIR": config["profiles_dir"]},
        "oauth_no_confirm": True,
        "info": {"description": "GPU use per group and GPU-hours over time (admins)"},
    }]
    roles = []
    hub_extra = announcements_services(config, services, roles)
    culler = config["culler"]
    if culler["enabled"]:
        services.append({"name": "idle-culler", "command": [
            sys.executable, "-m", "jupyterhub_idle_culler",
            f"--timeout={culler['timeout']}", f"--cull-every={culler['every']}", f"--max-age={culler['max_age']}",
        ]})
        roles.append({
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        })
    datasets_services(config, services, roles)
    return {"JupyterHub": {"services": services, "load_roles": roles, **hub_extra}}


def datasets_db_url(config: dict) -> str:
    return config["datasets"]["db_url"] or f"sqlite:///{Path(config['data_dir']) / 'datasets.sqlite'}"


def datasets_files_dir(config: dict) -> str:
    """Where the demo datasets are written: readable by members' accounts (data_dir is private)."""
    demo = config["datasets"]["demo"]
    if demo["files_dir"]:
        return demo["files_dir"]
    if config["mode"] == "local" and user_accounts(config) == "system":
        return "/srv/aistudio/demo-datasets"
    return str(Path(config["data_dir"]) / "demo-datasets")


def datasets_services(config: dict, services: list, roles: list) -> None:
    """The catalogue service (/services/datasets/), which every user may reach: it answers for
    the calling token's user only, from the registry, decided on the hub side."""
    ds = config["datasets"]
    if not ds["enabled"]:
        return
    mount_root = ds["mount_root"] if config["mode"] == "local" else "/datasets"
    services.append({
        "name": "datasets",
        "url": service_url(config, ds["service_port"]),
        "command": [sys.executable, "-m", "hub_config.datasets_service"],
        "environment": {
            "AISTUDIO_DATASETS_DB_URL": datasets_db_url(config),
            "AISTUDIO_DATASETS_SETTINGS": json.dumps({
                "mount_root": mount_root,
                "preview": ds["preview"],
                "scan": {**ds["scan"], "min_k": ds["min_k"]},
                "manifests": ds["manifests"],
                "demo": ds["demo"]["enabled"],
                "demo_files_dir": datasets_files_dir(config),
                "protected": config["mode"] != "local" or user_accounts(config) == "system",
            }),
        },
        "oauth_no_confirm": True,
        "info": {"description": "Datasets you may use, their schema and first rows; access requests"},
    })
    user_role = next((r for r in roles if r["name"] == "user"), None)
    if user_role is None:
        user_role = {"name": "user", "scopes": ["self"]}
        roles.append(user_role)
    user_role["scopes"].append("access:services!service=datasets")


def datasets_spawner_traitlets(config: dict) -> dict:
    ds = config["datasets"]
    if not ds["enabled"]:
        return {}
    traits = {
        "datasets_db_url": datasets_db_url(config),
        "datasets_mount_root": ds["mount_root"] if config["mode"] == "local" else "/datasets",
        "datasets_group_prefix": ds["group_prefix"],
    }
    url = {"datasets_service_url": f"{service_url(config, ds['service_port'])}/services/datasets/"}
    scopes = ["users:activity!user", "access:servers!server", "access:services!service=datasets"]
    ann = config["announcements"]
    if ann["enabled"]:
        # and read the announcements list with it (JupyterLab's notices of new items)
        scopes.append("access:services!service=announcements")
        url["announcements_service_url"] = f"{ann['url'] or service_url(config, ann['service_port'])}/services/announcements/"
    return {
        # servers may call the catalogue with their own token (the Datasets panel)
        "Spawner": {"server_token_scopes": scopes},
        "StudioLocalSpawner": {**traits, **url},
        "StudioKubeSpawner": {**traits, **url},
    }


def _common_spawner_traitlets(config: dict) -> dict:
    spawn = config["spawn"]
    return {
        "default_url": spawn["default_url"],
        "start_timeout": spawn["start_timeout"],
        "http_timeout": spawn["http_timeout"],
        "poll_interval": spawn["poll_interval"],
    }


def local_spawner_traitlets(config: dict) -> dict:
    local = config["local"]
    env = python_env(config)
    return {
        "JupyterHub": {"spawner_class": "hub_config.local_spawner.StudioLocalSpawner"},
        "Spawner": {
            **_common_spawner_traitlets(config),
            "cmd": [str(Path(env) / "bin" / "jupyterhub-singleuser")],
        },
        "StudioLocalSpawner": {
            "profiles_dir": config["profiles_dir"],
            "usage_db_url": usage_db_url(config),
            "user_accounts": user_accounts(config),
            "system_user_prefix": local["system_user_prefix"],
            "shared_home_root": str(Path(config["data_dir"]) / "homes"),
            "python_env": env,
            "gpu_discovery": config["gpus"]["discovery"],
            "gpu_inventory": config["gpus"]["inventory"],
        },
    }


def kube_spawner_traitlets(config: dict) -> dict:
    """KubeSpawner settings: hardened pods, a home PVC per user; the profile adds the rest."""
    kube = config["kubernetes"]
    home = kube["home"]
    spawner = {
        "profiles_dir": config["profiles_dir"],
        "usage_db_url": usage_db_url(config),
        "image": kube["default_image"],
        "image_pull_policy": kube["image_pull_policy"],
        "gpu_resource_name": kube["gpu_resource"],
        "gpu_types": kube["gpu_types"],
        "request_fraction": kube["request_fraction"],
        # hardened: never root, no privilege escalation, no capabilities, default seccomp, no API token
        "uid": kube["uid"],
        "gid": kube["gid"],
        "fs_gid": kube["gid"],
        "allow_privilege_escalation": False,
        "container_security_context": {
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automount_service_account_token": False,
        "storage_pvc_ensure": True,
        "pvc_name_template": "home-{user_server}",
        "storage_capacity": home["size"],
        "storage_access_modes": ["ReadWriteOnce"],
        "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
        "volume_mounts": [{"name": "home", "mountPath": home["mount_path"]}],
        "extra_labels": {"app.kubernetes.io/part-of": "aistudio"},
    }
    if home["storage_class"]:
        spawner["storage_class"] = home["storage_class"]
    if kube["namespace"]:
        spawner["namespace"] = kube["namespace"]
    hub = {"spawner_class": "hub_config.kube_spawner.StudioKubeSpawner", "hub_ip": "0.0.0.0"}
    if kube["hub_connect_url"]:
        hub["hub_connect_url"] = kube["hub_connect_url"]
    return {"JupyterHub": hub, "Spawner": _common_spawner_traitlets(config), "StudioKubeSpawner": spawner}


def spawner_traitlets(config: dict) -> dict:
    if config["mode"] == "kubernetes":
        return kube_spawner_traitlets(config)
    return local_spawner_traitlets(config)


def traitlets_config(config: dict) -> dict:
    """All traitlets settings for a validated studio config."""
    merged: dict = {}
    for part in (hub_traitlets, proxy_traitlets, auth_traitlets, spawner_traitlets, services_traitlets,
                 datasets_spawner_traitlets):
        merged = deep_merge(merged, part(config))
    return merged
