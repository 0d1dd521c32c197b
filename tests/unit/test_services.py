"""The base of the hub-managed services and the specs the hub runs them from, without a hub."""

import json

import pytest

from hub_config import config as studio_config
from hub_config import configurer
from hub_config.announcements.service import AnnouncementsService
from hub_config.datasets.service import DatasetsService
from hub_config.services.base import listen_address
from hub_config.services.spec import Role, ServiceSpec, access_scope, hub_settings
from hub_config.usage.service import UsageService


@pytest.mark.parametrize("url, address", [
    ("http://127.0.0.1:8010", "127.0.0.1"), ("http://localhost:8010", "localhost"), ("http://[::1]:8010", "::1"),
    ("http://aistudio-hub:8010", ""), ("http://10.0.0.7:8010/", ""),
])
def test_services_listen_on_loopback_unless_reached_from_elsewhere(url, address):
    assert listen_address(url) == address


def test_settings_come_from_the_hub_environment_and_the_service_variables(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:9123")
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/lab/")
    monkeypatch.setenv("AISTUDIO_DATASETS_DB_URL", "sqlite:////tmp/x.sqlite")
    monkeypatch.setenv("AISTUDIO_DATASETS_SETTINGS", json.dumps({"mount_root": "/srv/ds"}))
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    service = DatasetsService()
    service.load_environment()
    assert service.service_url == "http://127.0.0.1:9123"
    assert service.service_prefix == "/lab/services/datasets/"  # derived when the hub sets none
    assert service.hub_url == "/lab/hub/"
    assert service.db_url == "sqlite:////tmp/x.sqlite"
    assert service.catalogue_settings["mount_root"] == "/srv/ds"
    assert service.catalogue_settings["preview"]["max_rows"] == 100  # default kept

    monkeypatch.setenv("AISTUDIO_ANNOUNCEMENTS_BODY_MAX", "500")
    announcements = AnnouncementsService()
    announcements.load_environment()
    assert announcements.body_max == 500 and announcements.timezone == "UTC"


def test_every_setting_is_documented_and_read_from_one_variable():
    seen = {}
    for service in (UsageService, DatasetsService, AnnouncementsService):
        for name, trait in service.class_traits(config=True).items():
            if trait.metadata.get("env"):
                assert trait.help, f"{service.__name__}.{name}"
                seen.setdefault(trait.metadata["env"], set()).add(name)
    assert all(len(names) == 1 for names in seen.values()), seen
    assert {"AISTUDIO_USAGE_DB_URL", "AISTUDIO_DATASETS_DB_URL", "AISTUDIO_ANNOUNCEMENTS_DB_URL",
            "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX"} <= set(seen)


def test_each_spec_sets_exactly_the_variables_its_service_reads(tmp_path):
    cfg = studio_config.load(None, data_dir=tmp_path)
    cfg["datasets"]["enabled"] = True
    specs = {s.name: s for s in configurer.service_specs(cfg, configurer.new_tokens())}
    for service in (UsageService, DatasetsService, AnnouncementsService):
        read = {t.metadata["env"] for t in service.class_traits(config=True).values() if t.metadata.get("env")}
        own = {name for name in read if name.startswith("AISTUDIO_")}
        assert set(specs[service.name].environment) == own, service.name
        assert specs[service.name].module == service.__module__


def test_specs_become_services_roles_and_scopes():
    specs = [
        ServiceSpec(name="a", url="http://127.0.0.1:1", module="pkg.a", every_user=True, description="A"),
        ServiceSpec(name="b", command=("run-b",), roles=(Role("b", ("list:users",), services=("b",)),)),
        ServiceSpec(name="c", url="http://127.0.0.1:3", every_user=True, oauth_client_scopes=("custom:c",),
                    custom_scopes={"custom:c": {"description": "C"}},
                    roles=(Role("c-writers", ("custom:c",), groups=("writers",)),)),
    ]
    settings = hub_settings(specs)
    services = {s["name"]: s for s in settings["services"]}
    assert services["a"]["command"][1:] == ["-m", "pkg.a"] and services["a"]["info"] == {"description": "A"}
    assert services["a"]["oauth_no_confirm"] is True
    assert services["b"] == {"name": "b", "command": ["run-b"]}  # no web endpoint: no OAuth client
    assert services["c"]["oauth_client_allowed_scopes"] == ["custom:c"]
    roles = {r["name"]: r for r in settings["load_roles"]}
    assert roles["user"]["scopes"] == ["self", access_scope("a"), access_scope("c")]
    assert roles["b"] == {"name": "b", "scopes": ["list:users"], "services": ["b"]}
    assert roles["c-writers"] == {"name": "c-writers", "scopes": ["custom:c"], "groups": ["writers"], "users": []}
    assert settings["custom_scopes"] == {"custom:c": {"description": "C"}}
    assert "custom_scopes" not in hub_settings(specs[:2])
    assert hub_settings([])["load_roles"] == []  # no extra scopes: JupyterHub's own user role


def test_servers_get_the_address_and_scope_of_each_service_they_use(tmp_path):
    cfg = studio_config.load(None, data_dir=tmp_path)
    cfg["datasets"]["enabled"] = True
    spawner = configurer.traitlets_config(cfg)["Spawner"]
    assert spawner["environment"] == {
        "AISTUDIO_DATASETS_URL": f"http://127.0.0.1:{cfg['datasets']['service_port']}/services/datasets/",
        "AISTUDIO_ANNOUNCEMENTS_URL": f"http://127.0.0.1:{cfg['announcements']['service_port']}/services/announcements/",
    }
    assert set(spawner["server_token_scopes"]) == {
        "users:activity!user", "access:servers!server", "read:servers!user", "servers!server",
        access_scope("datasets"), access_scope("announcements")}
    cfg["datasets"]["enabled"] = cfg["announcements"]["enabled"] = False
    assert "Spawner" not in configurer.server_traitlets(cfg, configurer.service_specs(cfg, configurer.new_tokens()))


def test_the_hub_and_the_lab_extension_name_the_same_variables():
    """The variables that cross the trust boundary are named on both sides; they must agree."""
    lab_datasets = pytest.importorskip("aistudio_lab.datasets")
    lab_announcements = pytest.importorskip("aistudio_lab.announcements")
    from hub_config.announcements.service import SERVER_URL_ENV as ANNOUNCEMENTS_URL
    from hub_config.datasets.service import SERVER_URL_ENV as DATASETS_URL
    from hub_config.spawners.datasets import SERVER_DIR_ENV

    assert lab_datasets.CATALOGUE_URL == DATASETS_URL
    assert lab_datasets.DATASETS_DIR == SERVER_DIR_ENV
    assert lab_announcements.ANNOUNCEMENTS_URL == ANNOUNCEMENTS_URL
