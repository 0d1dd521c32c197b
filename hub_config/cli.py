"""The ``aistudio`` command."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import config as studio_config
from . import datasets_cli
from .profiles import InvalidProfiles, load_profiles

DEFAULT_CONFIG = "aistudio.yaml"


def _config_path(arg: str | None) -> str | None:
    """The studio config named on the command line, or ./aistudio.yaml if there is one."""
    if arg:
        return arg
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None


def _load_config(args, **overrides) -> dict:
    try:
        return studio_config.load(_config_path(args.config), **overrides)
    except studio_config.StudioConfigError as e:
        print(f"aistudio: invalid studio config:\n{e}", file=sys.stderr)
        sys.exit(1)


def cmd_up(args) -> int:
    path = _config_path(args.config)
    cfg = _load_config(args, data_dir=args.data_dir, port=args.port)
    env = dict(os.environ)
    env[studio_config.ENV_CONFIG] = str(Path(path).resolve()) if path else ""
    env[studio_config.ENV_DATA_DIR] = cfg["data_dir"]
    env[studio_config.ENV_PORT] = str(cfg["hub"]["port"])
    hub_file = Path(__file__).parent / "jupyterhub_config.py"
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


def cmd_profiles_validate(args) -> int:
    paths = args.paths or [_load_config(args)["profiles_dir"]]
    try:
        profiles = load_profiles(paths)
    except InvalidProfiles as e:
        for problem in e.problems:
            print(problem)
        return 1
    print(f"OK: {len(profiles.profiles)} profiles in {len(profiles.sources)} files "
          f"({', '.join(p.slug for p in profiles.profiles)})")
    policy = profiles.quotas
    if not policy.is_empty:
        groups = sorted(set(policy.group_pools) | set(policy.group_members))
        print(f"Quotas per {policy.period}: groups {', '.join(groups) or 'none'}; "
              f"users {', '.join(sorted(policy.users)) or 'none'}")
    return 0


def cmd_profiles_show(args) -> int:
    cfg = _load_config(args)
    if args.groups is not None:
        groups = [g for g in args.groups.split(",") if g]
    else:
        groups = studio_config.demo_groups(cfg).get(args.user, [])
    try:
        profiles = load_profiles(args.profiles_dir or cfg["profiles_dir"])
    except InvalidProfiles as e:
        print(e, file=sys.stderr)
        return 1
    allowed = [a.as_dict() for a in profiles.allowed_for(args.user, groups)]
    if args.format == "json":
        print(json.dumps({"user": args.user, "groups": groups, "profiles": allowed}, indent=2, ensure_ascii=False))
        return 0
    print(f"{args.user} (groups: {', '.join(groups) or 'none'}) may launch:")
    if not allowed:
        print("  nothing")
        return 0
    rows = [("PROFILE", "NAME", "CPU", "MEMORY", "GPUS", "MAX RUNTIME", "OPTIONS")]
    for p in allowed:
        r = p["resources"]
        gpus = f"{r['gpus']}× {r['gpu_type']}" if r["gpus"] and r["gpu_type"] else str(r["gpus"])
        options = "; ".join(f"{name}: {', '.join(o['choices'])}" for name, o in p["options"].items()) or "-"
        rows.append((p["slug"], p["display_name"], f"{r['cpu']:g}", r["memory"], gpus, p["max_runtime"] or "-", options))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)) + "  " + row[-1])
    return 0


def _parse_day(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def cmd_usage_report(args) -> int:
    from .quotas import period_start
    from .usage import UsageStore, report

    cfg = _load_config(args)
    url = args.db_url or studio_config.usage_db_url(cfg)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        print(f"aistudio: no usage records yet ({url})", file=sys.stderr)
        return 1
    until = time.time()
    since = args.since if args.since is not None else period_start("month", until).timestamp()
    rows = report(UsageStore(url).rows(since, until), args.by, since, until)
    columns = [args.by, "servers", "gpu_hours", "cpu_hours", "memory_gib_hours"]
    if args.format == "json":
        print(json.dumps({"since": datetime.fromtimestamp(since, timezone.utc).isoformat(), "by": args.by, "rows": rows},
                         indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = [[c.upper().replace("_", " ") for c in columns]] + [[str(r[c]) for c in columns] for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
        print(f"Usage since {datetime.fromtimestamp(since, timezone.utc):%Y-%m-%d %H:%M} UTC, by {args.by}:")
        for row in table:
            print("  " + "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
        if not rows:
            print("  (no servers)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aistudio", description="AI Studio: run the studio and manage its quota profiles.")
    parser.add_argument("--config", help=f"studio config file (default: ./{DEFAULT_CONFIG} if present, else built-in defaults)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the studio in the foreground on this machine")
    up.add_argument("--port", type=int, help="public port (default: hub.port of the config, 8000)")
    up.add_argument("--data-dir", help="folder for all state (default: data_dir of the config, .aistudio)")
    up.add_argument("--debug", action="store_true", help="verbose hub logs")
    up.set_defaults(func=cmd_up)

    profiles = sub.add_parser("profiles", help="quota profiles").add_subparsers(dest="action", required=True)
    validate = profiles.add_parser("validate", help="check profile files; exit 1 and list every problem")
    validate.add_argument("paths", nargs="*", help="files or folders (default: profiles_dir of the config)")
    validate.set_defaults(func=cmd_profiles_validate)
    show = profiles.add_parser("show", help="what a user may launch")
    show.add_argument("--user", required=True)
    show.add_argument("--groups", help="comma-separated groups (default: the demo user's groups in the config)")
    show.add_argument("--profiles-dir", help="profile folder (default: profiles_dir of the config)")
    show.add_argument("--format", choices=["table", "json"], default="table")
    show.set_defaults(func=cmd_profiles_show)

    usage = sub.add_parser("usage", help="usage records").add_subparsers(dest="action", required=True)
    rep = usage.add_parser("report", help="servers and GPU-, CPU-, memory-hours per user, group or profile")
    rep.add_argument("--since", type=_parse_day, help="first day, YYYY-MM-DD (UTC; default: start of this month)")
    rep.add_argument("--by", choices=["user", "group", "profile"], default="user")
    rep.add_argument("--format", choices=["table", "csv", "json"], default="table")
    rep.add_argument("--db-url", help="usage database (default: usage.db_url of the config, or usage.sqlite in data_dir)")
    rep.set_defaults(func=cmd_usage_report)

    datasets_cli.add_parser(sub, _load_config)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
