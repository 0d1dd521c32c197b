"""The tree shows the architecture: hub_config/ is the trusted side, one subpackage per
concern, with imports that run one way; extensions/ ships into members' servers."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HUB = REPO / "hub_config"
MAX_LINES = 800


def modules(root: Path):
    return sorted(p for p in root.rglob("*.py") if "node_modules" not in p.parts)


def imported(path: Path) -> set[str]:
    """The hub_config modules (and other top-level packages) that ``path`` imports."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.removesuffix(".__init__")
    else:
        package = package.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            names.add(target)
            names.update(f"{target}.{a.name}" for a in node.names)
    return names


def concern(name: str) -> str | None:
    """``hub_config.usage.store`` -> ``usage``; top-level modules -> their name."""
    parts = name.split(".")
    return parts[1] if parts[0] == "hub_config" and len(parts) > 1 else None


def test_no_module_is_over_800_lines():
    long = [f"{p.relative_to(REPO)}: {n}" for p in modules(HUB) + modules(REPO / "extensions")
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert long == []


def test_one_subpackage_per_concern():
    packages = {p.name for p in HUB.iterdir() if (p / "__init__.py").is_file()}
    assert packages == {"auth", "spawners", "usage", "datasets", "announcements", "services", "cli", "queue", "lifecycle"}
    for name in ("usage", "datasets", "announcements"):
        assert (HUB / name / "migrations" / "env.py").is_file(), name
        assert (HUB / name / "service.py").is_file(), name
    assert len((HUB / "jupyterhub_config.py").read_text().splitlines()) <= 12


def test_the_hub_side_never_imports_what_ships_into_servers():
    bad = [f"{p.relative_to(REPO)} imports {n}" for p in modules(HUB) for n in imported(p)
           if n.split(".")[0] in ("aistudio_lab", "extensions")]
    assert bad == []


# who may import whom: a concern on the left may use those on the right (and the shared
# top-level modules: config, db, profiles, quotas, gpus, units, processes)
ALLOWED = {
    "spawners": {"datasets", "usage", "queue", "lifecycle"},
    "lifecycle": set(),
    "queue": {"usage"},
    "usage": {"services"},
    "datasets": {"services"},
    "announcements": {"services", "notifications", "membership"},
    "services": set(),
    "auth": {"notifications", "membership"},
    "cli": {"datasets", "usage", "queue"},
}
SHARED = {"config", "db", "profiles", "quotas", "gpus", "units", "processes", "environments"}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_imports_run_one_way(name):
    bad = []
    for path in modules(HUB / name):
        for target in imported(path):
            other = concern(target)
            if other and other != name and other not in SHARED | ALLOWED[name]:
                bad.append(f"{path.relative_to(REPO)} imports {target}")
    assert bad == []


def test_shared_modules_import_no_concern():
    bad = [f"{p.name} imports {t}" for p in HUB.glob("*.py") if p.stem in SHARED
           for t in imported(p) if concern(t) and concern(t) not in SHARED]
    assert bad == []


def test_every_service_is_built_on_the_service_base():
    from hub_config.announcements.service import AnnouncementsService
    from hub_config.datasets.service import DatasetsService
    from hub_config.services.base import StudioService
    from hub_config.usage.service import UsageService

    for service in (UsageService, DatasetsService, AnnouncementsService):
        assert issubclass(service, StudioService)
        module = Path(__import__(service.__module__, fromlist=["x"]).__file__)
        names = imported(module)
        # no service wires HubOAuth, tornado's loop or JupyterHub's private caches itself
        assert not names & {"jupyterhub.services.auth", "tornado.ioloop"}, module
        assert "_hub_auth_user_cache" not in module.read_text()


def test_the_configurer_builds_services_from_their_specs():
    names = imported(HUB / "configurer.py")
    assert {"hub_config.usage.service", "hub_config.datasets.service", "hub_config.announcements.service",
            "hub_config.services.spec.hub_settings"} <= names
    source = (HUB / "configurer.py").read_text()
    assert "load_roles" not in source and "access:services" not in source  # built in services/spec.py only
