"""GPU capacity per GPU type on Kubernetes (hub_config/spawners/capacity.py): which nodes a
type's pods can land on, what other people's pods hold there, and that the hub's own
servers are left to the hub, with node and pod objects as the API server returns them."""

import copy
import importlib
import json
from types import SimpleNamespace

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient
from traitlets.config import Config

from hub_config import config as studio_config
from hub_config import configurer
from hub_config.spawners import capacity as cap
from hub_config.spawners.capacity import CapacityUnknown, fetch_capacity, free, gpu_capacity, pod_request

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
A100 = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
MIG = "nvidia.com/mig-3g.40gb"
GPU_TYPES = {
    "a100": {"node_selector": A100, "tolerations": [GPU_TOLERATION]},
    "h100-mig": {"resource": MIG, "node_selector": H100, "tolerations": [GPU_TOLERATION]},
}
HUB_NS = "lab"
HUB_LABELS = {  # what StudioKubeSpawner puts on a member's pod (checked below against the real one)
    "app": "jupyterhub", "heritage": "jupyterhub", "app.kubernetes.io/name": "jupyterhub",
    "app.kubernetes.io/managed-by": "kubespawner", "app.kubernetes.io/component": "singleuser-server",
    "component": "singleuser-server", "app.kubernetes.io/part-of": "aistudio", "hub.jupyter.org/username": "alice",
    "hub.jupyter.org/servername": "", "aistudio.io/profile": "a100-1", "aistudio.io/gpus": "1",
}


def node(name, labels=None, allocatable=None, taints=(), ready="True", cordoned=False):
    """A Node as the API returns it (kubelet-reported capacity and conditions)."""
    alloc = {"cpu": "63900m", "memory": "515000Mi", "pods": "110", "ephemeral-storage": "900Gi", **(allocatable or {})}
    spec = {"podCIDR": "10.244.1.0/24", "providerID": f"metal://{name}"}
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    if cordoned:
        spec["unschedulable"] = True
        spec.setdefault("taints", []).append(
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "2026-01-05T10:00:00Z"})
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **(labels or {})}},
        "spec": spec,
        "status": {
            "capacity": dict(alloc), "allocatable": alloc,
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else "NodeStatusUnknown"},
            ],
        },
    }


def container(name="main", gpus=None, resource="nvidia.com/gpu", requests_only=False, limits_only=False):
    resources = {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "4Gi"}}
    if gpus is not None:
        if not limits_only:
            resources["requests"][resource] = str(gpus)
        if not requests_only:
            resources["limits"][resource] = str(gpus)
    return {"name": name, "image": "nvcr.io/nvidia/pytorch:24.05-py3", "resources": resources}


def pod(name, node_name=None, gpus=1, namespace="research", labels=None, phase="Running", resource="nvidia.com/gpu",
        containers=None, init=None):
    spec = {"containers": containers or [container(gpus=gpus, resource=resource)], "restartPolicy": "Never"}
    if init:
        spec["initContainers"] = init
    if node_name:
        spec["nodeName"] = node_name
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"job-name": name}},
        "spec": spec, "status": {"phase": phase},
    }


def hub_pod(name, node_name, gpus=1, namespace=HUB_NS, **kw):
    return pod(name, node_name, gpus, namespace=namespace, labels=dict(HUB_LABELS), **kw)


NODES = [
    node("a100-1", A100, {"nvidia.com/gpu": "8"}, [GPU_TAINT]),
    node("a100-2", A100, {"nvidia.com/gpu": "8"}, [GPU_TAINT], cordoned=True),
    node("a100-3", A100, {"nvidia.com/gpu": "8"}, [GPU_TAINT], ready="Unknown"),
    node("a100-4", A100, {"nvidia.com/gpu": "4"}, [GPU_TAINT]),
    # MIG "mixed" strategy: the device plugin advertises slices, no whole GPUs
    node("h100-1", H100, {MIG: "14", "nvidia.com/gpu": "0"}, [GPU_TAINT]),
    node("t4-1", {"nvidia.com/gpu.product": "Tesla-T4"}, {"nvidia.com/gpu": "1"}),  # untainted, no type of its own
    node("cpu-1"),
]
PODS = [
    pod("train-llm", "a100-1", 2),  # a foreign job: 2 GPUs
    hub_pod("jupyter-alice", "a100-1", 1),  # the hub's own: left to the hub
    hub_pod("jupyter-carol", "a100-1", 1, namespace="other-studio"),  # another studio's: foreign to us
    pod("done", "a100-1", 4, phase="Succeeded"),
    pod("crashed", "a100-4", 4, phase="Failed"),
    pod("queued", None, 1, phase="Pending"),  # not bound: holds nothing yet
    pod("stuck-on-cordoned", "a100-2", 3),  # the node is not counted, nor its pods
    pod("mig-job", "h100-1", resource=MIG,
        containers=[container("a", 1, MIG), container("b", 1, MIG)], init=[container("prep", 3, MIG)]),
    pod("t4-notebook", "t4-1", 1, phase="Pending"),  # bound, starting: holds its GPU
    pod("cpu-batch", "cpu-1", None),
]


def totals(capacity):
    return {t: (e["total"], e["foreign"]) for t, e in capacity.items()}


# --------------------------------------------------------------------------- per type


def test_each_type_counts_its_ready_schedulable_nodes_and_foreign_pods_there():
    capacity = gpu_capacity(NODES, PODS, GPU_TYPES, namespace=HUB_NS)
    assert totals(capacity) == {
        # a100-1 (8) + a100-4 (4); cordoned a100-2 and NotReady a100-3 left out;
        # 2 (train-llm) + 1 (the other studio's server); alice's is ours; finished pods hold nothing
        "a100": (12, 3),
        # the type's own resource; init container 3 > the two containers' 1 + 1
        "h100-mig": (14, 3),
        # untyped: nvidia.com/gpu on nodes a pod without tolerations reaches: only t4-1
        "": (1, 1),
    }
    a100 = capacity["a100"]
    assert a100["resource"] == "nvidia.com/gpu" and capacity["h100-mig"]["resource"] == MIG
    assert a100["nodes"] == {"a100-1": {"total": 8, "foreign": 3}, "a100-4": {"total": 4, "foreign": 0}}
    assert free(capacity, "a100", held_by_hub=1) == 8
    assert free(capacity, "h100-mig", held_by_hub=0) == 11


def test_without_the_hub_namespace_every_studio_server_is_taken_for_ours():
    assert totals(gpu_capacity(NODES, PODS, GPU_TYPES))["a100"] == (12, 2)


def test_a_node_needs_every_selector_label_and_nodes_of_other_types_do_not_count():
    partial = {"a100-pool": {"node_selector": {**A100, "aistudio.io/pool": "training"}, "tolerations": [GPU_TOLERATION]}}
    nodes = copy.deepcopy(NODES)
    nodes[3]["metadata"]["labels"]["aistudio.io/pool"] = "training"  # a100-4 only
    assert totals(gpu_capacity(nodes, PODS, partial, namespace=HUB_NS))["a100-pool"] == (4, 0)
    unknown = {"b200": {"node_selector": {"nvidia.com/gpu.product": "NVIDIA-B200"}, "tolerations": [GPU_TOLERATION]}}
    assert totals(gpu_capacity(NODES, PODS, unknown))["b200"] == (0, 0)


def test_base_constraints_of_the_spawner_apply_to_every_type():
    base = {"tolerations": [GPU_TOLERATION], "node_selector": {}, "node_affinity_required": []}
    capacity = gpu_capacity(NODES, PODS, GPU_TYPES, namespace=HUB_NS, base=base)
    # untyped pods now tolerate the GPU taint: a100-1, a100-4, t4-1 (h100-1 has 0 whole GPUs)
    assert totals(capacity)[""] == (8 + 4 + 0 + 1, 3 + 1)
    assert set(capacity[""]["nodes"]) == {"a100-1", "a100-4", "h100-1", "t4-1", "cpu-1"}
    pinned = {**base, "node_selector": {"kubernetes.io/hostname": "a100-4"}}
    assert totals(gpu_capacity(NODES, PODS, GPU_TYPES, namespace=HUB_NS, base=pinned))["a100"] == (4, 0)


def test_a_type_may_only_override_the_base_selector_label_it_names():
    base = {"node_selector": {"nvidia.com/gpu.product": "Tesla-T4"}}
    # as pod_settings merges: the type's value of the same label wins
    assert totals(gpu_capacity(NODES, PODS, GPU_TYPES, namespace=HUB_NS, base=base))["a100"] == (12, 3)


# --------------------------------------------------------------------------- taints and affinity


@pytest.mark.parametrize("toleration, tolerated", [
    (GPU_TOLERATION, True),
    ({"operator": "Exists"}, True),  # no key: every taint
    ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "present"}, True),  # no effect: every effect
    ({"key": "nvidia.com/gpu", "value": "present"}, True),  # Equal is the default
    ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "absent"}, False),
    ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"key": "dedicated", "operator": "Exists"}, False),
])
def test_tolerations_match_taints_as_the_scheduler_does(toleration, tolerated):
    types = {"a100": {"node_selector": A100, "tolerations": [toleration]}}
    assert totals(gpu_capacity(NODES[:1], [], types))["a100"] == ((8, 0) if tolerated else (0, 0))


def test_prefer_no_schedule_taints_do_not_keep_pods_off():
    soft = node("soft", A100, {"nvidia.com/gpu": "2"}, [{"key": "batch", "effect": "PreferNoSchedule"}])
    hard = node("hard", A100, {"nvidia.com/gpu": "2"}, [{"key": "batch", "effect": "NoExecute"}])
    types = {"a100": {"node_selector": A100}}
    assert set(gpu_capacity([soft, hard], [], types)["a100"]["nodes"]) == {"soft"}


def test_required_node_affinity_terms_are_ored_and_their_expressions_anded():
    nodes = [
        node("gen-8", {**A100, "aistudio.io/pool": "training", "nvidia.com/gpu.count": "8"}, {"nvidia.com/gpu": "8"}),
        node("gen-4", {**A100, "aistudio.io/pool": "training", "nvidia.com/gpu.count": "4"}, {"nvidia.com/gpu": "4"}),
        node("inference", {**A100, "aistudio.io/pool": "inference", "nvidia.com/gpu.count": "2"}, {"nvidia.com/gpu": "2"}),
    ]

    def nodes_for(*terms):
        types = {"a100": {"node_selector": A100, "node_affinity_required": list(terms)}}
        return sorted(gpu_capacity(nodes, [], types)["a100"]["nodes"])

    training = {"key": "aistudio.io/pool", "operator": "In", "values": ["training"]}
    big = {"key": "nvidia.com/gpu.count", "operator": "Gt", "values": ["4"]}
    assert nodes_for({"matchExpressions": [training]}) == ["gen-4", "gen-8"]
    assert nodes_for({"matchExpressions": [training, big]}) == ["gen-8"]
    assert nodes_for({"matchExpressions": [training, big]}, {"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["inference"]}]}) == ["gen-8", "inference"]
    assert nodes_for({"matchExpressions": [{"key": "aistudio.io/pool", "operator": "NotIn", "values": ["training"]}]}) == [
        "inference"]
    assert nodes_for({"matchExpressions": [{"key": "aistudio.io/drained", "operator": "DoesNotExist"}]}) == [
        "gen-4", "gen-8", "inference"]
    assert nodes_for({}) == []  # an empty term matches no node


# --------------------------------------------------------------------------- pods


@pytest.mark.parametrize("spec, expected", [
    ({"containers": [container(gpus=2)]}, 2),
    ({"containers": [container(gpus=2, limits_only=True)]}, 2),  # request defaults to the limit
    ({"containers": [container(gpus=2, requests_only=True)]}, 2),
    ({"containers": [container("a", 1), container("b", 2)]}, 3),  # containers add up
    ({"containers": [container("a", 1)], "initContainers": [container("i", 4)]}, 4),  # a bigger init container
    ({"containers": [container("a", 2), container("b", 2)], "initContainers": [container("i", 3)]}, 4),
    ({"containers": [container("a", 1)], "initContainers": [container("i", 2), container("j", 3)]}, 3),  # the largest
    # a sidecar (restartPolicy Always) keeps running: it adds to the app containers and to later init containers
    ({"containers": [container("a", 1)],
      "initContainers": [{**container("side", 1), "restartPolicy": "Always"}, container("j", 2)]}, 3),
    ({"containers": [container("a", None)]}, 0),
    ({"containers": [container("a", 1)], "overhead": {"nvidia.com/gpu": "1"}}, 2),
], ids=["one", "limit-only", "request-only", "sum", "init-larger", "init-smaller", "init-max", "sidecar", "none",
        "overhead"])
def test_a_pods_request_is_counted_as_the_scheduler_counts_it(spec, expected):
    assert pod_request({"spec": spec}, "nvidia.com/gpu") == expected


def test_a_pods_request_of_another_resource_is_not_counted():
    mig = pod("mig", "h100-1", 2, resource=MIG)
    assert pod_request(mig, "nvidia.com/gpu") == 0 and pod_request(mig, MIG) == 2


@pytest.mark.parametrize("namespace, labels, ours", [
    (HUB_NS, HUB_LABELS, True),
    ("other-studio", HUB_LABELS, False),  # another studio's server
    (HUB_NS, {**HUB_LABELS, "component": "singleuser-storage"}, False),
    (HUB_NS, {k: v for k, v in HUB_LABELS.items() if k != "app.kubernetes.io/part-of"}, False),  # a plain JupyterHub's
    (HUB_NS, {"app": "jupyterhub", "component": "hub"}, False),
    (HUB_NS, {}, False),
])
def test_the_hubs_own_servers_are_recognised_by_namespace_and_labels(namespace, labels, ours):
    p = pod("p", "a100-1", 1, namespace=namespace, labels=dict(labels))
    assert cap.is_hub_pod(p, HUB_NS) is ours
    foreign = gpu_capacity(NODES, [p], GPU_TYPES, namespace=HUB_NS)["a100"]["foreign"]
    assert foreign == (0 if ours else 1)


def test_a_changed_component_label_is_followed():
    p = hub_pod("p", "a100-1")
    p["metadata"]["labels"]["component"] = "ci-singleuser"
    assert cap.is_hub_pod(p, HUB_NS, "ci-singleuser") and not cap.is_hub_pod(p, HUB_NS)


@pytest.mark.parametrize("value, expected", [("4", 4), (4, 4), ("0", 0), ("2k", 2000), ("1500m", 1), (None, 0),
                                             ("garbage", 0), ("-1", 0), (True, 0)])
def test_quantities(value, expected):
    assert cap.count(value) == expected


# --------------------------------------------------------------------------- free


def test_free_never_goes_below_zero_and_unknown_types_read_the_untyped_pool():
    capacity = {"": {"total": 4, "foreign": 1}, "a100": {"total": 8, "foreign": 6}}
    assert free(capacity, "a100", 1) == 1
    assert free(capacity, "a100", 3) == 0
    assert free(capacity, "", 0) == 3
    assert free(capacity, None, 2) == 1
    assert free(capacity, "not-configured", 0) == 3  # placed as an untyped launch (pod_settings)
    assert free({}, "a100", 0) == 0


# --------------------------------------------------------------------------- reading the cluster


class FakeResponse:
    def __init__(self, status, body):
        self.status, self.reason, self.body, self.released = status, {200: "OK", 403: "Forbidden"}[status], body, False

    async def read(self):
        return json.dumps(self.body).encode()

    def release(self):
        self.released = True


class FakeCoreV1Api:
    """The two list calls of kubernetes_asyncio's CoreV1Api, raw (_preload_content=False)."""

    def __init__(self, nodes, pods, status=200):
        self.nodes, self.pods, self.status, self.calls, self.responses = nodes, pods, status, [], []

    def _answer(self, items, kwargs):
        if self.status == 200:
            body = {"kind": "List", "items": items}
        else:
            body = {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403, "message":
                    'nodes is forbidden: User "system:serviceaccount:lab:aistudio-hub" cannot list resource "nodes"'}
        self.responses.append(FakeResponse(self.status, body))
        return self.responses[-1]

    async def list_node(self, **kwargs):
        self.calls.append(("list_node", kwargs))
        return self._answer(self.nodes, kwargs)

    async def list_pod_for_all_namespaces(self, **kwargs):
        self.calls.append(("list_pod_for_all_namespaces", kwargs))
        phase = kwargs.get("field_selector")
        pods = [p for p in self.pods if p["status"]["phase"] not in ("Succeeded", "Failed")] if phase else self.pods
        return self._answer(pods, kwargs)


async def test_fetch_capacity_lists_nodes_and_unfinished_pods_of_all_namespaces():
    api = FakeCoreV1Api(NODES, PODS)
    capacity = await fetch_capacity(api, GPU_TYPES, "nvidia.com/gpu", namespace=HUB_NS)
    assert capacity == gpu_capacity(NODES, PODS, GPU_TYPES, namespace=HUB_NS)
    assert [name for name, _ in api.calls] == ["list_node", "list_pod_for_all_namespaces"]
    assert api.calls[1][1]["field_selector"] == "status.phase!=Succeeded,status.phase!=Failed"
    assert all(kwargs["_preload_content"] is False and kwargs["_request_timeout"] == 10 for _, kwargs in api.calls)
    assert all(r.released for r in api.responses)


async def test_a_refused_list_says_capacity_is_unknown_and_names_the_chart_value():
    api = FakeCoreV1Api(NODES, PODS, status=403)
    with pytest.raises(CapacityUnknown, match="403 Forbidden: nodes is forbidden.*hub.gpuCapacity.clusterWide"):
        await fetch_capacity(api, GPU_TYPES)
    assert all(r.released for r in api.responses)


# --------------------------------------------------------------------------- the spawner


@pytest.fixture
def offline_kubeconfig(tmp_path, monkeypatch):
    """KubeSpawner loads a kubeconfig even with _mock=True; no cluster is contacted."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "offline",
        "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "offline", "user": {"token": "offline"}}],
        "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline", "namespace": HUB_NS}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(importlib.import_module("kubernetes_asyncio.config.kube_config"), "KUBE_CONFIG_DEFAULT_LOCATION",
                        str(path))
    return tmp_path


def studio_spawner(tmp_path, **kubernetes):
    from hub_config.spawners.kube import StudioKubeSpawner

    cfg = studio_config.load(None)
    cfg["usage"]["db_url"] = f"sqlite:///{tmp_path}/usage.sqlite"
    cfg["mode"] = "kubernetes"
    cfg["kubernetes"].update({"gpu_types": GPU_TYPES, "namespace": HUB_NS, **kubernetes})
    studio_config.validate(cfg)
    user = SimpleNamespace(name="alice", id=7, url="/user/alice/", groups=[], escaped_name="alice")
    return StudioKubeSpawner(_mock=True, user=user, config=Config(configurer.traitlets_config(cfg)))


async def test_the_spawner_reads_capacity_leaving_out_the_pods_it_makes(offline_kubeconfig):
    spawner = studio_spawner(offline_kubeconfig)
    spawner.tolerations = [GPU_TOLERATION]  # a launch's values must not leak into the reading
    real = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    real["metadata"]["namespace"] = spawner.namespace
    real["spec"]["nodeName"] = "a100-1"
    real["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    real["status"] = {"phase": "Running"}
    assert cap.is_hub_pod(real, HUB_NS), real["metadata"]["labels"]
    spawner.api = FakeCoreV1Api(NODES, [*PODS, real])
    capacity = await spawner.gpu_capacity()
    assert totals(capacity) == {"a100": (12, 3), "h100-mig": (14, 3), "": (1, 1)}
