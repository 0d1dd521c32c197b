"""The ``aistudio`` command: one module per command group (``up``, ``profiles``,
``usage``, ``queue``, ``datasets``, ``upgrade-db``, ``backup``/``restore``, ``env``), sharing the config loading here, one table printer
(``output``) and one date parser (``dates``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import config as studio_config

DEFAULT_CONFIG = "aistudio.yaml"


def config_path(arg: str | None) -> str | None:
    """The studio config named on the command line, or ./aistudio.yaml if there is one."""
    if arg:
        return arg
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None


def load_config(args, **overrides) -> dict:
    try:
        return studio_config.load(config_path(args.config), **overrides)
    except studio_config.StudioConfigError as e:
        print(f"aistudio: invalid studio config:\n{e}", file=sys.stderr)
        sys.exit(1)


def build_parser() -> argparse.ArgumentParser:
    from . import backup, datasets, env, profiles, queue, up, upgrade, usage

    parser = argparse.ArgumentParser(prog="aistudio", description="AI Studio: run the studio and manage its quota profiles.")
    parser.add_argument("--config", help=f"studio config file (default: ./{DEFAULT_CONFIG} if present, else built-in defaults)")
    sub = parser.add_subparsers(dest="command", required=True)
    up.add_parser(sub)
    profiles.add_parser(sub)
    usage.add_parser(sub)
    queue.add_parser(sub)
    datasets.add_parser(sub, load_config)
    upgrade.add_parser(sub)
    backup.add_parser(sub)
    env.add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # every error is one line; AISTUDIO_DEBUG=1 shows the traceback
        if os.environ.get("AISTUDIO_DEBUG"):
            raise
        detail = str(e).strip().splitlines()
        print(f"aistudio {args.command}: {type(e).__name__}: {detail[0] if detail else 'no details'} "
              "(AISTUDIO_DEBUG=1 shows where)", file=sys.stderr)
        return 1
