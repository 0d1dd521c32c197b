"""The simulated cluster behaves as a real Kubernetes API server and kubelet do, for
what KubeSpawner and the hub rely on: refusals naming the field, errors as Status
objects, label and field selectors, watches as KubeSpawner's reflector opens them,
scheduling on taints and GPUs, and pods' containers run with their volumes, users,
environment, logs, exit codes and termination.

Each test works in a namespace of its own (sim-tests-...), deleted afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from functools import partial

import pytest
import requests
from kubernetes_asyncio import client, config, watch

IMAGE = "quay.io/jupyter/base-notebook:2025-01-06"  # any image runs this machine's root file system
NEVER = {"sim-tests/never": "true"}  # a node selector no node matches: the pod stays Pending, runs nothing
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def wait_until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def ns(cluster):
    name = f"sim-tests-{uuid.uuid4().hex[:8]}"
    r = cluster.api("POST", "/api/v1/namespaces", json={"metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name
    assert cluster.api("DELETE", f"/api/v1/namespaces/{name}").status_code == 200
    # the namespace's pods are stopped (running ones after SIGTERM): wait for them, so no
    # GPU or process of this test outlives it
    wait_until(lambda: not cluster.api("GET", "/api/v1/pods", params={"fieldSelector": f"metadata.namespace={name}"})
               .json()["items"], 40, f"the pods of {name} gone")


def pod(name, command=None, labels=None, restart="Never", **spec):
    container = {"name": "main", "image": IMAGE, "command": command or ["sleep", "60"]}
    container.update(spec.pop("container", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"restartPolicy": restart, "containers": [container], **spec}}


def claim(name, **spec):
    return {"metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}}


def create(cluster, ns, kind, obj, status=201, **params):
    r = cluster.api("POST", f"/api/v1/namespaces/{ns}/{kind}", json=obj, params=params)
    assert r.status_code == status, r.text
    return r.json()


def get_pod(cluster, ns, name):
    r = cluster.api("GET", f"/api/v1/namespaces/{ns}/pods/{name}")
    return r.json() if r.status_code == 200 else None


def events(cluster, ns, name, reason):
    r = cluster.api("GET", f"/api/v1/namespaces/{ns}/events", params={"fieldSelector": f"involvedObject.name={name}"})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"] if e["reason"] == reason]


def phase(cluster, ns, name, *phases):
    p = get_pod(cluster, ns, name)
    return p if p and p["status"]["phase"] in phases else None


def names(items):
    return sorted(o["metadata"]["name"] for o in items)


# --------------------------------------------------------------------------- refusals


def _unknown_field(p):
    p["spec"]["containers"][0]["imagePullSecret"] = "regcred"


def _sometimes(p):
    p["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"


def _mount_without_volume(p):
    p["spec"]["containers"][0]["volumeMounts"] = [{"name": "home", "mountPath": "/home/jovyan"}]


def _bad_label(p):
    p["metadata"]["labels"] = {"hub.jupyter.org/username": "alice smith!"}


def _bad_name(p):
    p["metadata"]["name"] = "Bad_Name"


def _requests_above_limits(p):
    p["spec"]["containers"][0]["resources"] = {"requests": {"memory": "8Gi"}, "limits": {"memory": "4Gi"}}


def _gpu_overcommit(p):
    p["spec"]["containers"][0]["resources"] = {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}


@pytest.mark.parametrize("change, field, words", [
    (_unknown_field, "spec.containers[0].imagePullSecret", "unknown field"),
    (_sometimes, "spec.containers[0].imagePullPolicy", 'Unsupported value: "Sometimes"'),
    (_mount_without_volume, "spec.containers[0].volumeMounts[0].name", 'Not found: "home"'),
    (_bad_label, "metadata.labels", '"alice smith!"'),
    (_bad_name, "metadata.name", '"Bad_Name"'),
    (_requests_above_limits, "spec.containers[0].resources.requests", "less than or equal to memory limit"),
    (_gpu_overcommit, "spec.containers[0].resources.requests", "nvidia.com/gpu"),
], ids=["unknown-field", "pull-policy", "mount-without-volume", "label-value", "name", "requests-above-limits",
        "gpu-request-not-limit"])
def test_an_invalid_pod_is_refused_naming_the_field(cluster, ns, change, field, words):
    obj = pod("refused", nodeSelector=NEVER)
    change(obj)
    r = cluster.api("POST", f"/api/v1/namespaces/{ns}/pods", json=obj)
    status = r.json()
    assert (r.status_code, status["kind"], status["reason"], status["code"]) == (422, "Status", "Invalid", 422), r.text
    assert f"{field}: " in status["message"] and words in status["message"], status["message"]
    assert field in [c["field"] for c in status["details"]["causes"]], status
    assert cluster.api("GET", f"/api/v1/namespaces/{ns}/pods").json()["items"] == []  # nothing stored


@pytest.mark.parametrize("spec, field", [
    ({"resources": {"requests": {"storage": "1Gi"}}}, "spec.accessModes"),
    ({"accessModes": ["ReadWriteOnce"]}, "spec.resources[storage]"),
])
def test_an_incomplete_claim_is_refused_naming_the_field(cluster, ns, spec, field):
    r = cluster.api("POST", f"/api/v1/namespaces/{ns}/persistentvolumeclaims",
                    json={"metadata": {"name": "refused"}, "spec": spec})
    assert (r.status_code, r.json()["reason"]) == (422, "Invalid"), r.text
    assert field in r.json()["message"] and [c["field"] for c in r.json()["details"]["causes"]] == [field]


def test_valid_objects_are_accepted_and_a_dry_run_stores_nothing(cluster, ns):
    dry = create(cluster, ns, "pods", pod("dry", nodeSelector=NEVER), dryRun="All")
    assert dry["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"  # defaulted, as it would be stored
    assert "resourceVersion" not in dry["metadata"]
    assert cluster.api("GET", f"/api/v1/namespaces/{ns}/pods/dry").status_code == 404
    bad = pod("dry-bad", nodeSelector=NEVER)
    _sometimes(bad)
    assert cluster.api("POST", f"/api/v1/namespaces/{ns}/pods", json=bad, params={"dryRun": "All"}).status_code == 422
    create(cluster, ns, "persistentvolumeclaims", claim("dry-claim"), dryRun="All")

    made = create(cluster, ns, "pods", pod("kept", nodeSelector=NEVER))
    assert made["metadata"]["namespace"] == ns and made["metadata"]["uid"] and int(made["metadata"]["resourceVersion"])
    assert made["status"]["phase"] == "Pending" and made["spec"]["restartPolicy"] == "Never"
    assert made["spec"]["terminationGracePeriodSeconds"] == 30
    assert get_pod(cluster, ns, "kept")["metadata"]["uid"] == made["metadata"]["uid"]
    assert create(cluster, ns, "persistentvolumeclaims", claim("kept-claim"))["spec"]["volumeMode"] == "Filesystem"
    listed = cluster.api("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims").json()["items"]
    assert names(listed) == ["kept-claim"]  # the dry run's claim was never stored (nor provisioned)
    assert not cluster.claim_dir(ns, "dry-claim").exists()


def test_errors_are_status_objects_with_the_right_codes(cluster, ns):
    anonymous = requests.get(f"{cluster.url}/api/v1/namespaces/{ns}/pods", timeout=10)
    assert (anonymous.status_code, anonymous.json()["reason"]) == (401, "Unauthorized")
    wrong = cluster.api("GET", f"/api/v1/namespaces/{ns}/pods", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401

    missing = cluster.api("GET", f"/api/v1/namespaces/{ns}/pods/nobody")
    assert (missing.status_code, missing.json()["reason"]) == (404, "NotFound")
    assert missing.json()["message"] == 'pods "nobody" not found' and missing.json()["details"]["name"] == "nobody"
    no_ns = cluster.api("GET", "/api/v1/namespaces/sim-tests-no-such-namespace")
    assert (no_ns.status_code, no_ns.json()["reason"]) == (404, "NotFound")
    into_no_ns = cluster.api("POST", "/api/v1/namespaces/sim-tests-no-such-namespace/pods", json=pod("p"))
    assert into_no_ns.status_code == 404 and "sim-tests-no-such-namespace" in into_no_ns.json()["message"]
    assert cluster.api("DELETE", f"/api/v1/namespaces/{ns}/pods/nobody").status_code == 404

    first = create(cluster, ns, "pods", pod("twice", nodeSelector=NEVER))
    again = cluster.api("POST", f"/api/v1/namespaces/{ns}/pods", json=pod("twice", nodeSelector=NEVER))
    assert (again.status_code, again.json()["reason"]) == (409, "AlreadyExists"), again.text
    assert get_pod(cluster, ns, "twice")["metadata"]["uid"] == first["metadata"]["uid"]  # the first one stays


def test_a_pods_spec_is_immutable_but_its_labels_are_not(cluster, ns):
    made = create(cluster, ns, "pods", pod("frozen", labels={"app": "lab"}, nodeSelector=NEVER))
    wait_until(lambda: events(cluster, ns, "frozen", "FailedScheduling"), 10, "the scheduler's verdict")
    env_patch = [{"op": "add", "path": "/spec/containers/0/env", "value": [{"name": "EXTRA", "value": "1"}]}]
    r = cluster.api("PATCH", f"/api/v1/namespaces/{ns}/pods/frozen", data=json.dumps(env_patch),
                    headers={"Content-Type": "application/json-patch+json"})
    assert (r.status_code, r.json()["reason"]) == (422, "Invalid"), r.text
    assert "Forbidden" in r.json()["message"] and r.json()["details"]["causes"][0]["field"] == "spec"
    assert "env" not in get_pod(cluster, ns, "frozen")["spec"]["containers"][0]

    before = get_pod(cluster, ns, "frozen")
    r = cluster.api("PATCH", f"/api/v1/namespaces/{ns}/pods/frozen",
                    data=json.dumps({"metadata": {"labels": {"app": None, "stage": "moved"}}}),
                    headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    after = get_pod(cluster, ns, "frozen")
    assert after["metadata"]["labels"] == {"stage": "moved"}  # null removes a key (RFC 7386)
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert after["metadata"]["uid"] == made["metadata"]["uid"] and after["status"] == before["status"]

    stale = {**after, "metadata": {**after["metadata"], "resourceVersion": before["metadata"]["resourceVersion"]}}
    r = cluster.api("PUT", f"/api/v1/namespaces/{ns}/pods/frozen", json=stale)
    assert (r.status_code, r.json()["reason"]) == (409, "Conflict"), r.text


# --------------------------------------------------------------------------- lists and selectors


def test_label_selectors(cluster, ns):
    for name, labels in {"a": {"app": "lab", "tier": "gpu"}, "b": {"app": "lab", "tier": "cpu"},
                         "c": {"app": "hub"}, "d": {}}.items():
        create(cluster, ns, "pods", pod(name, labels=labels, nodeSelector=NEVER))

    def select(selector):
        r = cluster.api("GET", f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": selector})
        assert r.status_code == 200, r.text
        return names(r.json()["items"])

    assert select("app=lab") == select("app==lab") == ["a", "b"]
    assert select("app!=lab") == ["c", "d"]  # no such label counts as not equal
    assert select("tier in (gpu, cpu)") == ["a", "b"]
    assert select("tier notin (gpu)") == ["b", "c", "d"]
    assert select("tier") == ["a", "b"]
    assert select("!tier") == ["c", "d"]
    assert select("app=lab,tier!=gpu") == ["b"]
    assert select("app in (hub,lab),!tier") == ["c"]
    assert select("app=nothing") == []
    assert select("") == ["a", "b", "c", "d"]
    bad = cluster.api("GET", f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": "tier in gpu"})
    assert (bad.status_code, bad.json()["reason"]) == (400, "BadRequest")


def test_field_selectors(cluster, ns):
    create(cluster, ns, "pods", pod("waiting", nodeSelector=NEVER))
    create(cluster, ns, "pods", pod("done", command=["python3", "-c", "pass"]))
    create(cluster, ns, "persistentvolumeclaims", claim("no-class", storageClassName="sim-tests-missing"))
    wait_until(lambda: phase(cluster, ns, "done", "Succeeded"), 20, "the pod done")
    wait_until(lambda: events(cluster, ns, "no-class", "ProvisioningFailed"), 10, "the claim's event")

    def select(kind, selector):
        r = cluster.api("GET", f"/api/v1/namespaces/{ns}/{kind}", params={"fieldSelector": selector})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    assert names(select("pods", "metadata.name=done")) == ["done"]
    assert names(select("pods", "status.phase=Succeeded")) == ["done"]
    assert names(select("pods", "status.phase=Pending")) == ["waiting"]
    assert names(select("pods", "status.phase!=Succeeded")) == ["waiting"]
    assert names(select("pods", "spec.nodeName=sim-cpu-1,status.phase=Succeeded")) == ["done"]
    on_pods = select("events", "involvedObject.kind=Pod")
    assert on_pods and {e["involvedObject"]["name"] for e in on_pods} == {"waiting", "done"}
    on_claims = select("events", "involvedObject.kind=PersistentVolumeClaim")
    assert [(e["involvedObject"]["name"], e["reason"]) for e in on_claims] == [("no-class", "ProvisioningFailed")]
    everywhere = cluster.api("GET", "/api/v1/pods", params={"fieldSelector": f"metadata.namespace={ns}"}).json()
    assert names(everywhere["items"]) == ["done", "waiting"]
    for kind, selector in (("pods", "spec.containers=main"), ("pods", "metadata.labels=x"), ("events", "message=x")):
        r = cluster.api("GET", f"/api/v1/namespaces/{ns}/{kind}", params={"fieldSelector": selector})
        assert (r.status_code, r.json()["reason"]) == (400, "BadRequest"), (selector, r.text)
        assert "field label not supported" in r.json()["message"]


def test_nodes_and_the_unfinished_pods_of_every_namespace_are_listed(cluster, ns):
    """What the hub reads for the GPU capacity (hub_config/spawners/capacity.py)."""
    create(cluster, ns, "pods", pod("waiting", nodeSelector=NEVER))
    create(cluster, ns, "pods", pod("done", command=["python3", "-c", "pass"]))
    create(cluster, ns, "pods", pod("failed", command=["python3", "-c", "raise SystemExit(3)"]))
    create(cluster, ns, "pods", pod("running", command=["sleep", "60"]))
    wait_until(lambda: phase(cluster, ns, "done", "Succeeded") and phase(cluster, ns, "failed", "Failed")
               and phase(cluster, ns, "running", "Running"), 20, "the pods done, failed and running")
    r = cluster.api("GET", "/api/v1/pods", params={"fieldSelector": "status.phase!=Succeeded,status.phase!=Failed"})
    assert r.status_code == 200 and r.json()["kind"] == "PodList", r.text
    assert names(p for p in r.json()["items"] if p["metadata"]["namespace"] == ns) == ["running", "waiting"]
    r = cluster.api("GET", "/api/v1/nodes")
    assert r.status_code == 200 and r.json()["kind"] == "NodeList", r.text
    nodes = {n["metadata"]["name"]: n for n in r.json()["items"]}
    assert set(nodes) == {"sim-cpu-1", "sim-gpu-1"}
    gpu = nodes["sim-gpu-1"]
    assert gpu["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert gpu["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert {"type": "Ready", "status": "True"}.items() <= gpu["status"]["conditions"][0].items()
    assert "nvidia.com/gpu" not in nodes["sim-cpu-1"]["status"]["allocatable"]


# --------------------------------------------------------------------------- watches, as KubeSpawner's reflector


@pytest.fixture
async def core(cluster):
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api_client:
        yield client.CoreV1Api(api_client)


async def list_version(core, ns, selector) -> tuple[list[str], str]:
    """The reflector's list: raw JSON (_preload_content=False), then its resourceVersion."""
    raw = await core.list_namespaced_pod(namespace=ns, label_selector=selector, _preload_content=False)
    assert raw.ok
    data = json.loads(await raw.read())
    return names(data["items"]), data["metadata"]["resourceVersion"]


async def collect(core, ns, selector, resource_version, sink: list, timeout_seconds=20, list_method="list_namespaced_pod",
                  **selectors):
    """The reflector's watch: Watch().stream on the list method with _preload_content=False."""
    w = watch.Watch()
    method = partial(getattr(core, list_method), _preload_content=False)
    async with w.stream(method, namespace=ns, label_selector=selector, resource_version=resource_version,
                        timeout_seconds=timeout_seconds, **selectors) as stream:
        async for event in stream:
            sink.append((event["type"], event["raw_object"]["metadata"]["name"], event["raw_object"]))


async def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def api(cluster, *args, **kwargs):
    """The blocking JSON API, off the event loop the watch reads on."""
    return asyncio.to_thread(cluster.api, *args, **kwargs)


def label_patch(labels):
    return {"data": json.dumps({"metadata": {"labels": labels}}), "headers": {"Content-Type": "application/merge-patch+json"}}


async def test_a_watch_from_the_lists_version_sees_changes_of_matching_pods_only(cluster, ns, core):
    create(cluster, ns, "pods", pod("listed", labels={"app": "watched"}, nodeSelector=NEVER))
    wait_until(lambda: events(cluster, ns, "listed", "FailedScheduling"), 10, "the scheduler's verdict")
    listed, version = await list_version(core, ns, "app=watched")
    assert listed == ["listed"]
    seen = []
    task = asyncio.create_task(collect(core, ns, "app=watched", version, seen))
    try:
        await asyncio.sleep(0.3)  # the watch is open
        await api(cluster, "POST", f"/api/v1/namespaces/{ns}/pods", json=pod("other", labels={"app": "other"},
                                                                                 nodeSelector=NEVER))
        await api(cluster, "POST", f"/api/v1/namespaces/{ns}/pods", json=pod("new", labels={"app": "watched"},
                                                                                 nodeSelector=NEVER))
        await api(cluster, "PATCH", f"/api/v1/namespaces/{ns}/pods/new", **label_patch({"note": "changed"}))
        await api(cluster, "DELETE", f"/api/v1/namespaces/{ns}/pods/other")
        await api(cluster, "DELETE", f"/api/v1/namespaces/{ns}/pods/new")
        await wait_for(lambda: ("DELETED", "new") in [(t, n) for t, n, _ in seen], what="the DELETED event")
        await asyncio.sleep(0.3)  # nothing else arrives
    finally:
        task.cancel()
    assert {n for _, n, _ in seen} == {"new"}, seen  # nothing of "other"; "listed" did not change since the list
    types = [t for t, _, _ in seen]
    assert types[0] == "ADDED" and types[-1] == "DELETED" and set(types[1:-1]) == {"MODIFIED"}, types
    assert any(o["metadata"]["labels"].get("note") == "changed" for t, _, o in seen if t == "MODIFIED")
    versions = [int(o["metadata"]["resourceVersion"]) for _, _, o in seen]
    assert versions == sorted(versions) and versions[0] > int(version)


async def test_a_watch_resumed_from_an_older_version_replays_what_happened_since(cluster, ns, core):
    _, version = await list_version(core, ns, "app=replayed")
    create(cluster, ns, "pods", pod("gone", labels={"app": "replayed"}, nodeSelector=NEVER))
    create(cluster, ns, "pods", pod("stays", labels={"app": "replayed"}, nodeSelector=NEVER))
    cluster.api("PATCH", f"/api/v1/namespaces/{ns}/pods/stays", **label_patch({"note": "changed"}))
    assert cluster.api("DELETE", f"/api/v1/namespaces/{ns}/pods/gone").status_code == 200
    _, now = await list_version(core, ns, "app=replayed")

    replayed = []
    await asyncio.wait_for(collect(core, ns, "app=replayed", version, replayed, timeout_seconds=1), 10)
    gone = [t for t, n, _ in replayed if n == "gone"]
    stays = [t for t, n, o in replayed if n == "stays"]
    assert gone[0] == "ADDED" and gone[-1] == "DELETED", replayed
    assert stays[0] == "ADDED" and stays[-1] == "MODIFIED" and "DELETED" not in stays, replayed
    assert [o for t, n, o in replayed if n == "stays"][-1]["metadata"]["labels"]["note"] == "changed"

    nothing = []  # from the current version: nothing happened since
    await asyncio.wait_for(collect(core, ns, "app=replayed", now, nothing, timeout_seconds=1), 10)
    assert nothing == []


async def test_a_pod_that_stops_matching_is_deleted_for_the_watch(cluster, ns, core):
    create(cluster, ns, "pods", pod("mover", labels={"app": "watched"}, nodeSelector=NEVER))
    wait_until(lambda: events(cluster, ns, "mover", "FailedScheduling"), 10, "the scheduler's verdict")
    listed, version = await list_version(core, ns, "app=watched")
    assert listed == ["mover"]
    seen = []
    task = asyncio.create_task(collect(core, ns, "app=watched", version, seen))
    try:
        await asyncio.sleep(0.3)
        await api(cluster, "PATCH", f"/api/v1/namespaces/{ns}/pods/mover", **label_patch({"app": "elsewhere"}))
        await wait_for(lambda: len(seen) >= 1, what="the first event")
        await api(cluster, "PATCH", f"/api/v1/namespaces/{ns}/pods/mover", **label_patch({"note": "unseen"}))
        await api(cluster, "PATCH", f"/api/v1/namespaces/{ns}/pods/mover", **label_patch({"app": "watched"}))
        await wait_for(lambda: len(seen) >= 2, what="the second event")
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
    assert [(t, n) for t, n, _ in seen] == [("DELETED", "mover"), ("ADDED", "mover")], seen
    assert seen[0][2]["metadata"]["labels"]["app"] == "elsewhere"  # the object as it is now
    assert seen[1][2]["metadata"]["labels"] == {"app": "watched", "note": "unseen"}


async def test_an_event_watch_with_a_field_selector_as_kubespawners(cluster, ns, core):
    raw = await core.list_namespaced_event(namespace=ns, field_selector="involvedObject.kind=Pod", _preload_content=False)
    version = json.loads(await raw.read())["metadata"]["resourceVersion"]
    seen = []
    task = asyncio.create_task(collect(core, ns, None, version, seen, list_method="list_namespaced_event",
                                       field_selector="involvedObject.kind=Pod"))
    try:
        await asyncio.sleep(0.3)
        await api(cluster, "POST", f"/api/v1/namespaces/{ns}/persistentvolumeclaims",
                  json=claim("no-class", storageClassName="sim-tests-missing"))
        await api(cluster, "POST", f"/api/v1/namespaces/{ns}/pods", json=pod("unplaced", nodeSelector=NEVER))
        await wait_for(lambda: seen, what="the pod's event")
        await asyncio.sleep(0.5)
    finally:
        task.cancel()
    assert [(t, o["involvedObject"]["name"], o["reason"]) for t, _, o in seen] == [
        ("ADDED", "unplaced", "FailedScheduling")], seen
    assert events(cluster, ns, "no-class", "ProvisioningFailed")  # there, but not for this watch


# --------------------------------------------------------------------------- scheduler


def gpu_pod(name, gpus, tolerate=True):
    return pod(name, tolerations=[GPU_TOLERATION] if tolerate else [],
               container={"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}})


def failed_scheduling(cluster, ns, name):
    found = events(cluster, ns, name, "FailedScheduling")
    return found[-1]["message"] if found else None


def test_a_gpu_pod_without_the_toleration_stays_pending(cluster, ns):
    made = create(cluster, ns, "pods", gpu_pod("untolerated", 1, tolerate=False))
    assert made["spec"]["containers"][0]["resources"]["requests"] == {"nvidia.com/gpu": "1"}  # defaulted from limits
    message = wait_until(lambda: failed_scheduling(cluster, ns, "untolerated"), 10, "FailedScheduling")
    assert message.startswith("0/2 nodes are available:"), message
    assert "1 node(s) had untolerated taint {nvidia.com/gpu: present}" in message  # the GPU node
    assert "1 Insufficient nvidia.com/gpu" in message  # the CPU node
    p = get_pod(cluster, ns, "untolerated")
    assert p["status"]["phase"] == "Pending" and "nodeName" not in p["spec"]
    [scheduled] = [c for c in p["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")


def test_gpus_are_scheduled_on_the_gpu_node_and_counted(cluster, ns):
    create(cluster, ns, "pods", gpu_pod("one-gpu", 1))
    running = wait_until(lambda: phase(cluster, ns, "one-gpu", "Running"), 20, "the GPU pod running")
    assert running["spec"]["nodeName"] == "sim-gpu-1"
    create(cluster, ns, "pods", gpu_pod("five-gpus", 5))
    message = wait_until(lambda: failed_scheduling(cluster, ns, "five-gpus"), 10, "FailedScheduling")
    assert message == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.", message
    create(cluster, ns, "pods", gpu_pod("four-gpus", 4))  # 4 on the node, 1 of them taken
    message = wait_until(lambda: failed_scheduling(cluster, ns, "four-gpus"), 10, "FailedScheduling")
    assert "Insufficient nvidia.com/gpu" in message
    assert cluster.api("DELETE", f"/api/v1/namespaces/{ns}/pods/one-gpu").status_code == 200
    four = wait_until(lambda: phase(cluster, ns, "four-gpus", "Running"), 30, "the four GPUs freed and scheduled")
    assert four["spec"]["nodeName"] == "sim-gpu-1"
    assert get_pod(cluster, ns, "five-gpus")["status"]["phase"] == "Pending"


def test_a_cpu_pod_goes_to_the_cpu_node(cluster, ns):
    create(cluster, ns, "pods", pod("cpu", container={"resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}))
    assert wait_until(lambda: phase(cluster, ns, "cpu", "Running"), 20)["spec"]["nodeName"] == "sim-cpu-1"
    create(cluster, ns, "pods", pod("huge", container={"resources": {"requests": {"cpu": "64"}}}))
    message = wait_until(lambda: failed_scheduling(cluster, ns, "huge"), 10, "FailedScheduling")
    assert "Insufficient cpu" in message


# --------------------------------------------------------------------------- kubelet

PROBE = r"""
import errno, json, os, sys
out = {"uid": os.getuid(), "groups": os.getgroups(), "argv": sys.argv[1:],
       "env": {k: os.environ.get(k) for k in ("POD_IP", "POD_NAME", "TOKEN", "GREETING")}}
out["read"] = open("/data/ro/hello.txt").read()
try:
    open("/data/ro/hello.txt", "a").write("changed")
    out["ro_write"] = "written"
except OSError as e:
    out["ro_write"] = errno.errorcode[e.errno]
with open("/scratch/made.txt", "w") as f:
    f.write("scratch")
out["scratch"] = open("/scratch/made.txt").read()
out["secret_file"] = open("/etc/creds/token").read()
print("probe:" + json.dumps(out), flush=True)
"""


def test_a_pods_container_runs_as_its_spec_says(cluster, ns, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello from the host\n")
    os.chmod(data, 0o777)
    os.chmod(data / "hello.txt", 0o666)  # only the read-only mount keeps the pod from writing
    create(cluster, ns, "secrets", {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}})
    spec = pod("probe", command=["python3", "-c", PROBE],
               securityContext={"runAsUser": 1000, "fsGroup": 2345},
               volumes=[{"name": "data", "hostPath": {"path": str(data), "type": "Directory"}},
                        {"name": "scratch", "emptyDir": {}},
                        {"name": "creds", "secret": {"secretName": "creds"}}],
               container={"args": ["$(GREETING), world", "$$(GREETING)", "$(UNDEFINED_VAR)"],
                          "volumeMounts": [{"name": "data", "mountPath": "/data/ro", "readOnly": True},
                                           {"name": "scratch", "mountPath": "/scratch"},
                                           {"name": "creds", "mountPath": "/etc/creds", "readOnly": True}],
                          "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                                  {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                  {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                                  {"name": "GREETING", "value": "hello"}]})
    create(cluster, ns, "pods", spec)
    done = wait_until(lambda: phase(cluster, ns, "probe", "Succeeded", "Failed"), 30, "the probe to finish")
    log = cluster.api("GET", f"/api/v1/namespaces/{ns}/pods/probe/log")
    assert log.status_code == 200 and done["status"]["phase"] == "Succeeded", log.text
    [terminated] = [s["state"]["terminated"] for s in done["status"]["containerStatuses"]]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    [line] = [line for line in log.text.splitlines() if line.startswith("probe:")]
    out = json.loads(line[len("probe:"):])
    assert out["uid"] == 1000 and 2345 in out["groups"]
    assert out["env"] == {"POD_IP": done["status"]["podIP"], "POD_NAME": "probe", "TOKEN": "s3cret", "GREETING": "hello"}
    assert out["argv"] == ["hello, world", "$(GREETING)", "$(UNDEFINED_VAR)"]
    assert out["read"] == "hello from the host\n" and out["ro_write"] == "EROFS"
    assert (data / "hello.txt").read_text() == "hello from the host\n"
    assert out["scratch"] == "scratch" and out["secret_file"] == "s3cret"
    reasons = [e["reason"] for e in cluster.api("GET", f"/api/v1/namespaces/{ns}/events",
                                                params={"fieldSelector": "involvedObject.name=probe"}).json()["items"]]
    assert [r for r in reasons if r in ("Scheduled", "Pulled", "Created", "Started")] == \
        ["Scheduled", "Pulled", "Created", "Started"]


def test_an_emptydir_is_writable_without_fsgroup(cluster, ns):
    """A kubelet makes an emptyDir world-writable: a pod running as any user can write it."""
    script = "open('/scratch/f', 'w').write('ok'); print(open('/scratch/f').read())"
    create(cluster, ns, "pods", pod("nogroup", command=["python3", "-c", script], securityContext={"runAsUser": 1000},
                                    volumes=[{"name": "scratch", "emptyDir": {}}],
                                    container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}))
    done = wait_until(lambda: phase(cluster, ns, "nogroup", "Succeeded", "Failed"), 30, "the pod to finish")
    log = cluster.api("GET", f"/api/v1/namespaces/{ns}/pods/nogroup/log").text
    assert done["status"]["phase"] == "Succeeded" and log.strip() == "ok", log


def test_exit_codes_and_restarts(cluster, ns):
    create(cluster, ns, "pods", pod("fails", command=["python3", "-c", "import sys; print('bye'); sys.exit(3)"]))
    create(cluster, ns, "pods", pod("retried", command=["python3", "-c", "raise SystemExit(1)"], restart="OnFailure"))
    failed = wait_until(lambda: phase(cluster, ns, "fails", "Failed", "Succeeded"), 30, "the pod to fail")
    assert failed["status"]["phase"] == "Failed"
    [terminated] = [s["state"]["terminated"] for s in failed["status"]["containerStatuses"]]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert cluster.api("GET", f"/api/v1/namespaces/{ns}/pods/fails/log").text.strip() == "bye"

    def restarted():
        p = get_pod(cluster, ns, "retried")
        statuses = p["status"].get("containerStatuses") or [{}]
        return p if statuses[0].get("restartCount", 0) >= 1 and statuses[0]["lastState"].get("terminated") else None
    retried = wait_until(restarted, 30, "a restart")
    assert retried["status"]["phase"] == "Running"  # restarting, not finished
    assert retried["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    assert events(cluster, ns, "retried", "BackOff")


def test_a_missing_nfs_export_fails_the_mount_until_it_appears(cluster, ns):
    server = f"{ns}.nfs.example"
    script = "print(open('/mnt/share/readme.txt').read())"
    create(cluster, ns, "pods", pod("nfs", command=["python3", "-c", script],
                                    volumes=[{"name": "shared-data", "nfs": {"server": server, "path": "/export/share"}}],
                                    container={"volumeMounts": [{"name": "shared-data", "mountPath": "/mnt/share"}]}))
    [failure] = wait_until(lambda: events(cluster, ns, "nfs", "FailedMount"), 10, "FailedMount")[:1]
    assert failure["type"] == "Warning"
    assert 'MountVolume.SetUp failed for volume "shared-data"' in failure["message"], failure
    assert f"{server}:/export/share" in failure["message"]
    assert get_pod(cluster, ns, "nfs")["status"]["phase"] == "Pending"
    export = cluster.nfs_export(server, "/export/share")
    try:
        export.mkdir(parents=True)
        (export / "readme.txt").write_text("now exported")
        done = wait_until(lambda: phase(cluster, ns, "nfs", "Succeeded", "Failed"), 30, "the mount retried")
        assert done["status"]["phase"] == "Succeeded"
        assert cluster.api("GET", f"/api/v1/namespaces/{ns}/pods/nfs/log").text.strip() == "now exported"
    finally:
        shutil.rmtree(cluster.nfs_export(server, "/"), ignore_errors=True)


def _pid(p) -> int:
    return int(p["status"]["containerStatuses"][0]["containerID"].rpartition("/")[2])


def _alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


TRAPS_TERM = r"""
import signal, sys, time
def stop(signum, frame):
    open('/out/signal', 'w').write(signal.Signals(signum).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print('ready', flush=True)
while True:
    time.sleep(0.1)
"""

IGNORES_TERM = r"""
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('ready', flush=True)
while True:
    time.sleep(0.1)
"""


def test_deleting_a_running_pod_terminates_its_process(cluster, ns, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    mount = {"volumes": [{"name": "out", "hostPath": {"path": str(out)}}],
             "container": {"volumeMounts": [{"name": "out", "mountPath": "/out"}]}}
    create(cluster, ns, "pods", pod("polite", command=["python3", "-c", TRAPS_TERM], securityContext={"runAsUser": 1000},
                                    **mount))
    create(cluster, ns, "pods", pod("stubborn", command=["python3", "-c", IGNORES_TERM]))
    for name in ("polite", "stubborn"):
        wait_until(lambda name=name: phase(cluster, ns, name, "Running") and "ready" in
                   cluster.api("GET", f"/api/v1/namespaces/{ns}/pods/{name}/log").text, 30, f"{name} ready")
    polite, stubborn = _pid(get_pod(cluster, ns, "polite")), _pid(get_pod(cluster, ns, "stubborn"))
    assert _alive(polite) and _alive(stubborn)

    started = time.monotonic()
    r = cluster.api("DELETE", f"/api/v1/namespaces/{ns}/pods/polite")  # the default grace: 30 s
    assert r.status_code == 200 and r.json()["metadata"].get("deletionTimestamp"), r.text
    wait_until(lambda: get_pod(cluster, ns, "polite") is None, 10, "the pod gone")
    assert time.monotonic() - started < 10  # it stopped on SIGTERM, without waiting out the grace period
    assert (out / "signal").read_text() == "SIGTERM" and not _alive(polite)

    started = time.monotonic()
    r = cluster.api("DELETE", f"/api/v1/namespaces/{ns}/pods/stubborn", params={"gracePeriodSeconds": "1"})
    assert r.status_code == 200 and r.json()["metadata"]["deletionGracePeriodSeconds"] == 1
    terminating = get_pod(cluster, ns, "stubborn")
    assert terminating is not None and terminating["metadata"].get("deletionTimestamp")  # still there, terminating
    wait_until(lambda: get_pod(cluster, ns, "stubborn") is None, 10, "the pod gone after its grace period")
    assert time.monotonic() - started >= 0.9 and not _alive(stubborn)  # killed once the grace period ran out


# --------------------------------------------------------------------------- claims


def test_a_claim_is_bound_to_a_folder_and_an_unknown_class_is_not(cluster, ns):
    create(cluster, ns, "persistentvolumeclaims", claim("home"))
    create(cluster, ns, "persistentvolumeclaims", claim("orphan", storageClassName="sim-tests-no-such-class"))

    def bound():
        c = cluster.api("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/home").json()
        return c if c["status"].get("phase") == "Bound" else None
    home = wait_until(bound, 10, "the claim bound")
    assert home["spec"]["volumeName"] and home["status"]["capacity"] == {"storage": "1Gi"}
    assert home["spec"]["storageClassName"] == "standard"
    assert cluster.claim_dir(ns, "home").is_dir()

    [event] = wait_until(lambda: events(cluster, ns, "orphan", "ProvisioningFailed"), 10, "ProvisioningFailed")
    assert event["type"] == "Warning" and "sim-tests-no-such-class" in event["message"]
    orphan = cluster.api("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/orphan").json()
    assert orphan["status"]["phase"] == "Pending" and not cluster.claim_dir(ns, "orphan").exists()
    create(cluster, ns, "pods", pod("needs-orphan", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "orphan"}}],
                                    container={"volumeMounts": [{"name": "v", "mountPath": "/v"}]}))
    message = wait_until(lambda: failed_scheduling(cluster, ns, "needs-orphan"), 10, "FailedScheduling")
    assert "unbound immediate PersistentVolumeClaims" in message
