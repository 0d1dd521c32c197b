"""The studio config turned into JupyterHub's traitlets config, section by section.

Each function takes the validated studio config (``config.load``) and returns a dict of
traitlets settings; none reads files, asks the network or changes its input.
:func:`traitlets_config` merges them. What is not derived from the config comes in as
arguments, gathered by :func:`gather` when the hub starts: ``tokens``, the API token the
hub shares with the announcements service for its home-page banner (new at each
start), and ``login``, what the OpenID provider and the environment say (client id and
secret, discovery document; ``auth.oidc.setup``). :func:`gather` also registers the studio's
metrics in the hub process (``metrics.install``), served at ``/hub/metrics``.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from . import config as studio_config
from . import environments, membership, processes
from .config import deep_merge
from .services.spec import Role, ServiceSpec, access_scope, hub_settings

# what every member's server token may do besides reaching the services it uses
# (read:servers: the member's own GPU queue entries, which JupyterLab shows,
# and their server's run time, which they may extend from JupyterLab: servers!server)
SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", "read:servers!user", "servers!server"]


def new_tokens() -> dict[str, str]:
    """Fresh API tokens for the services the hub itself calls (new at each start): the
    announcements service, and the GPU queue's starts of members' servers."""
    return {"announcements": secrets.token_hex(32), "queue": secrets.token_hex(32), "lifecycle": secrets.token_hex(32)}


def gather(config: dict) -> dict:
    """The inputs of :func:`traitlets_config` that are not in the config: fresh tokens, and
    with OIDC login what the provider says (raises ``OIDCSetupError`` when it cannot be reached).
    Run once, in the hub process, at start: it also installs the studio's metrics there."""
    from . import metrics

    metrics.install(config)
    inputs = {"tokens": new_tokens(), "login": None}
    install_queue(config, inputs["tokens"]["queue"])
    install_lifecycle(config, inputs["tokens"]["lifecycle"])
    if config["auth"]["type"] == "oidc":
        from .auth import oidc

        inputs["login"] = oidc.setup(config)
    return inputs


def install_queue(config: dict, token: str):
    """The GPU queue in the hub process: free GPUs counted by the allocator in local mode (on
    Kubernetes the first spawner gives the cluster's count), the policy of the profiles
    folder, e-mail where SMTP is configured."""
    import logging

    from . import notifications
    from .queue import hub as queue_hub
    from .spawners.mixin import profile_store

    log = logging.getLogger("aistudio.queue")
    capacity = None
    if config["mode"] == "local":
        from .queue.manager import AllocatorCapacity
        from .spawners.local import gpu_allocator

        def capacity():
            return AllocatorCapacity(gpu_allocator(config["gpus"]["discovery"], config["gpus"]["inventory"], log))

    hub, profiles_dir = config["hub"], config["profiles_dir"]
    base = hub["base_url"].rstrip("/") + "/"
    return queue_hub.install(
        studio_config.db_url(config, "usage"), lambda: profile_store(profiles_dir, log).current().quotas, capacity,
        hub_api=f"http://127.0.0.1:{hub['hub_port']}{base}hub/api", token=token,
        notifier=notifications.notifier_from_config(config),
        queue_url=(config["notifications"]["public_url"] or f"http://{hub['ip']}:{hub['port']}").rstrip("/")
        + base + "hub/queue",
    )


def gpu_sampler(config: dict):
    """Where the hub reads servers' GPU utilisation (``lifecycle.gpu_idle``), or None."""
    from .lifecycle import samplers

    idle = config["lifecycle"]["gpu_idle"]
    source = idle["source"]
    if source == "auto":
        source = "nvml" if config["mode"] == "local" else ("dcgm" if idle["dcgm_urls"] else "none")
    if source == "nvml":
        return samplers.NVMLSampler()
    if source == "dcgm":
        return samplers.DCGMSampler(idle["dcgm_urls"])
    if source == "file":
        return samplers.FileSampler(idle["file"])
    return None


def install_lifecycle(config: dict, token: str):
    """The loop that warns before run-time stops, samples GPUs and stops idle ones."""
    from . import notifications
    from .lifecycle import hub as lifecycle_hub

    hub, life = config["hub"], config["lifecycle"]
    base = hub["base_url"].rstrip("/") + "/"
    return lifecycle_hub.install(lifecycle_hub.Lifecycle(
        warn_before=life["warn_before"], every=life["every"], sampler=gpu_sampler(config),
        sample_every=life["gpu_idle"]["every"], notifier=notifications.notifier_from_config(config),
        hub_api=f"http://127.0.0.1:{hub['hub_port']}{base}hub/api", token=token,
        public_url=(config["notifications"]["public_url"] or f"http://{hub['ip']}:{hub['port']}").rstrip("/")
        + base + "hub/home",
    ))


def hub_traitlets(config: dict) -> dict:
    hub, data = config["hub"], Path(config["data_dir"])
    return {
        "JupyterHub": {
            "ip": hub["ip"],
            "port": hub["port"],
            "hub_ip": "127.0.0.1",
            "hub_port": hub["hub_port"],
            "base_url": hub["base_url"],
            "db_url": studio_config.db_url(config, "hub"),
            "cookie_secret_file": str(data / "jupyterhub_cookie_secret"),
            "pid_file": str(data / "jupyterhub.pid"),
            "cleanup_servers": hub["stop_servers_on_exit"],
            # several servers per member (one CPU, one GPU...): quotas' max_servers caps them
            "allow_named_servers": True,
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


def login_page_traitlets(config: dict) -> dict:
    """The studio's login page and logo (``auth/templates/login.html``, ``aistudio`` in its
    templates), and where members land after logging in: the hub's home page (their servers,
    the announcements, Start), not their server or the spawn form (``?next=`` still wins)."""
    from .auth import demo as studio_login

    return {"JupyterHub": {
        "template_paths": [str(studio_login.TEMPLATES)],
        "template_vars": {"aistudio": studio_login.login_page(config)},
        "logo_file": str(studio_login.LOGO),
        "redirect_to_server": False,
    }}


def auth_traitlets(config: dict, login: dict | None = None) -> dict:
    """Login: the demo users, or OpenID Connect (``login``: what :func:`gather` read); with
    either, the studio's login page (:func:`login_page_traitlets`)."""
    auth = config["auth"]
    if auth["type"] == "oidc":
        from .auth import oidc

        if login is None:  # gather() checks the section before it reads the provider
            oidc.check(auth["oidc"])
            raise ValueError("OpenID Connect login needs what the provider says: pass login=gather(config)['login']")
        return deep_merge(oidc.build_traitlets(config, **login), login_page_traitlets(config))
    demo = auth["demo"]
    admins = set(auth["admin_users"]) | {n for n, u in demo["users"].items() if u.get("admin")}
    return deep_merge({
        "JupyterHub": {"authenticator_class": "hub_config.auth.demo.DemoAuthenticator"},
        "Authenticator": {"admin_users": admins, "manage_groups": True},
        "DemoAuthenticator": {"users": demo["users"], "shared_password": demo["password"] or "",
                              "membership_db_url": membership.db_url(config)},
    }, login_page_traitlets(config))


# --------------------------------------------------------------------------- services


def culler_spec(config: dict) -> ServiceSpec | None:
    """jupyterhub-idle-culler, with the scopes it needs."""
    culler = config["culler"]
    if not culler["enabled"]:
        return None
    return ServiceSpec(
        name="idle-culler",
        command=(sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={culler['timeout']}",
                 f"--cull-every={culler['every']}", f"--max-age={culler['max_age']}"),
        roles=(Role("idle-culler", ("list:users", "read:users:activity", "read:servers", "delete:servers"),
                    services=("idle-culler",)),),
    )


def lifecycle_spec(token: str) -> ServiceSpec:
    """The token (no process, no URL) the hub stops servers with when their GPUs stay idle."""
    from .lifecycle.hub import SERVICE

    return ServiceSpec(name=SERVICE, description="Stops servers whose GPUs stayed idle past their profile's policy.",
                       api_token=token, roles=(Role(SERVICE, ("servers", "read:users"), services=(SERVICE,)),))


def queue_spec(token: str) -> ServiceSpec:
    """The GPU queue's token (no process, no URL): the hub starts a member's server with it
    when their reservation arrives and they asked for that."""
    from .queue.hub import SERVICE

    return ServiceSpec(name=SERVICE, description="Starts members' servers when their GPUs are reserved.",
                       api_token=token, roles=(Role(SERVICE, ("servers", "read:users"), services=(SERVICE,)),))


def hub_pages_traitlets(config: dict) -> dict:
    """The hub's own additions: the queue's API and page, servers' run time and extension,
    the notices on every hub page and the servers on the home page."""
    from .lifecycle import handlers as lifecycle
    from .lifecycle.hub import ServerNotices
    from .queue import handlers as queue
    from .queue.hub import QueueNotices

    return {"JupyterHub": {
        "extra_handlers": queue.handlers() + lifecycle.handlers(),
        "template_paths": [str(Path(m.__file__).parent / "templates") for m in (queue, lifecycle)],
        "template_vars": {"gpu_queue": QueueNotices(config["hub"]["base_url"]),
                          "studio_servers": ServerNotices(config["lifecycle"]["warn_before"])},
    }}


def service_specs(config: dict, tokens: dict) -> list[ServiceSpec]:
    """Every hub-managed service the config turns on."""
    from .announcements import service as announcements
    from .datasets import service as datasets
    from .usage import service as usage

    specs = [usage.spec(config), announcements.spec(config, tokens["announcements"]), culler_spec(config),
             datasets.spec(config), queue_spec(tokens["queue"]), lifecycle_spec(tokens["lifecycle"])]
    return [s for s in specs if s is not None]


def services_traitlets(config: dict, specs: list[ServiceSpec]) -> dict:
    """Hub-managed services, their roles and scopes, and the hub pages that show them."""
    from .announcements import banner

    hub = hub_settings(specs)
    for entry in hub["services"]:  # the mark that finds them if a hub dies without stopping them
        if entry.get("command"):
            entry.setdefault("environment", {})[processes.MARK_ENV] = processes.mark_of(config["data_dir"])
    announcements = next((s for s in specs if s.name == "announcements"), None)
    if announcements is not None:
        hub.update(banner.hub_pages(config, announcements))
    return {"JupyterHub": hub}


def server_traitlets(config: dict, specs: list[ServiceSpec]) -> dict:
    """What members' servers are told: the address of each service they use (an environment
    variable each), and the scopes their token needs to call it."""
    specs = [s for s in specs if s.server_url_env]
    if not specs:
        return {}
    base_url = config["hub"]["base_url"]
    return {"Spawner": {
        "server_token_scopes": SERVER_TOKEN_SCOPES + [access_scope(s.name) for s in specs],
        "environment": {s.server_url_env: s.url_for_servers(base_url) for s in specs},
    }}


# --------------------------------------------------------------------------- spawners


def _common_spawner_traitlets(config: dict) -> dict:
    spawn = config["spawn"]
    return {
        "default_url": spawn["default_url"],
        "start_timeout": spawn["start_timeout"],
        "http_timeout": spawn["http_timeout"],
        "poll_interval": spawn["poll_interval"],
    }


def datasets_spawner_traitlets(config: dict) -> dict:
    """The spawners' view of the datasets registry (mounts are decided at each start)."""
    ds = config["datasets"]
    if not ds["enabled"]:
        return {}
    return {
        "datasets_db_url": studio_config.db_url(config, "datasets"),
        "datasets_mount_root": studio_config.datasets_mount_root(config),
        "datasets_group_prefix": ds["group_prefix"],
    }


def environments_spawner_traitlets(config: dict) -> dict:
    """Members' environments as the spawners see them: each one's folder here and image in pods."""
    envs = environments.configured(config)
    return {
        "environments": {e.name: {"description": e.description, "image": e.image, "path": e.path} for e in envs.values()},
        "default_environment": environments.default_name(config),
    }


def local_spawner_traitlets(config: dict) -> dict:
    local = config["local"]
    default = environments.configured(config)[environments.default_name(config)]
    return {
        "JupyterHub": {"spawner_class": "hub_config.spawners.local.StudioLocalSpawner"},
        "Spawner": {
            **_common_spawner_traitlets(config),
            # each start runs its environment's own (StudioLocalSpawner.use_environment)
            "cmd": [default.server_command],
        },
        "StudioLocalSpawner": {
            "profiles_dir": config["profiles_dir"],
            "usage_db_url": studio_config.db_url(config, "usage"),
            "user_accounts": studio_config.user_accounts(config),
            "system_user_prefix": local["system_user_prefix"],
            "shared_home_root": str(Path(config["data_dir"]) / "homes"),
            "gpu_discovery": config["gpus"]["discovery"],
            "studio_id": processes.studio_id(config["data_dir"]),
            "gpu_inventory": config["gpus"]["inventory"],
            **environments_spawner_traitlets(config),
            **datasets_spawner_traitlets(config),
        },
    }


def kube_spawner_traitlets(config: dict) -> dict:
    """KubeSpawner settings: hardened pods, a home PVC per user; the profile adds the rest."""
    kube = config["kubernetes"]
    home = kube["home"]
    spawner = {
        "profiles_dir": config["profiles_dir"],
        "usage_db_url": studio_config.db_url(config, "usage"),
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
        **environments_spawner_traitlets(config),
        **datasets_spawner_traitlets(config),
    }
    if home["storage_class"]:
        spawner["storage_class"] = home["storage_class"]
    if kube["namespace"]:
        spawner["namespace"] = kube["namespace"]
    hub = {"spawner_class": "hub_config.spawners.kube.StudioKubeSpawner", "hub_ip": "0.0.0.0"}
    if kube["hub_connect_url"]:
        hub["hub_connect_url"] = kube["hub_connect_url"]
    return {"JupyterHub": hub, "Spawner": _common_spawner_traitlets(config), "StudioKubeSpawner": spawner}


def spawner_traitlets(config: dict) -> dict:
    if config["mode"] == "kubernetes":
        return kube_spawner_traitlets(config)
    return local_spawner_traitlets(config)


def traitlets_config(config: dict, tokens: dict | None = None, login: dict | None = None) -> dict:
    """All traitlets settings for a validated studio config and the inputs :func:`gather`
    read (``tokens`` left out: fresh ones)."""
    specs = service_specs(config, {**new_tokens(), **(tokens or {})})
    merged: dict = {}
    paths: list = []
    # (the login part last: the hub looks for templates in this order, and its names are its own)
    for part in (hub_traitlets(config), proxy_traitlets(config), spawner_traitlets(config), services_traitlets(config, specs),
                 server_traitlets(config, specs), hub_pages_traitlets(config), auth_traitlets(config, login)):
        paths += part.get("JupyterHub", {}).get("template_paths", [])  # every part's templates, not the last one's
        merged = deep_merge(merged, part)
    if paths:
        merged["JupyterHub"]["template_paths"] = paths
    return merged
