"""The member's journey on Kubernetes, against the simulated cluster: the real hub with
the real KubeSpawner in kubernetes mode, configured from the chart's rendered objects
(chart_studio.py), the real configurable-http-proxy, real JupyterLab servers as "pods".

One studio for the module; the tests run in order and build on each other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from chart_studio import NAMESPACE, ChartStudio, render

from hub_config.usage.store import UsageStore

HERE = Path(__file__).resolve().parent
VITALS = "stay_id,hour,heart_rate,spo2\n" + "".join(f"{1000 + i},{i % 24},{60 + i % 40},{90 + i % 10}\n" for i in range(200))
LABELS = "image_id,finding\n" + "".join(f"img-{i:04d},{['normal', 'effusion', 'nodule'][i % 3]}\n" for i in range(60))


def pods_of(cluster, user: str) -> list[dict]:
    r = cluster.api("GET", f"/api/v1/namespaces/{NAMESPACE}/pods",
                    params={"labelSelector": f"hub.jupyter.org/username={user},component=singleuser-server"})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def wait_until(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def objects():
    return render(HERE / "values.yaml")


@pytest.fixture(scope="module")
def studio(cluster, objects, tmp_path_factory):
    directory = tmp_path_factory.mktemp("chart-studio")
    os.chmod(directory, 0o755)
    assert cluster.api("POST", "/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}).status_code in (201, 409)
    # the lab's storage: an NFS export and a claim holding datasets, made before the studio
    export = cluster.nfs_export("nfs.lab.example", "/export/datasets/icu-vitals")
    export.mkdir(parents=True, exist_ok=True)
    (export / "vitals.csv").write_text(VITALS)
    claim = {"metadata": {"name": "imaging-datasets"},
             "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}}}
    assert cluster.api("POST", f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims", json=claim).status_code == 201
    wait_until(lambda: cluster.claim_dir(NAMESPACE, "imaging-datasets").is_dir(), 10, "the claim bound")
    (cluster.claim_dir(NAMESPACE, "imaging-datasets") / "labels.csv").write_text(LABELS)
    studio = ChartStudio(directory, objects, cluster)
    studio.start(timeout=120)
    yield studio
    for user in ("alice", "bob", "bea", "carol"):
        studio.api("DELETE", f"/users/{user}/server")
    wait_until(lambda: not any(pods_of(cluster, u) for u in ("alice", "bob", "bea", "carol")), 60, "the pods deleted")
    studio.stop_all()


def test_the_chart_objects_the_cluster_serves_are_valid(cluster, objects):
    """The rendered objects of the kinds the simulation serves pass its validation (the
    Kubernetes schemas and the API server's rules), as `kubectl apply --dry-run=server`."""
    kinds = {"ConfigMap": "configmaps", "Secret": "secrets", "Service": "services",
             "ServiceAccount": "serviceaccounts", "PersistentVolumeClaim": "persistentvolumeclaims"}
    checked = 0
    for obj in objects:
        if obj["kind"] in kinds:
            r = cluster.api("POST", f"/api/v1/namespaces/default/{kinds[obj['kind']]}", params={"dryRun": "All"}, json=obj)
            assert r.status_code == 201, f"{obj['kind']} {obj['metadata']['name']}: {r.text}"
            checked += 1
    assert checked >= 6


def test_each_group_sees_its_profiles(studio):
    alice, bob, carol = studio.form("alice"), studio.form("bob"), studio.form("carol")
    assert 'value="gpu-1"' in alice and 'value="gpu-multi"' in alice
    assert 'value="gpu-1"' in bob and 'value="gpu-multi"' not in bob
    assert 'value="cpu-small"' in carol and 'value="gpu-1"' not in carol


def test_a_gpu_launch_becomes_a_pod_with_the_profile(studio, cluster):
    r = studio.spawn("alice", {"profile": "gpu-1"}, wait=False)
    assert r.status_code in (201, 202), r.text
    studio.wait_ready("alice", timeout=120)
    [pod] = pods_of(cluster, "alice")
    spec, labels = pod["spec"], pod["metadata"]["labels"]
    assert labels["aistudio.io/profile"] == "gpu-1" and labels["aistudio.io/gpu-type"] == "a100"
    container = spec["containers"][0]
    limits = container["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1" and float(limits["cpu"]) == 8 and int(limits["memory"]) == 64 * 2**30
    assert spec["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert spec["nodeName"] == "sim-gpu-1"  # the only node with A100s, tainted for GPU pods
    assert pod["status"]["qosClass"] == "Guaranteed"
    # hardening
    assert spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["runAsUser"] == 1000 and spec["securityContext"]["fsGroup"] == 100
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # exactly the datasets granted to alice's group, read-only
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dataset-icu-vitals"]["nfs"] == {"server": "nfs.lab.example", "path": "/export/datasets/icu-vitals",
                                                     "readOnly": True}
    assert "dataset-chest-xray-labels" not in volumes
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "dataset-icu-vitals"]
    assert mount["mountPath"] == "/datasets/icu-vitals" and mount["readOnly"] is True
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}


def test_jupyterlab_answers_through_the_proxy_with_the_studio_extension(studio):
    page = studio.session("alice").get(f"{studio.url}/user/alice/lab", timeout=60)
    assert page.status_code == 200 and "JupyterLab" in page.text
    assert "@aistudio/lab" in page.text  # the studio's extension is installed in the "image"


def test_the_datasets_panel_answers_from_inside_the_pod(studio, cluster):
    [pod] = pods_of(cluster, "alice")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["AISTUDIO_DATASETS_URL"].startswith(f"http://127.0.0.1:{studio.ports['datasets']}/")
    headers = {"Authorization": f"token {studio.token('alice')}"}
    r = requests.get(f"{studio.url}/user/alice/aistudio-datasets/api/datasets", headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    assert [d["name"] for d in r.json()["datasets"]] == ["icu-vitals"]
    preview = requests.get(f"{studio.url}/user/alice/aistudio-datasets/api/datasets/icu-vitals/preview",
                           params={"file": "vitals.csv", "rows": 5}, headers=headers, timeout=60)
    assert preview.status_code == 200, preview.text  # the hub reads the NFS source through its read-only view
    out = studio.run_in_kernel("alice", (
        "import os\n"
        "print(os.getuid(), sorted(os.listdir('/datasets')))\n"
        "print(open('/datasets/icu-vitals/vitals.csv').readline().strip())\n"
        "try:\n    open('/datasets/icu-vitals/new.csv', 'w')\nexcept OSError as e:\n    print(e.strerror)\n"))
    assert out.splitlines() == ["1000 ['icu-vitals']", "stay_id,hour,heart_rate,spo2", "Read-only file system"]


def test_a_launch_beyond_the_group_limit_is_refused(studio, cluster):
    """Students share one GPU (the shipped quotas): while bea holds it, bob is refused, and no pod is made."""
    assert studio.spawn("bea", {"profile": "gpu-1"}).status_code in (201, 202)
    r = studio.api("POST", "/users/bob/server", user="bob", json={"user_options": {"profile": "gpu-1"}})
    assert r.status_code == 429, r.text
    assert "students" in r.json()["message"] and "GPU" in r.json()["message"]
    assert pods_of(cluster, "bob") == []
    studio.stop_server("bea")
    wait_until(lambda: pods_of(cluster, "bea") == [], 60, "bea's pod deleted")


def test_stop_deletes_the_pod_and_closes_the_usage_record(studio, cluster):
    studio.stop_server("alice")
    wait_until(lambda: pods_of(cluster, "alice") == [], 60, "alice's pod deleted")
    usage = UsageStore(f"sqlite:///{studio.config['data_dir']}/usage.sqlite")
    [row] = [r for r in usage.rows() if r.user == "alice"]
    assert row.profile == "gpu-1" and row.gpus == 1 and row.stopped_at is not None
    assert usage.active() == []


def test_a_restarted_hub_finds_the_running_pod(studio, cluster):
    assert studio.spawn("carol", {"profile": "cpu-small"}).status_code in (201, 202)
    [before] = pods_of(cluster, "carol")
    volumes = {v["name"]: v for v in before["spec"]["volumes"]}
    assert volumes["dataset-chest-xray-labels"]["persistentVolumeClaim"] == {"claimName": "imaging-datasets",
                                                                             "readOnly": True}
    studio.stop()  # as a hub pod restarting: servers keep running (cleanup_servers False)
    assert [p["metadata"]["uid"] for p in pods_of(cluster, "carol")] == [before["metadata"]["uid"]]
    studio.start(timeout=120)
    server = studio.api("GET", "/users/carol").json()["servers"][""]
    assert server["ready"] and server["user_options"]["profile"] == "cpu-small"
    assert [p["metadata"]["uid"] for p in pods_of(cluster, "carol")] == [before["metadata"]["uid"]]
    out = studio.run_in_kernel("carol", "print(open('/datasets/chest-xray-labels/labels.csv').readline().strip())")
    assert out.strip() == "image_id,finding"
    studio.stop_server("carol")
    wait_until(lambda: pods_of(cluster, "carol") == [], 60, "carol's pod deleted")


def test_a_revoked_grant_is_gone_at_the_next_start(studio, cluster):
    """A steward revokes in the hub's pod (`kubectl exec deploy/...-hub -- aistudio datasets revoke`)."""
    out = subprocess.run([sys.executable, "-m", "hub_config.cli", "datasets", "revoke", "chest-xray-labels",
                          "--users", "carol"], cwd=studio.srv, capture_output=True, text=True,
                         env={**os.environ, "AISTUDIO_CONFIG": str(studio.config_path)})
    assert out.returncode == 0, out.stdout + out.stderr
    r = studio.spawn("carol", {"profile": "cpu-small"}, wait=False)
    assert r.status_code in (201, 202), r.text
    studio.wait_ready("carol")
    # the spawn page's progress (logged by the hub as it reports) tells carol
    assert "carol: No longer available to you (access revoked or expired): chest-xray-labels" in studio.log()
    [pod] = pods_of(cluster, "carol")
    assert not [v for v in pod["spec"]["volumes"] if v["name"].startswith("dataset-")]
    studio.stop_server("carol")
    wait_until(lambda: pods_of(cluster, "carol") == [], 60, "carol's pod deleted")


def test_a_dataset_that_cannot_be_mounted_fails_the_spawn_naming_it(studio, cluster):
    export = cluster.nfs_export("nfs.lab.example", "/export/datasets/icu-vitals")
    hidden = export.with_name("icu-vitals.away")
    export.rename(hidden)  # the NFS server no longer exports it
    try:
        started = time.monotonic()
        r = studio.spawn("alice", {"profile": "cpu-small"}, wait=False)
        # the hub answers a start that fails within its first seconds itself, a slower one in the progress
        failure = r.json()["message"] if r.status_code >= 400 else None
        with requests.get(f"{studio.url}/hub/api/users/alice/server/progress", stream=True, timeout=90,
                          headers={"Authorization": f"token {studio.token('alice')}"}) as stream:
            for line in [] if failure else stream.iter_lines(decode_unicode=True):
                if line.startswith("data:") and json.loads(line[5:]).get("failed"):
                    failure = json.loads(line[5:])["message"]
                    break
        assert time.monotonic() - started < 45  # told at once, not after the start timeout
        assert failure and "Dataset icu-vitals cannot be mounted" in failure and "access denied" in failure, failure
        wait_until(lambda: pods_of(cluster, "alice") == [], 60, "the failed pod deleted")
        assert studio.api("GET", "/users/alice").json()["servers"] == {}
    finally:
        hidden.rename(export)
