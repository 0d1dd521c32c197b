"""The datasets catalogue: a hub-managed service at /services/datasets/.

It answers members (and their servers' Datasets panel) for the calling token's user
only, with the user's name and hub groups as the hub reports them (HubOAuth): the
hub side decides, nothing a server says is consulted. Every user holds the scope
``access:services!service=datasets``; what each one sees is decided here from the
registry (``store``):

    GET  api/datasets?q=&tag=               datasets granted to you (published, unexpired)
         api/datasets?limit=&cursor=&q=&tag=   one page of them: {items, next_cursor} (listing.py)
    GET  api/datasets/NAME                  its metadata (403 not granted, 404 no such dataset)
    GET  api/datasets/NAME/schema           files, columns and types
    GET  api/datasets/NAME/preview?file=&rows=   the first rows (at most preview.max_rows, cut at max_bytes)
    GET  api/datasets/NAME/snippet?file=    code that loads it with pandas or pyarrow
    GET  api/requestable?q=&tag=            datasets you may request: metadata only, never data
         api/requestable?limit=&cursor=&q=&tag=   one page of them
    GET  api/requests                       your access requests and their decisions
    POST api/requests {dataset, purpose}    ask a steward for access

Every answer about a dataset is written to the audit log. Started by the hub with
its settings in the environment; registers the configured manifests (and the demo
datasets) when it starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys

from tornado import web
from traitlets import Any, Dict, Unicode, default

from .. import config as studio_config
from ..services.base import ServiceHandler, StudioService
from ..services.spec import ServiceSpec
from . import files, listing
from .models import DatasetError
from .store import DatasetStore

ENV_DB_URL = "AISTUDIO_DATASETS_DB_URL"
ENV_SETTINGS = "AISTUDIO_DATASETS_SETTINGS"
# members' servers find the catalogue here (the Datasets panel's server routes read it)
SERVER_URL_ENV = "AISTUDIO_DATASETS_URL"
DEFAULT_SETTINGS = {"mount_root": "/datasets", "preview": {"max_rows": 100, "max_bytes": 1 << 20}}
NAME = r"([a-z0-9][a-z0-9-]{0,41})"


def _matches(entry: dict, q: str, tag: str) -> bool:
    if tag and tag not in entry["tags"]:
        return False
    if q:
        q = q.lower()
        return any(q in (entry.get(k) or "").lower() for k in ("name", "title", "description")) or any(
            q in t.lower() for t in entry["tags"])
    return True


class CatalogueHandler(ServiceHandler):
    api = True
    store: DatasetStore
    cfg: dict

    @property
    def who(self) -> tuple[str, list[str]]:
        return self.user_name, self.user_groups

    def fail(self, e: DatasetError, dataset: str | None = None, what: str = ""):
        user, _ = self.who
        if e.status in (403, 404) and dataset:
            self.store.audit("denied", user, dataset, endpoint=what, status=e.status)
        raise web.HTTPError(e.status, str(e), reason=str(e)[:100])

    def granted(self, name: str, what: str):
        user, groups = self.who
        try:
            return self.store.access(name, user, groups)
        except DatasetError as e:
            self.fail(e, name, what)

    def int_arg(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.get_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise web.HTTPError(400, f"{name} must be a whole number") from None
        if not lo <= value <= hi:
            raise web.HTTPError(400, f"{name} must be between {lo} and {hi}")
        return value

    def text_arg(self, name: str, limit: int, default: str = "") -> str:
        """A query argument of at most ``limit`` characters (as the API document says)."""
        value = self.get_argument(name, default)
        if value is not None and len(value) > limit:
            raise web.HTTPError(400, f"{name} must be at most {limit} characters")
        return value.strip() if value is not None else value

    def page_query(self) -> listing.PageQuery | None:
        """The page asked by ?limit= and ?cursor= (with ?q= and ?tag=); None when neither is
        given: the whole list, as clients before paging ask it."""
        raw_limit, cursor = self.get_argument("limit", None), self.get_argument("cursor", None)
        if raw_limit is None and cursor is None:
            return None
        try:
            return listing.PageQuery(q=self.text_arg("q", 200), tag=self.text_arg("tag", 100),
                                     after=listing.decode_cursor(cursor) if cursor else None,
                                     limit=listing.parse_limit(raw_limit))
        except listing.BadArgument as e:
            raise web.HTTPError(400, str(e)) from None

    def pick_file(self, ds, what: str) -> tuple[str, dict]:
        """The dataset file named by ?file= (default: its first), checked against the scan's list."""
        entries = {f["path"]: f for f in ds.schema}
        rel = self.text_arg("file", 1000, None) or (ds.schema[0]["path"] if ds.schema else "")
        if not ds.path:
            raise web.HTTPError(409, f"{ds.name} is not readable by the catalogue (no path on the hub)")
        try:
            real = files.resolve(ds.path, rel, allowed=set(entries))
        except files.FileRefused:
            user, _ = self.who
            self.store.audit("denied", user, ds.name, endpoint=what, file=rel[:300], status=404)
            raise web.HTTPError(404, f"{rel[:200]!r} is not a file of {ds.name}") from None
        return real, entries[rel]


class DatasetsHandler(CatalogueHandler):
    @web.authenticated
    def get(self):
        user, groups = self.who
        page = self.page_query()
        if page is not None:
            found = listing.granted_page(self.store.engine, user, groups, page)
            self.store.audit("list", user, None, count=len(found["items"]), q=page.q, tag=page.tag, page=True)
            self.send_json({**found, "mount_root": self.cfg["mount_root"]})
            return
        q, tag = self.text_arg("q", 200), self.text_arg("tag", 100)
        found = [d for d in self.store.authorised_summaries(user, groups) if _matches(d, q, tag)]
        self.store.audit("list", user, None, count=len(found), q=q, tag=tag)
        self.send_json({"datasets": found, "mount_root": self.cfg["mount_root"]})


class DatasetHandler(CatalogueHandler):
    @web.authenticated
    def get(self, name):
        ds, expiry = self.granted(name, "metadata")
        user, _ = self.who
        self.store.audit("metadata", user, name, what="metadata")
        self.send_json({**ds.member_view(), "access_expires_at": expiry,
                   "mount_path": f"{self.cfg['mount_root'].rstrip('/')}/{name}"})


class SchemaHandler(CatalogueHandler):
    @web.authenticated
    def get(self, name):
        ds, _ = self.granted(name, "schema")
        user, _ = self.who
        self.store.audit("metadata", user, name, what="schema")
        self.send_json({"name": name, "files": [{k: f.get(k) for k in ("path", "format", "rows", "size_bytes", "columns")}
                                           for f in ds.schema]})


class PreviewHandler(CatalogueHandler):
    @web.authenticated
    async def get(self, name):
        ds, _ = self.granted(name, "preview")
        limits = self.cfg["preview"]
        rows = self.int_arg("rows", min(20, limits["max_rows"]), 1, limits["max_rows"])
        max_bytes = self.int_arg("max_bytes", limits["max_bytes"], 1024, limits["max_bytes"])
        real, entry = self.pick_file(ds, "preview")
        try:
            data = await asyncio.get_running_loop().run_in_executor(None, files.preview, real, rows, max_bytes)
        except Exception as e:  # an unreadable file: say so, never the hub's path
            raise web.HTTPError(422, f"{entry['path']} cannot be read: {type(e).__name__}") from None
        user, _ = self.who
        self.store.audit("preview", user, name, file=entry["path"], rows=len(data["rows"]))
        self.send_json({"name": name, "file": entry["path"], **data})


class SnippetHandler(CatalogueHandler):
    @web.authenticated
    def get(self, name):
        ds, _ = self.granted(name, "snippet")
        rel = self.text_arg("file", 1000, None) or (ds.schema[0]["path"] if ds.schema else "")
        entries = {f["path"]: f for f in ds.schema}
        if rel not in entries:
            raise web.HTTPError(404, f"{rel[:200]!r} is not a file of {name}")
        user, _ = self.who
        self.store.audit("metadata", user, name, what="snippet", file=rel)
        self.send_json({"name": name, "file": rel,
                   **files.snippet(self.cfg["mount_root"], name, rel, entries[rel]["format"])})


class RequestableHandler(CatalogueHandler):
    @web.authenticated
    def get(self):
        user, groups = self.who
        page = self.page_query()
        if page is not None:
            self.send_json(listing.requestable_page(self.store.engine, user, groups, page))
            return
        q, tag = self.text_arg("q", 200), self.text_arg("tag", 100)
        found = [d for d in self.store.requestable(user, groups) if _matches(d, q, tag)]
        self.send_json({"datasets": found})


class RequestsHandler(CatalogueHandler):
    @web.authenticated
    def get(self):
        user, _ = self.who
        self.send_json({"requests": [r.as_dict() for r in self.store.requests(user=user)]})

    @web.authenticated
    def post(self):
        user, groups = self.who
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPError(400, "send JSON: {\"dataset\": NAME, \"purpose\": TEXT}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "send JSON: {\"dataset\": NAME, \"purpose\": TEXT}")
        unknown = sorted(set(body) - {"dataset", "purpose"})
        if unknown:
            raise web.HTTPError(400, f"unknown field(s): {', '.join(u[:60] for u in unknown[:5])}; "
                                     "allowed: dataset, purpose")
        for field in ("dataset", "purpose"):
            if field in body and not isinstance(body[field], str):
                raise web.HTTPError(400, f"{field}: must be text")
            if "\x00" in body.get(field, ""):
                raise web.HTTPError(400, f"{field}: must not contain NUL characters")
        if "dataset" not in body:
            raise web.HTTPError(400, "dataset: is required (the name of a dataset)")
        if not re.fullmatch(NAME, body["dataset"]):
            raise web.HTTPError(404, f"There is no dataset {body['dataset'][:64]!r}")
        try:
            r = self.store.request_access(body["dataset"][:64], user, groups, body.get("purpose", ""))
        except DatasetError as e:
            self.fail(e, body["dataset"][:64] if e.status == 404 else None, "request")
        self.send_json(r.as_dict(), 201)


class IndexHandler(CatalogueHandler):
    @web.authenticated
    def get(self):
        user, _ = self.who
        self.send_json({"user": user, "endpoints": ["api/datasets", "api/requestable", "api/requests"]})


def register_at_start(store: DatasetStore, settings: dict) -> None:
    """Register the configured manifests and, in the demo, the demo datasets."""
    from . import admin

    scan = admin.scan_settings(settings.get("scan") or {})
    if settings.get("demo"):
        from . import demo

        manifest = demo.generate(settings["demo_files_dir"])
        admin.import_manifest(store, manifest, scan, actor="aistudio-demo")
    for path in settings.get("manifests") or []:
        admin.import_manifest(store, path, scan, actor=f"manifest:{os.path.basename(path)}",
                              views=settings.get("source_views") or ())


UNPROTECTED_WARNING = """
************************************************************************
*  AI Studio datasets in DEMO MODE (single account): dataset files     *
*  are NOT protected. Every member's server can read every dataset,    *
*  granted or not; grants only decide what is listed and linked.       *
*  Run as root for per-user accounts and group-protected datasets.     *
************************************************************************
"""


class DatasetsService(StudioService):
    """The members' datasets catalogue."""

    name = "datasets"
    description = "Datasets you may use, their schema and first rows; access requests"
    default_port = 8011

    db_url = Unicode(help="SQLAlchemy URL of the datasets registry.").tag(config=True, env=ENV_DB_URL)
    settings = Dict(
        help="mount_root, preview {max_rows, max_bytes}, scan, manifests, source_views, demo, demo_files_dir, "
             "protected (JSON)."
    ).tag(config=True, env=ENV_SETTINGS)
    store = Any(help="The registry (made from db_url when not given).")
    openapi_path = os.path.join(os.path.dirname(__file__), "openapi.yaml")

    def openapi_document(self) -> dict:
        """The document, with the preview's bounds of this studio."""
        doc = super().openapi_document()
        limits = self.catalogue_settings["preview"]
        for param in doc["paths"]["/api/datasets/{name}/preview"]["get"]["parameters"]:
            if param.get("name") in ("rows", "max_bytes"):
                param["schema"]["maximum"] = limits["max_rows" if param["name"] == "rows" else "max_bytes"]
        return doc

    @property
    def catalogue_settings(self) -> dict:
        return {**DEFAULT_SETTINGS, **self.settings}

    @default("store")
    def _default_store(self):
        return DatasetStore(self.db_url)

    def handlers(self):
        args = {"store": self.store, "cfg": self.catalogue_settings}
        return [
            ("api/datasets", DatasetsHandler, args),
            (f"api/datasets/{NAME}", DatasetHandler, args),
            (f"api/datasets/{NAME}/schema", SchemaHandler, args),
            (f"api/datasets/{NAME}/preview", PreviewHandler, args),
            (f"api/datasets/{NAME}/snippet", SnippetHandler, args),
            ("api/requestable", RequestableHandler, args),
            ("api/requests", RequestsHandler, args),
            (r"(?:api/?)?", IndexHandler, args),
        ]

    def start(self):
        settings = self.catalogue_settings
        if not settings.get("protected", True):
            print(UNPROTECTED_WARNING, file=sys.stderr, flush=True)
        try:
            register_at_start(self.store, settings)
        except Exception as e:  # the catalogue serves what is registered even if a manifest is broken
            self.log.error("aistudio datasets: registering manifests failed: %s", e)
        super().start()


def spec(config: dict) -> ServiceSpec | None:
    """The catalogue for the hub: every user may reach it; it answers for the caller only."""
    ds = config["datasets"]
    if not ds["enabled"]:
        return None
    return ServiceSpec(
        name=DatasetsService.name,
        description=DatasetsService.description,
        module=__name__,
        url=studio_config.service_url(config, ds["service_port"]),
        environment={
            ENV_DB_URL: studio_config.db_url(config, "datasets"),
            ENV_SETTINGS: json.dumps({
                "mount_root": studio_config.datasets_mount_root(config),
                "preview": ds["preview"],
                "scan": {**ds["scan"], "min_k": ds["min_k"]},
                "manifests": ds["manifests"],
                "source_views": ds["source_views"],
                "demo": ds["demo"]["enabled"],
                "demo_files_dir": studio_config.datasets_files_dir(config),
                "protected": config["mode"] != "local" or studio_config.user_accounts(config) == "system",
            }),
        },
        every_user=True,
        server_url_env=SERVER_URL_ENV,
    )


main = DatasetsService.launch_instance

if __name__ == "__main__":
    main()
