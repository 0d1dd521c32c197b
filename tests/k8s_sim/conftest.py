"""The simulated cluster (tests/k8s_sim/simulated_cluster), started once per session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


class SimulatedCluster:
    """The running simulation: its kubeconfig, its state folder, and its API as JSON."""

    def __init__(self, state: Path):
        self.state = state
        self.proc: subprocess.Popen | None = None
        self.kubeconfig = state / "kubeconfig"

    def start(self, timeout=30):
        if os.geteuid() != 0:
            raise RuntimeError("the simulated cluster runs pods in mount namespaces of their own: it needs root")
        self.log = open(self.state.parent / "simulated-cluster.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "simulated_cluster", "--state-dir", str(self.state)],
                                     cwd=HERE, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not (self.state / "ready.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulated cluster did not start:\n" + self.log_text())
            time.sleep(0.1)
        ready = json.loads((self.state / "ready.json").read_text())
        self.url, self.token = ready["url"], ready["token"]
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self) -> str:
        return (self.state.parent / "simulated-cluster.log").read_text(errors="replace")

    def api(self, method: str, path: str, **kwargs):
        import requests

        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def claim_dir(self, namespace: str, claim: str) -> Path:
        """The folder backing a bound PersistentVolumeClaim."""
        return self.state / "volumes" / "pvc" / namespace / claim

    def nfs_export(self, server: str, path: str) -> Path:
        """The folder the simulation serves as NFS export ``server:path`` (create it to export it)."""
        return self.state / "nfs" / server / path.lstrip("/")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("simulated-cluster")
    sim = SimulatedCluster(directory / "state").start()
    yield sim
    sim.stop()
