"""Datasets through a real hub: the catalogue service's authorisation for every user,
dataset and endpoint; confined and bounded previews; read-only mounts under per-user
system accounts (a kernel as the member tries to read and write); requests approved
with an expiry; revocation at the next start; the demo datasets; the audit log."""

import contextlib
import csv
import grp
import io
import json
import os
import pwd
import secrets
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import requests
import yaml

from harness import ACCOUNT_PREFIX, CHROMIUM, Studio, browser_login, copy_profiles, free_ports, write_config

from hub_config import cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="per-user system accounts need root")

GROUP_PREFIX = f"{ACCOUNT_PREFIX}ds-"
# users (harness.USERS): alice gpu-residents, bob students, carol none, dora students+gpu-residents
GRANTED = {
    "alice": {"beta"},
    "bob": {"alpha"},
    "carol": set(),
    "dora": {"alpha"},
}
PUBLISHED = {"alpha", "beta", "gamma"}  # gamma: granted to nobody
UNPUBLISHED = {"delta"}  # failed its scan
TEST_DATASETS = PUBLISHED | UNPUBLISHED | {"ghost"}  # ghost: never registered
ENDPOINTS = ["", "/schema", "/preview", "/snippet"]


def table(n=50, **extra):
    cols = {"age_band": ["30-39", "40-49"] * (n // 2), "sex": ["F", "M"] * (n // 2), "hr": list(range(n))}
    cols.update(extra)
    return pa.table(cols)


@pytest.fixture(scope="module")
def ds_studio(tmp_path_factory):
    directory = tmp_path_factory.mktemp("datasets-studio")
    os.chmod(directory, 0o755)
    files = Path(f"/tmp/aistudio-test-datasets-{secrets.token_hex(4)}")
    files.mkdir(mode=0o755)
    os.chmod(files, 0o755)
    for name, fname, t in (("alpha", "vitals.csv", table()), ("beta", "labs.parquet", table(60)),
                           ("gamma", "g.csv", table()), ("epsilon", "e.csv", table()),
                           ("delta", "contacts.csv", table(10, tel=["13812345678"] * 10)),
                           ("wide", "wide.csv", table(40, note=["x" * 900] * 40))):
        (files / name).mkdir()
        (pq.write_table if fname.endswith(".parquet") else pacsv.write_csv)(t, str(files / name / fname))
    (files / "secret.csv").write_text("secret\nnot for members\n")
    (files / "alpha" / "escape.csv").symlink_to(files / "secret.csv")
    config = write_config(directory, copy_profiles(directory), datasets={
        "enabled": True, "mount_root": str(files / "mnt"),
        "group_prefix": GROUP_PREFIX, "preview": {"max_rows": 100, "max_bytes": 65536},
        "demo": {"enabled": True, "files_dir": str(files / "demo")},
    }, announcements={"organiser_users": ["admin"]})
    # a free port for the catalogue that none of the studio's others took (a port freed by one
    # free_ports call may come back from the next)
    settings = yaml.safe_load(config.read_text())
    taken = set(settings["hub"].values()) | {v.get("service_port") for v in settings.values() if isinstance(v, dict)}
    settings["datasets"]["service_port"] = next(p for p in free_ports(8) if p not in taken)
    config.write_text(yaml.safe_dump(settings))
    studio = Studio(directory, config)
    studio.files = files
    try:
        yield from _registered_and_started(studio, files)
    finally:
        studio.stop()
        shutil.rmtree(files, ignore_errors=True)
        for g in grp.getgrall():
            if g.gr_name.startswith(GROUP_PREFIX):
                subprocess.run(["groupdel", g.gr_name], capture_output=True)


def _registered_and_started(studio, files):
    # the steward registers the test datasets with the CLI before the hub starts
    for name in ("alpha", "beta", "gamma", "epsilon", "delta", "wide"):
        steward(studio, "add", name, "--path", str(files / name), "--title", f"Dataset {name}",
                "--tags", "test," + ("tabular" if name != "beta" else "labs"), "--quasi-identifiers", "age_band,sex")
        steward(studio, "scan", name, check=name != "delta")
        if name != "delta":
            steward(studio, "publish", name)
    steward(studio, "grant", "alpha", "--groups", "students")
    steward(studio, "grant", "beta", "--users", "alice")
    steward(studio, "grant", "wide", "--users", "bob")
    steward(studio, "grant", "epsilon", "--users", "ahmed")
    studio.start()
    wait_for_catalogue(studio)
    yield studio


def steward(studio, *args, check=True):
    """``aistudio datasets ARGS`` as the steward (in this process: the same code, no interpreter start)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["--config", str(studio.config_path), "datasets", "--as", "steward", *args]
    # in a thread of its own: the CLI runs asyncio, and Playwright's sync API may hold this thread's loop
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), ThreadPoolExecutor(1) as pool:
        code = pool.submit(cli.main, argv).result()
    result = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check:
        assert code == 0, result.stdout + result.stderr
    return result


def api(studio, user, path, method="GET", **kwargs):
    return requests.request(method, f"{studio.url}/services/datasets/api/{path}",
                            headers={"Authorization": f"token {studio.token(user)}"}, timeout=30, **kwargs)


def wait_for_catalogue(studio, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = api(studio, "bob", "datasets")
            if r.status_code == 200 and "icu-vitals" in {d["name"] for d in r.json()["datasets"]}:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the catalogue did not come up with the demo datasets:\n{studio.log()[-3000:]}")


# --------------------------------------------------------------------------- the authorisation matrix


@pytest.mark.parametrize("user", sorted(GRANTED))
def test_each_user_lists_exactly_their_datasets(ds_studio, user):
    r = api(ds_studio, user, "datasets")
    assert r.status_code == 200, r.text
    listed = {d["name"] for d in r.json()["datasets"]} & TEST_DATASETS
    assert listed == GRANTED[user]
    requestable = {d["name"] for d in api(ds_studio, user, "requestable").json()["datasets"]} & TEST_DATASETS
    assert requestable == PUBLISHED - GRANTED[user]
    for d in api(ds_studio, user, "requestable").json()["datasets"]:
        assert "files" not in d and "/tmp/" not in json.dumps(d)  # metadata only, never data or locations


@pytest.mark.parametrize("user", sorted(GRANTED))
def test_every_endpoint_answers_only_for_granted_datasets(ds_studio, user):
    for name in sorted(TEST_DATASETS):
        for endpoint in ENDPOINTS:
            r = api(ds_studio, user, f"datasets/{name}{endpoint}")
            if name in GRANTED[user]:
                expected = 200
            elif name in PUBLISHED:
                expected = 403
            else:
                expected = 404
            assert r.status_code == expected, (user, name, endpoint, r.status_code, r.text[:200])
            if expected != 200:
                assert "age_band" not in r.text and "/tmp/" not in r.text


def test_granted_answers_carry_metadata_schema_rows_and_snippets(ds_studio):
    meta = api(ds_studio, "bob", "datasets/alpha").json()
    assert meta["title"] == "Dataset alpha" and meta["quasi_identifiers"] == ["age_band", "sex"]
    assert meta["mount_path"] == f"{ds_studio.files}/mnt/alpha" and meta["scan"]["status"] == "pass"
    assert str(ds_studio.files) not in json.dumps({k: v for k, v in meta.items() if k != "mount_path"})
    schema = api(ds_studio, "bob", "datasets/alpha/schema").json()
    assert [f["path"] for f in schema["files"]] == ["vitals.csv"]  # the escaping link is not a file of it
    assert [c["name"] for c in schema["files"][0]["columns"]] == ["age_band", "sex", "hr"]
    preview = api(ds_studio, "alice", "datasets/beta/preview", params={"rows": 5}).json()
    assert preview["file"] == "labs.parquet" and len(preview["rows"]) == 5 and preview["rows"][2] == ["30-39", "F", 2]
    snippet = api(ds_studio, "alice", "datasets/beta/snippet").json()
    assert f"pd.read_parquet('{ds_studio.files}/mnt/beta/labs.parquet')" in snippet["pandas"]
    assert "pq.read_table" in snippet["pyarrow"]
    found = {d["name"] for d in api(ds_studio, "dora", "datasets", params={"q": "ALPHA"}).json()["datasets"]}
    assert found == {"alpha"}
    assert api(ds_studio, "alice", "datasets", params={"tag": "labs"}).json()["datasets"][0]["name"] == "beta"
    assert api(ds_studio, "alice", "datasets", params={"tag": "nope"}).json()["datasets"] == []


def test_without_a_token_nothing_is_answered(ds_studio):
    r = requests.get(f"{ds_studio.url}/services/datasets/api/datasets/alpha/preview", allow_redirects=False, timeout=30)
    assert r.status_code in (302, 401, 403)
    r = requests.get(f"{ds_studio.url}/services/datasets/api/datasets", headers={"Authorization": "token nonsense"},
                     allow_redirects=False, timeout=30)
    assert r.status_code in (302, 401, 403)


def test_the_three_services_share_one_error_format_user_lookup_and_listen_code(ds_studio):
    """usage, datasets and announcements are built on hub_config.services.base: the same
    JSON errors, the same caller lookup (a token without the service's access scope: 403),
    and the same listen code (loopback, since hub.services_host is 127.0.0.1 here)."""
    def call(user, path):
        return requests.get(f"{ds_studio.url}/services/{path}", timeout=30, allow_redirects=False,
                            headers={"Authorization": f"token {ds_studio.token(user)}", "Accept": "application/json"})

    missing = {
        "datasets": call("bob", "datasets/api/datasets/ghost"),
        "announcements": call("bob", "announcements/api/items/999999"),
    }
    for name, r in missing.items():
        assert r.status_code == 404, (name, r.text)
        assert r.headers["Content-Type"].startswith("application/json"), name
        assert set(r.json()) == {"status", "message"} and r.json()["status"] == 404, (name, r.text)
    # every user's role holds access:services!service=usage; a token narrowed below it is refused
    narrow = ds_studio.session("bob").post(f"{ds_studio.url}/hub/api/users/bob/tokens", timeout=10,
                                           json={"note": "no usage", "scopes": ["read:users:name!user=bob"]})
    assert narrow.status_code == 201, narrow.text
    refused = requests.get(f"{ds_studio.url}/services/usage/api/summary", timeout=30,
                           headers={"Authorization": f"token {narrow.json()['token']}"})
    assert refused.status_code == 403
    assert refused.json() == {"status": 403, "message": "user bob may not use the usage service"}
    assert call("admin", "usage/api/summary").json()["period"]
    settings = yaml.safe_load(ds_studio.config_path.read_text())
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    bound = {int(line.split()[1].split(":")[1], 16): line.split()[1].split(":")[0]
             for line in listening if line.split()[3] == "0A"}  # LISTEN
    for name in ("usage", "datasets", "announcements"):
        assert bound.get(settings[name]["service_port"]) == "0100007F", name  # 127.0.0.1


# --------------------------------------------------------------------------- confinement and bounds


@pytest.mark.parametrize("payload", [
    "../gamma/g.csv", "../secret.csv", "/etc/passwd", "escape.csv", "vitals.csv/../../secret.csv", "./vitals.csv",
    "..%2Fsecret.csv", "%2e%2e/secret.csv", "vitals.csv\x00.png", "../../../../../../etc/shadow", "mnt/alpha",
])
def test_traversal_and_symlink_payloads_are_refused(ds_studio, payload):
    for endpoint in ("preview", "snippet"):
        r = api(ds_studio, "bob", f"datasets/alpha/{endpoint}", params={"file": payload})
        assert r.status_code in (400, 404), (payload, r.status_code, r.text[:200])
        assert "not for members" not in r.text and "root:" not in r.text


@pytest.mark.parametrize("path", [
    "datasets/..%2Fgamma/preview", "datasets/%2e%2e/gamma/preview", "datasets/alpha/..%2F..%2Fgamma%2Fpreview",
    "datasets/alpha%00/preview", "datasets/ALPHA/preview",
])
def test_traversal_in_the_dataset_name_is_refused(ds_studio, path):
    r = requests.get(f"{ds_studio.url}/services/datasets/api/{path}",
                     headers={"Authorization": f"token {ds_studio.token('carol')}"}, timeout=30)
    assert r.status_code in (400, 403, 404) and "age_band" not in r.text


@pytest.mark.parametrize("params, status", [
    ({"rows": 101}, 400), ({"rows": 10**9}, 400), ({"rows": 0}, 400), ({"rows": -1}, 400), ({"rows": "ten"}, 400),
    ({"rows": 100, "max_bytes": 10**9}, 400), ({"rows": 100}, 200),
])
def test_oversized_preview_requests_are_refused(ds_studio, params, status):
    r = api(ds_studio, "bob", "datasets/alpha/preview", params=params)
    assert r.status_code == status, r.text[:200]
    if status == 200:
        assert len(r.json()["rows"]) == 50


def test_previews_are_cut_at_max_bytes(ds_studio):
    r = api(ds_studio, "bob", "datasets/wide/preview", params={"rows": 40, "max_bytes": 4096})
    body = r.json()
    assert r.status_code == 200 and body["truncated"] and 0 < len(body["rows"]) < 40
    assert len(json.dumps(body["rows"]).encode()) <= 4096


# --------------------------------------------------------------------------- mounts in local mode

READ_WRITE_PROBE = """
import os, pathlib
root = pathlib.Path(os.environ['AISTUDIO_DATASETS_DIR'])
def attempt(label, fn):
    try:
        fn()
        print(label, 'ok')
    except OSError as e:
        print(label, type(e).__name__)
attempt('read-alpha', lambda: (root / 'alpha' / 'vitals.csv').read_text())
attempt('write-alpha', lambda: open(root / 'alpha' / 'vitals.csv', 'a').write('x'))
attempt('create-alpha', lambda: (root / 'alpha' / 'new.csv').write_text('x'))
attempt('chmod-alpha', lambda: os.chmod(root / 'alpha' / 'vitals.csv', 0o666))
attempt('unlink-alpha', lambda: os.unlink(root / 'alpha' / 'vitals.csv'))
attempt('replace-link', lambda: os.symlink('/tmp', root / 'mine'))
attempt('read-beta', lambda: (root / 'beta' / 'labs.parquet').read_bytes())
attempt('read-beta-source', lambda: (pathlib.Path(SOURCE) / 'beta' / 'labs.parquet').read_bytes())
attempt('list-gamma', lambda: os.listdir(root / 'gamma'))
attempt('read-delta', lambda: (pathlib.Path(SOURCE) / 'delta' / 'contacts.csv').read_text())
"""


def probe(studio, user):
    code = READ_WRITE_PROBE.replace("SOURCE", repr(str(studio.files)))
    out = dict(line.split() for line in studio.run_in_kernel(user, code).strip().splitlines())
    # an ungranted dataset's link exists once someone it is granted to has started a server
    return {k: "denied" if k in ("read-beta", "list-gamma") and v in ("PermissionError", "FileNotFoundError") else v
            for k, v in out.items()}


def test_a_member_reads_granted_datasets_and_nothing_else(ds_studio):
    assert ds_studio.spawn("bob", {"profile": "cpu-small"}).status_code in (201, 202)
    try:
        out = probe(ds_studio, "bob")
        assert out == {
            "read-alpha": "ok", "write-alpha": "PermissionError", "create-alpha": "PermissionError",
            "chmod-alpha": "PermissionError", "unlink-alpha": "PermissionError", "replace-link": "PermissionError",
            "read-beta": "denied", "read-beta-source": "PermissionError", "list-gamma": "denied",
            "read-delta": "PermissionError",
        }, out
        env = ds_studio.server_env("bob")
        assert env["AISTUDIO_DATASETS_DIR"] == f"{ds_studio.files}/mnt"
        account = f"{ACCOUNT_PREFIX}bob"
        groups = {g.gr_name for g in grp.getgrall() if account in g.gr_mem and g.gr_name.startswith(GROUP_PREFIX)}
        assert groups >= {f"{GROUP_PREFIX}alpha", f"{GROUP_PREFIX}wide"} and f"{GROUP_PREFIX}beta" not in groups
        # the files are root's, readable by the dataset's group only; the link is root's
        st = os.stat(ds_studio.files / "alpha" / "vitals.csv")
        assert (st.st_uid, grp.getgrgid(st.st_gid).gr_name, st.st_mode & 0o777) == (0, f"{GROUP_PREFIX}alpha", 0o640)
        link = ds_studio.files / "mnt" / "alpha"
        assert link.is_symlink() and os.lstat(link).st_uid == 0 and os.stat(ds_studio.files / "mnt").st_mode & 0o777 == 0o755
        log = ds_studio.log()
        assert log.find("bob: Mounting datasets read-only at") > log.find("bob: Checking your profile") >= 0
        # the Datasets panel's server handlers: a thin client of the catalogue, with the server's own token
        headers = {"Authorization": f"token {ds_studio.token('bob')}"}
        panel = f"{ds_studio.url}/user/bob/aistudio-datasets/api"
        mine = requests.get(f"{panel}/datasets", headers=headers, timeout=30)
        assert mine.status_code == 200, mine.text
        assert {d["name"] for d in mine.json()["datasets"]} & TEST_DATASETS == {"alpha"}
        assert requests.get(f"{panel}/datasets/beta/preview", headers=headers, timeout=30).status_code == 403
        assert requests.get(f"{panel}/datasets/ghost", headers=headers, timeout=30).status_code == 404
        rows = requests.get(f"{panel}/datasets/alpha/preview", params={"rows": 3}, headers=headers, timeout=30).json()
        assert rows["rows"] == [["30-39", "F", 0], ["40-49", "M", 1], ["30-39", "F", 2]]
        refused = requests.get(f"{panel}/datasets/alpha/preview", params={"file": "../secret.csv"}, headers=headers,
                               timeout=30)
        assert refused.status_code == 404 and "not for members" not in refused.text
        assert requests.get(f"{panel}/datasets/alpha/preview", timeout=30).status_code in (302, 401, 403)
        extensions = requests.get(f"{ds_studio.url}/user/bob/lab/api/extensions", headers=headers, timeout=30).json()
        panel_ext = [e for e in extensions if e["name"] in ("aistudio-lab", "@aistudio/lab")]
        assert panel_ext and panel_ext[0]["enabled"], extensions
    finally:
        ds_studio.stop_server("bob")


def test_request_approval_with_expiry_mounts_then_expiry_removes_it(ds_studio):
    r = api(ds_studio, "carol", "requests", method="POST", json={"dataset": "gamma", "purpose": "x"})
    assert r.status_code == 400
    r = api(ds_studio, "carol", "requests", method="POST",
            json={"dataset": "gamma", "purpose": "Validating a heart-rate model for my thesis"})
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    assert api(ds_studio, "carol", "requests", method="POST",
               json={"dataset": "delta", "purpose": "Validating a heart-rate model"}).status_code == 404
    assert api(ds_studio, "carol", "requests", method="POST",
               json={"dataset": "gamma", "purpose": "Asking a second time meanwhile"}).status_code == 409
    assert api(ds_studio, "carol", "datasets/gamma/preview").status_code == 403
    expires = time.time() + 20
    until = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires))
    out = steward(ds_studio, "approve", str(request_id), "--expires", until, "--comment", "for the validation").stdout
    assert "carol may use gamma until" in out
    mine = api(ds_studio, "carol", "requests").json()["requests"]
    assert [(m["dataset"], m["status"], m["comment"]) for m in mine] == [("gamma", "approved", "for the validation")]
    assert api(ds_studio, "carol", "datasets/gamma/preview").status_code == 200
    assert ds_studio.spawn("carol", {"profile": "cpu-small"}).status_code in (201, 202)
    try:
        code = "import os; print(open(os.environ['AISTUDIO_DATASETS_DIR'] + '/gamma/g.csv').readline().strip())"
        assert ds_studio.run_in_kernel("carol", code).strip() == '"age_band","sex","hr"'
    finally:
        ds_studio.stop_server("carol")
    time.sleep(max(0.0, expires - time.time() + 1))
    assert api(ds_studio, "carol", "datasets/gamma/preview").status_code == 403
    assert ds_studio.spawn("carol", {"profile": "cpu-small"}).status_code in (201, 202)
    try:
        code = ("import os\ntry:\n    open(os.environ['AISTUDIO_DATASETS_DIR'] + '/gamma/g.csv').read(); print('read')\n"
                "except PermissionError:\n    print('denied')\nprint(open('DATASETS-NOTICE.txt').read())")
        out = ds_studio.run_in_kernel("carol", code)
        assert out.startswith("denied") and "gamma" in out and "revoked or has expired" in out
        assert "carol: No longer available to you (access revoked or expired): gamma" in ds_studio.log()
        home = pwd.getpwnam(f"{ACCOUNT_PREFIX}carol").pw_dir
        assert os.stat(f"{home}/DATASETS-NOTICE.txt").st_uid == pwd.getpwnam(f"{ACCOUNT_PREFIX}carol").pw_uid
    finally:
        ds_studio.stop_server("carol")


def test_revoke_takes_effect_at_the_next_start(ds_studio):
    code = "import os; print(len(open(os.environ['AISTUDIO_DATASETS_DIR'] + '/epsilon/e.csv').read()) > 0)"
    assert ds_studio.spawn("ahmed", {"profile": "cpu-small"}).status_code in (201, 202)
    try:
        assert ds_studio.run_in_kernel("ahmed", code).strip() == "True"
    finally:
        ds_studio.stop_server("ahmed")
    steward(ds_studio, "revoke", "epsilon", "--users", "ahmed")
    assert ds_studio.spawn("ahmed", {"profile": "cpu-small"}).status_code in (201, 202)
    try:
        assert "PermissionError" in ds_studio.run_in_kernel("ahmed", code)
        assert f"{GROUP_PREFIX}epsilon" not in {g.gr_name for g in grp.getgrall()
                                               if f"{ACCOUNT_PREFIX}ahmed" in g.gr_mem}
    finally:
        ds_studio.stop_server("ahmed")


# --------------------------------------------------------------------------- the JupyterLab panel



def test_lists_page_through_the_hub_with_cursors_and_search(ds_studio):
    whole = [d["name"] for d in api(ds_studio, "bob", "datasets").json()["datasets"]]
    paged, cursor = [], None
    while True:
        page = api(ds_studio, "bob", "datasets", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["items"]) <= 2
        paged += [d["name"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == whole and len(whole) > 2
    found = api(ds_studio, "bob", "datasets", params={"limit": 50, "q": "dataset WIDE"}).json()
    assert [d["name"] for d in found["items"]] == ["wide"] and found["next_cursor"] is None
    other = api(ds_studio, "bob", "requestable", params={"limit": 50, "tag": "labs"}).json()
    assert [d["name"] for d in other["items"]] == ["beta"] and other["items"][0]["request"] is None
    for params, field in (({"limit": "0"}, "limit"), ({"cursor": "not-ours"}, "cursor")):
        r = api(ds_studio, "bob", "datasets", params=params)
        assert r.status_code == 400 and r.json()["message"].startswith(field), r.text


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_a_dataset_opens_in_the_main_area_and_its_snippet_goes_into_a_notebook(ds_studio, page):
    """What dora sees: the main-area view (schema, grid, snippets), Copy's feedback, the
    snippet inserted into a new notebook, a requestable dataset's metadata, and after an
    approval while her server runs, the restart hint whose button stops the server."""
    assert ds_studio.spawn("dora", {"profile": "cpu-small"}).status_code in (201, 202)
    try:
        page.set_default_timeout(60_000)
        browser_login(page, ds_studio.url, "dora")
        page.goto(f"{ds_studio.url}/user/dora/lab")
        page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)
        page.locator('[data-id="aistudio-datasets"]').click()
        item = page.locator('.aistudio-Datasets-item[data-dataset="alpha"]')
        item.wait_for()
        names = page.locator(".aistudio-Datasets-item[data-dataset]").evaluate_all(
            "els => els.map(e => e.dataset.dataset)")
        assert set(names) & TEST_DATASETS == {"alpha"}
        # everything fitted in the first pages: no "More" to press
        assert page.locator(".aistudio-Datasets-more").evaluate_all("els => els.map(e => e.offsetParent)") == [None, None]
        item.locator("a").click()
        view = page.locator("#aistudio-dataset-alpha .aistudio-DatasetView")
        grid = view.locator(".aistudio-DatasetView-grid table")
        grid.wait_for()
        assert page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="Dataset alpha").count() == 1
        assert view.locator(".aistudio-DatasetView-schema tr").count() == 4  # header and three columns
        assert grid.locator("tbody tr").count() == 50 and grid.locator("th").all_inner_texts() == ["age_band", "sex", "hr"]
        assert view.locator("[data-restart-hint]").count() == 0  # mounted at the start: readable
        pandas = view.locator('.aistudio-DatasetView-snippet[data-library="pandas"]')
        assert "pd.read_csv" in pandas.locator("pre").inner_text()
        pandas.get_by_role("button", name="Copy").click()
        assert pandas.get_by_role("button", name="Copied").is_visible()
        page.screenshot(path=str(ds_studio.directory / "dataset-view.png"))
        pandas.get_by_role("button", name="Insert into notebook").click()  # no notebook open: a new one
        cell = page.locator(".jp-NotebookPanel .jp-Cell .cm-content", has_text="read_csv")
        cell.wait_for()
        assert "/alpha/vitals.csv" in cell.inner_text()

        page.locator('.aistudio-Datasets-item[data-requestable="gamma"] a').click()
        other = page.locator("#aistudio-requestable-gamma .aistudio-DatasetView")
        other.get_by_text("You do not have access to this dataset yet").wait_for()
        assert "Dataset gamma" in other.locator("h2").inner_text()
        assert other.locator(".aistudio-DatasetView-facts", has_text="Steward").count() == 1
        assert other.locator(".aistudio-DatasetView-grid").count() == 0
        assert other.get_by_role("button", name="Request access").is_visible()

        r = api(ds_studio, "dora", "requests", method="POST",
                json={"dataset": "gamma", "purpose": "Comparing heart rates across cohorts"})
        assert r.status_code == 201, r.text
        steward(ds_studio, "approve", str(r.json()["id"]), "--comment", "granted for the comparison")
        page.get_by_role("button", name="Refresh").click()
        hint = page.locator('[data-request="gamma"] [data-restart-hint="gamma"]')
        hint.wait_for()
        assert "Restart your server to mount it" in hint.inner_text()
        assert page.locator('[data-request="alpha"]').count() == 0
        page.screenshot(path=str(ds_studio.directory / "datasets-restart-hint.png"))
        hint.get_by_role("button", name="Restart your server").click()
        deadline = time.monotonic() + 60
        while ds_studio.api("GET", "/users/dora").json()["servers"]:
            assert time.monotonic() < deadline, "the restart button did not stop the server"
            time.sleep(0.5)
        page.wait_for_url("**/hub/home**")
    finally:
        steward(ds_studio, "revoke", "gamma", "--users", "dora", check=False)
        if ds_studio.api("GET", "/users/dora").json()["servers"]:
            ds_studio.stop_server("dora")


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_new_announcements_show_as_jupyterlab_notifications_in_plain_text(ds_studio, page):
    """An organiser posts items; a member opening JupyterLab gets a notification of each, its
    title as text (the XSS payload stays inert), with a link to the announcements page."""
    payload = "<img src=x onerror=\"window.__xss=1\">Evil<script>window.__xss=2</script>"
    ids = []
    for title in ("Seminar on federated learning", payload):
        r = requests.post(f"{ds_studio.url}/services/announcements/api/items", json={"kind": "news", "title": title},
                          headers={"Authorization": f"token {ds_studio.token('admin')}"}, timeout=30)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    assert ds_studio.spawn("bob", {"profile": "cpu-small"}).status_code in (201, 202)
    try:
        page.set_default_timeout(60_000)
        browser_login(page, ds_studio.url, "bob")
        page.goto(f"{ds_studio.url}/user/bob/lab")
        page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)
        toast = page.locator(".Toastify__toast", has_text="Seminar on federated learning")
        toast.wait_for()
        assert toast.get_by_role("button", name="Open announcements").count() == 1
        evil = page.locator(".Toastify__toast", has_text="onerror=")
        evil.wait_for()
        assert payload in evil.inner_text()
        assert evil.locator("img, script").count() == 0
        assert page.evaluate("window.__xss") is None
        page.screenshot(path=str(ds_studio.directory / "announcements-notice.png"))
        # seen: a reload shows no notice again
        page.reload()
        page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)
        page.wait_for_timeout(3000)
        assert page.locator(".Toastify__toast", has_text="Seminar on federated learning").count() == 0
    finally:
        ds_studio.stop_server("bob")
        for item in ids:
            requests.delete(f"{ds_studio.url}/services/announcements/api/items/{item}",
                            headers={"Authorization": f"token {ds_studio.token('admin')}"}, timeout=30)


# --------------------------------------------------------------------------- the demo and the audit log


def test_demo_datasets_are_registered_and_a_new_user_sees_them(ds_studio):
    listed = {d["name"]: d for d in api(ds_studio, "bea", "datasets").json()["datasets"]}
    assert {"icu-vitals", "chest-xray-labels"} <= set(listed) and "outpatient-contacts" not in listed
    assert listed["icu-vitals"]["format"] == "parquet" and listed["icu-vitals"]["rows"] == 4000
    requestable = {d["name"] for d in api(ds_studio, "bea", "requestable").json()["datasets"]}
    assert "diabetes-outcomes" in requestable and "outpatient-contacts" not in requestable
    assert api(ds_studio, "bea", "datasets/outpatient-contacts").status_code == 404
    rows = api(ds_studio, "bea", "datasets/icu-vitals/preview", params={"rows": 3}).json()["rows"]
    assert len(rows) == 3
    listed = steward(ds_studio, "list").stdout
    assert "outpatient-contacts  draft" in listed and "fail" in listed


def test_audit_log_records_and_exports_every_kind_of_event(ds_studio):
    api(ds_studio, "dora", "datasets")
    api(ds_studio, "dora", "datasets/gamma/preview")  # refused: recorded as denied
    out = steward(ds_studio, "audit", "--format", "json").stdout
    events = json.loads(out)
    kinds = {e["event"] for e in events}
    for kind in ("list", "metadata", "preview", "mount", "request", "decision", "grant", "revoke", "publish",
                 "denied"):
        assert kind in kinds, kind
    assert any(e["event"] == "denied" and e["user"] == "dora" and e["dataset"] == "gamma" for e in events)
    assert any(e["event"] == "mount" and e["user"] == "bob" and e["dataset"] == "alpha" for e in events)
    exported = steward(ds_studio, "audit", "--user", "carol", "--event", "preview,request,decision", "--format",
                       "csv").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {r["event"] for r in rows} == {"preview", "request"} and all(r["user"] == "carol" for r in rows)
    decisions = steward(ds_studio, "audit", "--event", "decision", "--format", "csv").stdout
    assert "carol" in decisions and "for the validation" in decisions
