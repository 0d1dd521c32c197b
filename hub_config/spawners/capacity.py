"""GPU capacity of a Kubernetes cluster per GPU type, as the hub sees it before it makes a pod.

A launch the cluster cannot hold would otherwise become a pod that stays Pending until
``spawn.start_timeout``; knowing the capacity lets the hub keep such a launch in its queue
instead. The hub counts its own servers itself (its usage records, atomically, in-process),
so what is read from the cluster here leaves them out: the GPUs the type's nodes offer, and
those held by pods of anyone else (other namespaces, other controllers, other hubs).

:func:`gpu_capacity` and :func:`free` are pure; :func:`fetch_capacity` reads nodes and pods
through KubeSpawner's API client and hands them to :func:`gpu_capacity`.
"""

from __future__ import annotations

import asyncio
import json
import re
from decimal import ROUND_FLOOR, Decimal

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

#: Label values by which the hub recognises the pods of its own servers (in its namespace):
#: KubeSpawner's ``component`` label (``KubeSpawner.component_label``, the label its pod
#: reflector selects on) and the ``app.kubernetes.io/part-of: aistudio`` the studio adds to
#: every server pod (hub_config/configurer.py; the chart's "aistudio.singleuserSelector").
#: ``app: jupyterhub`` or ``app.kubernetes.io/managed-by: kubespawner`` are not used: every
#: JupyterHub's pods carry them, and ``common_labels`` may change them.
PART_OF_LABEL = ("app.kubernetes.io/part-of", "aistudio")
DEFAULT_COMPONENT = "singleuser-server"
#: The phases of pods that hold nothing any more (the same as the field selector of the list).
FINISHED_PHASES = ("Succeeded", "Failed")
PODS_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
#: Taint effects that keep a pod without a matching toleration off a node.
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
UNTYPED = ""
HINT_403 = " (the hub may not list nodes and pods cluster-wide: chart value hub.gpuCapacity.clusterWide)"

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


class CapacityUnknown(Exception):
    """The cluster's capacity could not be read (RBAC, API server unreachable): the caller
    cannot tell whether a launch fits and should create the pod as it would without a queue."""


def count(value) -> int:
    """A Kubernetes quantity of an extended resource as a whole number (``"4"``, ``4``, ``"2k"``).

    Extended resources are integers by the API's own validation; anything else is rounded
    down, and an unreadable value counts as 0 rather than failing the whole reading.
    """
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        return 0
    try:
        amount = Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except ArithmeticError:
        return 0
    return max(int(amount.to_integral_value(ROUND_FLOOR)), 0)


# --------------------------------------------------------------------------- nodes


def _is_ready(node: dict) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _tolerates(toleration: dict, taint: dict) -> bool:
    """The API's ToleratesTaint: effect (empty: all), then key and operator (Exists with no
    key: every taint; Equal, the default: key and value)."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")


def _requirement_matches(expr: dict, values: dict) -> bool:
    key, op, wanted = expr.get("key"), expr.get("operator"), expr.get("values") or []
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        try:
            have, bound = int(values[key]), int(wanted[0])
        except (KeyError, IndexError, ValueError):
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def _affinity_matches(terms: list, node: dict) -> bool:
    """Required node affinity: the terms are ORed, a term's requirements ANDed; an empty
    term matches no node (as the scheduler reads nodeSelectorTerms)."""
    if not terms:
        return True
    labels = (node.get("metadata") or {}).get("labels") or {}
    fields = {"metadata.name": (node.get("metadata") or {}).get("name")}
    for term in terms:
        exprs, field_exprs = term.get("matchExpressions") or [], term.get("matchFields") or []
        if (exprs or field_exprs) and all(_requirement_matches(e, labels) for e in exprs) and all(
            _requirement_matches(e, fields) for e in field_exprs
        ):
            return True
    return False


def node_fits(node: dict, node_selector: dict, tolerations: list, affinity_terms: list) -> bool:
    """Whether the scheduler could place a pod with these constraints on ``node`` at all
    (leaving out what the node has free): Ready, not cordoned, every node selector label,
    the required affinity, and every NoSchedule/NoExecute taint tolerated."""
    spec = node.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    if spec.get("unschedulable") or not _is_ready(node):
        return False
    if any(labels.get(key) != str(value) for key, value in (node_selector or {}).items()):
        return False
    if not _affinity_matches(affinity_terms or [], node):
        return False
    return all(
        any(_tolerates(t, taint) for t in tolerations or [])
        for taint in spec.get("taints") or []
        if taint.get("effect") in BLOCKING_EFFECTS
    )


# --------------------------------------------------------------------------- pods


def pod_request(pod: dict, resource: str) -> int:
    """How much of ``resource`` the scheduler counts for ``pod``: the app containers' sum,
    or the largest init container if that is more (sidecars, init containers with
    ``restartPolicy: Always``, add to both, as they keep running), plus the pod's overhead.
    A container's request of an extended resource is its request, else its limit (the API
    defaults one to the other, and they must be equal)."""

    def of(container: dict) -> int:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        return count(requests.get(resource, limits.get(resource)))

    spec = pod.get("spec") or {}
    sidecars = init_peak = 0
    for container in spec.get("initContainers") or []:
        if container.get("restartPolicy") == "Always":
            sidecars += of(container)
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, sidecars + of(container))
    app = sum(of(c) for c in spec.get("containers") or []) + sidecars
    return max(app, init_peak) + count((spec.get("overhead") or {}).get(resource))


def is_hub_pod(pod: dict, namespace: str | None = None, component: str = DEFAULT_COMPONENT) -> bool:
    """Whether ``pod`` is one of this hub's servers, which the hub counts itself: in the
    hub's ``namespace`` (None: any; pass it, or another studio's servers look like ours)
    with KubeSpawner's ``component`` label and the studio's ``app.kubernetes.io/part-of``."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    if namespace is not None and meta.get("namespace") != namespace:
        return False
    return labels.get("component") == component and labels.get(PART_OF_LABEL[0]) == PART_OF_LABEL[1]


# --------------------------------------------------------------------------- capacity


def placement(gpu_type: str, gpu_types: dict, default_resource: str, base: dict | None = None) -> dict:
    """The resource and node constraints of a launch of ``gpu_type`` ("" for none), merged
    over the spawner's configured ``base`` as :func:`hub_config.spawners.kube.pod_settings`
    merges them; a type ``gpu_types`` does not describe is placed as an untyped launch."""
    base = base or {}
    gpu = gpu_types.get(gpu_type, {}) if gpu_type else {}
    return {
        "resource": gpu.get("resource", default_resource),
        "node_selector": {**(base.get("node_selector") or {}), **(gpu.get("node_selector") or {})},
        "tolerations": list(base.get("tolerations") or []) + list(gpu.get("tolerations") or []),
        "node_affinity_required": list(base.get("node_affinity_required") or [])
        + list(gpu.get("node_affinity_required") or []),
    }


def gpu_capacity(
    nodes: list[dict],
    pods: list[dict],
    gpu_types: dict,
    default_resource: str = "nvidia.com/gpu",
    *,
    namespace: str | None = None,
    component: str = DEFAULT_COMPONENT,
    base: dict | None = None,
) -> dict[str, dict]:
    """GPUs per GPU type: ``{type: {"total", "foreign", "resource", "nodes"}}``.

    ``nodes`` and ``pods`` are API objects as JSON dicts; ``gpu_types`` the studio's
    ``kubernetes.gpu_types`` ({type: {resource, node_selector, tolerations,
    node_affinity_required}}); ``base`` the spawner's configured ``node_selector``,
    ``tolerations`` and ``node_affinity_required`` that every pod gets besides its type's.
    There is one entry per type and one for ``""``: profiles without a ``gpu_type``, whose
    pods ask for ``default_resource`` with the base constraints only.

    - ``total``: the type's resource (its own, e.g. a MIG profile, else ``default_resource``)
      in ``status.allocatable`` of every node a pod of the type could be scheduled on: Ready,
      not cordoned (``spec.unschedulable``), carrying every label of the node selector,
      matching the required node affinity, its NoSchedule/NoExecute taints tolerated.
    - ``foreign``: that resource requested (:func:`pod_request`, the scheduler's rule) by
      pods bound to those nodes (``spec.nodeName``) that are not finished (phase Succeeded
      or Failed) and are not this hub's servers (:func:`is_hub_pod` with ``namespace`` and
      ``component``): the hub subtracts its own from its usage records.
    - ``resource``: the resource counted; ``nodes``: ``{node: {"total", "foreign"}}`` of the
      counted nodes, for a launch that must fit on one node.

    Entries with the same resource and shared nodes count the same GPUs (a typed pool
    inside the untyped one, for instance).
    """
    unfinished = [
        p
        for p in pods
        if (p.get("status") or {}).get("phase") not in FINISHED_PHASES
        and (p.get("spec") or {}).get("nodeName")
        and not is_hub_pod(p, namespace, component)
    ]
    capacity = {}
    for gpu_type in [UNTYPED, *gpu_types]:
        where = placement(gpu_type, gpu_types, default_resource, base)
        resource = where["resource"]
        per_node = {}
        for node in nodes:
            if node_fits(node, where["node_selector"], where["tolerations"], where["node_affinity_required"]):
                name = node["metadata"]["name"]
                allocatable = ((node.get("status") or {}).get("allocatable") or {}).get(resource)
                per_node[name] = {"total": count(allocatable), "foreign": 0}
        for pod in unfinished:
            node = per_node.get(pod["spec"]["nodeName"])
            if node is not None:
                node["foreign"] += pod_request(pod, resource)
        capacity[gpu_type] = {
            "total": sum(n["total"] for n in per_node.values()),
            "foreign": sum(n["foreign"] for n in per_node.values()),
            "resource": resource,
            "nodes": per_node,
        }
    return capacity


def free(capacity: dict, gpu_type: str | None, held_by_hub: int) -> int:
    """GPUs of ``gpu_type`` a new launch may still take: total - foreign - ``held_by_hub``
    (the GPUs of the hub's own servers on the same pool), never below 0. A type without an
    entry (not in ``gpu_types``) is placed as an untyped launch, so it reads the ``""`` entry."""
    entry = capacity.get(gpu_type or UNTYPED) or capacity.get(UNTYPED) or {"total": 0, "foreign": 0}
    return max(entry["total"] - entry["foreign"] - held_by_hub, 0)


# --------------------------------------------------------------------------- reading the cluster


async def _list(method, **kwargs) -> list[dict]:
    """The items of a list call as the API's JSON (no model objects: a cluster's pods are
    many, and the dicts are what :func:`gpu_capacity` reads). Without preloading the client
    checks no status, so a refusal is turned into :class:`CapacityUnknown` here."""
    response = await method(_preload_content=False, **kwargs)
    try:
        body = await response.read()
        if not 200 <= response.status <= 299:
            try:
                message = json.loads(body).get("message") or ""
            except ValueError:
                message = body.decode(errors="replace")[:200]
            hint = HINT_403 if response.status == 403 else ""
            raise CapacityUnknown(f"{response.status} {response.reason}: {message}{hint}")
        return json.loads(body).get("items") or []
    finally:
        response.release()


async def fetch_capacity(
    api,
    gpu_types: dict,
    default_resource: str = "nvidia.com/gpu",
    *,
    namespace: str | None = None,
    component: str = DEFAULT_COMPONENT,
    base: dict | None = None,
    timeout: float = 10,
) -> dict[str, dict]:
    """:func:`gpu_capacity` of the cluster ``api`` (a kubernetes_asyncio ``CoreV1Api``, as
    KubeSpawner's ``self.api``) reaches: its nodes and its unfinished pods in all namespaces.

    Needs ``list`` on nodes and on pods cluster-wide (the chart's ClusterRole, value
    ``hub.gpuCapacity.clusterWide``); raises :class:`CapacityUnknown` when the API refuses,
    cannot be reached or takes longer than ``timeout`` seconds per list.
    """
    try:
        nodes = await _list(api.list_node, _request_timeout=timeout)
        pods = await _list(
            api.list_pod_for_all_namespaces, field_selector=PODS_FIELD_SELECTOR, _request_timeout=timeout
        )
    except (ApiException, aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
        raise CapacityUnknown(f"the Kubernetes API's nodes and pods cannot be read: {e}") from e
    return gpu_capacity(
        nodes, pods, gpu_types, default_resource, namespace=namespace, component=component, base=base
    )
