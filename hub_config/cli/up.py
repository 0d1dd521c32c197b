"""``aistudio up``: run the whole studio in the foreground on this machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import config as studio_config
from . import config_path, load_config


def cmd_up(args) -> int:
    path = config_path(args.config)
    cfg = load_config(args, data_dir=args.data_dir, port=args.port)
    env = dict(os.environ)
    env[studio_config.ENV_CONFIG] = str(Path(path).resolve()) if path else ""
    env[studio_config.ENV_DATA_DIR] = cfg["data_dir"]
    env[studio_config.ENV_PORT] = str(cfg["hub"]["port"])
    hub_file = Path(__file__).parent.parent / "jupyterhub_config.py"
    jupyterhub = Path(sys.prefix) / "bin" / "jupyterhub"
    cmd = [str(jupyterhub) if jupyterhub.exists() else "jupyterhub", "-f", str(hub_file)]
    if args.debug:
        cmd.append("--debug")
    Path(cfg["data_dir"]).mkdir(parents=True, exist_ok=True)
    url = f"http://{cfg['hub']['ip']}:{cfg['hub']['port']}{cfg['hub']['base_url']}"
    print(f"aistudio: starting the studio at {url} (data in {cfg['data_dir']}); Ctrl-C stops it", flush=True)
    os.chdir(cfg["data_dir"])
    # JupyterHub handles Ctrl-C itself: it stops the servers and the proxy it started.
    os.execvpe(cmd[0], cmd, env)


def add_parser(sub) -> None:
    up = sub.add_parser("up", help="run the studio in the foreground on this machine")
    up.add_argument("--port", type=int, help="public port (default: hub.port of the config, 8000)")
    up.add_argument("--data-dir", help="folder for all state (default: data_dir of the config, .aistudio)")
    up.add_argument("--debug", action="store_true", help="verbose hub logs")
    up.set_defaults(func=cmd_up)
