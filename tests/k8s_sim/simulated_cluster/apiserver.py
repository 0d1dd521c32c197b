"""The simulated API server: Kubernetes' REST paths for the core kinds KubeSpawner and
the hub use (pods and their status and log, PVCs, events, secrets, services,
config maps, namespaces, nodes): create, get, list, update, patch, delete, and list +
watch with resourceVersion, label and field selectors. Bearer-token authentication."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import random
from urllib.parse import unquote

from tornado import web
from tornado.iostream import StreamClosedError

from . import validation
from .store import ApiError, Store, field_matcher, label_matcher, now_iso

# plural -> (kind, namespaced)
KINDS = {
    "pods": ("Pod", True),
    "persistentvolumeclaims": ("PersistentVolumeClaim", True),
    "events": ("Event", True),
    "secrets": ("Secret", True),
    "services": ("Service", True),
    "configmaps": ("ConfigMap", True),
    "serviceaccounts": ("ServiceAccount", True),
    "namespaces": ("Namespace", False),
    "nodes": ("Node", False),
}
WRITABLE = set(KINDS) - {"nodes"}
VERSION = {"major": "1", "minor": validation.VERSIONS[-1].split(".")[1], "gitVersion": f"v{validation.VERSIONS[-1]}.0-simulated",
           "platform": "linux/amd64"}


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target, ops):
    """RFC 6902 JSON patch: add, remove, replace, test."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        kind = op["op"]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, op["value"])
            elif kind == "remove":
                parent.pop(index)
            elif kind == "replace":
                parent[index] = op["value"]
            elif kind == "test" and parent[index] != op["value"]:
                raise ApiError(422, "Invalid", f"test failed at {op['path']}")
        else:
            if kind in ("add", "replace"):
                if kind == "replace" and last not in parent:
                    raise ApiError(422, "Invalid", f"replace: {op['path']} does not exist")
                parent[last] = op["value"]
            elif kind == "remove":
                if last not in parent:
                    raise ApiError(422, "Invalid", f"remove: {op['path']} does not exist")
                del parent[last]
            elif kind == "test" and parent.get(last) != op["value"]:
                raise ApiError(422, "Invalid", f"test failed at {op['path']}")
    return doc


class Cluster:
    """The API server's state and its defaulting of new objects."""

    def __init__(self, token: str):
        self.token = token
        self.store = Store()
        self.kubelet = None  # set by the kubelet stand-in: pod logs, deletion
        for ns in ("default", "kube-system"):
            self.store.create("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                                                   "status": {"phase": "Active"}})

    def defaults(self, kind: str, obj: dict):
        spec = obj.setdefault("spec", {}) if kind in ("pods", "persistentvolumeclaims", "services") else None
        if kind == "pods":
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("securityContext", {})
            for c in spec.get("initContainers", []) + spec["containers"]:
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                c.setdefault("imagePullPolicy", "Always" if c["image"].endswith(":latest") or ":" not in c["image"]
                             else "IfNotPresent")
                resources = c.setdefault("resources", {})
                if resources.get("limits"):  # requests default to limits, as the API server does
                    resources["requests"] = {**resources["limits"], **(resources.get("requests") or {})}
            obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}
        elif kind == "persistentvolumeclaims":
            spec.setdefault("volumeMode", "Filesystem")
            obj["status"] = {"phase": "Pending"}
        elif kind == "services":
            spec.setdefault("type", "ClusterIP")
            if spec.get("clusterIP") != "None":
                spec["clusterIP"] = f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}"
            spec.setdefault("sessionAffinity", "None")
        elif kind == "secrets":
            obj.setdefault("type", "Opaque")
            for key, value in (obj.pop("stringData", None) or {}).items():
                obj.setdefault("data", {})[key] = base64.b64encode(value.encode()).decode()
        elif kind == "namespaces":
            obj["status"] = {"phase": "Active"}
        elif kind == "events":
            obj.setdefault("firstTimestamp", now_iso())
            obj.setdefault("lastTimestamp", obj["firstTimestamp"])
            obj.setdefault("count", 1)

    def create(self, kind: str, namespace: str | None, obj: dict, dry_run=False) -> dict:
        kind_name = KINDS[kind][0]
        obj.setdefault("apiVersion", "v1")
        obj.setdefault("kind", kind_name)
        if obj["kind"] != kind_name or obj["apiVersion"] != "v1":
            raise ApiError(400, "BadRequest", f"the body is a {obj['apiVersion']}/{obj['kind']}, not a v1/{kind_name}")
        meta = obj.setdefault("metadata", {})
        if namespace is not None:
            if meta.get("namespace") not in (None, namespace):
                raise ApiError(400, "BadRequest",
                               "the namespace of the provided object does not match the namespace sent on the request")
            if not self.store.find("namespaces", None, namespace):
                raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"})
            meta["namespace"] = namespace
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
            meta.pop(server_field, None)
        if kind == "pods":
            obj.pop("status", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
        validation.validate(kind, obj)
        self.defaults(kind, obj)
        if dry_run:
            return obj
        return self.store.create(kind, namespace, obj)

    def replace(self, kind: str, namespace: str | None, name: str, obj: dict, dry_run=False) -> dict:
        old = self.store.get(kind, namespace, name)
        obj.setdefault("apiVersion", "v1")
        obj.setdefault("kind", KINDS[kind][0])
        meta = obj.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": the object has been '
                                            "modified; please apply your changes to the latest version and try again")
        for server_field in ("uid", "creationTimestamp", "namespace", "deletionTimestamp"):
            if server_field in old["metadata"]:
                meta[server_field] = old["metadata"][server_field]
        meta["name"] = name
        if "status" in old:
            obj["status"] = old["status"]  # status changes only through the status subresource
        validation.validate_update(kind, old, obj)
        if dry_run:
            return obj
        return self.store.update(kind, namespace, obj)

    def patch(self, kind, namespace, name, content_type: str, body, subresource=None, dry_run=False) -> dict:
        old = self.store.get(kind, namespace, name)
        if "json-patch" in content_type:
            new = json_patch(old, body)
        elif "merge-patch" in content_type:  # strategic merge patches are applied as JSON merge patches
            new = merge_patch(old, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the content type {content_type!r} is not supported")
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            new["status"] = status
            validation.validate(kind, new)
            return new if dry_run else self.store.update(kind, namespace, new)
        return self.replace(kind, namespace, name, new, dry_run)

    def delete(self, kind, namespace, name, grace: int | None = None, dry_run=False) -> dict:
        obj = self.store.get(kind, namespace, name)
        if dry_run:
            return obj
        if kind == "pods" and self.kubelet:
            return self.kubelet.delete_pod(obj, grace)
        if kind == "persistentvolumeclaims" and self.kubelet and self.kubelet.claim_in_use(namespace, name):
            if not obj["metadata"].get("deletionTimestamp"):
                obj = copy.deepcopy(obj)
                obj["metadata"]["deletionTimestamp"] = now_iso()
                obj["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection"]
                return self.store.update(kind, namespace, obj)
            return obj
        if kind == "namespaces":
            for (k, ns, n) in [key for key in self.store.objects if key[1] == name]:
                self.delete(k, ns, n)
        return self.store.remove(kind, namespace, name)


class Handler(web.RequestHandler):
    @property
    def cluster(self) -> Cluster:
        return self.settings["cluster"]

    def prepare(self):
        if self.request.headers.get("Authorization") != f"Bearer {self.cluster.token}":
            self.fail(ApiError(401, "Unauthorized", "Unauthorized"))

    def fail(self, error: ApiError):
        self.set_status(error.code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(error.status()))

    def answer(self, obj, status=200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(obj))

    def body(self):
        try:
            return json.loads(self.request.body or b"{}")
        except json.JSONDecodeError as e:
            raise ApiError(400, "BadRequest", f"the request body is not JSON: {e}") from None

    def dry_run(self) -> bool:
        return self.get_query_argument("dryRun", "") == "All"

    def write_error(self, status_code, **kwargs):
        error = kwargs.get("exc_info", (None, None))[1]
        self.answer(ApiError(status_code, "InternalError", f"simulated API server: {error!r}").status(), status_code)


class InfoHandler(Handler):
    def get(self, path):
        if path == "version":
            return self.answer(VERSION)
        if path == "api":
            return self.answer({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "apis":
            return self.answer({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        resources = [{"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                      "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                     for plural, (kind, namespaced) in KINDS.items()]
        self.answer({"kind": "APIResourceList", "groupVersion": "v1", "resources": resources})


class CollectionHandler(Handler):
    """/api/v1[/namespaces/NS]/KIND: list, watch, create."""

    def _target(self, namespace, kind):
        if kind not in KINDS:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({kind})")
        if namespace is not None and not KINDS[kind][1]:
            raise ApiError(404, "NotFound", f"{kind} are not namespaced")
        return unquote(namespace) if namespace else None

    async def get(self, namespace, kind):
        try:
            namespace = self._target(namespace, kind)
            labels = label_matcher(self.get_query_argument("labelSelector", None))
            fields = field_matcher(kind, self.get_query_argument("fieldSelector", None))
            if self.get_query_argument("watch", "").lower() in ("true", "1"):
                return await self.watch(kind, namespace, labels, fields)
        except ApiError as e:
            return self.fail(e)
        items = self.cluster.store.list(kind, namespace, labels, fields)
        self.answer({"kind": KINDS[kind][0] + "List", "apiVersion": "v1",
                     "metadata": {"resourceVersion": str(self.cluster.store.revision)}, "items": items})

    async def watch(self, kind, namespace, labels, fields):
        rv = self.get_query_argument("resourceVersion", None)
        since = int(rv) if rv not in (None, "", "0") else None
        timeout = int(self.get_query_argument("timeoutSeconds", "0") or 0) or random.randint(1800, 3600)
        store = self.cluster.store
        try:
            watcher, backlog = store.watch(kind, namespace, since)
        except ApiError as e:
            # as a real API server: the watch opens, then one ERROR event with the Status
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps({"type": "ERROR", "object": e.status()}) + "\n")
            return self.finish()
        self.set_header("Content-Type", "application/json")
        self.set_header("Transfer-Encoding", "chunked")
        matches = lambda obj: obj is not None and labels(obj["metadata"].get("labels")) and fields(obj)  # noqa: E731
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            pending = list(backlog)
            while True:
                for event in pending:
                    new_match = matches(event.obj)
                    old_match = matches(event.old) if event.type == "MODIFIED" else new_match
                    if event.type == "MODIFIED" and new_match != old_match:
                        type_ = "ADDED" if new_match else "DELETED"
                    elif new_match:
                        type_ = event.type
                    else:
                        continue
                    self.write(json.dumps({"type": type_, "object": event.obj}) + "\n")
                await self.flush()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    first = await asyncio.wait_for(watcher.queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
                pending = [first]
                while not watcher.queue.empty():
                    pending.append(watcher.queue.get_nowait())
        except StreamClosedError:
            return
        finally:
            store.unwatch(watcher)
        self.finish()

    def post(self, namespace, kind):
        try:
            namespace = self._target(namespace, kind)
            if kind not in WRITABLE:
                raise ApiError(405, "MethodNotAllowed", f"the simulated cluster's {kind} are fixed")
            self.answer(self.cluster.create(kind, namespace, self.body(), self.dry_run()), 201)
        except ApiError as e:
            self.fail(e)


class ObjectHandler(Handler):
    """/api/v1[/namespaces/NS]/KIND/NAME[/status|/log]."""

    def _key(self, namespace, kind, name):
        if kind not in KINDS or (namespace is not None) != KINDS[kind][1]:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({kind})")
        return (unquote(namespace) if namespace else None), unquote(name)

    def get(self, namespace, kind, name, subresource=None):
        try:
            namespace, name = self._key(namespace, kind, name)
            obj = self.cluster.store.get(kind, namespace, name)
            if subresource == "log" and kind == "pods":
                self.set_header("Content-Type", "text/plain")
                return self.finish(self.cluster.kubelet.log_of(obj) if self.cluster.kubelet else "")
            self.answer(obj)
        except ApiError as e:
            self.fail(e)

    def put(self, namespace, kind, name, subresource=None):
        try:
            namespace, name = self._key(namespace, kind, name)
            if subresource == "status":
                return self.answer(self.cluster.patch(kind, namespace, name, "application/merge-patch+json",
                                                      {"status": self.body().get("status")}, "status", self.dry_run()))
            self.answer(self.cluster.replace(kind, namespace, name, self.body(), self.dry_run()))
        except ApiError as e:
            self.fail(e)

    def patch(self, namespace, kind, name, subresource=None):
        try:
            namespace, name = self._key(namespace, kind, name)
            content_type = self.request.headers.get("Content-Type", "")
            self.answer(self.cluster.patch(kind, namespace, name, content_type, self.body(), subresource, self.dry_run()))
        except ApiError as e:
            self.fail(e)

    def delete(self, namespace, kind, name, subresource=None):
        try:
            namespace, name = self._key(namespace, kind, name)
            if kind not in WRITABLE:
                raise ApiError(405, "MethodNotAllowed", f"the simulated cluster's {kind} are fixed")
            grace = self.get_query_argument("gracePeriodSeconds", None)
            if grace is None and self.request.body:
                grace = self.body().get("gracePeriodSeconds")
            self.answer(self.cluster.delete(kind, namespace, name, None if grace is None else int(grace),
                                            self.dry_run()))
        except ApiError as e:
            self.fail(e)


def make_app(cluster: Cluster) -> web.Application:
    name = r"([^/]+)"
    return web.Application([
        (r"/(version|api|apis|api/v1)/?", InfoHandler),
        (rf"/api/v1/(?:namespaces/{name}/)?{name}", CollectionHandler),
        (rf"/api/v1/(?:namespaces/{name}/)?{name}/{name}(?:/(status|log))?", ObjectHandler),
    ], cluster=cluster)


def qos_class(spec: dict) -> str:
    containers = spec.get("containers", [])
    resources = [c.get("resources") or {} for c in containers]
    if all(not (r.get("limits") or r.get("requests")) for r in resources):
        return "BestEffort"
    guaranteed = all(
        {k: str(v) for k, v in (r.get("limits") or {}).items() if k in ("cpu", "memory")} ==
        {k: str(v) for k, v in (r.get("requests") or {}).items() if k in ("cpu", "memory")}
        and {"cpu", "memory"} <= set(r.get("limits") or {}) for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"
