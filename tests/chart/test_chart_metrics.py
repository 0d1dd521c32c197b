"""The chart's metrics objects (metrics: in the values): the ServiceMonitor, the NetworkPolicy
that lets the scrapers in and the Grafana dashboard's ConfigMap, all off by default. The
ServiceMonitor is a CRD kubernetes-validate does not know: its shape is checked here against
the hub Service it must find."""

import json
import re

import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry
from test_chart import CHART, HELM, NAMESPACE, RELEASE, VERSIONS, YAMLLINT, helm, values_args
from yamllint import linter

from hub_config import metrics

pytestmark = pytest.mark.skipif(HELM is None, reason="helm is not installed: run scripts/setup.sh --test")

ON = {
    "metrics": {
        "serviceMonitor": {"enabled": True, "interval": "1m", "labels": {"release": "kube-prometheus-stack"},
                           "tokenSecret": {"name": "aistudio-metrics-token"}},
        "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "AI Studio"}},
    },
}
HUB = f"{RELEASE}-hub"


def render(tmp_path, values=None) -> list[dict]:
    out = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values_args(None, values, tmp_path)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def rendered_text(tmp_path, values) -> str:
    return helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values_args(None, values, tmp_path)).stdout


def one(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def test_off_by_default(tmp_path):
    docs = render(tmp_path)
    assert not [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert not [d for d in docs if d["metadata"]["name"] in (f"{HUB}-metrics", f"{HUB}-grafana-dashboard")]


def test_lint_and_yamllint_with_metrics_on(tmp_path):
    result = helm("lint", str(CHART), "--strict", "--namespace", NAMESPACE, *values_args(None, ON, tmp_path))
    assert "0 chart(s) failed" in result.stdout
    problems = [f"line {p.line}: {p.desc} ({p.rule})" for p in linter.run(rendered_text(tmp_path, ON), YAMLLINT)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_other_object_is_valid_kubernetes_with_metrics_on(tmp_path, version):
    for doc in render(tmp_path, ON):
        if doc["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("base_url", ["/", "/studio/"])
def test_the_service_monitor_scrapes_the_hub_service_with_the_token(tmp_path, base_url):
    docs = render(tmp_path, {**ON, "hub": {"baseUrl": base_url}})
    monitor = one(docs, "ServiceMonitor", HUB)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["metadata"]["labels"]["app.kubernetes.io/component"] == "hub"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert set(spec["selector"]) == {"matchLabels"}
    wanted = spec["selector"]["matchLabels"]
    services = [d for d in docs if d["kind"] == "Service" and wanted.items() <= d["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in services] == [HUB], "the selector finds the hub Service, and only it"
    (endpoint,) = spec["endpoints"]
    port = next(p for p in services[0]["spec"]["ports"] if p["name"] == endpoint["port"])
    hub = one(docs, "Deployment", HUB)["spec"]["template"]["spec"]["containers"][0]
    container_port = next(p for p in hub["ports"] if p["name"] == port["targetPort"])
    assert container_port["containerPort"] == 8081  # JupyterHub's own port, where /hub/metrics is
    assert endpoint["path"] == f"{base_url}hub/metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("1m", "10s")
    assert endpoint["authorization"] == {
        "type": "Bearer", "credentials": {"name": "aistudio-metrics-token", "key": "token"}}
    assert set(endpoint) == {"port", "path", "interval", "scrapeTimeout", "authorization"}


def test_the_scrapers_reach_the_hubs_port(tmp_path):
    docs = render(tmp_path, ON)
    policy = one(docs, "NetworkPolicy", f"{HUB}-metrics")
    hub_pod = one(docs, "Deployment", HUB)["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= hub_pod.items()
    assert policy["spec"]["ingress"] == [{
        "from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
        "ports": [{"port": 8081, "protocol": "TCP"}],
    }]
    # the hub's own policy is left as it is
    assert one(docs, "NetworkPolicy", HUB) == one(render(tmp_path), "NetworkPolicy", HUB)
    own = {"metrics": {"serviceMonitor": {**ON["metrics"]["serviceMonitor"],
                                          "from": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]}}}
    assert one(render(tmp_path, own), "NetworkPolicy", f"{HUB}-metrics")["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"team": "ops"}}}]
    for off in ({**ON, "hub": {"networkPolicy": {"enabled": False}}},
                {"metrics": {"serviceMonitor": {**ON["metrics"]["serviceMonitor"], "from": []}}}):
        assert not [d for d in render(tmp_path, off) if d["metadata"]["name"] == f"{HUB}-metrics"]


def metric_names() -> set[str]:
    """Every metric the studio serves, as its families name them."""
    state = metrics.HubState(usage_url="x", profiles_dir="x")
    registry = CollectorRegistry()
    m = metrics.StudioMetrics(state, registry)
    return set(metrics.COMPUTED) | {c._name for c in (m.refused, m.spawn_duration, m.mounts)}


def test_the_grafana_dashboard_shows_every_metric(tmp_path):
    docs = render(tmp_path, ON)
    config_map = one(docs, "ConfigMap", f"{HUB}-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "AI Studio"}
    (text,) = config_map["data"].values()
    dashboard = json.loads(text)
    assert dashboard == json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_(total|bucket|count|sum)$", "", n) for e in exprs for n in re.findall(r"\baistudio_\w+", e)}
    known = metric_names()
    assert used == known, f"not shown: {known - used}; unknown: {used - known}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


BAD = [
    ({"metrics": {"serviceMonitor": {"enabled": True}}}, ["metrics.serviceMonitor.tokenSecret.name"]),
    ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, ["/metrics/serviceMonitor/interval"]),
    ({"metrics": {"serviceMonitor": {"tokenSecret": {"nmae": "x"}}}}, ["/metrics/serviceMonitor/tokenSecret", "'nmae'"]),
    ({"metrics": {"grafanaDashboard": {"enable": True}}}, ["/metrics/grafanaDashboard", "'enable'"]),
    ({"metrics": {"serviceMonitor": {"from": [{"podSelctor": {}}]}}}, ["/metrics/serviceMonitor/from/0", "'podSelctor'"]),
]


@pytest.mark.parametrize("values, expected", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_metrics_values_are_refused_naming_the_key(values, expected, tmp_path):
    result = helm("template", RELEASE, str(CHART), *values_args(None, values, tmp_path), check=False)
    assert result.returncode != 0, f"accepted: {values}"
    for text in expected:
        assert text in result.stderr, result.stderr


def test_values_yaml_has_both_off():
    values = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]
    assert values["serviceMonitor"]["enabled"] is False and values["grafanaDashboard"]["enabled"] is False
