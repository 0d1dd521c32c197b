"""``aistudio usage``: reports of the usage records."""

from __future__ import annotations

import csv
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .. import config as studio_config
from . import load_config
from .dates import parse_day
from .output import print_table


def cmd_usage_report(args) -> int:
    from ..quotas import period_start
    from ..usage.store import UsageStore, report

    cfg = load_config(args)
    url = args.db_url or studio_config.db_url(cfg, "usage")
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
        print(f"Usage since {datetime.fromtimestamp(since, timezone.utc):%Y-%m-%d %H:%M} UTC, by {args.by}:")
        print_table(table, right=range(1, len(columns)))
        if not rows:
            print("  (no servers)")
    return 0


def add_parser(sub) -> None:
    usage = sub.add_parser("usage", help="usage records").add_subparsers(dest="action", required=True)
    rep = usage.add_parser("report", help="servers and GPU-, CPU-, memory-hours per user, group or profile")
    rep.add_argument("--since", type=parse_day, help="first day, YYYY-MM-DD (UTC; default: start of this month)")
    rep.add_argument("--by", choices=["user", "group", "profile"], default="user")
    rep.add_argument("--format", choices=["table", "csv", "json"], default="table")
    rep.add_argument("--db-url", help="usage database (default: usage.db_url of the config, or usage.sqlite in data_dir)")
    rep.set_defaults(func=cmd_usage_report)
