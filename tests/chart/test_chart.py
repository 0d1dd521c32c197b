"""The Helm chart (chart/), offline: helm lint and helm template over the values of
tests/chart/values/, every manifest validated against the Kubernetes schemas of 1.30 and
of the newest version kubernetes-validate ships, yamllint, the values schema refusing bad
values, and the rendered hub config read by the studio's own loader.

helm is installed into .venv/bin by scripts/setup.sh --test."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubespawner import KubeSpawner
from traitlets.config.loader import PyFileConfigLoader
from yamllint import linter
from yamllint.config import YamlLintConfig

from hub_config import config as studio_config
from hub_config import configurer
from hub_config.datasets import DatasetStore, MountSpec
from hub_config.datasets import service as datasets_service
from hub_config.datasets.mounts import k8s_volumes
from hub_config.profiles import load_profiles
from hub_config.services.base import listen_address

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "chart"
FIXTURES = {p.stem: p for p in sorted((REPO / "tests" / "chart" / "values").glob("*.yaml"))}
VERSIONS = ["1.30", kubernetes_validate.latest_version()]
RELEASE, NAMESPACE = "aistudio", "lab"
MOUNT = "/etc/aistudio"


def _find_helm():
    local = Path(sys.prefix) / "bin" / "helm"
    return str(local) if local.exists() else shutil.which("helm")


HELM = _find_helm()
pytestmark = pytest.mark.skipif(HELM is None, reason="helm is not installed: run scripts/setup.sh --test")

YAMLLINT = YamlLintConfig(
    "extends: default\n"
    "rules:\n"
    "  line-length: disable\n"
    "  document-start: disable\n"
    "  comments: {min-spaces-from-content: 1}\n"
    "  comments-indentation: disable\n"
    "  indentation: {spaces: consistent, indent-sequences: whatever}\n"
    "  truthy: {check-keys: false}\n"
    "  braces: {max-spaces-inside: 1}\n"
    "  brackets: {max-spaces-inside: 1}\n"
)


def helm(*args, check=True):
    result = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


def values_args(fixture=None, extra=None, tmp=None):
    args = []
    if fixture:
        args += ["-f", str(FIXTURES[fixture])]
    if extra is not None:
        path = Path(tmp) / "extra-values.json"
        path.write_text(json.dumps(extra))
        args += ["-f", str(path)]
    return args


_rendered: dict = {}


def render(fixture=None) -> str:
    if fixture not in _rendered:
        _rendered[fixture] = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values_args(fixture)).stdout
    return _rendered[fixture]


def manifests(fixture=None) -> list[dict]:
    return [d for d in yaml.safe_load_all(render(fixture)) if d]


def find(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert found, f"no {kind} {name or ''} rendered"
    return found[0] if name or len(found) == 1 else found


def fixture_values(fixture) -> dict:
    return yaml.safe_load(FIXTURES[fixture].read_text()) or {} if fixture else {}


def lay_out_hub_config(docs, root: Path) -> Path:
    """Write the hub ConfigMap's files where the hub pod sees them (its volume items)."""
    hub = find(docs, "Deployment", f"{RELEASE}-hub")
    pod = hub["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "config")
    assert mount["mountPath"] == MOUNT and mount.get("readOnly")
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    data = find(docs, "ConfigMap", volume["configMap"]["name"])["data"]
    assert {i["key"] for i in volume["configMap"]["items"]} == set(data), "every ConfigMap key is mounted"
    for item in volume["configMap"]["items"]:
        path = root / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data[item["key"]])
    return root


def hub_env(docs) -> dict:
    hub = find(docs, "Deployment", f"{RELEASE}-hub")
    return {e["name"]: e for e in hub["spec"]["template"]["spec"]["containers"][0]["env"]}


ALL = [None, *FIXTURES]
IDS = ["defaults", *FIXTURES]


# --------------------------------------------------------------------------- lint


@pytest.mark.parametrize("fixture", ALL, ids=IDS)
def test_helm_lint_strict(fixture):
    result = helm("lint", str(CHART), "--strict", "--namespace", NAMESPACE, *values_args(fixture))
    assert "0 chart(s) failed" in result.stdout


def test_yamllint_values_fixtures_and_chartpress():
    files = [CHART / "values.yaml", CHART / "Chart.yaml", REPO / "chartpress.yaml", *FIXTURES.values()]
    files += sorted((CHART / "files" / "profiles").glob("*.yaml"))
    problems = [
        f"{f.relative_to(REPO)}:{p.line}: {p.desc} ({p.rule})" for f in files for p in linter.run(f.read_text(), YAMLLINT)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("fixture", ALL, ids=IDS)
def test_yamllint_rendered(fixture):
    problems = [f"line {p.line}: {p.desc} ({p.rule})" for p in linter.run(render(fixture), YAMLLINT)]
    assert not problems, "\n".join(problems) + "\n\n" + render(fixture)


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("fixture", ALL, ids=IDS)
def test_every_manifest_is_valid_kubernetes(fixture, version):
    docs = manifests(fixture)
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), f"duplicate objects: {names}"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            raise AssertionError(f"{doc['kind']} {doc['metadata']['name']} (Kubernetes {version}): {e.message} at {list(e.path)}")
    # the pod volumes of the datasets the chart registers, as a member's pod gets them
    manifest = yaml.safe_load(find(docs, "ConfigMap", f"{RELEASE}-hub")["data"]["datasets.yaml"])["datasets"]
    if manifest:
        volumes, mounts, skipped = k8s_volumes([
            MountSpec(d["name"], d["source"]["kind"], None, claim=d["source"].get("claim"),
                      server=d["source"].get("server"), source_path=d["source"].get("source_path"))
            for d in manifest])
        assert not skipped and len(volumes) == len(manifest)
        pod = {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "datasets"},
            "spec": {"volumes": volumes, "containers": [{"name": "c", "image": "x:1", "volumeMounts": mounts}]},
        }
        kubernetes_validate.validate(pod, version, strict=True)


def test_default_install_has_every_component():
    docs = manifests()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for expected in [
        ("Deployment", "aistudio-hub"), ("Deployment", "aistudio-proxy"), ("ConfigMap", "aistudio-hub"),
        ("Secret", "aistudio-hub"), ("ServiceAccount", "aistudio-hub"), ("Role", "aistudio-hub"),
        ("RoleBinding", "aistudio-hub"), ("Service", "aistudio-hub"), ("Service", "aistudio-proxy-public"),
        ("Service", "aistudio-proxy-api"), ("PersistentVolumeClaim", "aistudio-hub-db"),
        ("NetworkPolicy", "aistudio-hub"), ("NetworkPolicy", "aistudio-proxy"), ("NetworkPolicy", "aistudio-singleuser"),
    ]:
        assert expected in kinds
    # off by default
    assert not {"Ingress", "DaemonSet", "PodDisruptionBudget"} & {k for k, _ in kinds}


def test_hub_rbac_lets_kubespawner_manage_pods_claims_and_events():
    docs = manifests()
    rules = find(docs, "Role")["rules"]
    granted = {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"] if rule["apiGroups"] == [""]}
    for resource in ("pods", "persistentvolumeclaims", "services"):
        for verb in ("get", "list", "watch", "create", "delete"):
            assert (resource, verb) in granted
    assert {("events", v) for v in ("get", "list", "watch")} <= granted
    binding = find(docs, "RoleBinding")
    assert binding["roleRef"]["name"] == find(docs, "Role")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "aistudio-hub", "namespace": NAMESPACE}]
    assert find(docs, "Deployment", "aistudio-hub")["spec"]["template"]["spec"]["serviceAccountName"] == "aistudio-hub"


@pytest.mark.parametrize("fixture", ALL, ids=IDS)
def test_secrets_reach_hub_and_proxy(fixture):
    docs = manifests(fixture)
    secret = find(docs, "Secret", "aistudio-hub")
    env = hub_env(docs)
    for name in ("JPY_COOKIE_SECRET", "CONFIGPROXY_AUTH_TOKEN"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "aistudio-hub" and ref["key"] in secret["data"]
    assert env["AISTUDIO_CONFIG"]["value"] == f"{MOUNT}/aistudio.yaml"
    proxy = find(docs, "Deployment", "aistudio-proxy")["spec"]["template"]["spec"]["containers"][0]
    assert proxy["env"][0]["valueFrom"]["secretKeyRef"] == env["CONFIGPROXY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    studio = fixture_values(fixture).get("studio", {})
    if studio.get("auth", {}).get("type") == "oidc":
        name = studio["auth"]["oidc"].get("client_secret_env", "AISTUDIO_OIDC_CLIENT_SECRET")
        assert env[name]["valueFrom"]["secretKeyRef"]["key"] == "oidc-client-secret" in secret["data"]
    else:
        assert "oidc-client-secret" not in secret["data"]
    db = fixture_values(fixture).get("hub", {}).get("db", {})
    if db.get("type") == "postgres":
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "db-password" in secret["data"]
        assert "--upgrade-db" in find(docs, "Deployment", "aistudio-hub")["spec"]["template"]["spec"]["containers"][0]["command"]
        assert not find(docs, "Deployment", "aistudio-hub")["spec"]["template"]["spec"]["volumes"][1].get("persistentVolumeClaim")
        assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    else:
        assert "PGPASSWORD" not in env


def test_existing_secret_replaces_the_charts(tmp_path):
    out = helm("template", RELEASE, str(CHART), "-n", NAMESPACE,
               *values_args("postgres-ingress", {"hub": {"existingSecret": "studio-secrets"}}, tmp_path)).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert not [d for d in docs if d["kind"] == "Secret"]
    refs = [e["valueFrom"]["secretKeyRef"] for e in hub_env(docs).values() if "valueFrom" in e]
    assert refs and all(r["name"] == "studio-secrets" for r in refs)


def _component(peer) -> str:
    labels = peer["podSelector"]["matchLabels"]
    return labels.get("app.kubernetes.io/component") or labels.get("component")


def ports_by_peer(rules, side="from") -> dict:
    """{peer's component: [ports]} of NetworkPolicy rules (one peer per rule)."""
    out = {}
    for rule in rules:
        assert len(rule[side]) == 1, rule
        out[_component(rule[side][0])] = [p["port"] for p in rule["ports"]]
    return out


def studio_services(cfg) -> tuple[dict, dict]:
    """The hub-managed services of a studio config by name, and what servers are told (Spawner
    settings), as the configurer makes them (no login provider needed)."""
    specs = configurer.service_specs(cfg, configurer.new_tokens())
    services = {s["name"]: s for s in configurer.services_traitlets(cfg, specs)["JupyterHub"]["services"]}
    return services, configurer.server_traitlets(cfg, specs).get("Spawner", {"environment": {}})


def _port(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


@pytest.mark.parametrize("fixture", ALL, ids=IDS)
def test_network_policies_allow_exactly_the_paths_the_studio_uses(fixture, tmp_path):
    docs = manifests(fixture)
    cfg = studio_config.load(lay_out_hub_config(docs, tmp_path) / "aistudio.yaml")
    services, servers = studio_services(cfg)
    routed = sorted(_port(s["url"]) for s in services.values() if s.get("url", "").startswith("http://aistudio-hub:"))
    told = sorted(_port(url) for url in servers["environment"].values() if "://aistudio-hub:" in url)
    assert routed == [8010, 8011, 8012] and told == [8011, 8012]  # every service on; servers: catalogue, announcements

    # the hub: the proxy on 8081 and the pages it routes; servers on 8081 and the services
    # they are told of; its own pod (services -> API, hub -> services); nothing else
    hub = find(docs, "NetworkPolicy", "aistudio-hub")["spec"]
    assert hub["policyTypes"] == ["Ingress"]
    extra = fixture_values(fixture).get("hub", {}).get("networkPolicy", {}).get("ingress", [])
    rules = hub["ingress"][:len(hub["ingress"]) - len(extra)]
    assert {k: sorted(v) for k, v in ports_by_peer(rules).items()} == {
        "proxy": [8010, 8011, 8012, 8081], "singleuser-server": [8011, 8012, 8081], "hub": [8010, 8011, 8012, 8081]}
    assert all(p["protocol"] == "TCP" for r in rules for p in r["ports"])

    # members' servers: reached by the proxy and the hub on 8888; they reach DNS and the hub
    # (8081, the services they are told of), then only what the values add
    policy = find(docs, "NetworkPolicy", "aistudio-singleuser")["spec"]
    kube = configurer.kube_spawner_traitlets(cfg)["StudioKubeSpawner"]
    pod_labels = {"component": KubeSpawner.component_label.default_value, **kube["extra_labels"]}
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert rules[1]["from"][0]["podSelector"] == policy["podSelector"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert [sorted(_component(p) for p in r["from"]) for r in policy["ingress"]] == [["hub", "proxy"]]
    assert [p["port"] for p in policy["ingress"][0]["ports"]] == [8888]
    egress = policy["egress"]
    assert egress[0] == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    assert {k: sorted(v) for k, v in ports_by_peer(egress[1:2], "to").items()} == {"hub": sorted(told + [8081])}
    singleuser = fixture_values(fixture).get("singleuser", {}).get("networkPolicy", {})
    rest = egress[2:]
    if singleuser.get("allowInternet"):
        assert rest[0]["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0"
        rest = rest[1:]
    assert rest == singleuser.get("egress", [])

    # the proxy: its public port from anywhere, its API from the hub only
    proxy = find(docs, "NetworkPolicy", "aistudio-proxy")["spec"]
    assert proxy["ingress"][0] == {"ports": [{"port": "http", "protocol": "TCP"}]}
    assert ports_by_peer(proxy["ingress"][1:]) == {"hub": ["api"]}
    container = find(docs, "Deployment", "aistudio-proxy")["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8000, "api": 8001}


def test_a_service_turned_off_closes_its_port(tmp_path):
    out = helm("template", RELEASE, str(CHART), "-n", NAMESPACE, *values_args(None, {
        "studio": {"datasets": {"enabled": False}, "announcements": {"enabled": False}}}, tmp_path)).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    hub = find(docs, "NetworkPolicy", "aistudio-hub")["spec"]
    assert ports_by_peer(hub["ingress"]) == {"proxy": [8081, 8010], "singleuser-server": [8081], "hub": [8081, 8010]}
    egress = find(docs, "NetworkPolicy", "aistudio-singleuser")["spec"]["egress"]
    assert ports_by_peer(egress[1:2], "to") == {"hub": [8081]}
    cfg = studio_config.load(lay_out_hub_config(docs, tmp_path) / "aistudio.yaml")
    assert not cfg["datasets"]["enabled"] and not cfg["announcements"]["enabled"]


def test_hub_services_are_reachable_through_the_hub_service(tmp_path):
    docs = manifests()
    service = find(docs, "Service", "aistudio-hub")["spec"]
    assert {p["name"]: p["port"] for p in service["ports"]} == {
        "hub": 8081, "usage": 8010, "datasets": 8011, "announcements": 8012}
    cfg = studio_config.load(lay_out_hub_config(docs, tmp_path) / "aistudio.yaml")
    assert cfg["hub"]["services_host"] == "aistudio-hub"
    services = {s["name"]: s for s in configurer.traitlets_config(cfg)["JupyterHub"]["services"]}
    ports = {"usage": 8010, "datasets": 8011, "announcements": 8012}
    assert {"usage", "announcements"} <= set(services)
    for name, service in services.items():
        if name in ports:
            assert service["url"] == f"http://aistudio-hub:{ports[name]}"
    assert listen_address(services["usage"]["url"]) == ""  # all addresses in the pod
    assert listen_address("http://127.0.0.1:8010") == "127.0.0.1"


def test_ingress_pdbs_and_base_url():
    docs = manifests("postgres-ingress")
    ingress = find(docs, "Ingress")["spec"]
    path = ingress["rules"][0]["http"]["paths"][0]
    assert ingress["rules"][0]["host"] == "studio.lab.example" and path["path"] == "/studio/"
    assert path["backend"]["service"] == {"name": "aistudio-proxy-public", "port": {"name": "http"}}
    assert find(docs, "Service", "aistudio-proxy-public")["spec"]["type"] == "ClusterIP"
    assert {p["metadata"]["name"] for p in find(docs, "PodDisruptionBudget")} == {"aistudio-hub", "aistudio-proxy"}
    hub = find(docs, "Deployment", "aistudio-hub")["spec"]["template"]["spec"]["containers"][0]
    assert hub["readinessProbe"]["httpGet"]["path"] == "/studio/hub/health"
    proxy = find(docs, "Deployment", "aistudio-proxy")["spec"]["template"]["spec"]["containers"][0]
    assert "--error-target=http://aistudio-hub:8081/studio/hub/error" in proxy["command"]


def test_pre_puller_pulls_the_profiles_images_on_gpu_nodes_only(tmp_path):
    docs = manifests("gpu-nfs-strict")
    spec = find(docs, "DaemonSet")["spec"]["template"]["spec"]
    root = lay_out_hub_config(docs, tmp_path)
    profiles = load_profiles(root / "profiles").profiles
    default_image = fixture_values("gpu-nfs-strict")["studio"]["kubernetes"]["default_image"]
    expected = {p.image for p in profiles if p.image} | {default_image}
    assert {c["image"] for c in spec["initContainers"]} == expected
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]


@pytest.mark.parametrize("fixture, expected", [
    (None, ["port-forward service/aistudio-proxy-public", "get service aistudio-proxy-public", "demo users"]),
    ("postgres-ingress", ["https://studio.lab.example/studio/"]),
    ("gpu-nfs-strict", ["Datasets (2) of datasets.register", "exec deployment/aistudio-hub -- aistudio datasets"]),
], ids=["defaults", "postgres-ingress", "gpu-nfs-strict"])
def test_notes_tell_how_to_reach_the_hub(fixture, expected):
    out = helm("install", RELEASE, str(CHART), "--dry-run=client", "-n", NAMESPACE, *values_args(fixture)).stdout
    notes = out.split("NOTES:", 1)[1]
    for text in expected:
        assert text in notes


# --------------------------------------------------------------------------- values schema

BAD_VALUES = [
    ("unknown-top-level-key", {"hubb": {}}, ["additional properties 'hubb' not allowed"]),
    ("unknown-nested-key", {"hub": {"db": {"typ": "postgres"}}}, ["/hub/db", "'typ'"]),
    ("wrong-type", {"proxy": {"service": {"port": "eighty"}}}, ["/proxy/service/port", "want integer"]),
    ("bad-enum", {"hub": {"db": {"type": "mysql"}}}, ["/hub/db/type", "sqlite-pvc"]),
    ("bad-service-type", {"proxy": {"service": {"type": "External"}}}, ["/proxy/service/type"]),
    ("chart-owned-studio-key", {"studio": {"mode": "local"}}, ["/studio", "'mode' not allowed"]),
    ("chart-owned-kubernetes-key", {"studio": {"kubernetes": {"namespace": "x"}}}, ["/studio/kubernetes", "'namespace'"]),
    ("studio-bad-enum", {"studio": {"auth": {"type": "ldap"}}}, ["/studio/auth/type"]),
    ("studio-wrong-type", {"studio": {"spawn": {"start_timeout": "long"}}}, ["/studio/spawn/start_timeout"]),
    ("image-tag-latest", {"hub": {"image": {"tag": "latest"}}}, ["/hub/image/tag"]),
    ("bad-profile", {"profiles": {"files": {"x.yaml": {"profiles": [{
        "slug": "x", "display_name": "X", "resources": {"cpu": 1, "memory": "lots"}, "access": {"everyone": True}}]}}}},
     ["/profiles/files/x.yaml/profiles/0/resources/memory"]),
    ("profile-unknown-key", {"profiles": {"files": {"x.yaml": {"profiles": [{
        "slug": "x", "display_name": "X", "resources": {"cpu": 1, "memory": "1Gi"}, "access": {"everyone": True},
        "colour": "red"}]}}}}, ["/profiles/files/x.yaml/profiles/0", "'colour'"]),
    ("profile-file-name", {"profiles": {"files": {"Bad Name.txt": None}}}, ["invalid propertyName 'Bad Name.txt'"]),
    ("gpu-type-without-node-selector", {"studio": {"kubernetes": {"gpu_types": {"a100": {"resource": "nvidia.com/gpu"}}}}},
     ["/studio/kubernetes/gpu_types/a100", "node_selector"]),
    ("gpu-type-empty-node-selector", {"studio": {"kubernetes": {"gpu_types": {"a100": {"node_selector": {}}}}}},
     ["/studio/kubernetes/gpu_types/a100/node_selector"]),
    ("hub-pull-policy-typo", {"hub": {"image": {"pullPolicy": "IfNotPresnt"}}}, ["/hub/image/pullPolicy", "IfNotPresent"]),
    ("proxy-pull-policy-typo", {"proxy": {"image": {"pullPolicy": "always"}}}, ["/proxy/image/pullPolicy", "Always"]),
    ("servers-pull-policy-typo", {"studio": {"kubernetes": {"image_pull_policy": "Allways"}}},
     ["/studio/kubernetes/image_pull_policy", "IfNotPresent"]),
    ("old-datasets-list", {"datasets": []}, ["/datasets", "want object"]),
    ("dataset-without-source", {"datasets": {"register": [{"name": "a"}]}}, ["/datasets/register/0", "'source'"]),
    ("dataset-unknown-source", {"datasets": {"sources": {"lab": {"nfs": {"server": "n", "path": "/e"}}},
                                             "register": [{"name": "a", "source": "labs"}]}},
     ["datasets.register[0].source", '"labs" is not one of datasets.sources (lab)']),
    ("dataset-source-none-defined", {"datasets": {"register": [{"name": "a", "source": "lab"}]}},
     ["datasets.register[0].source", "none are defined"]),
    ("dataset-bad-name", {"datasets": {"sources": {"lab": {"hostPath": {"path": "/x"}}},
                                       "register": [{"name": "MIMIC_IV", "source": "lab"}]}},
     ["/datasets/register/0/name", "MIMIC_IV"]),
    ("dataset-twice", {"datasets": {"sources": {"lab": {"hostPath": {"path": "/x"}}},
                                    "register": [{"name": "a", "source": "lab"}, {"name": "a", "source": "lab"}]}},
     ["datasets.register[1].name", "registered twice"]),
    ("dataset-sub-path-climbs", {"datasets": {"sources": {"lab": {"hostPath": {"path": "/x"}}},
                                              "register": [{"name": "a", "source": "lab", "subPath": "../etc"}]}},
     ["/datasets/register/0/subPath"]),
    ("dataset-unknown-key", {"datasets": {"sources": {"lab": {"hostPath": {"path": "/x"}}},
                                          "register": [{"name": "a", "source": "lab", "mountPath": "/a"}]}},
     ["/datasets/register/0", "'mountPath'"]),
    ("source-of-no-kind", {"datasets": {"sources": {"lab": {}}}}, ["/datasets/sources/lab", "missing property 'pvc'"]),
    ("source-of-two-kinds", {"datasets": {"sources": {"lab": {"nfs": {"server": "n", "path": "/e"},
                                                              "hostPath": {"path": "/x"}}}}},
     ["/datasets/sources/lab", "maxProperties"]),
    ("source-bad-name", {"datasets": {"sources": {"Lab": {"hostPath": {"path": "/x"}}}}},
     ["/datasets/sources", "'Lab' not allowed"]),
    ("source-relative-nfs-path", {"datasets": {"sources": {"lab": {"nfs": {"server": "n", "path": "export"}}}}},
     ["/datasets/sources/lab/nfs/path"]),
    ("chart-owned-source-views", {"studio": {"datasets": {"source_views": []}}}, ["/studio/datasets", "'source_views'"]),
    ("toleration-typo", {"prePuller": {"tolerations": [{"keys": "x"}]}}, ["/prePuller/tolerations/0", "'keys'"]),
    ("egress-typo", {"singleuser": {"networkPolicy": {"egress": [{"too": []}]}}},
     ["/singleuser/networkPolicy/egress/0", "'too'"]),
    # checks made by the templates, with the key to set
    ("postgres-without-url", {"hub": {"db": {"type": "postgres"}}}, ["hub.db.url"]),
    ("oidc-without-secret", {"studio": {"auth": {"type": "oidc", "oidc": {"client_id": "x"}}}}, ["hub.oidc.clientSecret"]),
    ("oidc-issuer-without-secret", {"studio": {"auth": {"oidc": {"issuer": "https://login.lab.example", "client_id": "x"}}}},
     ["hub.oidc.clientSecret"]),
]


@pytest.mark.parametrize("values, expected", [pytest.param(v, e, id=i) for i, v, e in BAD_VALUES])
def test_bad_values_are_refused_naming_the_key(values, expected, tmp_path):
    result = helm("template", RELEASE, str(CHART), *values_args(None, values, tmp_path), check=False)
    assert result.returncode != 0, f"accepted: {values}"
    for text in expected:
        assert text in result.stderr, result.stderr


def _walk(schema, path="", generated=False):
    """Yield (path, node, generated) for every subschema of ``schema``."""
    if isinstance(schema, dict):
        yield path, schema, generated
        for key, value in schema.items():
            if key in ("properties", "$defs", "patternProperties"):
                for name, sub in value.items():
                    gen = generated or (key == "$defs" and name.split(".")[0] in ("studio", "profileFile"))
                    yield from _walk(sub, f"{path}/{name}", gen)
            elif key in ("items", "additionalProperties", "not", "propertyNames"):
                yield from _walk(value, f"{path}/{key}", generated)
            elif key in ("oneOf", "anyOf", "allOf"):
                for i, sub in enumerate(value):
                    yield from _walk(sub, f"{path}/{key}{i}", generated)


def test_values_schema_refuses_unknown_keys_and_describes_every_key():
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path, node, generated in _walk(schema):
        if node.get("type") == "object" or "properties" in node:
            assert "additionalProperties" in node, f"{path}: unknown keys must be refused (additionalProperties)"
            if "properties" in node:
                assert node["additionalProperties"] is False, f"{path}: additionalProperties must be false"
        if not generated:
            for name, sub in node.get("properties", {}).items():
                assert sub.get("description"), f"{path}/{name}: no description"


def test_values_yaml_shows_every_key_of_the_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def resolve(node):
        while "$ref" in node:
            node = schema["$defs"][node["$ref"].split("/")[-1]]
        return node

    def check(node, value, path):
        node = resolve(node)
        if "properties" not in node or path == "studio":
            return
        for name, sub in node["properties"].items():
            assert name in value, f"values.yaml: {path}.{name} missing (every key is shown, with a comment)"
            if isinstance(value[name], dict):
                check(sub, value[name], f"{path}.{name}".strip("."))

    check(schema, values, "")


def test_chart_copies_are_in_step_with_the_studio():
    """chart/files/profiles/ = spawner_profiles/; the schema copies = hub_config/schema/."""
    sys.path.insert(0, str(CHART / "tools"))
    try:
        import sync
    finally:
        sys.path.pop(0)
    assert sync.differences() == [], "\n".join(sync.differences()) + "\nrun: python3 chart/tools/sync.py"


# --------------------------------------------------------------------------- the hub's config


def _profile_facts(profile):
    return {
        "display_name": profile.display_name,
        "default": profile.default,
        "resources": profile.resources.as_dict(),
        "access": (sorted(profile.groups), sorted(profile.users), profile.everyone),
        "max_runtime": profile.max_runtime,
        "options": {n: (o.values, o.default, o.group_max) for n, o in profile.options.items()},
    }


@pytest.mark.parametrize("fixture", ALL, ids=IDS)
def test_rendered_hub_config_loads_with_the_studio_loader(fixture, tmp_path):
    docs = manifests(fixture)
    root = lay_out_hub_config(docs, tmp_path / "etc-aistudio")
    cfg = studio_config.load(root / "aistudio.yaml")
    assert cfg["mode"] == "kubernetes"
    assert cfg["profiles_dir"] == str((root / "profiles").resolve())
    assert cfg["data_dir"] == "/srv/aistudio/data"
    hub = find(docs, "Deployment", "aistudio-hub")["spec"]["template"]["spec"]
    data_mount = next(m for m in hub["containers"][0]["volumeMounts"] if m["name"] == "data")
    assert cfg["data_dir"].startswith(data_mount["mountPath"] + "/"), "the hub's state is on the data volume"
    # the hub, its Service, the proxy's API Service, and the namespace agree
    kube = cfg["kubernetes"]
    assert kube["namespace"] == NAMESPACE
    assert kube["hub_connect_url"] == "http://aistudio-hub:8081"
    assert find(docs, "Service", "aistudio-hub")["spec"]["ports"][0]["port"] == 8081
    assert cfg["hub"]["proxy_api_url"] == "http://aistudio-proxy-api:8001"
    assert find(docs, "Service", "aistudio-proxy-api")["spec"]["ports"][0]["port"] == 8001
    proxy = configurer.proxy_traitlets(cfg)["ConfigurableHTTPProxy"]
    assert proxy == {"api_url": "http://aistudio-proxy-api:8001", "should_start": False}
    spawner = configurer.kube_spawner_traitlets(cfg)
    assert spawner["JupyterHub"]["hub_connect_url"] == "http://aistudio-hub:8081"
    assert spawner["StudioKubeSpawner"]["namespace"] == NAMESPACE
    # the values' studio section is what the hub reads
    for section, settings in fixture_values(fixture).get("studio", {}).items():
        assert studio_config.deep_merge(cfg[section], settings) == cfg[section]

    # the same profiles as local mode reads from spawner_profiles/, plus the values' own files
    values = fixture_values(fixture)
    shipped = {p.slug: p for p in load_profiles(REPO / "spawner_profiles").profiles}
    rendered_set = load_profiles(cfg["profiles_dir"])
    rendered = {p.slug: p for p in rendered_set.profiles}
    extra = set()
    for text in (values.get("profiles", {}).get("files") or {}).values():
        extra |= {p["slug"] for p in (text or {}).get("profiles", [])}
    assert set(rendered) == set(shipped) | extra
    for slug, profile in shipped.items():
        assert _profile_facts(rendered[slug]) == _profile_facts(profile), slug
    defaults = yaml.safe_load((REPO / "chart" / "values.yaml").read_text())["singleuser"]["images"]
    override = {**defaults, **values.get("singleuser", {}).get("images", {})}
    for slug, profile in rendered.items():
        if override.get("override"):
            image = override["gpu" if profile.resources.gpus else "cpu"]
            assert profile.image == f"{image['name']}:{image['tag']}"
        elif slug in shipped:
            assert profile.image == shipped[slug].image
    assert rendered_set.quotas == load_profiles(REPO / "spawner_profiles").quotas


@pytest.mark.parametrize("fixture", ALL, ids=IDS)
def test_every_service_is_on_by_default(fixture, tmp_path):
    docs = manifests(fixture)
    root = lay_out_hub_config(docs, tmp_path)
    rendered = yaml.safe_load((root / "aistudio.yaml").read_text())
    # on in the rendered file itself, whatever the local defaults say
    assert all(rendered[s]["enabled"] is True for s in ("culler", "announcements", "datasets"))
    cfg = studio_config.load(root / "aistudio.yaml")  # validated, as the hub does at start
    services, servers = studio_services(cfg)
    assert set(services) == {"usage", "datasets", "announcements", "idle-culler", "gpu-queue", "server-lifecycle"}
    assert set(servers["environment"]) == {datasets_service.SERVER_URL_ENV, "AISTUDIO_ANNOUNCEMENTS_URL"}
    assert {"access:services!service=datasets", "access:services!service=announcements"} <= set(
        servers["server_token_scopes"])
    # the spawner mounts granted datasets (the registry is the catalogue's)
    spawner = configurer.kube_spawner_traitlets(cfg)["StudioKubeSpawner"]
    assert spawner["datasets_db_url"] == studio_config.db_url(cfg, "datasets")
    # quotas and run-time limits: the shipped profiles' (and a poll to enforce them)
    profiles = load_profiles(cfg["profiles_dir"])
    assert profiles.quotas.group_members and any(p.max_runtime for p in profiles.profiles)
    assert configurer.kube_spawner_traitlets(cfg)["Spawner"]["poll_interval"] == cfg["spawn"]["poll_interval"]
    # OpenID Connect where the values name a provider, demo logins otherwise
    oidc = fixture_values(fixture).get("studio", {}).get("auth", {}).get("oidc")
    assert cfg["auth"]["type"] == ("oidc" if oidc else "demo")
    # the chart's dataset manifest is registered when the catalogue starts
    settings = json.loads(services["datasets"]["environment"][datasets_service.ENV_SETTINGS])
    assert settings["manifests"] == [str((root / "datasets.yaml").resolve())]
    assert settings["source_views"] == cfg["datasets"]["source_views"]


def test_oidc_is_on_once_the_provider_is_named(tmp_path):
    oidc = {"issuer": "https://login.lab.example/realms/lab", "client_id": "aistudio"}
    out = helm("template", RELEASE, str(CHART), "-n", NAMESPACE, *values_args(None, {
        "studio": {"auth": {"oidc": oidc}}, "hub": {"oidc": {"clientSecret": "from-the-provider"}}}, tmp_path)).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    cfg = studio_config.load(lay_out_hub_config(docs, tmp_path) / "aistudio.yaml")
    assert cfg["auth"]["type"] == "oidc" and cfg["auth"]["oidc"]["issuer"] == oidc["issuer"]
    assert hub_env(docs)["AISTUDIO_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "oidc-client-secret"
    # an explicit type wins: demo logins with the section kept for later
    out = helm("template", RELEASE, str(CHART), "-n", NAMESPACE, *values_args(None, {
        "studio": {"auth": {"type": "demo", "oidc": oidc}}}, tmp_path)).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert yaml.safe_load(find(docs, "ConfigMap", "aistudio-hub")["data"]["aistudio.yaml"])["auth"]["type"] == "demo"
    assert "AISTUDIO_OIDC_CLIENT_SECRET" not in hub_env(docs)


# --------------------------------------------------------------------------- datasets


def test_the_hub_mounts_each_dataset_source_read_only_where_the_views_say():
    docs = manifests("gpu-nfs-strict")
    sources = fixture_values("gpu-nfs-strict")["datasets"]["sources"]
    pod = find(docs, "Deployment", "aistudio-hub")["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"] if m["name"].startswith("dataset-source-")}
    volumes = {v["name"]: v for v in pod["volumes"] if v["name"].startswith("dataset-source-")}
    assert set(mounts) == set(volumes) == {f"dataset-source-{name}" for name in sources}
    views = yaml.safe_load(find(docs, "ConfigMap", "aistudio-hub")["data"]["aistudio.yaml"])["datasets"]["source_views"]
    assert len(views) == len(sources)
    for name, source in sources.items():
        mount, volume = mounts[f"dataset-source-{name}"], volumes[f"dataset-source-{name}"]
        assert mount["mountPath"] == f"/srv/aistudio/datasets/{name}"
        assert mount["readOnly"] is True and mount["recursiveReadOnly"] == "IfPossible"
        (view,) = [v for v in views if v["path"] == mount["mountPath"]]
        if "pvc" in source:
            assert volume["persistentVolumeClaim"] == {"claimName": source["pvc"]["claimName"], "readOnly": True}
            assert mount.get("subPath") == source["pvc"].get("subPath")
            assert view == {"kind": "pvc", "claim": source["pvc"]["claimName"], "path": mount["mountPath"],
                            **({"source_path": source["pvc"]["subPath"]} if source["pvc"].get("subPath") else {})}
        elif "nfs" in source:
            assert volume["nfs"] == {**source["nfs"], "readOnly": True} and "subPath" not in mount
            assert view == {"kind": "nfs", "server": source["nfs"]["server"], "source_path": source["nfs"]["path"],
                            "path": mount["mountPath"]}
        else:
            assert volume["hostPath"] == {"path": source["hostPath"]["path"], "type": "Directory"}
            assert view == {"kind": "hostpath", "source_path": source["hostPath"]["path"], "path": mount["mountPath"]}
    # without sources the hub mounts none
    assert not [v for v in find(manifests(), "Deployment", "aistudio-hub")["spec"]["template"]["spec"]["volumes"]
                if v["name"].startswith("dataset-source-")]


def test_the_values_datasets_are_registered_at_start_and_read_through_the_hubs_mounts(tmp_path):
    """The hub pod as a folder: /srv/aistudio and its dataset mounts under tmp_path."""
    docs = manifests("gpu-nfs-strict")
    root = lay_out_hub_config(docs, tmp_path / "etc-aistudio")
    srv = tmp_path / "srv-aistudio"
    config = root / "aistudio.yaml"
    config.write_text(config.read_text().replace("/srv/aistudio", str(srv)))
    cfg = studio_config.load(config)
    # the files as the hub's mounts show them: lab-nfs is /export/datasets, imaging the claim's curated/
    vitals = srv / "datasets" / "lab-nfs" / "mimic-iv" / "3.1"
    vitals.mkdir(parents=True)
    (vitals / "vitals.csv").write_text("age_band,sex,hr\n" + "".join(f"{a},{s},{60 + i}\n" for i in range(5)
                                                                     for a in ("30-39", "40-49") for s in "FM"))
    xray = srv / "datasets" / "imaging" / "chest-xray"
    xray.mkdir(parents=True)
    (xray / "labels.csv").write_text("image,finding\n" + "".join(f"img{i}.png,none\n" for i in range(10)))

    services, _ = studio_services(cfg)
    settings = json.loads(services["datasets"]["environment"][datasets_service.ENV_SETTINGS])
    store = DatasetStore(f"sqlite:///{tmp_path}/datasets.sqlite")
    datasets_service.register_at_start(store, settings)  # what the catalogue does when it starts
    mimic, chest = store.get("mimic-iv"), store.get("chest-xray")
    assert (mimic.source_kind, mimic.source_server, mimic.source_path) == (
        "nfs", "nfs.lab.example", "/export/datasets/mimic-iv/3.1")
    assert mimic.path == str(vitals) and (chest.source_claim, chest.source_path, chest.path) == (
        "imaging-datasets", "curated/chest-xray", str(xray))
    for ds in (mimic, chest):
        assert (ds.status, ds.scan_status) == ("published", "pass"), ds.scan
    assert mimic.row_count == 20 and mimic.quasi_identifiers == ["age_band", "sex"] and mimic.min_k == 5
    assert mimic.deid_method == "Safe Harbor" and mimic.tags == ["icu"] and mimic.title == "MIMIC-IV 3.1"
    # granted as the values say; pods get the sources, not the hub's paths
    volumes, mounts, _ = k8s_volumes(store.mounts_for("alice", ["gpu-residents"]))
    assert volumes == [{"name": "dataset-mimic-iv",
                        "nfs": {"server": "nfs.lab.example", "path": "/export/datasets/mimic-iv/3.1", "readOnly": True}}]
    volumes, mounts, _ = k8s_volumes(store.mounts_for("admin", []))
    assert volumes[0]["persistentVolumeClaim"] == {"claimName": "imaging-datasets", "readOnly": True}
    assert mounts[0]["subPath"] == "curated/chest-xray" and mounts[0]["mountPath"] == "/datasets/chest-xray"
    # the next start leaves them as the stewards keep them
    store.update("chest-xray", actor="steward", title="Chest X-ray labels, v2")
    datasets_service.register_at_start(store, settings)
    assert store.get("chest-xray").title == "Chest X-ray labels, v2" and len(store.datasets()) == 2


def test_chart_jupyterhub_config_runs_the_studio_config(tmp_path, monkeypatch):
    services = {"status-page": {"command": ["python3", "-m", "http.server", "10102"],
                                "url": "http://127.0.0.1:10102", "scopes": ["read:users:activity"]}}
    out = helm("template", RELEASE, str(CHART), "-n", NAMESPACE,
               *values_args("minimal", {"hub": {"services": services}}, tmp_path)).stdout
    root = lay_out_hub_config([d for d in yaml.safe_load_all(out) if d], tmp_path / "etc-aistudio")
    monkeypatch.setenv("AISTUDIO_CONFIG", str(root / "aistudio.yaml"))
    monkeypatch.setenv("AISTUDIO_DATA_DIR", str(tmp_path / "data"))  # instead of /srv/aistudio/data
    monkeypatch.delenv("AISTUDIO_PORT", raising=False)
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "offline")
    c = PyFileConfigLoader("jupyterhub_config.py", str(root)).load_config()
    assert c.JupyterHub.spawner_class == "hub_config.spawners.kube.StudioKubeSpawner"
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.ConfigurableHTTPProxy.api_url == "http://aistudio-proxy-api:8001"
    assert c.JupyterHub.cleanup_servers is False
    assert c.StudioKubeSpawner.profiles_dir == str((root / "profiles").resolve())
    named = {s["name"]: s for s in c.JupyterHub.services}
    assert named["status-page"] == {"name": "status-page", **{k: services["status-page"][k] for k in ("command", "url")}}
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["status-page"] == {"name": "status-page", "scopes": ["read:users:activity"], "services": ["status-page"]}
    if studio_config.load(root / "aistudio.yaml")["culler"]["enabled"]:
        assert "idle-culler" in named and "idle-culler" in roles


# --------------------------------------------------------------------------- images and chartpress


def test_images_set_by_chartpress_render(tmp_path):
    """A tag as chartpress writes it renders and validates."""
    tag = {"tag": "0.1.0-0.dev.git.42.h1234abc"}
    out = helm("template", RELEASE, str(CHART), "-n", NAMESPACE, *values_args(None, {
        "hub": {"image": {"name": "registry.lab.example/aistudio/hub", **tag}},
    }, tmp_path)).stdout
    hub = find([d for d in yaml.safe_load_all(out) if d], "Deployment", "aistudio-hub")
    assert hub["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.lab.example/aistudio/hub:" + tag["tag"]

