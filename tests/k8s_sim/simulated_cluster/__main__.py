"""Start the simulated cluster: ``python -m simulated_cluster --state-dir DIR`` (cwd tests/k8s_sim).

Writes DIR/kubeconfig (the API server's URL and a bearer token) and then DIR/ready.json
({"url", "token", "pid"}); runs until SIGTERM or SIGINT, which stop every pod's process."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
from pathlib import Path

import yaml
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from .apiserver import Cluster, make_app
from .kubelet import Kubelet

DEFAULT_NODES = [
    {"name": "sim-cpu-1", "labels": {"node.kubernetes.io/instance-type": "cpu-16"},
     "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "200Gi"}},
    {"name": "sim-gpu-1",
     "labels": {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
     "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
     "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "500Gi", "nvidia.com/gpu": "4"}},
]


def node_object(spec: dict) -> dict:
    labels = {"kubernetes.io/hostname": spec["name"], "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              **spec.get("labels", {})}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": spec["name"], "labels": labels},
            "spec": {"taints": spec.get("taints", [])} if spec.get("taints") else {},
            "status": {"capacity": spec["capacity"], "allocatable": spec["capacity"],
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "simulated kubelet is posting ready status"}],
                       "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                     {"type": "Hostname", "address": spec["name"]}],
                       "nodeInfo": {"kubeletVersion": "v1.37.0-simulated", "containerRuntimeVersion": "simulated://1",
                                    "operatingSystem": "linux", "architecture": "amd64", "osImage": "simulated",
                                    "kernelVersion": os.uname().release, "kubeProxyVersion": "", "machineID": "",
                                    "systemUUID": "", "bootID": ""}}}


def default_images(python_env: Path) -> dict:
    """Every image runs this Python environment's jupyterhub-singleuser as uid 1000 in
    /home/jovyan, as Jupyter Docker Stacks' images start JupyterHub's single-user server.
    The image's file system is this machine's, less its homes and data folders (empty_dirs)."""
    env = python_env.resolve()
    host_dirs = [str(env)] if os.stat(env).st_dev != os.stat("/").st_dev else []
    # a pod's /tmp is its own: an environment reached through /tmp (a checkout there) is shown as well
    host_dirs += [str(p) for p in dict.fromkeys((python_env.absolute(), env))
                  if str(p).startswith("/tmp/") and str(p) not in host_dirs]
    return {"*": {"command": [str(env / "bin" / "jupyterhub-singleuser")], "user": 1000,
                  "working_dir": "/home/jovyan", "host_dirs": host_dirs,
                  "empty_dirs": ["/home", "/datasets", "/srv", "/mnt", "/media", "/root"],
                  "env": {"HOME": "/home/jovyan", "USER": "jovyan", "NB_USER": "jovyan", "SHELL": "/bin/bash",
                          "LANG": "C.UTF-8", "PATH": f"{env / 'bin'}:/usr/local/bin:/usr/bin:/bin"}}}


async def serve(args):
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    cluster = Cluster(token)
    nodes = yaml.safe_load(Path(args.nodes).read_text())["nodes"] if args.nodes else DEFAULT_NODES
    for spec in nodes:
        cluster.store.create("nodes", None, node_object(spec))
    kubelet = Kubelet(cluster, state, default_images(Path(args.python_env)), state / "nfs")
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(make_app(cluster), idle_connection_timeout=3600)
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "simulated",
        "clusters": [{"name": "simulated", "cluster": {"server": url}}],
        "users": [{"name": "simulated-admin", "user": {"token": token}}],
        "contexts": [{"name": "simulated", "context": {"cluster": "simulated", "user": "simulated-admin",
                                                         "namespace": args.namespace}}],
    }
    (state / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    (state / "ready.json").write_text(json.dumps({"url": url, "token": token, "pid": os.getpid()}))
    print(f"simulated cluster: API server at {url}, state in {state}", flush=True)
    await stop.wait()
    server.stop()
    await kubelet.shutdown()
    print("simulated cluster: stopped", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="simulated_cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True, help="volumes, pods' folders and logs, kubeconfig")
    parser.add_argument("--nodes", help="YAML file {nodes: [{name, labels, taints, capacity}]} (default: one CPU "
                                        "node and one node with 4 A100 GPUs)")
    parser.add_argument("--namespace", default="default", help="the kubeconfig context's namespace")
    parser.add_argument("--python-env", default=sys.prefix, help="the environment every image runs")
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
