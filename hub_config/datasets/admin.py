"""Steward operations that combine the registry with the files: scanning a dataset
(de-identification gate and the facts the catalogue shows) and registering a
manifest of datasets (the demo's, or a lab's own)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import yaml

from .models import DatasetError
from .mounts import hub_path
from .store import DatasetStore
from .scan import ScanSettings, scan_dataset


def scan_settings(cfg: dict) -> ScanSettings:
    return ScanSettings(**{k: cfg[k] for k in ("sample_rows", "sample_bytes", "max_files", "min_k") if k in cfg})


def scan(store: DatasetStore, name: str, settings: ScanSettings, *, actor: str) -> dict:
    """Scan the dataset's files (read where the hub sees them) and record report and facts."""
    ds = store.get(name)
    if not ds.path:
        raise DatasetError(
            f"{name} has no path the hub can read (its {ds.source_kind} source is only mounted into pods, and no "
            "datasets.source_views entry shows it to the hub): give --hub-path where the hub sees the same files "
            "(on the Helm chart: make its volume one of datasets.sources), or publish with --override-reason", 409)
    if not os.path.isdir(ds.path):
        raise DatasetError(f"{ds.path} is not a folder", 400)
    report, facts = scan_dataset(ds.path, quasi_identifiers=ds.quasi_identifiers, min_k=ds.min_k, settings=settings)
    store.record_scan(name, actor=actor, report=report, facts=facts)
    return report


# --------------------------------------------------------------------------- manifests

MANIFEST_KEYS = {
    "name", "title", "description", "steward", "source", "licence", "terms", "version", "tags", "deidentification",
    "quasi_identifiers", "min_k", "grants", "publish", "override_reason",
}


def _fields(entry: dict, base: Path, views=()) -> dict:
    """The registry's fields of a manifest entry. A Kubernetes source without ``path`` gets
    the hub's path from ``views`` (``datasets.source_views``) when one shows it."""
    src = entry.get("source") or {}
    kind = src.get("kind", "local")
    path = src.get("path")
    if path and not os.path.isabs(path):
        path = str((base / path).resolve())
    if not path:
        path = hub_path(views, kind, claim=src.get("claim"), server=src.get("server"),
                        source_path=src.get("source_path"))
    deid = entry.get("deidentification") or {}
    return {
        "source_kind": kind, "path": path, "source_claim": src.get("claim"), "source_server": src.get("server"),
        "source_path": src.get("source_path"),
        "title": entry.get("title", ""), "description": entry.get("description", ""),
        "steward": entry.get("steward", ""), "licence": entry.get("licence", ""), "terms": entry.get("terms", ""),
        "version": str(entry.get("version", "1")), "tags": entry.get("tags", []),
        "deid_method": deid.get("method", ""), "deid_date": str(deid.get("date", "")),
        "deid_steward": deid.get("steward", ""),
        "quasi_identifiers": entry.get("quasi_identifiers", []), "min_k": entry.get("min_k"),
    }


def import_manifest(store: DatasetStore, manifest: str | os.PathLike | dict, settings: ScanSettings, *,
                    actor: str, views=()) -> list[str]:
    """Add the manifest's datasets that the registry does not have yet; scan them, publish those
    marked ``publish`` that pass (or carry an ``override_reason``), and grant as listed.
    Datasets already registered are left as their stewards keep them. ``views``: where the hub
    sees Kubernetes sources (``datasets.source_views``). Returns one line per dataset."""
    if isinstance(manifest, dict):
        doc, base = manifest, Path.cwd()
    else:
        path = Path(manifest)
        doc, base = yaml.safe_load(path.read_text()) or {}, path.resolve().parent
    lines = []
    for entry in doc.get("datasets") or []:
        unknown = set(entry) - MANIFEST_KEYS
        if unknown:
            raise DatasetError(f"manifest dataset {entry.get('name')!r}: unknown keys {', '.join(sorted(unknown))}")
        name = entry["name"]
        if store.exists(name):
            lines.append(f"{name}: registered already, left as it is")
            continue
        fields = _fields(entry, base, views)
        store.add(name, actor=actor, **{k: v for k, v in fields.items() if k not in ("source_kind", "path")},
                  source_kind=fields["source_kind"], path=fields["path"])
        status = "added"
        if fields["path"]:
            try:
                report = scan(store, name, settings, actor=actor)
                status += ", scan " + ("passed" if report["passed"] else "FAILED: " + "; ".join(report["summary"][:3]))
            except DatasetError as e:  # e.g. the folder is missing: the other datasets are registered all the same
                status += f", not scanned: {str(e)[:120]}"
        else:
            status += ", not scanned (the hub cannot see its files)"
        if entry.get("publish"):
            try:
                store.publish(name, actor=actor, override_reason=entry.get("override_reason"))
                status += ", published"
            except DatasetError as e:
                status += f", not published ({e.status}): {str(e)[:120]}"
        grants = entry.get("grants") or {}
        if grants.get("users") or grants.get("groups"):
            store.grant(name, actor=actor, users=grants.get("users", []), groups=grants.get("groups", []))
            status += f", granted to {', '.join(grants.get('groups', []) + grants.get('users', []))}"
        lines.append(f"{name}: {status}")
    return lines


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")
