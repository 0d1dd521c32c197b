"""Fixtures of the real-cluster suite: the release (installed here with
AISTUDIO_E2E_HELM_INSTALL=1, else the one named by AISTUDIO_E2E_RELEASE in
AISTUDIO_E2E_NAMESPACE), a port-forward to its proxy, and its hub."""

import os

import pytest
from k8s_e2e import ClusterHub, Install, PortForward, Release


@pytest.fixture(scope="module")
def release():
    if os.environ.get("AISTUDIO_E2E_HELM_INSTALL") == "1":
        install = Install.from_env()
        try:
            yield install.up()
        finally:
            install.down()
        return
    found = Release(os.environ.get("AISTUDIO_E2E_RELEASE", "aistudio"),
                    os.environ.get("AISTUDIO_E2E_NAMESPACE", "aistudio-e2e"))
    found.wait_rollout("hub")
    yield found


@pytest.fixture(scope="module")
def forward(release):
    forward = PortForward(release).start()
    yield forward
    forward.stop()


@pytest.fixture(scope="module")
def hub(release, forward):
    return ClusterHub(forward.url, release)
