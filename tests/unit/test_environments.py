"""Members' environments: the studio config's section, profiles naming them, the launch's
choice among them, the pod image it sets, and `aistudio env list`."""

import contextlib
import io
import json
import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from hub_config import config as studio_config
from hub_config import environments
from hub_config.cli import main
from hub_config.profiles import InvalidProfiles, LaunchRejected, load_profiles

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "images" / "environments"

ONE_PROFILE = """
profiles:
  - slug: cpu
    display_name: CPU
    resources: {cpu: 1, memory: 1Gi}
    environments: [data-science, deep-learning]
    access: {everyone: true}
"""


def load_with(tmp_path, section: dict) -> dict:
    path = tmp_path / "aistudio.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "environments": section}))
    return studio_config.load(path)


def test_defaults_name_two_environments_from_the_checkouts_requirement_files():
    cfg = studio_config.load(None)
    envs = environments.configured(cfg)
    assert list(envs) == ["data-science", "deep-learning"]  # the default first
    assert envs["data-science"].requirements == str(REQUIREMENTS / "data-science.txt")
    assert envs["deep-learning"].image and envs["data-science"].image


def test_a_configs_own_requirement_file_is_relative_to_it(tmp_path):
    (tmp_path / "mine.txt").write_text("pandas==3.1.1\n")
    cfg = load_with(tmp_path, {"available": {"mine": {"requirements": "mine.txt"}}})
    assert environments.configured(cfg)["mine"].requirements == str(tmp_path / "mine.txt")


@pytest.mark.parametrize("section, words", [
    ({"default": "nope"}, ["environments.default", "'nope'", "data-science"]),
    ({"available": {"x": {"requirements": "missing.txt"}}}, ["environments.available.x.requirements", "is not a file"]),
    ({"available": {"Bad Name": {"requirements": "a.txt"}}}, ["environments.available"]),
    ({"available": {"x": {"image": "i"}}}, ["environments.available.x", "requirements"]),
])
def test_a_bad_environments_section_is_refused_naming_the_key(tmp_path, section, words):
    with pytest.raises(studio_config.StudioConfigError) as e:
        load_with(tmp_path, section)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_requirement_files_pin_exactly_and_agree_with_the_studios_pins():
    studio = dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)", d).groups()
                  for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    norm = {k.lower().replace("_", "-"): v for k, v in studio.items()}
    wanted = {"data-science": {"pandas", "pyarrow", "numpy", "scikit-learn", "matplotlib", "jupyterhub", "jupyterlab"},
              "deep-learning": {"torch"}}
    for name, needed in wanted.items():
        pins = {}
        for f in environments.requirement_files(REQUIREMENTS / f"{name}.txt"):
            for line in f.read_text().splitlines():
                line = line.split("#")[0].strip()
                if line and not line.startswith("-r"):
                    package, _, version = line.partition("==")
                    assert version, f"{f.name}: {line} is not pinned exactly"
                    pins[package.lower().replace("_", "-")] = version
        assert needed <= set(pins), (name, needed - set(pins))
        for package, version in pins.items():
            if package in norm:
                assert version == norm[package], f"{name}: {package}=={version}, the hub pins {norm[package]}"
    assert pins["torch"] == "2.13.0"


def test_profiles_may_name_only_configured_environments(tmp_path):
    (tmp_path / "p.yaml").write_text(ONE_PROFILE.replace("deep-learning", "gpu-stack"))
    with pytest.raises(InvalidProfiles) as e:
        load_profiles(tmp_path, ["data-science", "deep-learning"])
    assert str(e.value) == (f"{tmp_path / 'p.yaml'}: profile cpu: environments[1]: 'gpu-stack' is not an environment "
                            "of the studio config (environments.available: data-science, deep-learning)")
    assert load_profiles(tmp_path).profiles[0].environments == ("data-science", "gpu-stack")  # names unchecked


def test_the_launch_takes_the_profiles_first_environment_or_the_one_chosen_among_its_own(tmp_path):
    (tmp_path / "p.yaml").write_text(ONE_PROFILE + """
  - slug: plain
    display_name: Plain
    resources: {cpu: 1, memory: 1Gi}
    access: {everyone: true}
""")
    profiles = load_profiles(tmp_path, ["data-science", "deep-learning"])
    first = profiles.resolve("ann", [], {"profile": "cpu"})
    assert (first.environment, first.options) == ("data-science", {"environment": "data-science"})
    chosen = profiles.resolve("ann", [], {"profile": "cpu", "environment": "deep-learning"})
    assert chosen.environment == "deep-learning"
    assert profiles.resolve("ann", [], {"profile": "plain"}).environment is None  # the studio's default
    with pytest.raises(LaunchRejected) as e:
        profiles.resolve("ann", [], {"profile": "plain", "environment": "deep-learning"})
    assert e.value.status == 400 and "environment='deep-learning' is not offered by profile 'plain'" in e.value.message
    # a saved choice no longer offered falls back to the default instead of failing a restart
    assert profiles.resolve("ann", [], {"profile": "cpu", "environment": "gone"}, saved=True).environment == "data-science"


def test_the_chosen_environment_sets_the_pod_image():
    from hub_config.spawners.kube import pod_settings

    profiles = load_profiles(REPO / "spawner_profiles")
    base = {"image": "base", "extra_labels": {}, "environment": {}, "extra_resource_limits": {},
            "extra_resource_guarantees": {}, "node_selector": {}, "tolerations": [], "node_affinity_required": [],
            "volumes": [], "volume_mounts": []}
    images = {"data-science": "ds:1", "deep-learning": "dl:1"}
    for env, image in images.items():
        launch = profiles.resolve("alice", ["gpu-residents"], {"profile": "gpu-1", "environment": env})
        settings = pod_settings(launch, base=base, gpu_resource="nvidia.com/gpu", gpu_types={}, request_fraction=1.0,
                                images=images)
        assert settings["image"] == image


def run_cli(*argv) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_env_list_json_shows_every_environment_and_whether_it_is_built(tmp_path):
    root = tmp_path / "envs"
    (tmp_path / "a.txt").write_text("pandas==3.1.1\n")
    config = tmp_path / "aistudio.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "environments": {
        "root": str(root), "default": "a", "available": {"a": {"requirements": "a.txt"}, "b": {"requirements": "a.txt"}}}}))
    # "a" built as a build leaves it: its server command and marker
    (root / "a" / "bin").mkdir(parents=True)
    (root / "a" / "bin" / "jupyterhub-singleuser").write_text("#!/bin/sh\n")
    os.chmod(root / "a" / "bin" / "jupyterhub-singleuser", 0o755)
    env_a = environments.configured(studio_config.load(config))["a"]
    (root / "a" / environments.MARKER).write_text(json.dumps({
        "requirements_hash": environments.requirements_hash(env_a), "extension_hash": environments.extension_hash()}))
    code, out = run_cli("--config", str(config), "env", "list", "--format", "json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert list(rows) == ["a", "data-science", "deep-learning", "b"]  # the default first, then as configured
    assert rows["a"]["path"] == str(root / "a") and rows["a"]["built"] and rows["a"]["up_to_date"] and rows["a"]["default"]
    assert rows["b"]["built"] is False and rows["b"]["path"] == str(root / "b")
    assert rows["a"]["requirements"] == str(tmp_path / "a.txt")
    # a changed requirement file: still built, no longer up to date
    (tmp_path / "a.txt").write_text("pandas==3.1.1\nnumpy==2.4.6\n")
    rows = {r["name"]: r for r in json.loads(run_cli("--config", str(config), "env", "list", "--format", "json")[1])}
    assert rows["a"]["built"] and not rows["a"]["up_to_date"]
    code, table = run_cli("--config", str(config), "env", "list")
    assert "a (default)" in table and "yes, out of date" in table


def test_env_build_refuses_an_unknown_name(tmp_path, capsys):
    assert main(["env", "build", "no-such-env"]) == 2
    assert "no environment no-such-env" in capsys.readouterr().err
