"""The hub's reading of the GPU capacity (hub_config/spawners/capacity.py) against the
simulated cluster, through a real kubernetes_asyncio CoreV1Api configured from the
cluster's kubeconfig as KubeSpawner's is: the GPU node's allocatable GPUs, less what
pods of others hold, with the hub's own servers and finished pods left out."""

from __future__ import annotations

from test_simulated_cluster import GPU_TOLERATION, core, create, gpu_pod, ns, phase, wait_until  # noqa: F401 (fixtures)

from hub_config.spawners.capacity import fetch_capacity, free

GPU_TYPES = {"a100": {"node_selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}, "tolerations": [GPU_TOLERATION]}}
SERVER_LABELS = {"component": "singleuser-server", "app.kubernetes.io/part-of": "aistudio", "app": "jupyterhub",
                 "hub.jupyter.org/username": "alice"}  # as StudioKubeSpawner labels a member's pod


def on_gpu_node(cluster, ns, name, gpus, labels=None, command=None):
    obj = gpu_pod(name, gpus)
    obj["metadata"]["labels"] = labels or {"job-name": name}
    if command:
        obj["spec"]["containers"][0]["command"] = command
    create(cluster, ns, "pods", obj)


async def test_capacity_is_the_gpu_nodes_allocatable_less_foreign_pods(cluster, ns, core):  # noqa: F811
    before = (await fetch_capacity(core, GPU_TYPES, namespace=ns))["a100"]["foreign"]  # other tests' pods, if any

    on_gpu_node(cluster, ns, "finished", 1, command=["python3", "-c", "pass"])
    wait_until(lambda: phase(cluster, ns, "finished", "Succeeded"), 20, "the finished GPU pod")
    on_gpu_node(cluster, ns, "training", 2)  # someone else's job
    on_gpu_node(cluster, ns, "jupyter-alice", 1, labels=SERVER_LABELS)  # the hub's own server
    for name in ("training", "jupyter-alice"):
        pod = wait_until(lambda: phase(cluster, ns, name, "Running"), 20, f"{name} running")
        assert pod["spec"]["nodeName"] == "sim-gpu-1"

    capacity = await fetch_capacity(core, GPU_TYPES, "nvidia.com/gpu", namespace=ns)
    a100 = capacity["a100"]
    assert (a100["total"], a100["foreign"]) == (4, before + 2)
    assert a100["nodes"] == {"sim-gpu-1": {"total": 4, "foreign": before + 2}}
    assert free(capacity, "a100", held_by_hub=1) == 4 - before - 2 - 1
    # untyped GPUs tolerate no GPU taint: the tainted GPU node is not theirs, the CPU node has none
    assert (capacity[""]["total"], capacity[""]["foreign"]) == (0, 0)
    assert set(capacity[""]["nodes"]) == {"sim-cpu-1"}

    # seen from another namespace's hub, alice's server is someone else's
    elsewhere = await fetch_capacity(core, GPU_TYPES, namespace="another-studio")
    assert elsewhere["a100"]["foreign"] == before + 3
