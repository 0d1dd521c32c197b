"""``aistudio queue``: who waits for which GPUs, read from the usage database."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import config as studio_config
from . import load_config
from .output import iso, print_table


def cmd_queue_list(args) -> int:
    from ..profiles import InvalidProfiles, load_profiles
    from ..queue.manager import GPUQueue
    from ..usage.store import UsageStore

    cfg = load_config(args)
    url = args.db_url or studio_config.db_url(cfg, "usage")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        print(f"aistudio: no usage database yet ({url}): nobody waits", file=sys.stderr)
        return 1
    try:
        policy = load_profiles(cfg["profiles_dir"]).quotas
    except InvalidProfiles as e:
        print(f"aistudio: invalid profiles in {cfg['profiles_dir']}:\n{e}", file=sys.stderr)
        return 1
    usage = UsageStore(url)
    # no live GPU count outside the hub: estimates assume none is free now
    rows = GPUQueue(usage, lambda: policy).view()
    usage.engine.dispose()
    if args.format == "json":
        print(json.dumps({"entries": rows}, indent=2))
        return 0
    if not rows:
        print("Nobody waits for a GPU.")
        return 0
    table = [["GPU", "PLACE", "USER", "LAUNCH", "SINCE", "STATE", "ESTIMATED WAIT"]]
    for r in rows:
        state = f"reserved until {iso(r['reserved_until'])}" if r["state"] == "reserved" else "waiting"
        if r["auto_start"]:
            state += " (starts by itself)"
        table.append([(r["gpu_type"] or "any").upper(), r["place"] or "-", r["user"],
                      f"{r['gpus']}x {r['profile']}" + (f" ({r['server_name']})" if r["server_name"] else ""),
                      iso(r["joined_at"]), state, r["estimate"] if r["state"] == "waiting" else "-"])
    print_table(table, right=[1])
    return 0


def add_parser(sub) -> None:
    queue = sub.add_parser("queue", help="members waiting for GPUs").add_subparsers(dest="action", required=True)
    lst = queue.add_parser("list", help="every line: place, member, launch, since when, reservation, estimated wait")
    lst.add_argument("--format", choices=["table", "json"], default="table")
    lst.add_argument("--db-url", help="usage database (default: usage.db_url of the config, or usage.sqlite in data_dir)")
    lst.set_defaults(func=cmd_queue_list)
