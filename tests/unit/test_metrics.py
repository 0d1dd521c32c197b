"""The studio's metrics without a hub: the scrape-time collector over a usage store, a GPU
allocator, a quota policy and a datasets registry made here; the counters the spawners
feed; the service checks; the spawner's hooks."""

import asyncio
import logging
import re
import socket
import time
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tornado import web

from hub_config import metrics, quotas
from hub_config.datasets import DatasetStore
from hub_config.gpus import GPU, GPUAllocator
from hub_config.spawners import mixin
from hub_config.usage.store import UsageStore

PROFILES = """\
profiles:
  - slug: cpu
    display_name: CPU
    resources: {cpu: 1, memory: 1Gi}
    access: {everyone: true}
  - slug: one-gpu
    display_name: One GPU
    resources: {cpu: 1, memory: 1Gi, gpus: 1, gpu_type: a100}
    access: {groups: [residents]}
quotas:
  period: week
  groups:
    students:
      group: {max_gpus: 2}
"""


def samples(registry) -> dict:
    """{(sample name, sorted labels): value} of everything ``registry`` exposes."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def value(found: dict, name: str, **labels):
    return found.get((name, tuple(sorted(labels.items()))))


class FixedHealth:
    def __init__(self, up):
        self.up = up

    def current(self):
        return dict(self.up)


@pytest.fixture
def state(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "p.yaml").write_text(PROFILES)
    usage = UsageStore(f"sqlite:///{tmp_path}/usage.sqlite")
    allocator = GPUAllocator([GPU(0, "a100"), GPU(1, "a100"), GPU(2, "h100")])
    datasets = DatasetStore(f"sqlite:///{tmp_path}/datasets.sqlite")
    st = metrics.HubState(usage_url="unused", profiles_dir=str(profiles), datasets_url="unused")
    st.usage = lambda: usage
    st.allocator = lambda: allocator
    st.datasets = lambda: datasets
    return SimpleNamespace(state=st, usage=usage, allocator=allocator, datasets=datasets)


def test_gpus_held_per_type_and_group_and_free_per_type(state):
    registry = CollectorRegistry()
    registry.register(metrics.StudioCollector(state.state, FixedHealth({})))
    a = state.usage.open("alice", "", ["residents", "students"], "one-gpu", 1, "a100", 1, 1 << 30)
    state.usage.open("carol", "", [], "two", 2, None, 1, 1 << 30)
    state.usage.open("bob", "", ["students"], "cpu", 0, None, 1, 1 << 30)
    state.allocator.allocate("alice/", 1, "a100")
    found = samples(registry)
    assert value(found, "aistudio_gpus_held", gpu_type="a100", group="residents") == 1
    assert value(found, "aistudio_gpus_held", gpu_type="a100", group="students") == 1
    assert value(found, "aistudio_gpus_held", gpu_type="any", group="(no group)") == 2
    assert not [k for k in found if k[0] == "aistudio_gpus_held" and ("gpu_type", "a100") in k[1]
                and ("group", "(no group)") in k[1]]  # a CPU server holds nothing
    assert value(found, "aistudio_gpus_free", gpu_type="a100") == 1
    assert value(found, "aistudio_gpus_free", gpu_type="h100") == 1
    assert value(found, "aistudio_gpus_devices", gpu_type="a100") == 2
    # a stop: the group's series stays, at 0
    state.usage.close(a)
    state.allocator.release("alice/")
    found = samples(registry)
    assert value(found, "aistudio_gpus_held", gpu_type="a100", group="residents") == 0
    assert value(found, "aistudio_gpus_free", gpu_type="a100") == 2


def test_group_gpu_hours_of_the_period_from_the_stores_view(state):
    registry = CollectorRegistry()
    registry.register(metrics.StudioCollector(state.state, FixedHealth({})))
    start = quotas.period_start("week").timestamp()
    before = state.usage.open("alice", "", ["residents"], "one-gpu", 1, "a100", 1, 1, now=start - 3600)
    state.usage.close(before, now=start + 2 * 3600)  # 2 of its 3 hours fall in this week
    state.usage.open("dora", "", ["residents", "students"], "one-gpu", 2, "a100", 1, 1, now=time.time() - 1800)
    found = samples(registry)
    residents = value(found, "aistudio_group_gpu_hours", group="residents", period="week")
    assert residents == pytest.approx(2 + 1, abs=0.01)  # alice's 2 closed hours, dora's running 2 GPUs × ½ h
    assert value(found, "aistudio_group_gpu_hours", group="students", period="week") == pytest.approx(1, abs=0.01)
    # a group of the policy with no use yet is shown at 0
    state.usage.close(state.usage.open("x", "", ["other"], "one-gpu", 1, "a100", 1, 1, now=time.time() - 3600))
    found = samples(registry)
    assert value(found, "aistudio_group_gpu_hours", group="other", period="week") == pytest.approx(1, abs=0.01)
    assert {k[1] for k in found if k[0] == "aistudio_group_gpu_hours"} >= {
        (("group", g), ("period", "week")) for g in ("residents", "students", "other")}


def test_datasets_by_status_and_scans_by_result_read_from_the_registry(state):
    registry = CollectorRegistry()
    registry.register(metrics.StudioCollector(state.state, FixedHealth({})))
    ds = state.datasets
    for name in ("alpha", "beta", "gamma"):
        ds.add(name, actor="steward", path=f"/data/{name}")
    facts = {"files": [], "rows": 0, "size_bytes": 0, "format": "csv"}
    ds.record_scan("alpha", actor="steward", report={"passed": True, "summary": []}, facts=facts)
    ds.record_scan("beta", actor="steward", report={"passed": False, "summary": ['f.csv: column "passed": true']},
                   facts=facts)
    ds.record_scan("beta", actor="steward", report={"passed": False, "summary": []}, facts=facts)
    ds.publish("alpha", actor="steward")
    found = samples(registry)
    assert value(found, "aistudio_datasets", status="published", scan_status="pass") == 1
    assert value(found, "aistudio_datasets", status="draft", scan_status="fail") == 1
    assert value(found, "aistudio_datasets", status="draft", scan_status="not-scanned") == 1
    assert value(found, "aistudio_dataset_scans_total", result="passed") == 1
    assert value(found, "aistudio_dataset_scans_total", result="failed") == 2


def test_service_health_and_parts_that_fail_are_left_out(state, caplog):
    registry = CollectorRegistry()
    state.state.datasets = lambda: (_ for _ in ()).throw(OSError("database away"))
    registry.register(metrics.StudioCollector(state.state, FixedHealth({"usage": 1, "datasets": 0})))
    found = samples(registry)
    assert value(found, "aistudio_service_up", service="usage") == 1
    assert value(found, "aistudio_service_up", service="datasets") == 0
    assert not [k for k in found if k[0].startswith("aistudio_dataset")]
    assert value(found, "aistudio_gpus_free", gpu_type="a100") == 2  # the rest is there
    assert "datasets left out of this scrape: database away" in caplog.text


def test_registering_reads_no_state():
    """The default registry describes a collector at registration: that must not read stores."""
    def away():
        raise AssertionError("read at registration")

    st = metrics.HubState(usage_url="x", profiles_dir="x")
    st.usage = st.quota_policy = st.allocator = st.datasets = away
    registry = CollectorRegistry(auto_describe=True)
    m = metrics.StudioMetrics(st, registry, health=FixedHealth({}))
    assert {f.name for f in m.collector.describe()} == set(metrics.COMPUTED)


def test_counters_fed_by_the_spawners():
    registry = CollectorRegistry()
    st = metrics.HubState(usage_url="x", profiles_dir="x")
    st.usage = lambda: UsageStore("sqlite://")
    m = metrics.StudioMetrics(st, registry, health=FixedHealth({}))
    m.hear("refused", reason="quota", profile="one-gpu")
    m.hear("refused", reason="quota", profile="one-gpu")
    m.hear("refused", reason="malformed", profile=None)
    m.hear("ready", profile="cpu", seconds=7.5)
    m.hear("mounted", dataset="alpha")
    m.hear("something-new", x=1)  # ignored
    found = samples(registry)
    assert value(found, "aistudio_launches_refused_total", reason="quota", profile="one-gpu") == 2
    assert value(found, "aistudio_launches_refused_total", reason="malformed", profile="(unknown)") == 1
    assert value(found, "aistudio_spawn_duration_seconds_count", profile="cpu") == 1
    assert value(found, "aistudio_spawn_duration_seconds_bucket", profile="cpu", le="10.0") == 1
    assert value(found, "aistudio_spawn_duration_seconds_bucket", profile="cpu", le="5.0") == 0
    assert value(found, "aistudio_dataset_mounts_total", dataset="alpha") == 1


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broken(web.RequestHandler):
    def get(self):
        raise web.HTTPError(503)


async def test_service_health_checks_in_the_background():
    port, closed = _free_port(), _free_port()
    server = web.Application([(r"/broken", Broken)]).listen(port, "127.0.0.1")
    try:
        services = {"usage": f"http://127.0.0.1:{port}", "broken": f"http://127.0.0.1:{port}/broken",
                    "gone": f"http://127.0.0.1:{closed}"}
        health = metrics.ServiceHealth(lambda: services, every=30, timeout=2)
        assert health.current() == {}  # the first scrape starts the check and shows nothing yet
        await asyncio.wait_for(health._task, 10)
        assert health.current() == {"usage": 1, "broken": 0, "gone": 0}  # a 404 answers; a 503 does not
        assert health._task.done()  # the answers are fresh: no new check
    finally:
        server.stop()


# --------------------------------------------------------------------------- the spawner's hooks


class Spawner(mixin.ProfileSpawnerMixin):
    """The mixin alone, with a user and no usage records."""

    def __init__(self, profiles_dir, user="bob", groups=("students",), **kwargs):
        super().__init__(profiles_dir=profiles_dir, **kwargs)
        self.user = SimpleNamespace(name=user, groups=[SimpleNamespace(name=g) for g in groups])
        self.handler = None
        self.user_options = {}
        self.log = logging.getLogger("test")
        self._log_name = user

    def options_sent_with_request(self):
        return True  # as a POST naming its options


@pytest.fixture
def told():
    heard = []
    mixin.listeners.append(lambda event, **fields: heard.append((event, fields)))
    yield heard
    mixin.listeners.pop()


async def test_the_spawn_future_tells_ready_and_refusals(tmp_path, told):
    (tmp_path / "p.yaml").write_text(PROFILES)
    spawner = Spawner(str(tmp_path))
    loop = asyncio.get_running_loop()
    spawner._outcome_profile = "cpu"
    done = loop.create_future()
    spawner._spawn_future = done  # as JupyterHub sets it at the start request
    assert spawner._spawn_future is done
    await asyncio.sleep(0.05)
    done.set_result(None)
    await asyncio.sleep(0)
    assert told[0][0] == "ready" and told[0][1]["profile"] == "cpu" and told[0][1]["seconds"] >= 0.05
    for status, reason in ((409, "no_free_gpu"), (503, None), (429, "quota")):
        failed = loop.create_future()
        spawner._spawn_future = failed
        failed.set_exception(web.HTTPError(status))
        await asyncio.sleep(0)
        if reason:
            assert told[-1] == ("refused", {"reason": reason, "profile": "cpu"})
    assert [e for e, _ in told] == ["ready", "refused", "refused"]  # a 503 is no refusal
    spawner._spawn_future = None  # JupyterHub clears it
    assert spawner._spawn_future is None


def test_a_refusal_is_counted_under_a_profile_of_the_set_only(tmp_path):
    (tmp_path / "p.yaml").write_text(PROFILES)
    spawner = Spawner(str(tmp_path))
    for options, status, profile in (({"profile": "one-gpu"}, 403, "one-gpu"),
                                     ({"profile": "x" * 60}, 400, None),
                                     ({"profile": "cpu", "colour": "red"}, 400, "cpu")):
        spawner.user_options = options
        with pytest.raises(web.HTTPError) as e:
            spawner.decide_launch()
        assert e.value.status_code == status and spawner._outcome_profile == profile
    spawner.user_options = {"profile": "cpu"}
    spawner.decide_launch()
    assert spawner._outcome_profile == "cpu"


def test_a_failing_listener_never_fails_a_launch(caplog):
    def broken(event, **fields):
        raise RuntimeError("no")

    mixin.listeners.append(broken)
    try:
        mixin.tell("ready", profile="cpu", seconds=1)
    finally:
        mixin.listeners.remove(broken)
    assert "A listener of ready" in caplog.text


def test_install_registers_once_and_listens(tmp_path, monkeypatch):
    from hub_config import config as studio_config

    path = tmp_path / "aistudio.yaml"
    path.write_text(f"profiles_dir: {tmp_path}\ndata_dir: {tmp_path / 'data'}\n")
    cfg = studio_config.load(path)
    registry = CollectorRegistry()
    monkeypatch.setattr(metrics, "_installed", None)
    monkeypatch.setattr(mixin, "listeners", [])
    first = metrics.install(cfg, registry)
    assert metrics.install(cfg, registry) is first and mixin.listeners == [first.hear]
    assert first.collector.state.usage_url == f"sqlite:///{tmp_path / 'data'}/usage.sqlite"
    assert first.collector.state.gpus is not None and first.collector.state.datasets_url is None


def test_docs_name_every_metric_with_its_type():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    listed = dict(re.findall(r"^\| `(aistudio_\w+)` \| (\w+) \|", docs, re.MULTILINE))
    registry = CollectorRegistry()
    m = metrics.StudioMetrics(metrics.HubState(usage_url="x", profiles_dir="x"), registry, health=FixedHealth({}))
    served = {name + ("_total" if kind == "counter" else ""): kind for name, (kind, _, _) in metrics.COMPUTED.items()}
    served.update({f"{c._name}_total": "counter" for c in (m.refused, m.mounts)})
    served[m.spawn_duration._name] = "histogram"
    assert listed == served
