"""A studio whose four databases (the hub's own, usage records, the datasets registry,
announcements) are all on PostgreSQL: login, a launch recorded in the usage database, a
granted dataset mounted and listed by the catalogue, an announcement, the server
stopped, `jupyterhub upgrade-db`, and after a hub restart the same users, tokens,
records, datasets and announcements."""

import os
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml
from sqlalchemy import create_engine, inspect, text

from harness import Studio, free_ports, write_config, write_profiles

from hub_config.datasets import DatasetStore

HEAD = {"usage": "0004", "datasets": "0002", "announcements": "0003"}  # the newest revision of each

PROFILES = """\
profiles:
  - slug: small
    display_name: Small
    resources: {cpu: 1, memory: 8Gi}
    access: {everyone: true}
"""


def rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def until(check, what: str, studio: Studio, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen in {timeout}s:\n{studio.log()[-3000:]}")


def service(studio: Studio, name: str, user: str, path: str, method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, f"{studio.url}/services/{name}/api/{path}",
                            headers={"Authorization": f"token {studio.token(user)}"}, timeout=30, **kwargs)


def test_a_studio_on_postgresql_keeps_everything_across_a_restart(tmp_path, postgres):
    os.chmod(tmp_path, 0o755)
    urls = {name: postgres.database(f"studio_{name}") for name in ("hub", "usage", "datasets", "announcements")}
    files = tmp_path / "files" / "cohort"
    files.mkdir(parents=True)
    (files / "vitals.csv").write_text("age_band,hr\n30-39,70\n")
    config = write_config(
        tmp_path, write_profiles(tmp_path, PROFILES),
        hub={"db_url": urls["hub"]},
        usage={"db_url": urls["usage"]},
        datasets={"enabled": True, "db_url": urls["datasets"], "mount_root": str(tmp_path / "mnt")},
        announcements={"db_url": urls["announcements"], "organiser_users": ["admin"]},
        local={"user_accounts": "shared"},
        culler={"enabled": False},
    )
    settings = yaml.safe_load(config.read_text())
    taken = set(settings["hub"].values()) | {v.get("service_port") for v in settings.values() if isinstance(v, dict)}
    settings["datasets"]["service_port"] = next(p for p in free_ports(8) if p not in taken)
    config.write_text(yaml.safe_dump(settings))
    # a steward registers, publishes and grants a dataset, in the PostgreSQL registry
    registry = DatasetStore(urls["datasets"])
    registry.add("cohort", actor="steward", path=str(files))
    registry.record_scan("cohort", actor="steward", report={"passed": True, "summary": []},
                         facts={"files": [], "rows": 1, "size_bytes": 20, "format": "csv"})
    registry.publish("cohort", actor="steward")
    registry.grant("cohort", actor="steward", users=["alice"])
    registry.engine.dispose()

    studio = Studio(tmp_path, config)
    studio.start(timeout=120)
    try:
        # the hub made JupyterHub's tables in PostgreSQL; the services migrated theirs
        hub_db = create_engine(urls["hub"])
        assert {"users", "spawners", "api_tokens", "alembic_version"} <= set(inspect(hub_db).get_table_names())
        hub_db.dispose()
        for name in ("usage", "datasets", "announcements"):
            assert rows(urls[name], "SELECT version_num FROM alembic_version") == [(HEAD[name],)]
        studio.session("alice")  # a login through the form
        admin_token = studio.token("admin")
        r = studio.spawn("alice", {"profile": "small"})
        assert r.status_code in (201, 202), r.text
        [(usage_id, profile, memory, stopped)] = rows(
            urls["usage"], "SELECT id, profile, memory, stopped_at FROM server_usage WHERE \"user\" = 'alice'")
        assert (profile, memory, stopped) == ("small", 8 * 2**30, None)
        assert ("alice", "cohort") in rows(urls["datasets"], "SELECT \"user\", dataset FROM dataset_audit WHERE event = 'mount'")
        listed = until(lambda: service(studio, "datasets", "alice", "datasets").json()["datasets"], "the catalogue", studio)
        assert [d["name"] for d in listed] == ["cohort"]
        news = until(lambda: service(studio, "announcements", "admin", "items", "POST",
                                     json={"kind": "news", "title": "On PostgreSQL"}), "the announcements service", studio)
        assert news.status_code == 201, news.text
        assert rows(urls["announcements"], "SELECT title FROM items") == [("On PostgreSQL",)]
        studio.stop_server("alice")
        [(stopped,)] = rows(urls["usage"], f"SELECT stopped_at FROM server_usage WHERE id = {usage_id}")
        assert stopped is not None
    finally:
        studio.stop()
    assert studio.proc.returncode == 0, studio.log()[-3000:]

    # an administrator's upgrade step, on the hub's PostgreSQL database
    upgrade = subprocess.run([str(Path(sys.executable).parent / "jupyterhub"), "upgrade-db", f"--db={urls['hub']}"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr

    studio.start(timeout=120)
    try:
        r = requests.get(f"{studio.url}/hub/api/users/alice", headers={"Authorization": f"token {admin_token}"}, timeout=30)
        assert r.status_code == 200, r.text  # the token made before the restart, kept in PostgreSQL
        alice = r.json()
        assert alice["last_activity"] is not None and alice["servers"] == {}
        assert [(row[0], row[1] is not None) for row in rows(
            urls["usage"], "SELECT \"user\", stopped_at FROM server_usage")] == [("alice", True)]
        listed = until(lambda: service(studio, "datasets", "alice", "datasets").json()["datasets"], "the catalogue", studio)
        assert [d["name"] for d in listed] == ["cohort"]
        items = until(lambda: service(studio, "announcements", "alice", "items").json(), "the announcements service", studio)
        assert "On PostgreSQL" in str(items)
    finally:
        studio.stop()
