"""On a machine with NVIDIA GPUs: discovery through NVML, and what CUDA shows a server."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_config.gpus import GPUAllocator, cuda_env, discover

PROBE = Path(__file__).with_name("cuda_probe.py")
pytestmark = pytest.mark.gpu


def probe(env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUDA_")}
    env.update(env_overrides)
    out = subprocess.run([sys.executable, str(PROBE)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_nvml_discovery_finds_the_real_gpus():
    gpus, source = discover("auto", [{"index": 0, "type": "not-used"}])
    assert source == "nvml"
    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=index,uuid,name", "--format=csv,noheader"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()
    expected = [line.split(", ") for line in smi]
    assert [(str(g.index), g.uuid) for g in gpus] == [(i, u) for i, u, _ in expected]
    assert all(g.type and g.type in name.lower().replace(" ", "-") for g, (_, _, name) in zip(gpus, expected))


def test_each_allocation_shows_cuda_exactly_its_devices():
    gpus, _ = discover("nvml", [])
    alloc = GPUAllocator(gpus, "nvml")
    for gpu in gpus:
        held = alloc.allocate(f"user{gpu.index}/", 1, gpu.type)
        assert probe(cuda_env(held)) == [held[0].uuid]
    assert probe(cuda_env([])) == []  # a CPU profile sees no GPU at all


@pytest.mark.skipif(
    importlib.util.find_spec("jupyterhub") is None
    or os.geteuid() != 0
    or not (Path(sys.prefix) / "bin" / "configurable-http-proxy").exists(),
    reason="needs the studio installed (scripts/setup.sh) and root",
)
def test_kernel_in_spawned_server_sees_its_gpu(tmp_path):
    from harness import Studio, write_config, write_profiles

    gpus, _ = discover("nvml", [])
    profiles = write_profiles(
        tmp_path,
        "profiles:\n  - slug: one-gpu\n    display_name: One GPU\n"
        "    resources: {cpu: 1, memory: 4Gi, gpus: 1}\n    access: {everyone: true}\n",
    )
    studio = Studio(tmp_path, write_config(tmp_path, profiles, gpus={"discovery": "nvml", "inventory": []}))
    studio.start()
    try:
        assert studio.spawn("alice", {"profile": "one-gpu"}).status_code in (201, 202)
        env = studio.server_env("alice")
        # the probe runs in a kernel of the server, as the member's own code would
        seen = json.loads(studio.run_in_kernel("alice", PROBE.read_text()))
        assert seen == [env["CUDA_VISIBLE_DEVICES"]]
        assert env["CUDA_VISIBLE_DEVICES"] in {g.uuid for g in gpus}
        studio.stop_server("alice")
    finally:
        studio.stop()
