"""The studio as the Helm chart deploys it, run against the simulated cluster.

``helm template`` renders the chart with the given values; the hub and the proxy then
run here as local processes from the rendered objects, as their pods would:

- the hub's files are the rendered ConfigMap's, at the paths of the hub Deployment's
  config volume; its environment is the Deployment's (secrets resolved from the rendered
  Secret), plus KUBECONFIG naming the simulated cluster; its command is the Deployment's;
- the hub pod's other volumes (the data claim, the dataset sources mounted read-only) are
  folders or links to what backs them in the simulation (its claims and NFS exports);
- the proxy runs the proxy Deployment's command.

What a cluster gives by itself and this machine cannot is replaced, and only that:
the pods' paths /etc/aistudio and /srv/aistudio become folders of the test, Service
names (cluster DNS) become 127.0.0.1, and the fixed ports of the pods (8000, 8001, 8081,
the services' 8010-8012) become free ports, because all "pods" share this machine's
network. ``localise()`` is that list, in code.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml
from harness import REPO, PortTaken, Studio, free_ports

from hub_config.cli.up import services_with_pages, studio_answers

HELM = REPO / ".venv" / "bin" / "helm"
RELEASE, NAMESPACE = "studio", "aistudio"
BIN = Path(sys.executable).parent


def render(values: Path, *extra: str) -> list[dict]:
    out = subprocess.run([str(HELM), "template", RELEASE, str(REPO / "chart"), "-n", NAMESPACE, "-f", str(values), *extra],
                         capture_output=True, text=True)
    if out.returncode:
        raise AssertionError(f"helm template failed:\n{out.stderr}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(objects: list[dict], kind: str, component: str | None = None) -> dict:
    for obj in objects:
        labels = obj["metadata"].get("labels") or {}
        if obj["kind"] == kind and (component is None or labels.get("app.kubernetes.io/component") == component):
            return obj
    raise AssertionError(f"the chart rendered no {kind} {component or ''}")


def secret_values(secret: dict) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update(secret.get("stringData") or {})
    return values


class ChartStudio(Studio):
    """The chart's hub and proxy, run here from the rendered objects."""

    def __init__(self, directory: Path, objects: list[dict], cluster):
        self.objects, self.cluster = objects, cluster
        self.etc, self.srv = directory / "etc-aistudio", directory / "srv-aistudio"
        self.hub_deployment = find(objects, "Deployment", "hub")
        self.proxy_deployment = find(objects, "Deployment", "proxy")
        self.secret = secret_values(find(objects, "Secret"))
        self.hub_service = find(objects, "Service", "hub")["metadata"]["name"]
        self.proxy_api_service = [o for o in objects if o["kind"] == "Service"
                                  and o["metadata"]["name"].endswith("-proxy-api")][0]["metadata"]["name"]
        self.ports = dict(zip(("proxy", "proxy_api", "hub", "usage", "datasets", "announcements"), free_ports(6)))
        self.write_files()
        super().__init__(directory, self.etc / "aistudio.yaml")
        self.proxy_proc: subprocess.Popen | None = None

    # --------------------------------------------------------------- the pods' files, localised

    def path(self, pod_path: str) -> str:
        return pod_path.replace("/etc/aistudio", str(self.etc)).replace("/srv/aistudio", str(self.srv))

    def localise(self, text: str) -> str:
        text = self.path(text)
        text = text.replace(f"http://{self.hub_service}:8081", f"http://127.0.0.1:{self.ports['hub']}")
        return text.replace(f"http://{self.proxy_api_service}:8001", f"http://127.0.0.1:{self.ports['proxy_api']}")

    def write_files(self):
        configmap = find(self.objects, "ConfigMap", "hub")
        spec = self.hub_deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for mount in container["volumeMounts"]:
            volume, target = volumes[mount["name"]], Path(self.path(mount["mountPath"]))
            if "configMap" in volume:
                for item in volume["configMap"]["items"]:
                    path = target / item["path"]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(self.localise(configmap["data"][item["key"]]))
            elif mount["mountPath"].startswith("/srv/aistudio"):
                source = self.volume_source(volume)
                if source is None:  # the data claim or an emptyDir: a folder of the test
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(source)
        config_path = self.etc / "aistudio.yaml"
        config = yaml.safe_load(config_path.read_text())
        hub = config["hub"]
        hub.update(port=self.ports["proxy"], hub_port=self.ports["hub"], services_host="127.0.0.1")
        for section in ("usage", "datasets", "announcements"):
            config[section]["service_port"] = self.ports[section]
        config_path.write_text(yaml.safe_dump(config))

    def volume_source(self, volume: dict) -> Path | None:
        """What backs a dataset source volume of the hub pod in the simulation."""
        if "nfs" in volume:
            return self.cluster.nfs_export(volume["nfs"]["server"], volume["nfs"]["path"])
        if "hostPath" in volume:
            return Path(volume["hostPath"]["path"])
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and not claim.endswith("-hub-db"):  # the data claim is a folder of the test
            return self.cluster.claim_dir(NAMESPACE, claim)
        return None

    def container_env(self, deployment: dict) -> dict[str, str]:
        env = {}
        for item in deployment["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if "value" in item:
                env[item["name"]] = self.localise(item["value"])
            elif "secretKeyRef" in item.get("valueFrom", {}):
                key = item["valueFrom"]["secretKeyRef"]["key"]
                if key in self.secret:
                    env[item["name"]] = self.secret[key]
        return env

    def command(self, deployment: dict) -> list[str]:
        argv = [self.localise(a) for a in deployment["spec"]["template"]["spec"]["containers"][0]["command"]]
        argv[0] = str(BIN / argv[0]) if (BIN / argv[0]).exists() else argv[0]
        return argv

    # --------------------------------------------------------------- processes

    def start_proxy(self):
        argv = [re.sub(r"^--port=8000$", f"--port={self.ports['proxy']}",
                       re.sub(r"^--api-port=8001$", f"--api-port={self.ports['proxy_api']}", a))
                for a in self.command(self.proxy_deployment)]
        self.proxy_log = open(self.directory / "proxy.log", "ab")
        self.proxy_proc = subprocess.Popen(argv, stdout=self.proxy_log, stderr=subprocess.STDOUT,
                                           env={**os.environ, **self.container_env(self.proxy_deployment)})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/_chp_healthz", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise AssertionError("the proxy did not start:\n" + (self.directory / "proxy.log").read_text())

    def _start_once(self, timeout):
        if self.proxy_proc is None or self.proxy_proc.poll() is not None:
            self.start_proxy()
        self.log_path.write_bytes(b"") if not self.log_path.exists() else None
        self._log = open(self.log_path, "ab")
        env = {**os.environ, **self.container_env(self.hub_deployment), "KUBECONFIG": str(self.cluster.kubeconfig),
               "PATH": f"{BIN}:{os.environ.get('PATH', os.defpath)}"}
        self.proc = subprocess.Popen(self.command(self.hub_deployment), stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.srv, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "Address already in use" in self.log():
                    raise PortTaken(self.log())
                raise RuntimeError(f"the hub exited with {self.proc.returncode}:\n{self.log()[-5000:]}")
            if self.answering():
                return self
            time.sleep(0.3)
        raise RuntimeError(f"the studio did not answer within {timeout}s:\n{self.log()[-5000:]}")

    def answering(self) -> bool:
        """The hub and every hub-managed service answer through the proxy, as `aistudio up` checks."""
        return studio_answers(f"{self.url}/", services_with_pages(self.config))

    def stop_all(self):
        self.stop()
        if self.proxy_proc and self.proxy_proc.poll() is None:
            self.proxy_proc.send_signal(signal.SIGTERM)
            self.proxy_proc.wait(30)
