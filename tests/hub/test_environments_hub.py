"""Members' environments through a real hub: a server runs in its profile's environment,
not the hub's; every snippet the Datasets panel offers loads its rows there; PyTorch
imports in the deep-learning environment; a choice outside the profile's list and an
environment not built on this machine are refused plainly."""

import grp
import json
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from harness import ACCOUNT_PREFIX, Studio, copy_profiles, free_ports, write_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="per-user system accounts need root")

GROUP_PREFIX = f"{ACCOUNT_PREFIX}env-"
NEVER_BUILT = f"never-built-{secrets.token_hex(3)}"

# a profile whose only environment is configured but never built (carol, in no group, may launch it)
UNBUILT_PROFILE = f"""
profiles:
  - slug: cpu-unbuilt
    display_name: "CPU in an environment not built here"
    resources: {{cpu: 1, memory: 2Gi}}
    environments: [{NEVER_BUILT}]
    access: {{users: [carol]}}
  - slug: cpu-fallback
    display_name: "CPU whose first environment is not built here"
    resources: {{cpu: 1, memory: 2Gi}}
    environments: [{NEVER_BUILT}, data-science]
    access: {{users: [carol]}}
"""


@pytest.fixture(scope="module")
def env_studio(tmp_path_factory):
    directory = tmp_path_factory.mktemp("environments-studio")
    os.chmod(directory, 0o755)
    files = Path(f"/tmp/aistudio-test-envs-{secrets.token_hex(4)}")
    files.mkdir(mode=0o755)
    profiles = copy_profiles(directory)
    (profiles / "unbuilt.yaml").write_text(UNBUILT_PROFILE)
    config = write_config(directory, profiles, datasets={
        "enabled": True, "mount_root": str(files / "mnt"), "group_prefix": GROUP_PREFIX,
        "demo": {"enabled": True, "files_dir": str(files / "demo")},
    }, environments={"available": {NEVER_BUILT: {"requirements": str(Path(__file__).parents[2] / "images" /
                                                                    "environments" / "data-science.txt")}}})
    settings = yaml.safe_load(config.read_text())
    taken = set(settings["hub"].values()) | {v.get("service_port") for v in settings.values() if isinstance(v, dict)}
    settings["datasets"]["service_port"] = next(p for p in free_ports(8) if p not in taken)
    config.write_text(yaml.safe_dump(settings))
    studio = Studio(directory, config)
    try:
        yield studio.start()
    finally:
        studio.stop()
        shutil.rmtree(files, ignore_errors=True)
        for g in grp.getgrall():
            if g.gr_name.startswith(GROUP_PREFIX):
                subprocess.run(["groupdel", g.gr_name], capture_output=True)


def panel(studio, user, path, **params):
    """The Datasets panel's own server route in ``user``'s JupyterLab, as the panel calls it."""
    r = requests.get(f"{studio.url}/user/{user}/aistudio-datasets/api/{path}", params=params,
                     headers={"Authorization": f"token {studio.token(user)}"}, timeout=60)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r.json()


def offered_snippets(studio, user) -> dict:
    """Every snippet the panel offers for every file of every dataset ``user`` is granted:
    {"dataset/file/kind": code}."""
    snippets = {}
    for dataset in panel(studio, user, "datasets")["datasets"]:
        name = dataset["name"]
        for f in panel(studio, user, f"datasets/{name}/schema")["files"]:
            answer = panel(studio, user, f"datasets/{name}/snippet", file=f["path"])
            for kind, code in answer.items():
                if isinstance(code, str) and "import " in code:
                    snippets[f"{name}/{f['path']}/{kind}"] = code
    return snippets


RUN_EACH = """
import json
snippets = json.loads({payload!r})
for key, code in snippets.items():
    scope = {{}}
    try:
        exec(code, scope)
        loaded = scope.get("df", scope.get("table"))
        print("ROWS", key, len(loaded))
    except Exception as e:
        print("FAILED", key, type(e).__name__, e)
"""


def test_every_offered_snippet_loads_rows_in_a_data_science_server(env_studio):
    r = env_studio.spawn("bob", {"profile": "cpu-small"})  # its first environment: data-science
    assert r.status_code in (201, 202), r.text
    try:
        snippets = offered_snippets(env_studio, "bob")
        datasets = {key.split("/")[0] for key in snippets}
        assert {"icu-vitals", "chest-xray-labels"} <= datasets, snippets.keys()
        assert any(".csv/" in k for k in snippets) and any(".parquet/" in k for k in snippets)
        out = env_studio.run_in_kernel("bob", RUN_EACH.format(payload=json.dumps(snippets)), timeout=120)
        rows = {m[0]: int(m[1]) for m in re.findall(r"^ROWS (\S+) (\d+)$", out, flags=re.M)}
        assert set(rows) == set(snippets), out
        assert all(n > 0 for n in rows.values()), rows
        where = env_studio.run_in_kernel("bob", "import sys, sklearn, matplotlib; print(sys.prefix)")
        assert where.strip().endswith("/data-science"), where  # not the hub's environment
    finally:
        env_studio.stop_server("bob")


def test_pytorch_imports_in_a_deep_learning_server_and_sees_no_gpu_here(env_studio):
    form = env_studio.form("bob")
    assert 'name="profile-option-cpu-small--environment"' in form and 'value="deep-learning"' in form
    r = env_studio.spawn("bob", {"profile": "cpu-small", "environment": "deep-learning"})
    assert r.status_code in (201, 202), r.text
    try:
        out = env_studio.run_in_kernel(
            "bob", "import sys, torch; print(torch.__version__, torch.cuda.is_available(), torch.ones(2).sum().item(), sys.prefix)")
        version, cuda, total, prefix = out.split()
        assert version.startswith("2.13.0") and cuda == "False" and total == "2.0", out
        assert prefix.endswith("/deep-learning")
        assert env_studio.api("GET", "/users/bob").json()["servers"][""]["user_options"]["environment"] == "deep-learning"
    finally:
        env_studio.stop_server("bob")


def test_an_environment_outside_the_profile_or_not_built_is_refused_plainly(env_studio):
    r = env_studio.spawn("bob", {"profile": "gpu-1", "environment": NEVER_BUILT}, wait=False)
    assert r.status_code == 400 and "environment" in r.json()["message"] and "gpu-1" in r.json()["message"], r.text
    r = env_studio.spawn("carol", {"profile": "cpu-unbuilt"}, wait=False)
    if r.status_code == 202:  # refused while starting: the reason is the server's failure
        message = env_studio.api("GET", "/users/carol/server/progress").text
    else:
        message = r.text
    assert f"Environment {NEVER_BUILT} is not built on this machine: run `aistudio env build {NEVER_BUILT}`" in message, message
    assert not env_studio.api("GET", "/users/carol").json()["servers"]


def test_without_a_choice_the_profiles_first_environment_built_here_is_taken(env_studio):
    form = env_studio.form("carol")
    select = re.search(r'<select[^>]*name="profile-option-cpu-fallback--environment".*?</select>', form, flags=re.S)
    assert select, form
    options = dict(re.findall(r'<option value="([^"]+)"([^>]*)>', select.group(0)))
    assert "disabled" in options[NEVER_BUILT] and "selected" not in options[NEVER_BUILT], select.group(0)
    assert "selected" in options["data-science"] and "disabled" not in options["data-science"], select.group(0)
    r = env_studio.spawn("carol", {"profile": "cpu-fallback"})  # through the API, naming no environment
    assert r.status_code in (201, 202), r.text
    try:
        where = env_studio.run_in_kernel("carol", "import sys; print(sys.prefix)")
        assert where.strip().endswith("/data-science"), where
    finally:
        env_studio.stop_server("carol")
