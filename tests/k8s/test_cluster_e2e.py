"""End to end on a real Kubernetes cluster: run only when AISTUDIO_E2E_KUBECONFIG names a
kubeconfig (see docs/kubernetes.md for kind and k3d); skipped with that reason elsewhere.

The hub runs here, outside the cluster, and creates the pods there through the
kubeconfig. Set AISTUDIO_E2E_HUB_CONNECT_URL to a hub URL the pods can reach to also
wait for JupyterLab to answer; without it the test checks the pod as scheduled.
"""

import asyncio
import os
import time
from urllib.parse import urlparse

import pytest
from harness import Studio, write_config, write_profiles

KUBECONFIG = os.environ.get("AISTUDIO_E2E_KUBECONFIG")
NAMESPACE = os.environ.get("AISTUDIO_E2E_NAMESPACE", "default")
HUB_CONNECT_URL = os.environ.get("AISTUDIO_E2E_HUB_CONNECT_URL")
IMAGE = os.environ.get("AISTUDIO_E2E_IMAGE", "quay.io/jupyter/base-notebook:2026-11-02")

pytestmark = pytest.mark.skipif(
    not KUBECONFIG, reason="no cluster: set AISTUDIO_E2E_KUBECONFIG to run the Kubernetes end-to-end suite"
)


async def pods_of(user: str) -> list:
    from kubernetes_asyncio import client, config

    await config.load_kube_config(config_file=KUBECONFIG)
    async with client.ApiClient() as api:
        pods = await client.CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector=f"hub.jupyter.org/username={user}")
        return pods.items


def test_spawn_gpu_less_profile_on_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", KUBECONFIG)
    profiles = write_profiles(
        tmp_path,
        "profiles:\n  - slug: tiny\n    display_name: Tiny\n"
        f"    resources: {{cpu: 0.5, memory: 512Mi, shm: 64Mi}}\n    image: {IMAGE}\n    access: {{everyone: true}}\n",
    )
    kubernetes = {"namespace": NAMESPACE, "home": {"size": "1Gi", "storage_class": None, "mount_path": "/home/jovyan"}}
    hub = {}
    if HUB_CONNECT_URL:
        kubernetes["hub_connect_url"] = HUB_CONNECT_URL
        hub["hub_port"] = urlparse(HUB_CONNECT_URL).port or 8081  # the hub listens where the pods look
    studio = Studio(tmp_path, write_config(tmp_path, profiles, mode="kubernetes", kubernetes=kubernetes, hub=hub,
                                           spawn={"start_timeout": 600, "http_timeout": 300}))
    studio.start()
    try:
        r = studio.spawn("carol", {"profile": "tiny"}, wait=bool(HUB_CONNECT_URL))
        assert r.status_code in (201, 202), r.text
        deadline = time.monotonic() + 300
        pods = []
        while time.monotonic() < deadline and not pods:
            pods = asyncio.run(pods_of("carol"))
            time.sleep(2)
        assert len(pods) == 1
        pod = pods[0]
        assert pod.metadata.labels["aistudio.io/profile"] == "tiny"
        container = pod.spec.containers[0]
        assert container.resources.limits["memory"] == str(512 * 1024**2)
        assert "nvidia.com/gpu" not in container.resources.limits
        assert container.security_context.allow_privilege_escalation is False
        assert container.security_context.run_as_non_root is True
        assert pod.spec.automount_service_account_token is False
        studio.stop_server("carol")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and asyncio.run(pods_of("carol")):
            time.sleep(2)
        assert asyncio.run(pods_of("carol")) == []
    finally:
        studio.stop()
