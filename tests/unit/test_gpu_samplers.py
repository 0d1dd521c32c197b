"""GPU utilisation samplers (hub_config/lifecycle/samplers.py).

The DCGM sampler reads a real dcgm-exporter scrape (tests/unit/data/dcgm_exporter_metrics.txt,
8x H100, GPU 0 held by one pod) served by a real HTTP server on loopback; cases the real
scrape does not show (one pod holding two GPUs, busy GPUs, the exporter's old label names)
are made from it by rewriting its DCGM_FI_DEV_GPU_UTIL lines, each test saying which.
NVML is asked for real: on this machine (no GPU) every value must be None, without raising.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from tornado import netutil, web
from tornado.httpserver import HTTPServer

from hub_config.lifecycle.samplers import (
    DCGMSampler,
    FileSampler,
    NVMLSampler,
    Sampler,
    Target,
    idle_since,
    parse_dcgm,
)

SAMPLE = Path(__file__).parent / "data" / "dcgm_exporter_metrics.txt"
REAL = SAMPLE.read_text()
NS, POD = "dynamo-workload", "vllm-agg-0-vllmdecodeworker-s65j5"  # holds GPU 0 in the real scrape


def with_gpu_util(text: str, gpu: int, value: float, pod: tuple[str, str] | None = None, old_labels: bool = False) -> str:
    """``text`` with the DCGM_FI_DEV_GPU_UTIL line of GPU ``gpu`` reading ``value`` and, with
    ``pod=(namespace, name)``, held by that pod, labelled as dcgm-exporter labels it
    (container/namespace/pod, or container_name/pod_namespace/pod_name with old_labels)."""
    pattern = re.compile(rf'^(DCGM_FI_DEV_GPU_UTIL\{{gpu="{gpu}",.*?)(,container="[^"]*".*)?\}} \S+$', re.M)
    match = pattern.search(text)
    assert match, f"no DCGM_FI_DEV_GPU_UTIL line for GPU {gpu}"
    labels = match.group(1)
    if pod:
        names = ("container_name", "pod_namespace", "pod_name") if old_labels else ("container", "namespace", "pod")
        labels += f',{names[0]}="main",{names[1]}="{pod[0]}",{names[2]}="{pod[1]}"'
    return text[: match.start()] + f"{labels}}} {value:g}" + text[match.end():]


# --- parse_dcgm ---------------------------------------------------------------------------


def test_parse_dcgm_reads_the_real_scrape():
    # the real scrape: 8 GPUs, DCGM_FI_DEV_GPU_UTIL 0 on each, only GPU 0 held by a pod
    assert parse_dcgm(REAL) == {(NS, POD): [0.0]}


def test_parse_dcgm_keeps_the_utilisation_metric_only_and_every_gpu_of_a_pod():
    # the real scrape with GPU 0 at 37 % and GPU 3 given to the same pod at 81 %;
    # the pod's temperature and power lines (30, 113.611) must not be read as utilisation
    text = with_gpu_util(with_gpu_util(REAL, 0, 37, (NS, POD)), 3, 81, (NS, POD))
    assert parse_dcgm(text) == {(NS, POD): [37.0, 81.0]}


def test_parse_dcgm_reads_the_old_label_names_and_skips_empty_ones():
    text = with_gpu_util(REAL, 5, 12.5, ("team-a", "jupyter-bea"), old_labels=True)
    # a GPU no pod holds, as exporters before 2.x wrote it: empty pod labels
    text += 'DCGM_FI_DEV_GPU_UTIL{gpu="8",UUID="GPU-x",container="",namespace="",pod=""} 44\n'
    assert parse_dcgm(text) == {(NS, POD): [0.0], ("team-a", "jupyter-bea"): [12.5]}


def test_parse_dcgm_of_an_empty_scrape_is_empty_and_of_html_fails():
    assert parse_dcgm("") == {}
    assert parse_dcgm("# only a comment\n") == {}
    with pytest.raises(ValueError):
        parse_dcgm("<html><body>Bad Gateway</body></html>\n")


# --- DCGMSampler against exporters on loopback --------------------------------------------


class Exporter(web.RequestHandler):
    def initialize(self, state):
        self.state = state

    def get(self):
        self.state["scrapes"] += 1
        status, body = self.state["answer"]
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(body)


@pytest.fixture
async def exporters():
    """Two dcgm-exporters on free loopback ports (two GPU nodes), each answering its state's
    ``answer`` (status, body): the real scrape by default."""
    servers, states = [], []
    for _ in range(2):
        state = {"answer": (200, REAL), "scrapes": 0}
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        server = HTTPServer(web.Application([("/metrics", Exporter, {"state": state})]))
        server.add_sockets(sockets)
        state["url"] = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/metrics"
        servers.append(server)
        states.append(state)
    yield states
    for server in servers:
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER = Target("alice/", pod=POD, namespace=NS)
UNKNOWN = Target("bob/", pod="jupyter-bob", namespace=NS)


async def test_dcgm_matches_targets_by_pod_and_namespace(exporters):
    sampler = DCGMSampler(exporters[0]["url"])
    other_namespace = Target("eve/", pod=POD, namespace="default")
    no_pod = Target("carl/")
    got = await sampler.sample([SERVER, UNKNOWN, other_namespace, no_pod])
    # the real value is 0 %: known and idle, which is not the same as unknown
    assert got == {"alice/": 0.0, "bob/": None, "eve/": None, "carl/": None}
    assert exporters[0]["scrapes"] == 1
    assert isinstance(sampler, Sampler) and sampler.name == "dcgm"


async def test_dcgm_averages_the_gpus_of_one_pod(exporters):
    # the real scrape, with the pod's GPU 0 at 30 % and GPU 1 also given to it, at 90 %
    exporters[0]["answer"] = (200, with_gpu_util(with_gpu_util(REAL, 0, 30, (NS, POD)), 1, 90, (NS, POD)))
    assert await DCGMSampler([exporters[0]["url"]]).sample([SERVER]) == {"alice/": 60.0}


async def test_dcgm_reads_every_node_and_a_pod_without_namespace(exporters):
    # node 2's exporter: the real scrape with bea's pod on GPU 2 at 55 % (old label names)
    exporters[1]["answer"] = (200, with_gpu_util(REAL, 2, 55, ("team-a", "jupyter-bea"), old_labels=True))
    sampler = DCGMSampler([e["url"] for e in exporters])
    bea = Target("bea/", pod="jupyter-bea", namespace="team-a")
    bea_no_namespace = Target("bea/gpu", pod="jupyter-bea")
    got = await sampler.sample([bea, bea_no_namespace, UNKNOWN])
    assert got == {"bea/": 55.0, "bea/gpu": 55.0, "bob/": None}
    assert [e["scrapes"] for e in exporters] == [1, 1]


async def test_dcgm_exporter_down_is_unknown_without_raising(exporters):
    down = f"http://127.0.0.1:{free_port()}/metrics"
    assert await DCGMSampler(down, timeout=2).sample([SERVER, UNKNOWN]) == {"alice/": None, "bob/": None}
    # one node's exporter down: the pods the other reports are still known
    got = await DCGMSampler([down, exporters[0]["url"]], timeout=2).sample([SERVER, UNKNOWN])
    assert got == {"alice/": 0.0, "bob/": None}


async def test_dcgm_http_error_or_garbage_is_unknown(exporters):
    exporters[0]["answer"] = (500, "dcgm-exporter: failed to collect metrics")
    sampler = DCGMSampler(exporters[0]["url"])
    assert await sampler.sample([SERVER]) == {"alice/": None}
    exporters[0]["answer"] = (200, "<html>not metrics</html>")
    assert await sampler.sample([SERVER]) == {"alice/": None}
    exporters[0]["answer"] = (200, REAL)  # recovers
    assert await sampler.sample([SERVER]) == {"alice/": 0.0}
    assert exporters[0]["scrapes"] == 3


async def test_dcgm_slow_exporter_times_out(exporters):
    # a listening socket that never answers: the request must give up after the timeout
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/metrics"
        assert await DCGMSampler(url, timeout=0.5).sample([SERVER]) == {"alice/": None}


async def test_dcgm_failure_warns_once_while_it_repeats(exporters, caplog):
    exporters[0]["answer"] = (500, "failed")
    sampler = DCGMSampler(exporters[0]["url"])
    with caplog.at_level("DEBUG", logger="aistudio.lifecycle.samplers"):
        for _ in range(3):
            await sampler.sample([SERVER])
        exporters[0]["answer"] = (200, REAL)
        await sampler.sample([SERVER])
        exporters[0]["answer"] = (500, "failed")
        await sampler.sample([SERVER])
    levels = [r.levelname for r in caplog.records if r.name == "aistudio.lifecycle.samplers"]
    assert levels == ["WARNING", "DEBUG", "DEBUG", "INFO", "WARNING"]


def test_dcgm_needs_a_url():
    with pytest.raises(ValueError):
        DCGMSampler([])


# --- FileSampler ---------------------------------------------------------------------------


async def test_file_sampler_reads_the_file_at_each_sample(tmp_path):
    path = tmp_path / "utilisation.json"
    sampler = FileSampler(path)
    targets = [Target("alice/"), Target("bob/gpu"), Target("carl/"), Target("dan/"), Target("eve/")]
    assert await sampler.sample(targets) == dict.fromkeys(["alice/", "bob/gpu", "carl/", "dan/", "eve/"])  # no file yet
    path.write_text(json.dumps({"alice/": 87.5, "bob/gpu": 0, "carl/": None, "dan/": "busy", "eve/": 130}))
    assert await sampler.sample(targets) == {"alice/": 87.5, "bob/gpu": 0.0, "carl/": None, "dan/": None, "eve/": None}
    path.write_text(json.dumps({"alice/": 3}))  # read again, not cached
    assert (await sampler.sample(targets[:2])) == {"alice/": 3.0, "bob/gpu": None}
    path.write_text("{not json")
    assert await sampler.sample(targets[:1]) == {"alice/": None}
    path.write_text("[1, 2]")
    assert await sampler.sample(targets[:1]) == {"alice/": None}
    assert sampler.name == "file" and isinstance(sampler, Sampler)


# --- NVMLSampler on this machine ----------------------------------------------------------


async def test_nvml_sampler_without_a_gpu_returns_none_for_every_target():
    from hub_config.gpus import discover_nvml

    if discover_nvml():
        pytest.skip("this machine has an NVIDIA GPU: tests/gpu/test_nvml_sampler.py covers it")
    sampler = NVMLSampler()
    targets = [Target("alice/", devices=("GPU-8f1f4d06-07fd-27a7-52d5-e58aa060d256",)), Target("bob/", devices=("0", "1")),
               Target("carl/")]
    try:
        assert await sampler.sample(targets) == {"alice/": None, "bob/": None, "carl/": None}
        assert await sampler.sample(targets[:1]) == {"alice/": None}  # again: NVML is not retried
    finally:
        sampler.close()
    sampler.close()  # twice is harmless
    assert sampler.name == "nvml" and isinstance(sampler, Sampler)


async def test_nvml_sampler_means_over_devices_and_unreadable_is_none(monkeypatch):
    """The NVML calls the sampler makes, answered by a stand-in pynvml (this machine has no
    GPU): by UUID or by index, a mean over a target's devices, None for any unreadable one."""
    import types

    util = {"GPU-a": 20, "GPU-b": 70, 0: 5}
    calls = []

    class NVMLError(Exception):
        pass

    def handle_by_uuid(uuid):
        if uuid not in util:
            raise NVMLError("Not Found")
        return uuid

    fake = types.SimpleNamespace(
        nvmlInit=lambda: calls.append("init"),
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetHandleByUUID=handle_by_uuid,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=util[h], memory=0),
    )
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
    sampler = NVMLSampler()
    targets = [Target("two/", devices=("GPU-a", "GPU-b")), Target("index/", devices=("0",)),
               Target("lost/", devices=("GPU-a", "GPU-gone")), Target("cpu/")]
    assert await sampler.sample(targets) == {"two/": 45.0, "index/": 5.0, "lost/": None, "cpu/": None}
    util["GPU-a"] = 100
    assert await sampler.sample(targets[:1]) == {"two/": 85.0}
    sampler.close()
    assert calls == ["init", "shutdown"]  # initialised once, shut down on close


# --- idle_since ------------------------------------------------------------------------------


@pytest.mark.parametrize("samples, expected", [
    ([], None),  # nothing sampled yet
    ([(0, None), (60, None)], None),  # nothing known
    ([(0, 2.0), (60, 1.0), (120, 0.0)], 0),  # idle since the first sample
    ([(0, 90.0), (60, 3.0), (120, 0.0)], 60),  # idle since the first idle sample after the busy one
    ([(0, 3.0), (60, 90.0), (120, 3.0), (180, 4.0)], 120),  # busy in between: the run restarts
    ([(0, 3.0), (60, 4.0), (120, 50.0)], None),  # busy now
    ([(0, 3.0), (60, 10.0)], None),  # at the threshold is busy
    ([(0, 9.99), (60, 0.0)], 0),  # below is idle
    ([(0, 90.0), (60, None), (120, 2.0), (180, None), (240, 1.0)], 120),  # unknowns break nothing
    ([(0, 90.0), (60, None), (120, None)], None),  # latest known busy: unknowns after it are not idle
    ([(0, 2.0), (60, None), (120, None)], 0),  # latest known idle, then unknown
    ([(0, None), (60, 2.0)], 60),  # unknown before the first known sample is not idle evidence
    ([(120, 1.0), (0, 95.0), (60, 2.0)], 60),  # put in time order
    ([(0, 95.0), (60, 2.0), (400, 99.0)], 60),  # a sample later than now is ignored
])
def test_idle_since(samples, expected):
    assert idle_since(samples, threshold=10.0, now=300.0) == expected
