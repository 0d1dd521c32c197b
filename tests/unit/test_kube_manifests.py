"""Kubernetes mode offline: the real KubeSpawner builds each profile's pod, validated
against the Kubernetes schemas of 1.30 and of the newest version kubernetes-validate ships."""

import importlib
import json
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest
import yaml
from kubernetes_asyncio.client import ApiClient
from tornado import web
from traitlets.config import Config

from hub_config import config as studio_config
from hub_config import configurer
from hub_config.profiles import load_profiles

REPO = Path(__file__).resolve().parents[2]
VERSIONS = ["1.30", kubernetes_validate.latest_version()]
GPU_TYPES = {
    "a100": {
        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "node_affinity_required": [
            {"matchExpressions": [{"key": "aistudio.io/gpu-pool", "operator": "In", "values": ["training"]}]}
        ],
    }
}
GiB = 1024**3
USAGE_DIR = None  # set by the module fixture


@pytest.fixture(scope="module", autouse=True)
def dummy_kubeconfig(tmp_path_factory):
    """KubeSpawner loads a kubeconfig even with _mock=True; no cluster is contacted."""
    global USAGE_DIR
    USAGE_DIR = tmp_path_factory.mktemp("usage")
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "offline",
        "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "offline", "user": {"token": "offline"}}],
        "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline", "namespace": "lab"}}],
    }))
    patch = pytest.MonkeyPatch()
    patch.setenv("KUBECONFIG", str(path))
    # kubernetes_asyncio read $KUBECONFIG when it was imported
    patch.setattr(importlib.import_module("kubernetes_asyncio.config.kube_config"), "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    yield
    patch.undo()


def kube_config(**kubernetes) -> Config:
    cfg = studio_config.load(None)
    cfg["usage"]["db_url"] = f"sqlite:///{USAGE_DIR}/usage.sqlite"
    cfg["mode"] = "kubernetes"
    cfg["profiles_dir"] = str(REPO / "spawner_profiles")
    cfg["kubernetes"].update({"gpu_types": GPU_TYPES, "namespace": "lab", **kubernetes})
    studio_config.validate(cfg)
    return Config(configurer.traitlets_config(cfg))


def make_spawner(name="alice", groups=("gpu-residents",), **kubernetes):
    from hub_config.spawners.kube import StudioKubeSpawner

    user = SimpleNamespace(
        name=name, id=7, url=f"/user/{name}/", groups=[SimpleNamespace(name=g) for g in groups], escaped_name=name
    )
    return StudioKubeSpawner(_mock=True, user=user, config=kube_config(**kubernetes))


def request_with(options):
    """What JupyterHub's API handler holds when a member POSTs these user_options."""
    body = json.dumps({"user_options": options}).encode()
    return SimpleNamespace(request=SimpleNamespace(method="POST", body_arguments={}, body=body))


async def manifest(spawner, options) -> dict:
    spawner.user_options = dict(options)
    spawner.handler = request_with(options)
    await spawner.load_user_options()
    pod = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    spawner.end_usage()  # no pod will run: close its usage record, as a stop would
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    return pod


def validate(obj):
    for version in VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


def every_launch():
    """Every shipped profile with every value of each of its options."""
    for profile in load_profiles(REPO / "spawner_profiles").profiles:
        yield pytest.param({"profile": profile.slug}, id=profile.slug)
        for name, option in profile.options.items():
            for value in option.values:
                label = f"{profile.slug}-{name}-{option.format(value)}"
                yield pytest.param({"profile": profile.slug, name: option.format(value)}, id=label)


@pytest.mark.parametrize("options", list(every_launch()))
async def test_every_profile_and_option_builds_a_valid_hardened_pod(options):
    spawner = make_spawner()
    pod = await manifest(spawner, options)
    validate(pod)
    launch = spawner.launch
    res = launch.resources
    container = pod["spec"]["containers"][0]
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert float(limits["cpu"]) == res.cpu and float(requests["cpu"]) == res.cpu
    assert int(limits["memory"]) == res.memory and int(requests["memory"]) == res.memory
    assert container["image"] == spawner.environments[launch.environment]["image"]  # the chosen environment's
    assert container["imagePullPolicy"] == "IfNotPresent"
    labels = pod["metadata"]["labels"]
    assert labels["aistudio.io/profile"] == launch.profile.slug and labels["hub.jupyter.org/username"] == "alice"
    assert labels["aistudio.io/gpus"] == str(res.gpus)
    if res.gpus:
        assert limits["nvidia.com/gpu"] == str(res.gpus) == requests["nvidia.com/gpu"]
        assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"]["tolerations"]
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms[0]["matchExpressions"][0]["key"] == "aistudio.io/gpu-pool"
        assert labels["aistudio.io/gpu-type"] == "a100"
    else:
        assert "nvidia.com/gpu" not in limits and not pod["spec"].get("nodeSelector")
        assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"} in container["env"]
    # /dev/shm: memory-backed, sized by the profile
    shm = next(v for v in pod["spec"]["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": launch.resources.as_dict()["shm"]}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    # home: the user's own claim
    home = next(v for v in pod["spec"]["volumes"] if v["name"] == "home")
    assert home["persistentVolumeClaim"]["claimName"] == "home-alice"
    assert {"name": "home", "mountPath": "/home/jovyan"} in container["volumeMounts"]
    # hardened
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 1000
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["securityContext"]["fsGroup"] == 100
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AISTUDIO_PROFILE"] == launch.profile.slug and env["MEM_LIMIT"] == str(res.memory)


async def test_home_claim_is_valid_and_sized():
    spawner = make_spawner(home={"size": "20Gi", "storage_class": "fast-ssd", "mount_path": "/home/jovyan"})
    await manifest(spawner, {"profile": "cpu-small"})
    pvc = ApiClient().sanitize_for_serialization(spawner.get_pvc_manifest())
    pvc.setdefault("apiVersion", "v1")
    pvc.setdefault("kind", "PersistentVolumeClaim")
    validate(pvc)
    assert pvc["metadata"]["name"] == "home-alice"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert pvc["spec"]["storageClassName"] == "fast-ssd"


async def test_no_leak_from_gpu_launch_into_next_cpu_launch():
    spawner = make_spawner()
    gpu = await manifest(spawner, {"profile": "gpu-multi", "gpus": "4", "memory": "256Gi"})
    assert gpu["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    cpu = await manifest(spawner, {"profile": "cpu-small", "memory": "4Gi"})
    container = cpu["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert "nvidia.com/gpu" not in container["resources"].get("requests", {})
    assert not cpu["spec"].get("nodeSelector") and not cpu["spec"].get("tolerations")
    assert "nodeAffinity" not in (cpu["spec"].get("affinity") or {})
    assert int(container["resources"]["limits"]["memory"]) == 4 * GiB
    assert cpu["metadata"]["labels"]["aistudio.io/gpus"] == "0" and "aistudio.io/gpu-type" not in cpu["metadata"]["labels"]
    assert [v["name"] for v in cpu["spec"]["volumes"]].count("dshm") == 1


async def test_gpu_type_may_name_its_own_resource():
    spawner = make_spawner(gpu_types={"a100": {"resource": "nvidia.com/mig-3g.40gb",
                                           "node_selector": {"nvidia.com/mig.config": "all-3g.40gb"}}})
    pod = await manifest(spawner, {"profile": "gpu-1"})
    validate(pod)
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/mig-3g.40gb"] == "1" and "nvidia.com/gpu" not in limits


@pytest.mark.parametrize(
    "user, groups, options, status",
    [
        ("bob", ["students"], {"profile": "gpu-multi"}, 403),
        ("bob", ["students"], {"profile": "cpu-small", "memory": "16Gi"}, 403),
        ("alice", ["gpu-residents"], {"profile": "gpu-multi", "gpus": "5"}, 400),
    ],
)
async def test_rights_are_checked_before_any_pod(user, groups, options, status):
    spawner = make_spawner(user, groups)
    with pytest.raises(web.HTTPError) as info:
        await manifest(spawner, options)
    assert info.value.status_code == status


async def test_pod_past_max_runtime_is_stopped(monkeypatch):
    from datetime import datetime, timedelta

    from kubespawner import KubeSpawner

    spawner = make_spawner()
    await manifest(spawner, {"profile": "gpu-1"})
    assert spawner.max_runtime == 8 * 3600
    stopped = []

    async def running(self):
        return None

    async def stop(self, now=False):
        stopped.append(now)

    monkeypatch.setattr(KubeSpawner, "poll", running)
    monkeypatch.setattr(KubeSpawner, "stop", stop)
    started = {"at": datetime.utcnow() - timedelta(hours=7)}
    monkeypatch.setattr(type(spawner), "started_at", property(lambda self: started["at"]))
    assert await spawner.poll() is None and stopped == []
    started["at"] = datetime.utcnow() - timedelta(hours=9)
    assert await spawner.poll() == 0 and stopped == [False]


async def test_quotas_apply_unchanged_on_kubernetes():
    first = make_spawner("bob", ["students"])
    first.user_options = {"profile": "gpu-1"}
    first.handler = request_with(first.user_options)
    await first.load_user_options()  # bob's one server (students: 1 per member), record left open
    try:
        second = make_spawner("bob", ["students"])
        with pytest.raises(web.HTTPError) as info:
            await manifest(second, {"profile": "cpu-small"})
        assert info.value.status_code == 429
        assert "You already run 1 of your 1 servers" in info.value.log_message
    finally:
        first.end_usage()
    assert (await manifest(make_spawner("bob", ["students"]), {"profile": "cpu-small"}))["kind"] == "Pod"


def test_an_unmountable_dataset_is_named_from_the_pods_events():
    from hub_config.datasets.models import MountSpec
    from hub_config.spawners.kube import unmountable_dataset

    mounts = [MountSpec("icu", "nfs", None, server="nfs.lab", source_path="/export/icu"),
              MountSpec("xray", "pvc", None, claim="imaging")]
    started = [{"reason": "Scheduled", "message": "Successfully assigned aistudio/jupyter-a to node-1"}]
    assert unmountable_dataset(started, mounts) is None
    nfs = {"reason": "FailedMount", "message": 'MountVolume.SetUp failed for volume "dataset-icu" : mount failed: '
                                               "exit status 32\nOutput: mount.nfs: access denied by server"}
    assert unmountable_dataset(started + [nfs], mounts) == "Dataset icu cannot be mounted: mount.nfs: access denied by server"
    home = {"reason": "FailedMount", "message": 'MountVolume.SetUp failed for volume "home" : timeout'}
    assert unmountable_dataset([home], mounts) is None  # not a dataset: KubeSpawner's own timeout applies
    claim = {"reason": "FailedScheduling", "message": '0/3 nodes are available: persistentvolumeclaim "imaging" not found.'}
    assert unmountable_dataset([claim], mounts) == "Dataset xray cannot be mounted: its volume claim imaging does not exist"
