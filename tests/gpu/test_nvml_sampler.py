"""On a machine with an NVIDIA GPU: NVMLSampler (hub_config/lifecycle/samplers.py) sees a
busy GPU busy and an idle GPU idle.

The load is a CUDA matmul loop in a subprocess (torch), shown only the sampled GPU through
the same environment the studio gives a server (hub_config.gpus.cuda_env). Skipped, saying
why, where there is no GPU (tests/gpu/conftest.py) or no torch with CUDA.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import sys
import time

import pytest

from hub_config.gpus import cuda_env, discover_nvml
from hub_config.lifecycle.samplers import NVMLSampler, Target

pytestmark = pytest.mark.gpu

BUSY, IDLE = 30.0, 10.0  # percent

LOAD = r"""
import sys, time
import torch
if not torch.cuda.is_available():
    print("nocuda", flush=True)
    sys.exit(3)
a = torch.randn(8192, 8192, device="cuda")
b = torch.randn(8192, 8192, device="cuda")
(a @ b).sum().item()
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    for _ in range(8):
        c = a @ b
    torch.cuda.synchronize()
"""


async def readings(sampler: NVMLSampler, targets: list[Target], count: int, every: float = 0.5) -> list[dict]:
    out = []
    for _ in range(count):
        out.append(await sampler.sample(targets))
        await asyncio.sleep(every)
    return out


async def test_busy_gpu_reads_busy_and_idle_gpu_reads_idle():
    if importlib.util.find_spec("torch") is None:
        pytest.skip(f"torch is not installed in {sys.prefix}: no CUDA load to sample")
    gpu = discover_nvml()[0]
    # the GPU as a server's CUDA_VISIBLE_DEVICES names it (UUID), and by NVML index
    targets = [Target("alice/", devices=(gpu.visible_id,)), Target("alice/by-index", devices=(str(gpu.index),))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUDA_")}
    env.update(cuda_env([gpu]))
    load = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOAD, "120", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    sampler = NVMLSampler()
    try:
        line = (await asyncio.wait_for(load.stdout.readline(), 180)).decode().strip()
        if line == "nocuda":
            pytest.skip("torch here has no CUDA (a CPU-only build): no CUDA load to sample")
        assert line == "ready", (await load.stderr.read()).decode()[-2000:]
        await asyncio.sleep(1.5)  # NVML's utilisation covers the last 1/6 s to 1 s
        busy = await readings(sampler, targets, 6)
        for target in targets:
            values = [r[target.key] for r in busy]
            assert None not in values, values
            assert statistics.median(values) > BUSY, (target, values)

        load.terminate()
        await asyncio.wait_for(load.wait(), 60)
        # idle once the load is gone: three readings in a row below IDLE within 30 s
        deadline, streak, seen = time.monotonic() + 30, 0, []
        while streak < 3 and time.monotonic() < deadline:
            reading = await sampler.sample(targets)
            seen.append(reading)
            values = list(reading.values())
            streak = streak + 1 if None not in values and max(values) < IDLE else 0
            await asyncio.sleep(0.5)
        assert streak >= 3, seen[-6:]
    finally:
        if load.returncode is None:
            load.kill()
            await load.wait()
        sampler.close()


async def test_unknown_device_reads_none_and_close_allows_sampling_again():
    gpu = discover_nvml()[0]
    sampler = NVMLSampler()
    try:
        got = await sampler.sample([Target("a/", devices=("GPU-00000000-0000-0000-0000-000000000000",)),
                                    Target("b/", devices=(gpu.visible_id,))])
        assert got["a/"] is None
        assert got["b/"] is not None and 0 <= got["b/"] <= 100
        sampler.close()
        again = await sampler.sample([Target("b/", devices=(gpu.visible_id,))])
        assert again["b/"] is not None
    finally:
        sampler.close()
