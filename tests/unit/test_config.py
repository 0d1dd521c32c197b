"""The studio config: defaults, schema, and the traitlets it turns into."""

from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

from hub_config import config as studio_config
from hub_config import configurer

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_valid_and_documented():
    schema = studio_config.json.loads(studio_config.SCHEMA_PATH.read_text())
    cfg = studio_config.load(None)
    assert cfg["mode"] == "local" and cfg["hub"]["port"] == 8000
    for key in studio_config.defaults():
        assert "description" in schema["properties"][key] or key in ("hub", "auth", "local", "gpus", "spawn")


def test_demo_config_and_relative_paths(tmp_path):
    cfg = studio_config.load(REPO / "aistudio.yaml", data_dir=tmp_path / "d", port=9999)
    assert cfg["profiles_dir"] == str(REPO / "spawner_profiles")
    assert cfg["data_dir"] == str(tmp_path / "d")
    assert cfg["hub"]["port"] == 9999
    assert studio_config.demo_groups(cfg)["bob"] == ["students"]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"mode": "cloud"}, "mode: 'cloud' is not one of"),
        ({"hub": {"port": "eighty"}}, "hub.port: 'eighty' is not of type 'integer'"),
        ({"gpus": {"inventory": [{"index": 0}]}}, "gpus.inventory.0: 'type' is a required property"),
        ({"colour": "red"}, "Additional properties are not allowed ('colour' was unexpected)"),
        ({"kubernetes": {"gpu_types": {"a100": {"resource": "nvidia.com/gpu"}}}},
         "kubernetes.gpu_types.a100: 'node_selector' is a required property"),
        ({"kubernetes": {"gpu_types": {"a100": {"node_selector": {}}}}},
         "kubernetes.gpu_types.a100.node_selector: {} should be non-empty"),
        ({"kubernetes": {"image_pull_policy": "always"}}, "kubernetes.image_pull_policy: 'always' is not one of"),
        ({"datasets": {"source_views": [{"kind": "pvc", "path": "/srv/aistudio/datasets/x"}]}},
         "datasets.source_views.0: 'claim' is a required property"),
        ({"datasets": {"source_views": [{"kind": "nfs", "server": "n", "path": "/srv/x"}]}},
         "datasets.source_views.0: 'source_path' is a required property"),
        ({"datasets": {"source_views": [{"kind": "hostpath", "source_path": "/mnt", "path": "relative"}]}},
         "datasets.source_views.0.path: 'relative' does not match"),
        ({"datasets": {"source_views": [{"kind": "local", "path": "/srv/x"}]}},
         "datasets.source_views.0.kind: 'local' is not one of"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, override, message):
    path = tmp_path / "aistudio.yaml"
    path.write_text(yaml.safe_dump(override))
    with pytest.raises(studio_config.StudioConfigError) as info:
        studio_config.load(path)
    assert f"{path}: " in str(info.value) and message in str(info.value)


def test_traitlets_from_config(tmp_path):
    cfg = studio_config.load(REPO / "aistudio.yaml", data_dir=tmp_path)
    c = Config(configurer.traitlets_config(cfg))
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path}/jupyterhub.sqlite"
    assert c.JupyterHub.spawner_class.endswith("StudioLocalSpawner")
    assert c.Authenticator.admin_users == {"admin"}
    assert c.StudioLocalSpawner.gpu_inventory == [{"index": 0, "type": "a100"}, {"index": 1, "type": "a100"}]
    assert c.Spawner.cmd[0].endswith("/bin/jupyterhub-singleuser")


def test_kubernetes_mode_selects_hardened_kubespawner(tmp_path):
    path = tmp_path / "aistudio.yaml"
    path.write_text(yaml.safe_dump({"mode": "kubernetes", "profiles_dir": str(REPO / "spawner_profiles"),
                                    "kubernetes": {"home": {"storage_class": "fast"}, "namespace": "lab"}}))
    c = Config(configurer.traitlets_config(studio_config.load(path)))
    assert c.JupyterHub.spawner_class == "hub_config.spawners.kube.StudioKubeSpawner"
    assert c.JupyterHub.hub_ip == "0.0.0.0"
    k = c.StudioKubeSpawner
    assert (k.namespace, k.storage_class, k.gpu_resource_name) == ("lab", "fast", "nvidia.com/gpu")
    assert k.allow_privilege_escalation is False and k.automount_service_account_token is False
    assert "cmd" not in c.Spawner  # the image's jupyterhub-singleuser


def test_bad_kubernetes_settings_are_named(tmp_path):
    path = tmp_path / "aistudio.yaml"
    path.write_text(yaml.safe_dump({"mode": "kubernetes", "kubernetes": {"gpu_types": {"a100": {"taints": []}},
                                                                         "home": {"size": "lots"}}}))
    with pytest.raises(studio_config.StudioConfigError) as info:
        studio_config.load(path)
    assert "kubernetes.gpu_types.a100: Additional properties are not allowed ('taints'" in str(info.value)
    assert "kubernetes.home.size: 'lots' does not match" in str(info.value)


@pytest.mark.parametrize("mode", ["local", "kubernetes"])
def test_the_configurer_is_a_pure_function_of_the_config_and_its_inputs(tmp_path, mode):
    import copy

    cfg = studio_config.load(REPO / "aistudio.yaml", data_dir=tmp_path)
    cfg["mode"] = mode
    cfg["datasets"]["enabled"] = True
    before = copy.deepcopy(cfg)
    tokens = {"announcements": "t" * 64, "queue": "q" * 64, "lifecycle": "l" * 64}
    first, second = configurer.traitlets_config(cfg, tokens), configurer.traitlets_config(cfg, tokens)
    assert cfg == before  # nothing changed in the studio config
    first["JupyterHub"].pop("template_vars"), second["JupyterHub"].pop("template_vars")  # a Banner object each
    assert first == second
    assert next(s for s in first["JupyterHub"]["services"] if s["name"] == "announcements")["api_token"] == "t" * 64
