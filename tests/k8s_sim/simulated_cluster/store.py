"""Objects of the simulated cluster: one store for every kind, one resource version
counter (as etcd's revision), label and field selectors, and watches."""

from __future__ import annotations

import asyncio
import copy
import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An answer of the API server other than success: a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details, "code": self.code}


# --------------------------------------------------------------------------- selectors

_REQ = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s*(?:(==|=|!=|\s+in\s+|\s+notin\s+)\s*(.*?))?\s*$")


def _split_selector(text: str) -> list[str]:
    """Split at commas outside parentheses: ``a in (x,y),b=c``."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def label_matcher(selector: str | None):
    """A predicate on a labels dict for a Kubernetes label selector string."""
    if not selector:
        return lambda labels: True
    requirements = []
    for part in _split_selector(selector):
        m = _REQ.match(part)
        if not m:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
        negated, key, op, value = m.groups()
        op = (op or "").strip()
        if negated and op:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
        if op in ("in", "notin"):
            if not (value.startswith("(") and value.endswith(")")):
                raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}: values in parentheses")
            values = {v.strip() for v in value[1:-1].split(",")}
        else:
            values = {value} if op else set()
        requirements.append((negated, key, op, values))

    def matches(labels: dict) -> bool:
        labels = labels or {}
        for negated, key, op, values in requirements:
            if not op:
                if (key in labels) == bool(negated):
                    return False
            elif op in ("=", "=="):
                if labels.get(key) not in values:
                    return False
            elif op == "!=":
                if labels.get(key) in values:
                    return False
            elif op == "in":
                if key not in labels or labels[key] not in values:
                    return False
            elif op == "notin":
                if key in labels and labels[key] in values:
                    return False
        return True

    return matches


# fields each kind can be selected by, as the real API server allows (others: 400)
FIELDS = {
    "pods": {"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "status.phase", "status.podIP", "status.nominatedNodeName"},
    "events": {"metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.namespace",
               "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
               "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent",
               "source", "type"},
}
DEFAULT_FIELDS = {"metadata.name", "metadata.namespace"}


def field_matcher(kind: str, selector: str | None):
    if not selector:
        return lambda obj: True
    terms = []
    for part in selector.split(","):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid selector: {part!r}")
        path, op, value = m.groups()
        if path not in FIELDS.get(kind, DEFAULT_FIELDS):
            raise ApiError(400, "BadRequest", f'field label not supported: "{path}"')
        terms.append((path.split("."), op != "!=", value))

    def lookup(obj, path):
        for key in path:
            obj = obj.get(key) if isinstance(obj, dict) else None
        return "" if obj is None else str(obj)

    return lambda obj: all((lookup(obj, path) == value) == equal for path, equal, value in terms)


# --------------------------------------------------------------------------- the store


@dataclass
class WatchEvent:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    kind: str
    namespace: str | None
    obj: dict
    old: dict | None = None


@dataclass
class Watcher:
    kind: str
    namespace: str | None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


class Store:
    """Every object, by (kind plural, namespace or None, name)."""

    HISTORY = 2000  # watch events kept for resuming; older resource versions get 410 Gone

    def __init__(self):
        self.objects: dict[tuple[str, str | None, str], dict] = {}
        self.revision = 1
        self.history: deque[WatchEvent] = deque(maxlen=self.HISTORY)
        self.watchers: list[Watcher] = []
        self.listeners = []  # callables(event) of the controllers (scheduler, kubelet)

    # ---- reading

    def get(self, kind: str, namespace: str | None, name: str) -> dict:
        try:
            return self.objects[(kind, namespace, name)]
        except KeyError:
            raise ApiError(404, "NotFound", f'{kind} "{name}" not found',
                           {"name": name, "kind": kind}) from None

    def find(self, kind: str, namespace: str | None, name: str) -> dict | None:
        return self.objects.get((kind, namespace, name))

    def list(self, kind: str, namespace: str | None, labels=None, fields=None) -> list[dict]:
        labels = labels or (lambda _: True)
        fields = fields or (lambda _: True)
        return [obj for (k, ns, _), obj in sorted(self.objects.items(), key=lambda kv: (kv[0][1] or "", kv[0][2]))
                if k == kind and (namespace is None or ns == namespace)
                and labels(obj["metadata"].get("labels")) and fields(obj)]

    # ---- writing

    def _bump(self, obj: dict) -> int:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        return self.revision

    def _emit(self, type_: str, kind: str, namespace: str | None, obj: dict, old: dict | None = None):
        event = WatchEvent(self.revision, type_, kind, namespace, copy.deepcopy(obj), old)
        self.history.append(event)
        for watcher in list(self.watchers):
            if watcher.kind == kind and (watcher.namespace is None or watcher.namespace == namespace):
                watcher.queue.put_nowait(event)
        for listener in list(self.listeners):
            listener(event)

    def create(self, kind: str, namespace: str | None, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{kind}: metadata.name: Required value: name or generateName is required",
                           {"kind": kind, "causes": [{"field": "metadata.name", "reason": "FieldValueRequired"}]})
        key = (kind, namespace, name)
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f'{kind} "{name}" already exists', {"name": name, "kind": kind})
        if namespace is not None:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta.pop("deletionTimestamp", None)
        self._bump(obj)
        self.objects[key] = obj
        self._emit("ADDED", kind, namespace, obj)
        return obj

    def update(self, kind: str, namespace: str | None, obj: dict) -> dict:
        """Store a changed object (a copy of the stored one, changed)."""
        key = (kind, namespace, obj["metadata"]["name"])
        old = self.objects.get(key)
        if old is None:
            raise ApiError(404, "NotFound", f'{kind} "{key[2]}" not found')
        self._bump(obj)
        self.objects[key] = obj
        self._emit("MODIFIED", kind, namespace, obj, old)
        return obj

    def remove(self, kind: str, namespace: str | None, name: str) -> dict:
        obj = self.objects.pop((kind, namespace, name))
        self._bump(obj)
        self._emit("DELETED", kind, namespace, obj)
        return obj

    # ---- watching

    def watch(self, kind: str, namespace: str | None, since: int | None) -> tuple[Watcher, list[WatchEvent]]:
        """A new watcher and the events after revision ``since`` it must send first
        (None: synthetic ADDED events of every current object, as a watch without a
        resourceVersion starts). Raises 410 Gone when ``since`` is older than the history."""
        watcher = Watcher(kind, namespace)
        if since is None:
            backlog = [WatchEvent(self.revision, "ADDED", k, ns, copy.deepcopy(obj))
                       for (k, ns, _), obj in self.objects.items()
                       if k == kind and (namespace is None or ns == namespace)]
        else:
            oldest = self.history[0].revision if self.history else self.revision + 1
            if since < oldest - 1 and since < self.revision:
                raise ApiError(410, "Expired", f"too old resource version: {since} ({oldest - 1})")
            backlog = [e for e in self.history if e.revision > since and e.kind == kind
                       and (namespace is None or e.namespace == namespace)]
        self.watchers.append(watcher)
        return watcher, backlog

    def unwatch(self, watcher: Watcher):
        if watcher in self.watchers:
            self.watchers.remove(watcher)
