"""JupyterHub config of the AI Studio Helm chart, mounted at /etc/aistudio/.

Everything of the studio comes from the studio's own config file, loaded first:
hub_config/jupyterhub_config.py reads the studio config named by AISTUDIO_CONFIG
(/etc/aistudio/aistudio.yaml) and the profiles, and refuses to start on a bad one.
This file adds only what a cluster deployment needs, from hub-chart.yaml beside it.
"""

from pathlib import Path

import yaml

import hub_config

studio_file = Path(hub_config.__file__).with_name("jupyterhub_config.py")
if not studio_file.is_file():
    raise SystemExit(f"aistudio: cannot start: {studio_file} is missing from the hub image")
load_subconfig(str(studio_file))  # noqa: F821 (provided by traitlets)
c = get_config()  # noqa: F821
chart = yaml.safe_load(Path(__file__).with_name("hub-chart.yaml").read_text()) or {}

# An upgrade or a rescheduling restarts the hub: members' servers keep running and the
# new hub finds them again, as in Zero to JupyterHub.
c.JupyterHub.cleanup_servers = False

# Hub-managed services of the values (hub.services), each with a role of its scopes.
for name, service in (chart.get("services") or {}).items():
    entry = {"name": name, **{k: service[k] for k in ("command", "url", "environment") if service.get(k)}}
    c.JupyterHub.services.append(entry)
    if service.get("scopes"):
        c.JupyterHub.load_roles.append({"name": name, "scopes": list(service["scopes"]), "services": [name]})
