"""Helpers of the real-cluster suite: kubectl and helm as subprocesses, the chart's
release (installed by the suite or already there), a port-forward to the proxy, and the
hub as its users use it (tests/harness.py's Studio, pointed at the cluster)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
import requests
import yaml
from harness import REPO, Studio, free_ports

HERE = Path(__file__).resolve().parent
VALUES = HERE / "values.yaml"  # the test values: users, groups, profiles, the dataset
DATASET = HERE / "dataset.yaml"  # the dataset's claim and the Job that fills it
KUBECONFIG = os.environ.get("AISTUDIO_E2E_KUBECONFIG")
TIMEOUT = int(os.environ.get("AISTUDIO_E2E_TIMEOUT", "600"))  # seconds for a pod, a rollout, a pull


def suite_values() -> dict:
    """tests/k8s/values.yaml: what the suite expects of the release."""
    return yaml.safe_load(VALUES.read_text())


# --------------------------------------------------------------------------- kubectl, helm


def tool(name: str) -> str:
    """The kubectl or helm to run: $AISTUDIO_E2E_KUBECTL / $AISTUDIO_E2E_HELM, the PATH's, or .venv/bin's."""
    found = os.environ.get(f"AISTUDIO_E2E_{name.upper()}") or shutil.which(name)
    if not found and (REPO / ".venv" / "bin" / name).exists():
        found = str(REPO / ".venv" / "bin" / name)
    if not found:
        pytest.fail(f"{name} is needed to run tests/k8s (not on PATH; or set AISTUDIO_E2E_{name.upper()})")
    return found


def run(name: str, *args: str, timeout: float = TIMEOUT + 60, check: bool = True) -> str:
    """Run kubectl or helm against the suite's cluster; its output, or a failure that shows it."""
    env = {**os.environ, "KUBECONFIG": KUBECONFIG or ""}
    done = subprocess.run([tool(name), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"{name} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def kubectl(*args: str, **kwargs) -> str:
    return run("kubectl", *args, **kwargs)


def helm(*args: str, **kwargs) -> str:
    return run("helm", *args, **kwargs)


def split_image(image: str) -> tuple[str, str]:
    """``registry:5000/aistudio/hub:1.2`` -> (``registry:5000/aistudio/hub``, ``1.2``)."""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        raise ValueError(f"{image!r}: give an image as NAME:TAG")
    return name, tag


# --------------------------------------------------------------------------- the release


@dataclass
class Release:
    """The chart installed in ``namespace`` as ``name``; objects found by the chart's labels."""

    name: str
    namespace: str

    def k(self, *args: str, **kwargs) -> str:
        return kubectl("--namespace", self.namespace, *args, **kwargs)

    def get(self, *args: str) -> dict:
        return json.loads(self.k("get", *args, "--output", "json"))

    def object_name(self, kind: str, component: str) -> str:
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={component}"
        items = self.get(kind, "--selector", selector)["items"]
        assert len(items) == 1, f"{len(items)} {kind} of the release with component {component}"
        return items[0]["metadata"]["name"]

    def wait_rollout(self, component: str) -> None:
        deployment = self.object_name("deployment", component)
        self.k("rollout", "status", f"deployment/{deployment}", f"--timeout={TIMEOUT}s")

    def restart_hub(self) -> None:
        self.k("rollout", "restart", f"deployment/{self.object_name('deployment', 'hub')}")
        self.wait_rollout("hub")

    def hub_log(self) -> str:
        return self.k("logs", f"deployment/{self.object_name('deployment', 'hub')}", "--tail=300", check=False)

    def pods_of(self, user: str) -> list[dict]:
        """The server pods of ``user`` (KubeSpawner's username label), not being deleted."""
        pods = self.get("pods", "--selector", f"hub.jupyter.org/username={user}")["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def wait_pod_gone(self, user: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.get("pods", "--selector", f"hub.jupyter.org/username={user}")["items"]:
            assert time.monotonic() < deadline, f"{user}'s pod still there after {timeout}s"
            time.sleep(2)

    def gpu_nodes(self, selector: dict) -> list[str]:
        """Nodes that advertise nvidia.com/gpu and carry the labels of ``selector``."""
        nodes = json.loads(kubectl("get", "nodes", "--output", "json"))["items"]
        return [n["metadata"]["name"] for n in nodes
                if int(n["status"].get("allocatable", {}).get("nvidia.com/gpu", "0")) > 0
                and all(n["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]


@dataclass
class Install:
    """How the suite installs the chart itself (AISTUDIO_E2E_HELM_INSTALL=1): a fresh namespace,
    the dataset, ``helm install`` with the test values and the images given, the hub Ready."""

    release: str = "aistudio"
    namespace: str = field(default_factory=lambda: f"aistudio-e2e-{secrets.token_hex(3)}")
    images: dict = field(default_factory=dict)  # chart value path -> NAME:TAG
    extra_values: list = field(default_factory=list)  # more -f files (storage class, pull secrets, ...)
    created: bool = False  # the namespace is the suite's: removed at the end

    IMAGE_VARS: ClassVar[dict] = {  # chart value path -> the variable naming its image
        "hub.image": "AISTUDIO_E2E_HUB_IMAGE",
        "singleuser.images.cpu": "AISTUDIO_E2E_SINGLEUSER_IMAGE",
        "singleuser.images.gpu": "AISTUDIO_E2E_SINGLEUSER_GPU_IMAGE",
    }

    @classmethod
    def from_env(cls) -> Install:
        images = {path: os.environ[var] for path, var in cls.IMAGE_VARS.items() if os.environ.get(var)}
        extra = [v for v in os.environ.get("AISTUDIO_E2E_EXTRA_VALUES", "").split(",") if v]
        install = cls(release=os.environ.get("AISTUDIO_E2E_RELEASE", "aistudio"), images=images, extra_values=extra)
        install.namespace = os.environ.get("AISTUDIO_E2E_NAMESPACE") or install.namespace  # made here: must not exist
        return install

    def helm_args(self) -> list[str]:
        args = ["install", self.release, str(REPO / "chart"), "--namespace", self.namespace, "--values", str(VALUES)]
        for extra in self.extra_values:
            args += ["--values", extra]
        for path, image in sorted(self.images.items()):  # unset: the chart's values.yaml, as chartpress left it
            name, tag = split_image(image)
            args += ["--set", f"{path}.name={name}", "--set-string", f"{path}.tag={tag}"]
        return args

    def up(self) -> Release:
        kubectl("create", "namespace", self.namespace)
        self.created = True
        release = Release(self.release, self.namespace)
        release.k("apply", "--filename", str(DATASET))
        release.k("wait", "--for=condition=complete", "job/e2e-vitals", f"--timeout={TIMEOUT}s")
        helm(*self.helm_args())
        release.wait_rollout("proxy")
        release.wait_rollout("hub")
        return release

    def down(self) -> None:
        if not self.created:  # an existing namespace is never touched
            return
        helm("uninstall", self.release, "--namespace", self.namespace, check=False)
        kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)


# --------------------------------------------------------------------------- the way in


class PortForward:
    """``kubectl port-forward`` to the release's proxy-public Service on a free local port;
    a subprocess stopped by its PID."""

    def __init__(self, release: Release):
        self.release = release
        self.service = release.object_name("service", "proxy-public")
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (kubectl's messages, shown if it ends)

    def start(self, timeout: float = 60) -> PortForward:
        env = {**os.environ, "KUBECONFIG": KUBECONFIG or ""}
        port = self.release.get("service", self.service)["spec"]["ports"][0]["port"]
        self.proc = subprocess.Popen(
            [tool("kubectl"), "--namespace", self.release.namespace, "port-forward", "--address", "127.0.0.1",
             f"service/{self.service}", f"{self.port}:{port}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise AssertionError(f"kubectl port-forward exited ({self.proc.returncode}): {self.log.read()[-2000:]}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(1)
        self.stop()
        raise AssertionError(f"the hub did not answer through {self.service} within {timeout}s")

    def ensure(self) -> None:
        """Start it again if it ended (a forward lasts as long as the proxy pod's connection)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --------------------------------------------------------------------------- the hub


class ClusterHub(Studio):
    """The hub of the release, used through the proxy as its users would: login, spawn form,
    API, JupyterLab and its kernels (harness.Studio's helpers; the hub is the cluster's)."""

    def __init__(self, url: str, release: Release):  # not Studio's: that one runs a hub here
        self.url = url
        self.release = release
        self._sessions: dict[str, requests.Session] = {}
        self._tokens: dict[str, str] = {}

    def log(self) -> str:
        return self.release.hub_log()

    def server(self, user: str) -> dict | None:
        return self.api("GET", f"/users/{user}").json()["servers"].get("")

    def stop_server(self, user: str, timeout: float = 300) -> None:
        r = self.api("DELETE", f"/users/{user}/server")
        assert r.status_code in (202, 204), r.text
        deadline = time.monotonic() + timeout
        while self.server(user) is not None:
            assert time.monotonic() < deadline, f"{user}'s server did not stop in {timeout}s"
            time.sleep(1)

    def wait_ready_again(self, user: str, timeout: float = 300) -> dict:
        """``user``'s server once the hub answers that it is ready (after a hub restart)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                server = self.server(user)
                if server and server["ready"]:
                    return server
            except (requests.RequestException, ValueError):  # the hub not back behind the proxy yet
                pass
            assert time.monotonic() < deadline, f"{user}'s server not ready {timeout}s after the hub restart"
            time.sleep(2)

    def usage_summary(self) -> dict:
        """The usage service's API (admins only), as the usage page shows it."""
        r = self.session("admin").get(f"{self.url}/services/usage/api/summary", timeout=30)
        assert r.status_code == 200, r.text[:300]
        return r.json()

    def group_servers(self, group: str) -> int:
        """Servers the usage records count as running for ``group`` now."""
        return next((g["servers"] for g in self.usage_summary()["groups"] if g["group"] == group), 0)
