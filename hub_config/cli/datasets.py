"""``aistudio datasets``: the data steward's command.

    aistudio datasets add NAME --path /srv/data/NAME --title ... --quasi-identifiers age_band,sex
    aistudio datasets scan NAME                 # de-identification gate: exit 1 when it fails
    aistudio datasets publish NAME [--override-reason TEXT]
    aistudio datasets grant NAME --groups gpu-residents [--users dr-li] [--expires 2027-06-30|90d]
    aistudio datasets revoke NAME --users dr-li
    aistudio datasets requests | approve ID [--expires 30d] | deny ID --comment TEXT
    aistudio datasets audit [--event preview] [--user U] [--dataset D] [--format csv|json]
"""

from __future__ import annotations

import asyncio
import csv
import getpass
import json
import os
import sys
from datetime import datetime, timezone

from .. import config as studio_config
from ..datasets.models import AUDIT_EVENTS, DatasetError
from ..datasets.store import DatasetStore
from .dates import parse_day, parse_when
from .output import human_size, print_table
from .output import iso


def _actor(args) -> str:
    return args.actor or os.environ.get("SUDO_USER") or getpass.getuser()


def _csv_list(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


class Context:
    def __init__(self, args, load_config):
        self.args = args
        self.cfg = load_config(args)
        self.url = args.db_url or studio_config.db_url(self.cfg, "datasets")
        self.store = DatasetStore(self.url)
        self.actor = _actor(args)

    @property
    def source_views(self) -> list[dict]:
        return self.cfg["datasets"]["source_views"]

    @property
    def scan_settings(self):
        from ..datasets.admin import scan_settings

        return scan_settings({**self.cfg["datasets"]["scan"], "min_k": self.cfg["datasets"]["min_k"]})

    def protect(self, name: str) -> str | None:
        """As root in local mode with system accounts: make the files root-owned, group-readable only, now."""
        cfg = self.cfg
        if cfg["mode"] != "local" or studio_config.user_accounts(cfg) != "system" or os.geteuid() != 0:
            return None
        ds = self.store.get(name)
        if ds.source_kind != "local" or not ds.path:
            return None
        from ..datasets.mounts import group_name, prepare_dataset

        group = group_name(cfg["datasets"]["group_prefix"], name)
        asyncio.run(prepare_dataset(ds.path, group, force=True))
        return group


def _fields_from(args, *, adding: bool, views=()) -> dict:
    """The registry's fields from the options. A Kubernetes source without --hub-path gets the
    hub's path from ``views`` (studio ``datasets.source_views``) when one shows it."""
    fields = {}
    for attr, key in (("title", "title"), ("description", "description"), ("steward", "steward"),
                      ("licence", "licence"), ("terms", "terms"), ("version", "version"),
                      ("deid_method", "deid_method"), ("deid_date", "deid_date"), ("deid_steward", "deid_steward")):
        value = getattr(args, attr, None)
        if value is not None:
            fields[key] = value
    if args.tags is not None:
        fields["tags"] = _csv_list(args.tags)
    if args.quasi_identifiers is not None:
        fields["quasi_identifiers"] = _csv_list(args.quasi_identifiers)
    if args.min_k is not None:
        fields["min_k"] = args.min_k
    sources = [s for s in ("path_only", "pvc", "nfs", "host_path") if getattr(args, s, None)]
    if len(sources) > 1:
        raise DatasetError("give one source: --path, --pvc, --nfs or --host-path")
    # a new source replaces every field of the old one
    if args.pvc:
        fields.update(source_kind="pvc", source_claim=args.pvc, source_server=None, source_path=args.sub_path)
    elif args.nfs:
        server, _, path = args.nfs.partition(":")
        fields.update(source_kind="nfs", source_claim=None, source_server=server, source_path=path)
    elif args.host_path:
        fields.update(source_kind="hostpath", source_claim=None, source_server=None, source_path=args.host_path)
    elif adding or args.path_only:
        fields.update(source_kind="local", source_claim=None, source_server=None, source_path=None)
    if args.path_only or args.hub_path:
        fields["path"] = os.path.abspath(args.path_only or args.hub_path)
    elif fields.get("source_kind", "local") != "local":
        from ..datasets.mounts import hub_path

        fields["path"] = hub_path(views, fields["source_kind"], claim=fields.get("source_claim"),
                                  server=fields.get("source_server"), source_path=fields.get("source_path"))
    return fields


def _where_the_hub_reads(ds) -> str:
    if ds.source_kind == "local":
        return ""
    if ds.path:
        return f"; the hub reads its files at {ds.path}"
    return ("; the hub cannot see its files (no datasets.source_views entry shows this source; give --hub-path): "
            "the scan will be refused")


# --------------------------------------------------------------------------- commands


def cmd_add(ctx: Context) -> int:
    fields = _fields_from(ctx.args, adding=True, views=ctx.source_views)
    kind, path = fields.pop("source_kind", "local"), fields.pop("path", None)
    fields.setdefault("steward", ctx.actor)
    ds = ctx.store.add(ctx.args.name, actor=ctx.actor, source_kind=kind, path=path, **fields)
    print(f"added {ds.name} (draft){_where_the_hub_reads(ds)}: next, aistudio datasets scan {ds.name}")
    if ctx.args.scan:
        return cmd_scan(ctx)
    return 0


def cmd_update(ctx: Context) -> int:
    fields = _fields_from(ctx.args, adding=False, views=ctx.source_views)
    if not fields:
        print("aistudio: nothing to change", file=sys.stderr)
        return 1
    ds = ctx.store.update(ctx.args.name, actor=ctx.actor, **fields)
    where = _where_the_hub_reads(ds) if {"source_kind", "path"} & set(fields) else ""
    print(f"updated {ds.name} ({ds.status}, scan {ds.scan_status}){where}")
    return 0


def cmd_scan(ctx: Context) -> int:
    from ..datasets.admin import scan

    report = scan(ctx.store, ctx.args.name, ctx.scan_settings, actor=ctx.actor)
    if getattr(ctx.args, "format", "table") == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        ds = ctx.store.get(ctx.args.name)
        print(f"{ds.name}: {len(ds.schema)} files, {ds.row_count} rows, {human_size(ds.size_bytes or 0)}; "
              f"scan {'PASSED' if report['passed'] else 'FAILED'}")
        for line in report["summary"]:
            print(f"  {line}")
        for f in report["files"]:
            k = f.get("k_anonymity")
            if k and "smallest_class" in k:
                print(f"  {f['path']}: k-anonymity {k['smallest_class']} over {', '.join(k['quasi_identifiers'])} "
                      f"(minimum {k['min_k']}, {k['classes']} classes)")
    group = ctx.protect(ctx.args.name)
    if group and not getattr(ctx.args, "quiet_protect", False):
        print(f"  files: root-owned, readable by group {group} only")
    return 0 if report["passed"] else 1


def cmd_publish(ctx: Context) -> int:
    ds = ctx.store.publish(ctx.args.name, actor=ctx.actor, override_reason=ctx.args.override_reason)
    group = ctx.protect(ds.name)
    extra = f"; files readable by group {group} only" if group else ""
    override = f" despite a failed scan (override by {ds.override_by}: {ds.override_reason})" if ds.override_reason else ""
    print(f"published {ds.name}{override}{extra}")
    return 0


def cmd_grant(ctx: Context) -> int:
    users, groups = _csv_list(ctx.args.users), _csv_list(ctx.args.groups)
    if not users and not groups:
        print("aistudio: name --users and/or --groups", file=sys.stderr)
        return 1
    ctx.store.grant(ctx.args.name, actor=ctx.actor, users=users, groups=groups, expires_at=ctx.args.expires)
    ds = ctx.store.get(ctx.args.name)
    note = "" if ds.status == "published" else f" (it is {ds.status}: members see it once published)"
    print(f"granted {ctx.args.name} to {', '.join(groups + users)} until {iso(ctx.args.expires)}{note}; "
          "mounted at their next server start")
    return 0


def cmd_revoke(ctx: Context) -> int:
    users, groups = _csv_list(ctx.args.users), _csv_list(ctx.args.groups)
    n = ctx.store.revoke(ctx.args.name, actor=ctx.actor, users=users, groups=groups)
    if not n:
        print(f"aistudio: no such grant of {ctx.args.name}", file=sys.stderr)
        return 1
    print(f"revoked {n} grant(s) of {ctx.args.name}; members lose it at their next server start, and are told")
    return 0


def cmd_retire(ctx: Context) -> int:
    ctx.store.retire(ctx.args.name, actor=ctx.actor, reason=ctx.args.reason or "")
    print(f"retired {ctx.args.name}: no longer listed or mounted")
    return 0


def cmd_list(ctx: Context) -> int:
    rows = ctx.store.datasets(status=ctx.args.status)
    grants = ctx.store.grants()
    by_ds: dict[str, list[str]] = {}
    for g in grants:
        label = f"{g['kind']}:{g['principal']}" + (f" (until {iso(g['expires_at'])})" if g["expires_at"] else "")
        by_ds.setdefault(g["dataset"], []).append(label)
    if ctx.args.format == "json":
        print(json.dumps([{**d.steward_view(), "grants": by_ds.get(d.name, [])} for d in rows], indent=2,
                         ensure_ascii=False, default=str))
        return 0
    table = [("NAME", "STATUS", "SCAN", "FORMAT", "ROWS", "SIZE", "VERSION", "GRANTS")]
    for d in rows:
        scan = d.scan_status + (" (override)" if d.override_reason else "")
        table.append((d.name, d.status, scan, d.format or "-", str(d.row_count if d.row_count is not None else "-"),
                      human_size(d.size_bytes) if d.size_bytes else "-", d.version,
                      ", ".join(by_ds.get(d.name, [])) or "-"))
    print_table(table)
    if not rows:
        print("  (no datasets)")
    return 0


def cmd_show(ctx: Context) -> int:
    ds = ctx.store.get(ctx.args.name)
    print(json.dumps({**ds.steward_view(), "grants": ctx.store.grants(ds.name)}, indent=2, ensure_ascii=False,
                     default=str))
    return 0


def cmd_requests(ctx: Context) -> int:
    rows = ctx.store.requests(status=None if ctx.args.status == "all" else ctx.args.status, dataset=ctx.args.dataset)
    if ctx.args.format == "json":
        print(json.dumps([r.as_dict() for r in rows], indent=2, ensure_ascii=False))
        return 0
    table = [("ID", "DATASET", "USER", "STATUS", "ASKED", "PURPOSE / DECISION")]
    for r in rows:
        decision = f" -> {r.decided_by}: {r.comment or ''} (until {iso(r.expires_at)})" if r.decided_at else ""
        table.append((str(r.id), r.dataset, r.user, r.status, iso(r.created_at), r.purpose[:60] + decision))
    print_table(table)
    if not rows:
        print("  (no requests)")
    return 0


def cmd_decide(ctx: Context, approve: bool) -> int:
    r = ctx.store.decide(ctx.args.id, actor=ctx.actor, approve=approve, comment=ctx.args.comment or "",
                         expires_at=getattr(ctx.args, "expires", None))
    if approve:
        print(f"approved request {r.id}: {r.user} may use {r.dataset} until {iso(r.expires_at)} "
              "(mounted at their next server start)")
    else:
        print(f"denied request {r.id} of {r.user} for {r.dataset}")
    return 0


AUDIT_COLUMNS = ["time", "event", "user", "dataset", "detail"]


def cmd_audit(ctx: Context) -> int:
    a = ctx.args
    events = ctx.store.audit_events(event_names=_csv_list(a.event), user=a.user, dataset=a.dataset, since=a.since,
                                    until=a.until, limit=a.limit)
    out = open(a.output, "w", newline="") if a.output else sys.stdout
    try:
        if a.format == "json":
            json.dump([{**e, "time": datetime.fromtimestamp(e["at"], timezone.utc).isoformat()} for e in events], out,
                      indent=2, ensure_ascii=False)
            out.write("\n")
        elif a.format == "csv":
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(AUDIT_COLUMNS)
            for e in events:
                writer.writerow([datetime.fromtimestamp(e["at"], timezone.utc).isoformat(), e["event"], e["user"],
                                 e["dataset"] or "", json.dumps(e["detail"], ensure_ascii=False, sort_keys=True)])
        else:
            table = [tuple(c.upper() for c in AUDIT_COLUMNS)]
            for e in events:
                detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items() if v not in (None, "", []))
                table.append((iso(e["at"]), e["event"], e["user"], e["dataset"] or "-", detail[:80]))
            print_table(table, file=out)
            if not events:
                print("  (no events)", file=out)
    finally:
        if a.output:
            out.close()
    if a.output:
        print(f"wrote {len(events)} events to {a.output}")
    return 0


def cmd_import(ctx: Context) -> int:
    from ..datasets.admin import import_manifest

    for line in import_manifest(ctx.store, ctx.args.manifest, ctx.scan_settings, actor=ctx.actor,
                                views=ctx.source_views):
        print(line)
    return 0


# --------------------------------------------------------------------------- parser


def _metadata_args(p, *, adding: bool):
    src = p.add_argument_group("source (one of)")
    src.add_argument("--path", dest="path_only", help="local: the dataset's folder on this machine")
    src.add_argument("--pvc", help="Kubernetes: an existing PersistentVolumeClaim (with --sub-path)")
    src.add_argument("--sub-path", help="folder inside the claim")
    src.add_argument("--nfs", metavar="SERVER:PATH", help="Kubernetes: an NFS export")
    src.add_argument("--host-path", help="Kubernetes: a folder on the nodes")
    src.add_argument("--hub-path", help="with --pvc/--nfs/--host-path: where the hub sees the same files "
                                        "(for scans and previews); default: from the studio config's "
                                        "datasets.source_views (the Helm chart's datasets.sources)")
    meta = p.add_argument_group("metadata")
    for flag, text in (("--title", "short title"), ("--description", "what it holds"), ("--steward", "its steward"),
                       ("--licence", "licence"), ("--terms", "terms of use"), ("--version", "version"),
                       ("--deid-method", "de-identification method"), ("--deid-date", "de-identification date"),
                       ("--deid-steward", "who de-identified it")):
        meta.add_argument(flag, help=text)
    meta.add_argument("--tags", help="comma-separated tags")
    meta.add_argument("--quasi-identifiers", help="comma-separated quasi-identifier columns (k-anonymity)")
    meta.add_argument("--min-k", type=int, help="smallest class over the quasi-identifiers (default: datasets.min_k)")


def add_parser(sub, load_config) -> None:
    ds = sub.add_parser("datasets", help="datasets: registry, de-identification gate, grants, requests, audit")
    ds.add_argument("--db-url", help="datasets registry (default: datasets.db_url of the config, or datasets.sqlite)")
    ds.add_argument("--as", dest="actor", help="steward name recorded in the audit log (default: your login)")
    acts = ds.add_subparsers(dest="action", required=True)

    def command(name, func, help_text, **kwargs):
        p = acts.add_parser(name, help=help_text, **kwargs)
        p.set_defaults(func=lambda args: _run(args, load_config, func))
        return p

    p = command("add", cmd_add, "register a dataset (draft until published)")
    p.add_argument("name")
    _metadata_args(p, adding=True)
    p.add_argument("--scan", action="store_true", help="scan it right away")
    p = command("update", cmd_update, "change a dataset's metadata or source (a new source needs a new scan)")
    p.add_argument("name")
    _metadata_args(p, adding=False)
    p = command("scan", cmd_scan, "de-identification scan and facts (schema, rows, size); exit 1 when it fails")
    p.add_argument("name")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = command("publish", cmd_publish, "publish a scanned dataset (a failed scan needs --override-reason)")
    p.add_argument("name")
    p.add_argument("--override-reason", help="publish despite a failed scan: why (audited)")
    p = command("grant", cmd_grant, "let groups or users use a dataset")
    p.add_argument("name")
    p.add_argument("--groups")
    p.add_argument("--users")
    p.add_argument("--expires", type=parse_when, help="YYYY-MM-DD, an ISO time, or a duration (90d, 12h)")
    p = command("revoke", cmd_revoke, "take a grant away (effective at the member's next server start)")
    p.add_argument("name")
    p.add_argument("--groups")
    p.add_argument("--users")
    p = command("retire", cmd_retire, "withdraw a dataset: no longer listed or mounted")
    p.add_argument("name")
    p.add_argument("--reason")
    p = command("list", cmd_list, "every dataset with status, scan and grants")
    p.add_argument("--status", choices=["draft", "published", "retired"])
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = command("show", cmd_show, "everything about one dataset (JSON)")
    p.add_argument("name")
    p = command("requests", cmd_requests, "members' access requests")
    p.add_argument("--status", choices=["pending", "approved", "denied", "all"], default="pending")
    p.add_argument("--dataset")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = command("approve", cmd_approve, "approve a request: grants the member the dataset")
    p.add_argument("id", type=int)
    p.add_argument("--expires", type=parse_when, help="YYYY-MM-DD, an ISO time, or a duration (90d)")
    p.add_argument("--comment")
    p = command("deny", cmd_deny, "deny a request, with a comment for the member")
    p.add_argument("id", type=int)
    p.add_argument("--comment", required=True)
    p = command("audit", cmd_audit, "the audit log, filtered; table, csv or json")
    p.add_argument("--event", help=f"comma-separated: {', '.join(AUDIT_EVENTS)}")
    p.add_argument("--user")
    p.add_argument("--dataset")
    p.add_argument("--since", type=parse_day, help="YYYY-MM-DD (UTC)")
    p.add_argument("--until", type=parse_day, help="YYYY-MM-DD (UTC), exclusive")
    p.add_argument("--limit", type=int)
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--output", help="write to this file instead of the terminal")
    p = command("import", cmd_import, "register the datasets of a manifest file (YAML) not registered yet")
    p.add_argument("manifest")


def cmd_approve(ctx):
    return cmd_decide(ctx, True)


def cmd_deny(ctx):
    return cmd_decide(ctx, False)


def _run(args, load_config, func) -> int:
    if not args.config and os.environ.get(studio_config.ENV_CONFIG):
        # in the hub's pod (the Helm chart sets AISTUDIO_CONFIG): the hub's own config and registry
        args.config = os.environ[studio_config.ENV_CONFIG]
    from ..datasets.mounts import MountError

    try:
        return func(Context(args, load_config))
    except (DatasetError, MountError) as e:  # what is wrong and what to do, in one line
        print(f"aistudio: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        return 1
