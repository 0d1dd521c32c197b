"""Members' own usage on a real hub (/services/usage/): every member sees only their own
servers, GPU-hours against their budget, a chart and a CSV, on the page and through
api/users/NAME (403 for anyone else's); admins see everyone's and the GPU utilisation per
group. One running server is launched through the hub; closed records and GPU samples are
written into the studio's usage database as the hub would."""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
import requests
import yaml
from harness import REPO, Studio, write_config, write_profiles

from hub_config.quotas import period_start
from hub_config.usage.service import CSV_COLUMNS, NAME_PATTERN
from hub_config.usage.store import UsageStore

PROFILES = """\
profiles:
  - slug: one-gpu
    display_name: One GPU
    resources: {cpu: 1, memory: 1Gi, gpus: 1, gpu_type: a100}
    access: {everyone: true}
quotas:
  period: month
  groups:
    students:
      group: {max_gpus: 2}
      member: {gpu_hours: 20}
    gpu-residents:
      member: {max_gpus: 4}
"""


@pytest.fixture(scope="module")
def usage(tmp_path_factory):
    """A studio where bob (students, a 20 GPU-hour budget) runs a GPU server sampled at 55 %,
    and alice (gpu-residents, no budget) has two closed servers of this period: one GPU hour
    at 40 and 60 %, and a CPU server (named like a spreadsheet formula)."""
    directory = tmp_path_factory.mktemp("usage-member")
    studio = Studio(directory, write_config(directory, write_profiles(directory, PROFILES),
                                            local={"user_accounts": "shared"}, culler={"enabled": False}))
    studio.start()
    try:
        assert studio.spawn("bob", {"profile": "one-gpu"}).status_code in (201, 202)
        store = UsageStore(f"sqlite:///{studio.config['data_dir']}/usage.sqlite")
        bob_id = next(r.usage_id for r in store.rows() if r.user == "bob" and r.stopped_at is None)
        store.add_gpu_sample(bob_id, 55)
        now = time.time()
        since = period_start("month", now).timestamp()
        hour = min(3600.0, (now - since) / 4)  # inside this period, whenever the test runs
        alice_gpu = store.open("alice", "", ["gpu-residents"], "one-gpu", 1, "a100", 1, 2**30, now=now - 3 * hour)
        store.close(alice_gpu, now=now - 2 * hour)
        store.add_gpu_sample(alice_gpu, 40)
        store.add_gpu_sample(alice_gpu, 60)
        alice_cpu = store.open("alice", "=cmd", ["gpu-residents"], "cpu", 0, None, 2, 2**31, now=now - 2 * hour)
        store.close(alice_cpu, now=now - hour)
        studio.ids = {"bob": bob_id, "alice_gpu": alice_gpu, "alice_cpu": alice_cpu}
        studio.gpu_hour = hour / 3600
        yield studio
    finally:
        if studio.proc and studio.proc.poll() is None and studio.api("GET", "/users/bob").json()["servers"]:
            studio.stop_server("bob")
        studio.stop()


def api(studio, user, path, **kwargs) -> requests.Response:
    return requests.get(f"{studio.url}/services/usage/{path}", timeout=30,
                        headers={"Authorization": f"token {studio.token(user)}"}, **kwargs)


def page(studio, user, path="") -> requests.Response:
    r = studio.session(user).get(f"{studio.url}/services/usage/{path}", timeout=30)
    assert r.status_code == 200, r.text[:500]
    return r


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_name_pattern_is_the_documents():
    doc = yaml.safe_load((REPO / "hub_config" / "usage" / "openapi.yaml").read_text())
    assert doc["components"]["parameters"]["name"]["schema"]["pattern"] == NAME_PATTERN


def test_member_sees_only_their_own_servers_on_the_page(usage):
    html = page(usage, "alice").text
    assert "My usage" in html and 'data-testid="my-servers"' in html
    rows = set(re.findall(r'data-usage-id="(\d+)"', html))
    assert rows == {str(usage.ids["alice_gpu"]), str(usage.ids["alice_cpu"])}
    words = text(html)
    assert "no budget" in words and "GPU utilisation per group" not in words
    assert "50.0 %" in words  # the GPU server's mean utilisation; the CPU server's is "—"
    utils = re.findall(r'data-testid="server-util">([^<]*)<', html)
    assert sorted(utils) == ["50.0 %", "—"]
    # in the hub's look, with the hub's navigation
    assert "/hub/static/css/style.min.css" in html and 'data-testid="hub-nav"' in html
    for link in ('href="/hub/home"', 'href="/hub/token"', 'href="/hub/logout"', 'href="/hub/queue"'):
        assert link in html, link
    assert 'href="/hub/admin"' not in html
    assert re.search(r'data-testid="nav-user">alice<', html)
    # the chart: one bar per day of the last 30, with the day's GPU-hours
    assert len(re.findall(r'<rect class="bar"', html)) == 30
    assert 'href="/services/usage/api/users/alice?format=csv"' in html


def test_member_page_shows_budget_and_running_server(usage):
    html = page(usage, "bob").text
    words = text(html)
    assert re.search(r'data-testid="gpu-hours-budget">20<', html)
    assert "running" in words and "1× A100" in words
    assert re.findall(r'data-testid="server-util">([^<]*)<', html) == ["55.0 %"]
    assert set(re.findall(r'data-usage-id="(\d+)"', html)) == {str(usage.ids["bob"])}
    assert re.search(r'data-testid="resets">\d{4}-\d{2}-01<', html)


def test_member_api_is_their_own_only(usage):
    r = api(usage, "alice", "api/users/alice")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["user"] == "alice" and data["period"]["name"] == "month"
    assert {s["id"] for s in data["servers"]} == {usage.ids["alice_gpu"], usage.ids["alice_cpu"]}
    assert data["gpu_hours"]["used"] == pytest.approx(usage.gpu_hour, abs=0.002)
    assert data["gpu_hours"]["budget"] is None and data["gpu_hours"]["left"] is None
    by_id = {s["id"]: s for s in data["servers"]}
    assert by_id[usage.ids["alice_gpu"]]["gpu_util_mean"] == 50.0
    assert by_id[usage.ids["alice_cpu"]]["gpu_util_mean"] is None and by_id[usage.ids["alice_cpu"]]["gpus"] == 0
    assert len(data["daily"]) == 30
    assert sum(d["gpu_hours"] for d in data["daily"]) == pytest.approx(usage.gpu_hour, abs=0.002)

    bob = api(usage, "bob", "api/users/bob").json()
    assert [s["id"] for s in bob["servers"]] == [usage.ids["bob"]]
    assert bob["servers"][0]["running"] is True and bob["servers"][0]["gpu_util_mean"] == 55.0
    assert bob["gpu_hours"]["budget"] == 20 and 0 < bob["gpu_hours"]["left"] <= 20

    for user, other in (("alice", "bob"), ("bob", "alice"), ("bob", "nobody"), ("carol", "admin")):
        r = api(usage, user, f"api/users/{other}")
        assert r.status_code == 403, (user, other, r.text)
        assert r.headers["Content-Type"].startswith("application/json")
        assert set(r.json()) == {"status", "message"} and r.json()["status"] == 403
    # the browser's login works for the API too, and it is still only one's own
    assert usage.session("alice").get(f"{usage.url}/services/usage/api/users/alice", timeout=30).status_code == 200
    assert usage.session("alice").get(f"{usage.url}/services/usage/api/users/bob", timeout=30).status_code == 403
    # the admins' summary is the admins'
    r = api(usage, "alice", "api/summary")
    assert r.status_code == 403 and r.json()["status"] == 403


def test_api_refusals(usage):
    r = api(usage, "alice", "api/users/alice", params={"since": "2020-01-01"})
    assert r.status_code == 400 and "since" in r.json()["message"]
    r = api(usage, "alice", "api/users/alice", params={"format": "xml"})
    assert r.status_code == 400 and r.json()["message"].startswith("format")
    r = api(usage, "alice", "api/users/%20alice")
    assert r.status_code == 400 and r.json()["message"].startswith("name")
    r = requests.get(f"{usage.url}/services/usage/api/users/alice", timeout=30)
    assert r.status_code == 401 and r.json()["status"] == 401


def test_csv_has_a_header_and_the_members_rows(usage):
    r = api(usage, "alice", "api/users/alice", params={"format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"] and "usage-alice-" in r.headers["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(r.text)))
    assert tuple(lines[0]) == CSV_COLUMNS
    rows = [dict(zip(lines[0], line)) for line in lines[1:]]
    assert {row["id"] for row in rows} == {str(usage.ids["alice_gpu"]), str(usage.ids["alice_cpu"])}
    assert {row["user"] for row in rows} == {"alice"}
    by_id = {row["id"]: row for row in rows}
    assert by_id[str(usage.ids["alice_gpu"])]["gpu_util_mean"] == "50.0"
    assert by_id[str(usage.ids["alice_cpu"])]["server_name"] == "'=cmd"  # no formula for spreadsheets
    # the page's link, with the browser's login
    link = usage.session("alice").get(f"{usage.url}/services/usage/api/users/alice?format=csv", timeout=30)
    assert link.status_code == 200 and link.text == r.text


def test_admin_sees_all_and_utilisation_per_group(usage):
    html = page(usage, "admin").text
    words = text(html)
    assert "GPU usage" in words and "GPU utilisation per group" in words
    assert 'href="/hub/admin"' in html and 'data-testid="hub-nav"' in html
    # the groups' table: no "1 of" without a number (students has a GPU cap, no server cap)
    assert not re.search(r"<td>\s*\d+ of\s*</td>", html)
    assert len(re.findall(r'<rect class="bar"', html)) == 30
    summary = api(usage, "admin", "api/summary").json()
    util = {g["group"]: g for g in summary["utilisation"]}
    assert util["gpu-residents"]["gpu_util_mean"] == 50.0 and util["students"]["gpu_util_mean"] == 55.0
    assert util["gpu-residents"]["gpu_hours"] == pytest.approx(usage.gpu_hour, abs=0.002)
    students = next(g for g in summary["groups"] if g["group"] == "students")
    assert (students["servers"], students["gpus"], students["max_gpus"], students["max_servers"]) == (1, 1, 2, None)
    cells = dict(re.findall(r'<tr data-group="([^"]+)">.*?data-testid="group-util">([^<]*)<', html, re.S))
    assert cells == {"gpu-residents": "50.0 %", "students": "55.0 %"}
    # anyone's usage through the API; a name without records has none
    for user in ("alice", "bob"):
        mine = api(usage, user, f"api/users/{user}").json()
        theirs = api(usage, "admin", f"api/users/{user}").json()
        assert [s["id"] for s in theirs["servers"]] == [s["id"] for s in mine["servers"]]
        assert theirs["gpu_hours"]["budget"] == mine["gpu_hours"]["budget"]
    nobody = api(usage, "admin", "api/users/nobody").json()
    assert nobody["servers"] == [] and nobody["gpu_hours"]["used"] == 0
    # the admin's own page
    assert "My usage" in text(page(usage, "admin", "mine").text)


def test_errors_are_pages_in_the_hubs_look(usage):
    page(usage, "carol")  # logs in to the service
    r = usage.session("carol").get(f"{usage.url}/services/usage/no-such-page", timeout=30)
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    assert 'data-testid="hub-nav"' in r.text and 'data-testid="error-message"' in r.text
    assert re.search(r'data-testid="nav-user">carol<', r.text)
    assert "<h1>404</h1>" not in r.text
