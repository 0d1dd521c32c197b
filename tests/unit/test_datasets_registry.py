"""Datasets without a hub: the registry and its rules, the de-identification gate, bounded
and confined file reads, the steward's command, and dataset volumes in pod manifests."""

import csv
import importlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
from kubernetes_asyncio.client import ApiClient
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml
from stdnum.cn import ric

from hub_config import cli
from hub_config.datasets import files
from hub_config.datasets import scan
from hub_config.datasets import DatasetError, DatasetStore, MountSpec
from hub_config.datasets.admin import ScanSettings
from hub_config.datasets.admin import scan as scan_registered

REPO = Path(__file__).resolve().parents[2]
VALID_RIC = "11010519491231002X"
INVALID_RIC = "110105194912310021"  # same number, wrong check digit


def write(folder: Path, name: str, table: pa.Table) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    (pq.write_table if name.endswith(".parquet") else pacsv.write_csv)(table, str(path))
    return path


def findings(name, values, typ=None):
    return scan.scan_column(name, pa.array(values, type=typ))["counts"]


# --------------------------------------------------------------------------- the PII scan


def test_resident_id_numbers_count_only_with_a_valid_checksum():
    assert ric.is_valid(VALID_RIC) and not ric.is_valid(INVALID_RIC)
    assert findings("patient_ref", [VALID_RIC, "x"]) == {"cn_resident_id": 1}
    assert findings("patient_ref", [INVALID_RIC, "y"]) == {"cn_resident_id_invalid_checksum": 1}
    assert findings("note", [f"ID {VALID_RIC.lower()} seen"])["cn_resident_id"] == 1
    # eighteen digits with a valid checksum but an impossible birth date are no identity number
    assert "cn_resident_id" not in findings("n", ["110105194913310024"])


@pytest.mark.parametrize("value", [
    "13812345678", "+86 138 1234 5678", "+8613812345678", "010-62345678", "(021) 6123 4567", "0755-86668888",
    "call me on 139-1234-5678 please",
])
def test_phone_numbers_in_chinese_formats_are_found(value):
    assert findings("contact", [value]).get("phone") == 1


@pytest.mark.parametrize("value", ["12345", "2024-01-02", "3.14159265", "120/80 mmHg", "S100234", "1999"])
def test_things_that_are_not_phone_numbers_are_not(value):
    assert "phone" not in findings("contact", [value])


def test_mobile_numbers_stored_as_integers_are_found():
    assert findings("mobile", [13812345678, 13912345678], pa.int64())["phone"] == 2


def test_emails_names_and_birth_dates():
    assert findings("contact", ["zhang.wei@example.org", "nope@", "a@b"]) == {"email": 1}
    assert findings("patient_name", ["王伟", "李小明", "欧阳娜娜", "张芳"])["name"] == 4
    assert findings("full_name", ["Alice Smith", "Bob Jones", "Carol King"])["name"] == 3
    assert findings("diagnosis", ["高血压", "糖尿病", "冠心病"]) == {}
    assert findings("date_of_birth", ["1980-01-02", "1975/3/4", None])["date_of_birth"] == 2
    assert findings("dob", pa.array([0, 365], type=pa.date32()).to_pylist(), pa.date32())["date_of_birth"] == 2
    assert findings("admission_date", ["2024-01-02", "2024-03-04"]) == {}
    assert findings("birth_year", ["1980", "1975"]) == {}


def test_clean_columns_pass(tmp_path):
    table = pa.table({
        "stay_id": [f"S{i}" for i in range(60)], "age_band": ["30-39", "40-49"] * 30, "sex": ["F", "M", "M", "F"] * 15,
        "hba1c": [7.1 + i / 100 for i in range(60)], "lab_code": ["LOINC-4548-4"] * 60,
        "note": ["stable, discharged home"] * 60, "admitted": ["2024-01-02"] * 60,
    })
    write(tmp_path / "clean", "a.csv", table)
    write(tmp_path / "clean", "b.parquet", table)
    report, facts = scan.scan_dataset(str(tmp_path / "clean"), quasi_identifiers=["age_band", "sex"], min_k=5)
    assert report["passed"], report["summary"]
    assert report["totals"] == {} and facts["rows"] == 120 and facts["format"] == "csv+parquet"
    assert {c["name"] for c in facts["files"][0]["columns"]} == set(table.column_names)


def test_identifiers_fail_and_reports_are_masked(tmp_path):
    table = pa.table({"pid": [VALID_RIC] * 3, "tel": ["13812345678"] * 3, "v": [1, 2, 3]})
    write(tmp_path / "pii", "p.parquet", table)
    report, _ = scan.scan_dataset(str(tmp_path / "pii"))
    assert not report["passed"]
    text = json.dumps(report)
    assert VALID_RIC not in text and "13812345678" not in text
    assert report["files"][0]["columns"]["pid"]["examples"]["cn_resident_id"][0] == "1101************2X"
    assert any("cn resident id" in line for line in report["summary"])


def test_scan_reads_a_bounded_sample(tmp_path):
    rows = 200_000
    table = pa.table({"v": list(range(rows)), "t": ["clean text"] * rows})
    write(tmp_path / "big", "big.csv", table)
    settings = ScanSettings(sample_rows=1000, sample_bytes=1 << 16)
    report, facts = scan.scan_dataset(str(tmp_path / "big"), settings=settings)
    assert report["files"][0]["sampled_rows"] <= 1000 and facts["rows"] == rows


# --------------------------------------------------------------------------- k-anonymity


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_k_anonymity_pass_and_fail(tmp_path, fmt):
    ok = pa.table({"age_band": ["30-39"] * 5 + ["40-49"] * 6, "sex": ["F"] * 11, "zip3": ["100"] * 11})
    bad = pa.concat_tables([ok, pa.table({"age_band": ["90+"], "sex": ["M"], "zip3": ["839"]})])
    write(tmp_path / "ok", f"t.{fmt}", ok)
    write(tmp_path / "bad", f"t.{fmt}", bad)
    qis = ["age_band", "sex", "zip3"]
    good, _ = scan.scan_dataset(str(tmp_path / "ok"), quasi_identifiers=qis, min_k=5)
    assert good["passed"] and good["files"][0]["k_anonymity"]["smallest_class"] == 5
    failed, _ = scan.scan_dataset(str(tmp_path / "bad"), quasi_identifiers=qis, min_k=5)
    k = failed["files"][0]["k_anonymity"]
    assert not failed["passed"] and (k["smallest_class"], k["classes_below_k"], k["rows_below_k"]) == (1, 1, 1)
    assert any("k-anonymity 1 < 5" in line for line in failed["summary"])
    stricter, _ = scan.scan_dataset(str(tmp_path / "ok"), quasi_identifiers=qis, min_k=6)
    assert not stricter["passed"]
    missing, _ = scan.scan_dataset(str(tmp_path / "ok"), quasi_identifiers=["age_band", "postcode"], min_k=2)
    assert not missing["passed"] and "postcode" in " ".join(missing["summary"])


# --------------------------------------------------------------------------- registry rules


@pytest.fixture
def store(database):
    """A registry in SQLite and one in PostgreSQL."""
    store = DatasetStore(database("registry"))
    yield store
    store.engine.dispose()


def clean_dataset(store, tmp_path, name="cohort", **fields):
    table = pa.table({"age_band": ["30-39"] * 10, "sex": ["F"] * 10, "hr": list(range(10))})
    write(tmp_path / name, "data.csv", table)
    store.add(name, actor="steward", path=str(tmp_path / name), quasi_identifiers=["age_band", "sex"], min_k=5,
              **fields)
    scan_registered(store, name, ScanSettings(), actor="steward")
    return store.publish(name, actor="steward")


def test_failing_dataset_needs_an_override_with_reason_and_it_is_audited(store, tmp_path):
    write(tmp_path / "leaky", "x.csv", pa.table({"tel": ["13812345678"] * 10}))
    store.add("leaky", actor="steward", path=str(tmp_path / "leaky"))
    with pytest.raises(DatasetError, match="not been scanned"):
        store.publish("leaky", actor="steward")
    assert not scan_registered(store, "leaky", ScanSettings(), actor="steward")["passed"]
    for reason in (None, "  "):
        with pytest.raises(DatasetError) as info:
            store.publish("leaky", actor="steward", override_reason=reason)
        assert info.value.status == 409 and "override" in str(info.value)
    assert store.get("leaky").status == "draft"
    store.publish("leaky", actor="dr-wu", override_reason="phone numbers are the hospital switchboard")
    ds = store.get("leaky")
    assert (ds.status, ds.override_by) == ("published", "dr-wu")
    [event] = store.audit_events(event_names=["override"])
    assert event["user"] == "dr-wu" and event["dataset"] == "leaky"
    assert event["detail"]["reason"] == "phone numbers are the hospital switchboard"
    assert "13812345678" not in json.dumps(event)


def test_grants_expiry_and_what_each_member_sees(store, tmp_path):
    clean_dataset(store, tmp_path, "alpha")
    clean_dataset(store, tmp_path, "beta")
    store.add("draft-one", actor="s", path=str(tmp_path / "alpha"))
    store.grant("alpha", actor="s", groups=["students"])
    store.grant("beta", actor="s", users=["alice"], expires_at=time.time() + 3600)
    store.grant("draft-one", actor="s", groups=["students"])  # not published: invisible anyway
    names = lambda user, groups: [d["name"] for d in store.authorised_summaries(user, groups)]  # noqa: E731
    assert names("bob", ["students"]) == ["alpha"]
    assert names("alice", ["gpu-residents"]) == ["beta"]
    assert names("carol", []) == []
    assert [d["name"] for d in store.requestable("carol", [])] == ["alpha", "beta"]
    with pytest.raises(DatasetError) as info:
        store.access("beta", "bob", ["students"])
    assert info.value.status == 403
    for name in ("draft-one", "nope"):
        with pytest.raises(DatasetError) as info:
            store.access(name, "bob", ["students"])
        assert info.value.status == 404
    # expired: gone; revoked: gone
    assert names("alice", []) == ["beta"]
    assert [d.name for d in store.authorised("alice", [], now=time.time() + 7200)] == []
    assert store.revoke("alpha", actor="s", groups=["students"]) == 1
    assert names("bob", ["students"]) == []
    store.retire("beta", actor="s")
    assert names("alice", []) == []


def test_request_approval_with_expiry_and_denial(store, tmp_path):
    clean_dataset(store, tmp_path, "alpha")
    with pytest.raises(DatasetError, match="purpose"):
        store.request_access("alpha", "carol", [], "short")
    r = store.request_access("alpha", "carol", [], "Training a sepsis model for my thesis")
    with pytest.raises(DatasetError) as info:
        store.request_access("alpha", "carol", [], "Training a sepsis model for my thesis")
    assert info.value.status == 409
    with pytest.raises(DatasetError):
        store.decide(r.id, actor="steward", approve=False)  # a denial needs a comment
    until = time.time() + 60
    store.decide(r.id, actor="steward", approve=True, expires_at=until, comment="ok for one minute")
    assert [d.name for d in store.authorised("carol", [])] == ["alpha"]
    assert store.mounts_for("carol", [])[0].expires_at == pytest.approx(until)
    assert store.authorised("carol", [], now=until + 1) == []
    r2 = store.request_access("alpha", "dan", [], "Reproducing a published analysis")
    store.decide(r2.id, actor="steward", approve=False, comment="use the public extract instead")
    assert store.requests(user="dan")[0].status == "denied"
    with pytest.raises(DatasetError) as info:
        store.decide(r2.id, actor="steward", approve=True)
    assert info.value.status == 409
    events = [e["event"] for e in store.audit_events(dataset="alpha")]
    for kind in ("request", "decision", "grant"):
        assert kind in events


def test_changing_the_source_sends_a_published_dataset_back_to_draft(store, tmp_path):
    clean_dataset(store, tmp_path, "alpha")
    store.update("alpha", actor="s", title="New title")
    assert store.get("alpha").status == "published"
    store.update("alpha", actor="s", quasi_identifiers=["sex"])
    ds = store.get("alpha")
    assert (ds.status, ds.scan_status) == ("draft", "not-scanned")


def test_names_and_sources_are_checked(store):
    for name in ("Bad", "../x", "a" * 50, ""):
        with pytest.raises(DatasetError):
            store.add(name, actor="s", path="/tmp")
    with pytest.raises(DatasetError, match="absolute"):
        store.add("rel", actor="s", path="data/rel")
    with pytest.raises(DatasetError, match="claim"):
        store.add("kube", actor="s", source_kind="pvc")
    store.add("kube", actor="s", source_kind="nfs", source_server="nfs.lab", source_path="/export/kube")


def test_large_datasets_keep_their_size_and_row_count(store, tmp_path):
    """Sizes of several GiB and billions of rows are stored as they are."""
    store.add("big", actor="s", path=str(tmp_path))
    report = {"passed": True, "summary": []}
    store.record_scan("big", actor="s", report=report,
                      facts={"files": [], "rows": 3_000_000_000, "size_bytes": 5 * 1024**4, "format": "parquet"})
    ds = store.get("big")
    assert (ds.row_count, ds.size_bytes) == (3_000_000_000, 5 * 1024**4)


def in_threads(count, work):
    """``work(i)`` in ``count`` threads started at once; their results, or the exceptions they raised."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        try:
            return work(i)
        except Exception as e:
            return e

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


@pytest.fixture
def stores(store):
    """Four stores, each its own engine, on the registry of ``store`` (as the hub, its
    catalogue service and stewards' commands open it at once)."""
    url = store.engine.url.render_as_string(hide_password=False)
    others = [DatasetStore(url) for _ in range(3)]
    yield [store, *others]
    for s in others:
        s.engine.dispose()


def test_concurrent_registrations_lose_nothing(stores, tmp_path):
    def register(i):
        s = stores[i % 4]
        s.add(f"set-{i}", actor=f"steward-{i % 3}", path=str(tmp_path), tags=["t"])
        s.grant(f"set-{i}", actor="s", groups=["students"], users=[f"u{i}"])
        return s.get(f"set-{i}").name

    assert in_threads(16, register) == [f"set-{i}" for i in range(16)]
    names = [d.name for d in stores[0].datasets()]
    assert names == sorted(f"set-{i}" for i in range(16))
    assert len(stores[1].grants()) == 32
    events = stores[2].audit_events()
    assert len(events) == 16 * 3 and len({e["id"] for e in events}) == 48
    assert sorted(e["dataset"] for e in events if e["event"] == "add") == names


def test_the_same_name_registered_at_once_is_one_dataset(stores, tmp_path):
    results = in_threads(8, lambda i: stores[i % 4].add("cohort", actor=f"steward-{i}", path=str(tmp_path)))
    made = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(made) == 1 and len(refused) == 7
    for e in refused:
        assert isinstance(e, DatasetError) and e.status == 409, repr(e)
        assert str(e) == "A dataset 'cohort' exists already"
    assert [d.name for d in stores[0].datasets()] == ["cohort"]
    [added] = stores[0].audit_events(event_names=["add"])
    assert added["user"].startswith("steward-")


def test_the_same_grant_given_at_once_is_one_grant(stores, tmp_path):
    stores[0].add("cohort", actor="s", path=str(tmp_path))
    results = in_threads(8, lambda i: stores[i % 4].grant("cohort", actor=f"steward-{i}", groups=["students"]))
    assert results == [None] * 8
    assert [(g["kind"], g["principal"]) for g in stores[0].grants("cohort")] == [("group", "students")]


# --------------------------------------------------------------------------- confined, bounded reads


def test_traversal_and_symlink_escapes_are_refused(tmp_path):
    root = tmp_path / "ds"
    write(root / "sub", "ok.csv", pa.table({"a": [1]}))
    outside = write(tmp_path / "secret", "secret.csv", pa.table({"s": ["x"]}))
    (root / "escape.csv").symlink_to(outside)
    (root / "escape-dir").symlink_to(tmp_path / "secret")
    (root / "inside.csv").symlink_to(root / "sub" / "ok.csv")
    assert files.data_files(str(root)) == ["inside.csv", "sub/ok.csv"]
    allowed = set(files.data_files(str(root)))
    assert files.resolve(str(root), "sub/ok.csv", allowed) == str(root / "sub" / "ok.csv")
    for bad in ("../secret/secret.csv", "/etc/passwd", "sub/../../secret/secret.csv", "escape.csv",
                "escape-dir/secret.csv", "sub/./ok.csv", "sub//ok.csv", "sub\\ok.csv", "sub/ok.csv\x00", "",
                "%2e%2e/secret/secret.csv", "sub"):
        with pytest.raises(files.FileRefused):
            files.resolve(str(root), bad, allowed)
        with pytest.raises(files.FileRefused):
            files.resolve(str(root), bad, None)  # refused even when not checked against the scan's list


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_preview_is_bounded_in_rows_and_bytes(tmp_path, fmt):
    table = pa.table({"i": list(range(5000)), "text": ["x" * 300] * 5000})
    path = write(tmp_path, f"t.{fmt}", table)
    small = files.preview(str(path), 10, 1 << 20)
    assert len(small["rows"]) == 10 and small["rows"][3][0] == 3 and not small["truncated"]
    cut = files.preview(str(path), 100, 4096)
    assert 0 < len(cut["rows"]) < 100 and cut["truncated"]
    assert len(json.dumps(cut["rows"]).encode()) <= 4096
    assert files.head(str(path), 7).num_rows == 7


# --------------------------------------------------------------------------- the steward's command


def run_cli(capsys, config, *args):
    code = cli.main(["--config", str(config), "datasets", "--as", "steward", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_add_scan_publish_grant_revoke_list_audit(tmp_path, capsys):
    config = tmp_path / "aistudio.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "local": {"user_accounts": "shared"}}))
    write(tmp_path / "files" / "vitals", "v.csv", pa.table({"age_band": ["30-39"] * 6, "hr": list(range(6))}))
    write(tmp_path / "files" / "leak", "l.csv", pa.table({"email": ["li.na@example.org"] * 6}))
    code, out, _ = run_cli(capsys, config, "add", "vitals", "--path", str(tmp_path / "files" / "vitals"),
                           "--title", "Vitals", "--tags", "icu,vitals", "--quasi-identifiers", "age_band",
                           "--min-k", "5", "--deid-method", "Safe Harbor", "--licence", "internal")
    assert code == 0 and "added vitals (draft)" in out
    code, out, _ = run_cli(capsys, config, "scan", "vitals")
    assert code == 0 and "scan PASSED" in out and "k-anonymity 6" in out
    assert run_cli(capsys, config, "publish", "vitals")[0] == 0
    code, _, err = run_cli(capsys, config, "grant", "vitals", "--groups", "students", "--expires", "2099-01-01")
    assert code == 0
    run_cli(capsys, config, "add", "leak", "--path", str(tmp_path / "files" / "leak"))
    code, out, _ = run_cli(capsys, config, "scan", "leak")
    assert code == 1 and "FAILED" in out and "email" in out and "li.na@example.org" not in out
    code, _, err = run_cli(capsys, config, "publish", "leak")
    assert code == 1 and "override" in err
    code, out, _ = run_cli(capsys, config, "publish", "leak", "--override-reason", "addresses are the ward's")
    assert code == 0 and "despite a failed scan" in out
    code, out, _ = run_cli(capsys, config, "list")
    assert "vitals" in out and "group:students (until 2099-01-01" in out and "fail (override)" in out
    listed = json.loads(run_cli(capsys, config, "list", "--format", "json")[1])
    vitals = next(d for d in listed if d["name"] == "vitals")
    assert vitals["tags"] == ["icu", "vitals"] and vitals["deidentification"]["method"] == "Safe Harbor"
    assert vitals["schema"][0]["columns"][0] == {"name": "age_band", "type": "string"} and vitals["rows"] == 6
    assert run_cli(capsys, config, "revoke", "vitals", "--groups", "students")[0] == 0
    assert run_cli(capsys, config, "revoke", "vitals", "--groups", "students")[0] == 1
    code, out, _ = run_cli(capsys, config, "audit", "--event", "override,revoke", "--format", "csv")
    rows = list(csv.DictReader(out.splitlines()))
    assert [(r["event"], r["dataset"], r["user"]) for r in rows] == [("override", "leak", "steward"),
                                                                     ("revoke", "vitals", "steward")]
    export = tmp_path / "audit.json"
    code, out, _ = run_cli(capsys, config, "audit", "--dataset", "vitals", "--format", "json", "--output", str(export))
    events = [e["event"] for e in json.loads(export.read_text())]
    assert events[:4] == ["add", "scan", "publish", "grant"] and events[-1] == "revoke"


def test_cli_manifest_import_registers_the_demo(tmp_path, capsys):
    from hub_config.datasets import demo as datasets_demo

    manifest = tmp_path / "demo.yaml"
    manifest.write_text(yaml.safe_dump(datasets_demo.generate(str(tmp_path / "demo")), allow_unicode=True))
    config = tmp_path / "aistudio.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "local": {"user_accounts": "shared"}}))
    code, out, _ = run_cli(capsys, config, "import", str(manifest))
    assert code == 0
    assert "icu-vitals: added, scan passed, published" in out
    assert "outpatient-contacts: added, scan FAILED" in out and "not published" in out
    store = DatasetStore(f"sqlite:///{tmp_path}/data/datasets.sqlite")
    formats = {d.name: (d.status, d.format) for d in store.datasets()}
    assert formats == {"icu-vitals": ("published", "parquet"), "diabetes-outcomes": ("published", "csv"),
                       "chest-xray-labels": ("published", "csv+parquet"), "outpatient-contacts": ("draft", "csv")}
    assert "registered already" in run_cli(capsys, config, "import", str(manifest))[1]


# --------------------------------------------------------------------------- the hub's view of Kubernetes sources

VIEWS = [
    {"kind": "nfs", "server": "nfs.lab", "source_path": "/export/datasets", "path": "/srv/aistudio/datasets/lab"},
    {"kind": "nfs", "server": "nfs.lab", "source_path": "/export/datasets/big/", "path": "/srv/aistudio/datasets/big"},
    {"kind": "pvc", "claim": "imaging", "source_path": "curated", "path": "/srv/aistudio/datasets/imaging"},
    {"kind": "pvc", "claim": "whole", "path": "/srv/aistudio/datasets/whole"},
    {"kind": "hostpath", "source_path": "/mnt/datasets", "path": "/srv/aistudio/datasets/scratch"},
]


@pytest.mark.parametrize("kind, source, expected", [
    ("nfs", {"server": "nfs.lab", "source_path": "/export/datasets/mimic/3.1"}, "/srv/aistudio/datasets/lab/mimic/3.1"),
    ("nfs", {"server": "nfs.lab", "source_path": "/export/datasets"}, "/srv/aistudio/datasets/lab"),
    ("nfs", {"server": "nfs.lab", "source_path": "/export/datasets/big/x"}, "/srv/aistudio/datasets/big/x"),  # deepest
    ("nfs", {"server": "nfs.lab", "source_path": "/export/datasets-old/x"}, None),  # folders, not text prefixes
    ("nfs", {"server": "other", "source_path": "/export/datasets/x"}, None),
    ("nfs", {"server": "nfs.lab", "source_path": "/export/datasets/../secret"}, None),
    ("pvc", {"claim": "imaging", "source_path": "curated/chest-xray"}, "/srv/aistudio/datasets/imaging/chest-xray"),
    ("pvc", {"claim": "imaging", "source_path": "/curated/"}, "/srv/aistudio/datasets/imaging"),
    ("pvc", {"claim": "imaging", "source_path": "raw/chest-xray"}, None),  # the hub sees only curated/
    ("pvc", {"claim": "imaging"}, None),
    ("pvc", {"claim": "whole", "source_path": "a/b"}, "/srv/aistudio/datasets/whole/a/b"),
    ("pvc", {"claim": "whole"}, "/srv/aistudio/datasets/whole"),
    ("pvc", {"claim": "other"}, None),
    ("hostpath", {"source_path": "/mnt/datasets/scratch"}, "/srv/aistudio/datasets/scratch/scratch"),
    ("hostpath", {"source_path": "/mnt"}, None),
    ("local", {"source_path": "/export/datasets"}, None),
])
def test_the_hub_path_of_a_kubernetes_source_comes_from_the_views(kind, source, expected):
    from hub_config.datasets.mounts import hub_path

    assert hub_path(VIEWS, kind, **source) == expected
    assert hub_path([], kind, **source) is None


def test_cli_kubernetes_sources_get_the_hubs_path_from_the_views(tmp_path, capsys):
    hub = tmp_path / "hub-sees"
    write(hub / "imaging" / "chest-xray", "labels.csv", pa.table({"image": [f"i{n}.png" for n in range(6)]}))
    write(hub / "lab" / "vitals", "v.csv", pa.table({"hr": list(range(6))}))
    config = tmp_path / "aistudio.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "local": {"user_accounts": "shared"},
                                      "datasets": {"source_views": [
                                          {"kind": "pvc", "claim": "imaging", "path": str(hub / "imaging")},
                                          {"kind": "nfs", "server": "nfs.lab", "source_path": "/export",
                                           "path": str(hub / "lab")}]}}))
    code, out, _ = run_cli(capsys, config, "add", "chest-xray", "--pvc", "imaging", "--sub-path", "chest-xray")
    assert code == 0 and f"the hub reads its files at {hub / 'imaging' / 'chest-xray'}" in out
    code, out, _ = run_cli(capsys, config, "scan", "chest-xray")
    assert code == 0 and "scan PASSED" in out and "6 rows" in out
    code, out, _ = run_cli(capsys, config, "add", "vitals", "--nfs", "nfs.lab:/export/vitals", "--scan")
    assert code == 0 and "scan PASSED" in out
    # a source no view shows: registered, mounted into pods all the same, but not scanned
    code, out, _ = run_cli(capsys, config, "add", "elsewhere", "--nfs", "other.lab:/export/x")
    assert code == 0 and "the hub cannot see its files" in out
    code, _, err = run_cli(capsys, config, "scan", "elsewhere")
    assert code == 1 and "--hub-path" in err and "datasets.sources" in err
    # --hub-path wins; a new source without it takes the views' path again
    code, out, _ = run_cli(capsys, config, "update", "elsewhere", "--host-path", "/mnt/x", "--hub-path", str(hub / "lab"))
    assert code == 0 and f"the hub reads its files at {hub / 'lab'}" in out
    code, out, _ = run_cli(capsys, config, "update", "elsewhere", "--pvc", "imaging", "--sub-path", "chest-xray")
    assert code == 0 and str(hub / "imaging" / "chest-xray") in out
    shown = json.loads(run_cli(capsys, config, "show", "elsewhere")[1])["source"]
    assert shown == {"kind": "pvc", "claim": "imaging", "source_path": "chest-xray",
                     "path": str(hub / "imaging" / "chest-xray")}


def test_cli_uses_the_config_named_by_aistudio_config(tmp_path, capsys, monkeypatch):
    """In the hub's pod (AISTUDIO_CONFIG=/etc/aistudio/aistudio.yaml) no --config is needed."""
    config = tmp_path / "aistudio.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "hub-data"), "local": {"user_accounts": "shared"}}))
    monkeypatch.setenv("AISTUDIO_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["datasets", "--as", "steward", "add", "x", "--nfs", "nfs.lab:/export/x"]) == 0
    assert (tmp_path / "hub-data" / "datasets.sqlite").is_file()


def test_manifest_kubernetes_sources_are_read_where_the_hub_sees_them(tmp_path):
    from hub_config.datasets.admin import import_manifest

    hub = tmp_path / "hub-sees"
    write(hub / "lab" / "vitals", "v.csv", pa.table({"hr": list(range(6))}))
    views = [{"kind": "nfs", "server": "nfs.lab", "source_path": "/export", "path": str(hub / "lab")}]
    store = DatasetStore(f"sqlite:///{tmp_path}/registry.sqlite")
    lines = import_manifest(store, {"datasets": [
        {"name": "missing", "source": {"kind": "nfs", "server": "nfs.lab", "source_path": "/export/missing"},
         "publish": True},
        {"name": "vitals", "source": {"kind": "nfs", "server": "nfs.lab", "source_path": "/export/vitals"},
         "publish": True, "grants": {"groups": ["students"]}},
        {"name": "unseen", "source": {"kind": "pvc", "claim": "elsewhere"}, "publish": True},
    ]}, ScanSettings(), actor="manifest", views=views)
    # a folder that is not there does not stop the others
    assert lines[0].startswith("missing: added, not scanned:") and "is not a folder" in lines[0]
    assert lines[1] == "vitals: added, scan passed, published, granted to students"
    assert lines[2].startswith("unseen: added, not scanned (the hub cannot see its files), not published")
    assert store.get("vitals").path == str(hub / "lab" / "vitals") and store.get("unseen").path is None


# --------------------------------------------------------------------------- pods


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "offline",
        "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "offline", "user": {"token": "offline"}}],
        "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline", "namespace": "lab"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(importlib.import_module("kubernetes_asyncio.config.kube_config"), "KUBE_CONFIG_DEFAULT_LOCATION",
                        str(path))


async def pod_for(tmp_path, user, groups, store_url):
    from traitlets.config import Config

    from hub_config import config as studio_config
    from hub_config import configurer
    from hub_config.spawners.kube import StudioKubeSpawner

    cfg = studio_config.load(None)
    cfg.update(mode="kubernetes", profiles_dir=str(REPO / "spawner_profiles"))
    cfg["usage"]["db_url"] = f"sqlite:///{tmp_path}/usage.sqlite"
    cfg["datasets"].update(enabled=True, db_url=store_url)
    cfg["kubernetes"]["namespace"] = "lab"
    spawner = StudioKubeSpawner(_mock=True, config=Config(configurer.traitlets_config(cfg)), user=SimpleNamespace(
        name=user, id=7, url=f"/user/{user}/", groups=[SimpleNamespace(name=g) for g in groups], escaped_name=user))
    spawner.user_options = {"profile": "cpu-small"}
    body = json.dumps({"user_options": spawner.user_options}).encode()
    spawner.handler = SimpleNamespace(request=SimpleNamespace(method="POST", body_arguments={}, body=body))
    await spawner.load_user_options()
    pod = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    spawner.end_usage()
    pod.update(apiVersion="v1", kind="Pod")
    return spawner, pod


async def test_pods_get_exactly_the_granted_datasets_read_only(tmp_path, kubeconfig):
    url = f"sqlite:///{tmp_path}/registry.sqlite"
    store = DatasetStore(url)
    for name, kind, extra in (("mimic", "nfs", {"source_server": "nfs.lab", "source_path": "/export/mimic"}),
                              ("xray", "pvc", {"source_claim": "xray-data", "source_path": "v2"}),
                              ("scratch", "hostpath", {"source_path": "/mnt/datasets/scratch"}),
                              ("hidden", "pvc", {"source_claim": "hidden"})):
        store.add(name, actor="s", source_kind=kind, **extra)
        store.record_scan(name, actor="s", report={"passed": True, "summary": []},
                          facts={"files": [], "rows": 0, "size_bytes": 0, "format": ""})
        store.publish(name, actor="s")
    store.grant("mimic", actor="s", groups=["gpu-residents"])
    store.grant("xray", actor="s", users=["alice"])
    store.grant("scratch", actor="s", users=["alice"], expires_at=time.time() - 1)  # expired
    store.grant("hidden", actor="s", users=["bob"])
    spawner, pod = await pod_for(tmp_path, "alice", ["gpu-residents"], url)
    for version in ("1.30", kubernetes_validate.latest_version()):
        kubernetes_validate.validate(pod, version, strict=True)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"] if v["name"].startswith("dataset-")}
    assert set(volumes) == {"dataset-mimic", "dataset-xray"}
    assert volumes["dataset-mimic"]["nfs"] == {"server": "nfs.lab", "path": "/export/mimic", "readOnly": True}
    assert volumes["dataset-xray"]["persistentVolumeClaim"] == {"claimName": "xray-data", "readOnly": True}
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"].startswith("dataset-")}
    assert mounts["dataset-mimic"] == {"name": "dataset-mimic", "mountPath": "/datasets/mimic", "readOnly": True,
                                       "recursiveReadOnly": "IfPossible"}
    assert mounts["dataset-xray"]["subPath"] == "v2" and mounts["dataset-xray"]["readOnly"] is True
    assert spawner.mounted_datasets == ["mimic", "xray"]
    messages = [e["message"] for e in spawner._progress_log()]
    assert "Mounting datasets read-only at /datasets: mimic, xray" in messages
    assert {e["dataset"] for e in store.audit_events(event_names=["mount"])} == {"mimic", "xray"}
    # revoked: the next pod lacks it, and the member is told
    store.revoke("xray", actor="s", users=["alice"])
    spawner.user_options = {"profile": "cpu-small"}
    await spawner.load_user_options()
    pod = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    spawner.end_usage()
    assert [v["name"] for v in pod["spec"]["volumes"] if v["name"].startswith("dataset-")] == ["dataset-mimic"]
    assert any("No longer available to you" in e["message"] and "xray" in e["message"]
               for e in spawner._progress_log())
    _, other = await pod_for(tmp_path, "carol", [], url)
    assert not [v for v in other["spec"]["volumes"] if v["name"].startswith("dataset-")]


def test_k8s_volumes_skip_local_sources():
    from hub_config.datasets.mounts import k8s_volumes

    vols, mounts, skipped = k8s_volumes([MountSpec("here", "local", "/srv/x"), MountSpec("n", "nfs", None, server="s",
                                                                                       source_path="/e")])
    assert skipped == ["here"] and [v["name"] for v in vols] == ["dataset-n"] and len(mounts) == 1


def test_no_dataset_path_is_ever_written_by_members_in_settings():
    # the local mount root is the folder of root-owned links; the schema refuses a relative one
    from hub_config import config as studio_config

    cfg = studio_config.load(None)
    cfg["datasets"]["mount_root"] = "datasets"
    with pytest.raises(studio_config.StudioConfigError, match="datasets.mount_root"):
        studio_config.validate(cfg)
    assert os.path.isabs(studio_config.load(None)["datasets"]["mount_root"])
