"""The studio's own JSON APIs against their OpenAPI documents (hub_config/*/openapi.yaml,
served at api/openapi.json): schemathesis generates valid and invalid requests for every
operation of the datasets catalogue, announcements and usage, on a real hub, and checks
that none gets a 5xx, that every answer matches the document, and that invalid input gets
a 4xx; explicit cases check that a refused body's message names the field."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import requests
import schemathesis
import yaml
from harness import REPO, Studio, copy_profiles, free_ports, write_config
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks as oa_checks

from test_datasets_hub import steward

SERVICES = {"datasets": "bob", "announcements": "carol", "usage": "admin"}
ORGANISER = "alice"
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def later(**kw) -> str:
    return (datetime.now(timezone.utc) + timedelta(**kw)).replace(microsecond=0).isoformat()


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    directory = tmp_path_factory.mktemp("contracts")
    os.chmod(directory, 0o755)
    files = directory / "files"
    (files / "vitals").mkdir(parents=True)
    pacsv.write_csv(pa.table({"age_band": ["30-39", "40-49"] * 10, "hr": list(range(20))}),
                    str(files / "vitals" / "vitals.csv"))
    config = write_config(directory, copy_profiles(directory), local={"user_accounts": "shared"},
                          culler={"enabled": False},
                          datasets={"enabled": True, "mount_root": str(files / "mnt")},
                          announcements={"organiser_users": [ORGANISER]})
    settings_ = yaml.safe_load(config.read_text())
    taken = set(settings_["hub"].values()) | {v.get("service_port") for v in settings_.values() if isinstance(v, dict)}
    settings_["datasets"]["service_port"] = next(p for p in free_ports(8) if p not in taken)
    config.write_text(yaml.safe_dump(settings_))
    s = Studio(directory, config)
    steward(s, "add", "vitals", "--path", str(files / "vitals"), "--title", "Vitals", "--tags", "test",
            "--quasi-identifiers", "age_band")
    steward(s, "scan", "vitals")
    steward(s, "publish", "vitals")
    steward(s, "grant", "vitals", "--groups", "students")
    s.start(timeout=120)
    try:
        for name, user in SERVICES.items():
            wait_for(s, name, user)
        seed(s)
        yield s
    finally:
        s.stop()


def call(s, service, method, path, user, **kwargs) -> requests.Response:
    headers = {"Authorization": f"token {s.token(user)}", **kwargs.pop("headers", {})}
    return requests.request(method, f"{s.url}/services/{service}/{path}", headers=headers, timeout=30, **kwargs)


def wait_for(s, service, user, timeout=60):
    path = {"datasets": "api/datasets", "announcements": "api/me", "usage": "api/summary"}[service]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if call(s, service, "GET", path, user).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{service} did not answer:\n{s.log()[-3000:]}")


def seed(s):
    """Something for every endpoint to find: items of each kind, a registration, an application, a request."""
    for body in ({"kind": "news", "title": "Welcome", "body": "**hello**"},
                 {"kind": "seminar", "title": "Talk", "speaker": "Ada", "place": "Room 1", "capacity": 1,
                  "start": later(days=3), "end": later(days=3, hours=1)},
                 {"kind": "call", "title": "Incubation", "offer": "GPUs", "deadline": later(days=30)}):
        r = call(s, "announcements", "POST", "api/items", ORGANISER, json=body)
        assert r.status_code == 201, r.text
        s.__dict__.setdefault("items", {})[body["kind"]] = r.json()["id"]
    assert call(s, "announcements", "POST", f"api/items/{s.items['seminar']}/registration", "carol").status_code == 201
    r = call(s, "announcements", "POST", f"api/items/{s.items['call']}/applications", "carol",
             json={"project": "P", "team": "carol", "summary": "S", "needs": "N"})
    assert r.status_code == 201, r.text
    r = call(s, "datasets", "POST", "api/requests", "carol", json={"dataset": "vitals", "purpose": "a study of vitals"})
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------ the documents


@pytest.mark.parametrize("service", SERVICES)
def test_document_is_public_and_openapi_31(studio, service):
    r = requests.get(f"{studio.url}/services/{service}/api/openapi.json", timeout=10)
    assert r.status_code == 200, r.text[:300]
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": f"/services/{service}"}]
    assert doc["components"]["securitySchemes"]["hubToken"]["name"] == "Authorization"
    schemathesis.openapi.from_dict(doc)  # loads (and so validates) as OpenAPI


def test_datasets_document_has_the_studios_preview_bounds(studio):
    doc = requests.get(f"{studio.url}/services/datasets/api/openapi.json", timeout=10).json()
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/datasets/{name}/preview"]["get"]["parameters"] if "name" in p}
    preview = yaml.safe_load(studio.config_path.read_text()).get("datasets", {}).get("preview") or {}
    assert params["rows"]["maximum"] == preview.get("max_rows", 100)


# ------------------------------------------------------------------ schemathesis


# the documents as shipped (the served ones add the server's prefix, and the datasets one the
# studio's preview bounds, here the defaults the shipped document has)
HUB_CONFIG = REPO / "hub_config"
datasets_schema_ = schemathesis.openapi.from_path(HUB_CONFIG / "datasets" / "openapi.yaml")
announcements_schema_ = schemathesis.openapi.from_path(HUB_CONFIG / "announcements" / "openapi.yaml")
usage_schema_ = schemathesis.openapi.from_path(HUB_CONFIG / "usage" / "openapi.yaml")


# ------------------------------------------------------------------ refusals that name the field


def test_datasets_request_refusals_name_the_field(studio):
    def post(**kw):
        return call(studio, "datasets", "POST", "api/requests", "bob", **kw)

    r = post(data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["status"] == 400
    r = post(json={"dataset": "vitals", "purpose": "a long enough purpose", "urgent": True})
    assert r.status_code == 400 and "urgent" in r.json()["message"]
    r = post(json={"dataset": "vitals", "purpose": 12345678901})
    assert r.status_code == 400 and r.json()["message"].startswith("purpose")
    r = post(json={"dataset": ["vitals"], "purpose": "a long enough purpose"})
    assert r.status_code == 400 and r.json()["message"].startswith("dataset")
    r = post(json={"purpose": "a long enough purpose"})
    assert r.status_code == 400 and r.json()["message"].startswith("dataset")
    r = call(studio, "datasets", "GET", "api/datasets/vitals/preview?rows=many", "bob")
    assert r.status_code == 400 and r.json()["message"].startswith("rows")


def test_announcements_refusals_name_the_field(studio):
    def post(path, **kw):
        return call(studio, "announcements", "POST", path, ORGANISER, **kw)

    r = post("api/items", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = post("api/items", json={"kind": "news", "title": "x", "colour": "red"})
    assert r.status_code == 400 and "colour" in r.json()["message"]
    r = post("api/items", json={"kind": "news", "title": 5})
    assert r.status_code == 400 and r.json()["message"].startswith("title")
    r = post("api/items", json={"kind": "seminar", "title": "T", "speaker": "S", "place": "P", "capacity": "lots",
                                "start": later(days=1), "end": later(days=1, hours=1)})
    assert r.status_code == 400 and r.json()["message"].startswith("capacity")
    r = post(f"api/items/{studio.items['call']}/applications", json={"project": "P", "budget": 1})
    assert r.status_code == 400 and "budget" in r.json()["message"]
    r = call(studio, "announcements", "PATCH", f"api/items/{studio.items['news']}", ORGANISER, json={"deadline": "x"})
    assert r.status_code == 400 and "deadline" in r.json()["message"]


def test_usage_errors_are_json(studio):
    r = call(studio, "usage", "GET", "api/summary", "bob")
    assert r.status_code == 403
    assert set(r.json()) == {"status", "message"}


# ------------------------------------------------------------------ the schemathesis runs (last: their
# organiser calls may delete the items the tests above use)


def run_case(studio, service, case, user, excluded=()):
    case.call_and_validate(base_url=f"{studio.url}/services/{service}",
                           headers={"Authorization": f"token {studio.token(user)}"},
                           excluded_checks=list(excluded), timeout=30)


@datasets_schema_.parametrize()
@SETTINGS
def test_datasets_api(studio, case):
    # a valid name need not be a dataset (404), nor a valid purpose a new request (409): not a refusal of valid data
    run_case(studio, "datasets", case, "bob", excluded=[oa_checks.positive_data_acceptance])


@announcements_schema_.parametrize()
@SETTINGS
def test_announcements_api(studio, case):
    # reads as a member, writes as an organiser; cross-field rules (a seminar's end after its start,
    # fields of the item's kind) are beyond the document, so valid-looking bodies may get a 400
    user = "carol" if case.method == "GET" else ORGANISER
    run_case(studio, "announcements", case, user, excluded=[oa_checks.positive_data_acceptance])


@usage_schema_.parametrize()
@SETTINGS
def test_usage_api(studio, case):
    run_case(studio, "usage", case, "admin")
