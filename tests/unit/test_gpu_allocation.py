"""GPU allocation on a real hub with an inventory of two GPUs."""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from hub_config.gpus import GPU, GPUAllocator, NoFreeGPUs, gpu_type_from_name, type_matches

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="per-user system accounts need root")


@needs_root
def test_three_concurrent_spawns_share_two_gpus(studio):
    users = ["alice", "ahmed", "bob"]
    with ThreadPoolExecutor(len(users)) as pool:
        results = dict(zip(users, pool.map(lambda u: studio.spawn(u, {"profile": "gpu-1"}), users)))
    started = [u for u, r in results.items() if r.status_code in (201, 202)]
    refused = [u for u, r in results.items() if r.status_code == 409]
    try:
        assert len(started) == 2 and len(refused) == 1, {u: (r.status_code, r.text) for u, r in results.items()}
        message = results[refused[0]].json()["message"]
        assert "No A100 is free for you now" in message and "0 of 2 are free" in message
        assert "join the GPU queue" in message
        devices = {studio.server_env(u)["CUDA_VISIBLE_DEVICES"] for u in started}
        assert devices == {"0", "1"}
        # a stop frees its device for the one who was refused
        studio.stop_server(started[0])
        r = studio.spawn(refused[0], {"profile": "gpu-1"})
        assert r.status_code in (201, 202), r.text
        freed = studio.server_env(refused[0])["CUDA_VISIBLE_DEVICES"]
        assert freed in {"0", "1"} and freed != studio.server_env(started[1])["CUDA_VISIBLE_DEVICES"]
        started = [started[1], refused[0]]
    finally:
        for user in started:
            studio.stop_server(user)


@needs_root
def test_multi_gpu_option_takes_that_many_devices(studio):
    r = studio.spawn("alice", {"profile": "gpu-multi", "gpus": "2", "memory": "64Gi"})
    assert r.status_code in (201, 202), r.text
    try:
        env = studio.server_env("alice")
        assert sorted(env["CUDA_VISIBLE_DEVICES"].split(",")) == ["0", "1"]
        assert env["MEM_LIMIT"] == str(64 * 1024**3)
        r = studio.spawn("bob", {"profile": "gpu-1"}, wait=False)
        assert r.status_code == 409
        assert "0 of 2 are free" in r.json()["message"]
    finally:
        studio.stop_server("alice")


def test_allocator_exclusive_and_release():
    alloc = GPUAllocator([GPU(0, "a100"), GPU(1, "a100"), GPU(2, "h100-sxm")])
    assert [g.index for g in alloc.allocate("a/", 2, "a100")] == [0, 1]
    with pytest.raises(NoFreeGPUs, match="0 of 2 are free"):
        alloc.allocate("b/", 1, "a100")
    assert [g.index for g in alloc.allocate("b/", 1, "h100")] == [2]
    with pytest.raises(NoFreeGPUs, match="no V100"):
        alloc.allocate("c/", 1, "v100")
    alloc.release("a/")
    assert alloc.summary() == {"a100": (2, 2), "h100-sxm": (0, 1)}
    assert alloc.claim("c/", [0]) and alloc.held_by("c/") == [GPU(0, "a100")]
    assert alloc.claim("d/", [0]) == []  # already held by c/


def test_gpu_type_names():
    assert gpu_type_from_name("NVIDIA A100-SXM4-80GB") == "a100-sxm4-80gb"
    assert gpu_type_from_name("NVIDIA H200") == "h200"
    assert type_matches("a100-sxm4-80gb", "a100") and type_matches("h200", None)
    assert not type_matches("a1000", "a100")
