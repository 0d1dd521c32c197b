"""On a machine with NVIDIA GPUs: PyTorch in a deep-learning server sees exactly the GPU
the hub allocated to it (built with the CUDA build of PyTorch: docs/environments.md)."""

import json
import os
import sys
from pathlib import Path

import pytest

from hub_config.gpus import discover

pytestmark = pytest.mark.gpu

TORCH_PROBE = """
import json, torch
count = torch.cuda.device_count()
print(json.dumps({"count": count, "uuids": [str(torch.cuda.get_device_properties(i).uuid) for i in range(count)]}))
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not (Path(sys.prefix) / "bin" / "configurable-http-proxy").exists(),
    reason="needs the studio installed (scripts/setup.sh --test) and root",
)
def test_pytorch_in_a_deep_learning_server_sees_exactly_its_allocated_gpu(tmp_path):
    from harness import Studio, write_config, write_profiles

    gpus, _ = discover("nvml", [])
    profiles = write_profiles(
        tmp_path,
        "profiles:\n  - slug: one-gpu\n    display_name: One GPU\n"
        "    resources: {cpu: 1, memory: 8Gi, gpus: 1}\n    environments: [deep-learning]\n"
        "    access: {everyone: true}\n",
    )
    studio = Studio(tmp_path, write_config(tmp_path, profiles, gpus={"discovery": "nvml", "inventory": []}))
    studio.start()
    try:
        assert studio.spawn("alice", {"profile": "one-gpu"}).status_code in (201, 202)
        allocated = studio.server_env("alice")["CUDA_VISIBLE_DEVICES"]
        assert allocated in {g.uuid for g in gpus}
        seen = json.loads(studio.run_in_kernel("alice", TORCH_PROBE, timeout=120))
        assert seen["count"] == 1, seen
        assert "GPU-" + seen["uuids"][0].removeprefix("GPU-") == allocated
        studio.stop_server("alice")
    finally:
        studio.stop()
