"""``aistudio profiles``: check profile files, and show what a member may launch."""

from __future__ import annotations

import json
import sys

from .. import config as studio_config
from ..profiles import InvalidProfiles, load_profiles
from . import load_config
from .output import print_table


def cmd_profiles_validate(args) -> int:
    cfg = load_config(args)
    paths = args.paths or [cfg["profiles_dir"]]
    try:
        profiles = load_profiles(paths, list(cfg["environments"]["available"]))
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
    cfg = load_config(args)
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
    print_table(rows)
    return 0


def add_parser(sub) -> None:
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
