"""A member's journey on a real Kubernetes cluster where the chart was installed with
``helm install`` and tests/k8s/values.yaml, through the release's proxy-public Service
(a ``kubectl port-forward`` the suite starts). Runs only when AISTUDIO_E2E_KUBECONFIG
names a kubeconfig; skipped, with that reason, elsewhere. The steps, on kind or a lab's
own cluster: docs/kubernetes.md ("Tests"); .github/workflows/kubernetes.yaml runs them.

The tests run in order, each going on from the last: login, the spawn form of each
group, a start (the pod's resources, volumes and hardening), JupyterLab and the
Datasets panel's API in the pod, a quota refusal, a stop (pod gone, usage record
closed), a hub restart that finds a running server again, and a GPU start where the
cluster has GPU nodes.
"""

import json
import re

import pytest
import requests
from harness import PASSWORD
from k8s_e2e import KUBECONFIG, TIMEOUT, suite_values

from hub_config.units import parse_quantity

pytestmark = pytest.mark.skipif(
    not KUBECONFIG, reason="no cluster: set AISTUDIO_E2E_KUBECONFIG to run the Kubernetes end-to-end suite"
)

VALUES = suite_values()
USERS = VALUES["studio"]["auth"]["demo"]["users"]
PROFILES = {p["slug"]: p for p in VALUES["profiles"]["files"]["e2e.yaml"]["profiles"]}
DATASET = VALUES["datasets"]["register"][0]
DATASET_CLAIM = VALUES["datasets"]["sources"][DATASET["source"]]["pvc"]["claimName"]
GPU_TYPE = VALUES["studio"]["kubernetes"]["gpu_types"]["e2e-gpu"]
GPU_SELECTOR, GPU_TOLERATIONS = GPU_TYPE["node_selector"], GPU_TYPE["tolerations"]


def may_use(user: str) -> set[str]:
    """The profiles the test values give ``user``, through everyone or a group."""
    groups = set(USERS[user].get("groups", []))
    return {slug for slug, p in PROFILES.items()
            if p["access"].get("everyone") or groups & set(p["access"].get("groups", []))}


def cores(quantity) -> float:
    """CPU cores of a Kubernetes quantity: ``500m`` -> 0.5."""
    quantity = str(quantity)
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def the_pod(release, user: str) -> dict:
    pods = release.pods_of(user)
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def start(hub, user: str, profile: str) -> None:
    r = hub.spawn(user, {"profile": profile}, wait=False)
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(user, timeout=TIMEOUT)


# --------------------------------------------------------------------------- login, the form


def test_demo_users_log_in_and_a_wrong_password_is_refused(hub):
    for user in USERS:
        hub.session(user)  # asserts the hub's redirect after login
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=30)
    r = s.post(f"{hub.url}/hub/login", data={"username": "bob", "password": PASSWORD + "x",
                                             "_xsrf": s.cookies.get("_xsrf", "")}, allow_redirects=False, timeout=30)
    assert r.status_code != 302


def test_the_spawn_form_of_each_group_lists_the_profiles_it_may_use(hub):
    assert may_use("bob") == {"e2e-tiny", "e2e-students"} and may_use("alice") == {"e2e-tiny", "e2e-gpu"}
    for user in ("bob", "alice", "carol"):
        shown = set(re.findall(r'id="profile-item-([a-z0-9-]+)"', hub.form(user)))
        assert shown == may_use(user), user


def test_a_profile_outside_the_members_rights_is_refused_before_any_pod(hub, release):
    r = hub.spawn("carol", {"profile": "e2e-students"}, wait=False)
    assert r.status_code == 403, r.text
    assert release.pods_of("carol") == []


# --------------------------------------------------------------------------- a start


def test_the_pod_carries_the_profile_the_dataset_and_the_hardening(hub, release):
    start(hub, "bob", "e2e-students")
    pod = the_pod(release, "bob")
    spec, labels = pod["spec"], pod["metadata"]["labels"]
    assert (labels["aistudio.io/profile"], labels["aistudio.io/gpus"]) == ("e2e-students", "0")
    assert "aistudio.io/gpu-type" not in labels and labels["app.kubernetes.io/part-of"] == "aistudio"
    container = spec["containers"][0]
    resources = PROFILES["e2e-students"]["resources"]
    for kind in ("limits", "requests"):  # request_fraction 1.0: requests = limits
        assert cores(container["resources"][kind]["cpu"]) == resources["cpu"], kind
        assert parse_quantity(container["resources"][kind]["memory"]) == parse_quantity(resources["memory"]), kind
        assert "nvidia.com/gpu" not in container["resources"][kind]
    assert not set(GPU_SELECTOR) & set(spec.get("nodeSelector") or {})
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["AISTUDIO_PROFILE"], env["NVIDIA_VISIBLE_DEVICES"]) == ("e2e-students", "void")

    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == "home-bob"
    assert mounts["/home/jovyan"]["name"] == "home"
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory" and mounts["/dev/shm"]["name"] == "dshm"
    assert parse_quantity(volumes["dshm"]["emptyDir"]["sizeLimit"]) == parse_quantity(resources["shm"])
    dataset = mounts[f"/datasets/{DATASET['name']}"]
    assert dataset["readOnly"] is True
    assert volumes[dataset["name"]]["persistentVolumeClaim"] == {"claimName": DATASET_CLAIM, "readOnly": True}

    security = container["securityContext"]
    assert security["runAsUser"] == 1000 and security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"] and security["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["fsGroup"] == 100


def test_jupyterlab_answers_through_the_proxy(hub):
    headers = {"Authorization": f"token {hub.token('bob')}"}
    status = requests.get(f"{hub.url}/user/bob/api/status", headers=headers, timeout=30)
    assert status.status_code == 200, status.text[:300]
    lab = hub.session("bob").get(f"{hub.url}/user/bob/lab", timeout=60)  # through the hub's OAuth
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    code = ("import json, os, pathlib\n"
            f"root = pathlib.Path(os.environ['AISTUDIO_DATASETS_DIR']) / {DATASET['name']!r}\n"
            "out = {'uid': os.getuid(), 'header': (root / 'vitals.csv').read_text().splitlines()[0]}\n"
            "try:\n    (root / 'mine.csv').write_text('x'); out['write'] = 'ok'\n"
            "except OSError as e:\n    out['write'] = type(e).__name__\n"
            "print(json.dumps(out))")
    out = json.loads(hub.run_in_kernel("bob", code, timeout=120))
    assert out["uid"] == 1000 and out["header"] == "age_band,sex,hr"
    assert out["write"] != "ok"  # the dataset is mounted read-only


def test_the_datasets_panel_api_answers_from_the_pod_with_its_catalogue(hub, release):
    container = the_pod(release, "bob")["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    hub_service = release.object_name("service", "hub")
    assert env["AISTUDIO_DATASETS_URL"] == f"http://{hub_service}:8011/services/datasets/"
    assert env["AISTUDIO_DATASETS_DIR"] == "/datasets"
    headers = {"Authorization": f"token {hub.token('bob')}"}
    panel = f"{hub.url}/user/bob/aistudio-datasets/api"
    info = requests.get(f"{panel}/info", headers=headers, timeout=30)
    assert info.status_code == 200 and info.json()["catalogue"] is True, info.text
    assert info.json()["datasets_dir"] == "/datasets"
    # the server in the pod asks the catalogue at AISTUDIO_DATASETS_URL with its own token
    mine = requests.get(f"{panel}/datasets", headers=headers, timeout=60)
    assert mine.status_code == 200, mine.text
    assert DATASET["name"] in {d["name"] for d in mine.json()["datasets"]}
    one = requests.get(f"{panel}/datasets/{DATASET['name']}", headers=headers, timeout=60)
    assert one.status_code == 200 and one.json()["mount_path"] == f"/datasets/{DATASET['name']}", one.text
    assert requests.get(f"{panel}/datasets/ghost", headers=headers, timeout=60).status_code == 404
    # the catalogue reads the files where the hub's pod sees the source (datasets.sources)
    rows = requests.get(f"{panel}/datasets/{DATASET['name']}/preview", params={"rows": 2}, headers=headers, timeout=60)
    assert rows.status_code == 200, rows.text
    assert [c["name"] for c in rows.json()["columns"]] == ["age_band", "sex", "hr"] and len(rows.json()["rows"]) == 2


# --------------------------------------------------------------------------- quota, stop


def test_a_launch_beyond_the_groups_limit_is_refused_with_a_message(hub, release):
    assert hub.group_servers("students") == 1
    r = hub.spawn("bea", {"profile": "e2e-tiny"}, wait=False)
    assert r.status_code == 429, r.text
    assert "Group students runs 1 of 1 servers" in r.json()["message"]
    assert release.pods_of("bea") == [] and hub.server("bea") is None


def test_stop_deletes_the_pod_and_closes_the_usage_record(hub, release):
    page = hub.session("admin").get(f"{hub.url}/services/usage/", timeout=30)
    assert page.status_code == 200 and "GPU usage" in page.text
    hub.stop_server("bob")
    release.wait_pod_gone("bob")
    assert hub.group_servers("students") == 0
    assert release.get("pvc", "home-bob")["status"]["phase"] == "Bound"  # the home stays


# --------------------------------------------------------------------------- hub restart, GPUs


def test_a_restarted_hub_finds_the_running_server_again(hub, release, forward):
    start(hub, "carol", "e2e-tiny")
    before = the_pod(release, "carol")["metadata"]["uid"]
    release.restart_hub()
    forward.ensure()
    hub.wait_ready_again("carol")
    pod = the_pod(release, "carol")
    assert pod["metadata"]["uid"] == before
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    status = requests.get(f"{hub.url}/user/carol/api/status", headers={"Authorization": f"token {hub.token('carol')}"},
                          timeout=30)
    assert status.status_code == 200, status.text[:300]
    assert hub.group_servers("(no group)") == 1  # the restarted hub still counts it
    hub.stop_server("carol")
    release.wait_pod_gone("carol")
    assert hub.group_servers("(no group)") == 0


def test_a_gpu_profile_lands_on_a_gpu_node(hub, release):
    nodes = release.gpu_nodes(GPU_SELECTOR)
    if not nodes:
        pytest.skip(f"no GPU node: none advertises nvidia.com/gpu with the labels {GPU_SELECTOR}")
    start(hub, "alice", "e2e-gpu")
    try:
        pod = the_pod(release, "alice")
        spec, labels = pod["spec"], pod["metadata"]["labels"]
        assert (labels["aistudio.io/gpus"], labels["aistudio.io/gpu-type"]) == ("1", "e2e-gpu")
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert GPU_SELECTOR.items() <= (spec.get("nodeSelector") or {}).items()
        assert GPU_TOLERATIONS[0] in spec["tolerations"]
        assert spec["nodeName"] in nodes
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env.get("NVIDIA_VISIBLE_DEVICES") != "void"
    finally:
        hub.stop_server("alice")
        release.wait_pod_gone("alice")
