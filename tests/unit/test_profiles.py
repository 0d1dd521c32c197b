"""The profile loader and launch decisions, without a hub."""

import shutil
from pathlib import Path

import pytest

from hub_config.profiles import InvalidProfiles, LaunchRejected, ProfileStore, load_profiles

REPO = Path(__file__).resolve().parents[2]
GiB = 1024**3


@pytest.fixture
def shipped():
    return load_profiles(REPO / "spawner_profiles")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


PROFILE = """\
profiles:
  - slug: {slug}
    display_name: {slug}
    resources: {{cpu: 1, memory: 2Gi}}
    access: {{everyone: true}}
"""


def problems_of(tmp_path, text, name="bad.yaml"):
    write(tmp_path, name, text)
    with pytest.raises(InvalidProfiles) as info:
        load_profiles(tmp_path)
    return [str(p).removeprefix(f"{tmp_path}/") for p in info.value.problems]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("profiles: [", "bad.yaml: profile -: (file): is not valid YAML at line 1"),
        ("profiles:\n  - slug: x\n    display_name: X\n    access: {everyone: true}\n",
         "bad.yaml: profile x: resources: is required"),
        (PROFILE.format(slug="x").replace("memory: 2Gi", "memory: 2 gigs"),
         "bad.yaml: profile x: resources.memory: '2 gigs' is invalid: An amount of memory"),
        (PROFILE.format(slug="Big_One"), "bad.yaml: profile Big_One: slug: 'Big_One' is not a slug"),
        (PROFILE.format(slug="x") + "    colour: red\n", "bad.yaml: profile x: colour: unknown field"),
        (PROFILE.format(slug="x") + "    max_runtime: forever\n", "bad.yaml: profile x: max_runtime: 'forever' is invalid"),
        (PROFILE.format(slug="x").replace("{everyone: true}", "{groups: []}"),
         "bad.yaml: profile x: access: grants access to nobody"),
        (PROFILE.format(slug="x") + "    options:\n      gpus: {min: 4, max: 1}\n",
         "bad.yaml: profile x: options.gpus.min: min 4 is larger than max 1"),
        (PROFILE.format(slug="x") + "    options:\n      memory: {min: 1Gi, max: 4Gi, step: 1Gi, default: 3Gi}\n",
         None),
        (PROFILE.format(slug="x") + "    options:\n      memory: {min: 1Gi, max: 4Gi, step: 1Gi, default: 5Gi}\n",
         "bad.yaml: profile x: options.memory.default: 5Gi is not among the offered values"),
        (PROFILE.format(slug="x") + "    options:\n      cpu: {choices: [1, 2], min: 1}\n",
         "bad.yaml: profile x: options.cpu: give either choices or min/max/step, not both"),
        (PROFILE.format(slug="x") + "    options:\n      memory: {min: 1Mi, max: 4Gi, step: 1Mi}\n",
         "bad.yaml: profile x: options.memory.step: offers 4096 values"),
        (PROFILE.format(slug="x").replace("memory: 2Gi}", "memory: 2Gi, shm: 4Gi}"),
         "bad.yaml: profile x: resources.shm: 4Gi is larger than the profile's memory 2Gi"),
        ("{}", "bad.yaml: profile -: profiles: is required"),
    ],
)
def test_broken_files_name_file_profile_and_field(tmp_path, text, expected):
    if expected is None:
        assert load_profiles(write(tmp_path, "ok.yaml", text)).by_slug["x"].options["memory"].default == 3 * GiB
        return
    problems = problems_of(tmp_path, text)
    assert any(p.startswith(expected) for p in problems), problems


def test_duplicate_slugs_and_two_defaults_across_files(tmp_path):
    write(tmp_path, "a.yaml", PROFILE.format(slug="same") + "    default: true\n")
    write(tmp_path, "b.yaml", PROFILE.format(slug="same"))
    write(tmp_path, "c.yaml", PROFILE.format(slug="other") + "    default: true\n")
    with pytest.raises(InvalidProfiles) as info:
        load_profiles(tmp_path)
    text = str(info.value)
    assert f"{tmp_path}/b.yaml: profile same: slug: already defined in {tmp_path}/a.yaml" in text
    assert f"{tmp_path}/c.yaml: profile other: default: only one profile may be the default" in text


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(InvalidProfiles, match="no profile files"):
        load_profiles(tmp_path)


def test_rights_by_group_user_and_everyone(shipped):
    slugs = lambda user, groups: [a.profile.slug for a in shipped.allowed_for(user, groups)]  # noqa: E731
    assert slugs("alice", ["gpu-residents"]) == ["cpu-small", "gpu-1", "gpu-multi"]
    assert slugs("bob", ["students"]) == ["cpu-small", "gpu-1"]
    assert slugs("nobody", []) == ["cpu-small"]


def test_group_bounds_combine_to_most_generous(shipped):
    student = shipped.allowed_for("bob", ["students"])[0]
    both = shipped.allowed_for("dora", ["students", "gpu-residents"])[0]
    assert student.choices["memory"][-1] == 8 * GiB
    assert both.choices["memory"][-1] == 16 * GiB


def test_resolve_applies_options_and_defaults(shipped):
    launch = shipped.resolve("alice", ["gpu-residents"], {"profile": "gpu-multi", "gpus": 3, "memory": "128Gi"})
    assert (launch.resources.gpus, launch.resources.memory, launch.resources.cpu) == (3, 128 * GiB, 16)
    assert launch.options == {"gpus": "3", "memory": "128Gi", "environment": "deep-learning"}
    assert launch.environment == "deep-learning"  # the profile's first
    assert launch.max_runtime == 24 * 3600
    default = shipped.resolve("alice", ["gpu-residents"], {})
    assert default.profile.slug == "cpu-small" and default.resources.memory == 8 * GiB


@pytest.mark.parametrize(
    "options, status",
    [
        ({"profile": "gpu-multi"}, 403),
        ({"profile": "cpu-small", "memory": "12Gi"}, 403),
        ({"profile": "cpu-small", "memory": "3Gi"}, 400),
        ({"profile": "ghost"}, 400),
        ({"profile": 7}, 400),
        ({"profile": "cpu-small", "gpus": 1}, 400),
    ],
)
def test_resolve_refuses(shipped, options, status):
    with pytest.raises(LaunchRejected) as info:
        shipped.resolve("bob", ["students"], options)
    assert info.value.status == status


def test_saved_options_never_break_a_launch(shipped):
    for saved in ({"profile": "ghost"}, {"profile": "gpu-multi"}, {"profile": "cpu-small", "memory": "16Gi"}):
        launch = shipped.resolve("bob", ["students"], saved, saved=True)
        assert launch.profile.slug == "cpu-small"


def test_no_profile_at_all_is_403(tmp_path):
    write(tmp_path, "p.yaml", PROFILE.format(slug="x").replace("{everyone: true}", "{groups: [staff]}"))
    with pytest.raises(LaunchRejected, match="No profile is available to bob") as info:
        load_profiles(tmp_path).resolve("bob", ["students"], {})
    assert info.value.status == 403


def test_store_reloads_and_keeps_last_good_set(tmp_path, caplog):
    directory = tmp_path / "profiles"
    shutil.copytree(REPO / "spawner_profiles", directory)
    store = ProfileStore(directory)
    assert "extra" not in store.current().by_slug
    write(directory, "extra.yaml", PROFILE.format(slug="extra"))
    assert "extra" in store.current().by_slug
    write(directory, "extra.yaml", PROFILE.format(slug="extra").replace("2Gi", "two"))
    with caplog.at_level("ERROR"):
        kept = store.current()
    assert "extra" in kept.by_slug
    assert "keeping the last good set" in caplog.text and "extra.yaml: profile extra: resources.memory" in caplog.text
    (directory / "extra.yaml").unlink()
    assert "extra" not in store.current().by_slug
