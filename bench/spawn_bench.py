#!/usr/bin/env python
"""Spawn-to-ready benchmark: StudioLocalSpawner against stock SimpleLocalProcessSpawner.

Two hubs run side by side, from the same studio config (shared accounts, the
shipped cpu-small profile, demo users bench0..bench9):

* ours:     ``aistudio up`` as configured by hub_config (StudioLocalSpawner);
* baseline: the same JupyterHub config plus bench/baseline_jupyterhub_config.py,
            which only swaps in ``SimpleLocalProcessSpawner``.

Same hub, proxy, login, singleuser command, PATH and request body for both, so
only the spawner's overhead differs. A spawn is timed from the POST
/hub/api/users/NAME/server request until the hub reports the server ready (its
progress stream ends with ``ready``, confirmed by GET /hub/api/users/NAME) and
GET /user/NAME/api/status through the proxy answers 200.

Modes: ``sequential`` (one spawn at a time, each stopped before the next; the two
spawners alternate ABBA) and ``concurrent`` (N users POST at once; rounds in
ABBA order). One warm-up spawn per hub is not counted.

    .venv/bin/python bench/spawn_bench.py [--seq 6] [--concurrent 10] [--rounds 2] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from benchdoc import DOC, write_section

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
VENV_BIN = Path(sys.prefix) / "bin"
PASSWORD = "bench-password"
PROFILE = "cpu-small"
COMMAND = ".venv/bin/python bench/spawn_bench.py --write"
BASELINE_CONFIG = REPO / "bench" / "baseline_jupyterhub_config.py"


_held: list[socket.socket] = []


def free_port() -> int:
    """A free port, distinct from the others this run picked (their sockets stay
    open until the hubs are launched)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _held.append(s)
    return s.getsockname()[1]


def release_ports():
    while _held:
        _held.pop().close()


class Hub:
    """One running hub: ``aistudio up`` (ours) or jupyterhub with the baseline config."""

    def __init__(self, label: str, root: Path, users: list[str], baseline: bool):
        self.label, self.root, self.users, self.baseline = label, root, users, baseline
        root.mkdir(parents=True)
        profiles = root / "profiles"
        shutil.copytree(REPO / "spawner_profiles", profiles)
        self.config = {
            "data_dir": str(root / "data"),
            "profiles_dir": str(profiles),
            "hub": {"port": free_port(), "hub_port": free_port(), "proxy_api_port": free_port()},
            "auth": {"demo": {"password": PASSWORD, "users": {u: {"groups": []} for u in users}}},
            "local": {"user_accounts": "shared"},
            "gpus": {"discovery": "none"},
            "spawn": {"start_timeout": 120, "http_timeout": 120},
        }
        self.config_path = root / "aistudio.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))
        self.url = f"http://127.0.0.1:{self.config['hub']['port']}"
        self.log_path = root / "hub.log"
        self.proc: subprocess.Popen | None = None
        self.tokens: dict[str, str] = {}

    def launch(self):
        env = dict(os.environ)
        # The PATH StudioLocalSpawner gives its servers; the baseline's servers inherit the hub's.
        env["PATH"] = os.pathsep.join([os.path.join(os.path.realpath(sys.prefix), "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
        env["PYTHONUNBUFFERED"] = "1"
        data = Path(self.config["data_dir"])
        data.mkdir(parents=True)
        if os.geteuid() == 0:
            # In shared mode as root, servers run as root, which Jupyter Server refuses
            # without allow_root; both spawners' users get it from the same home config.
            for user in self.users:
                conf = data / "homes" / user / ".jupyter"
                conf.mkdir(parents=True)
                (conf / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"allow_root": True}}))
        if self.baseline:
            # What `aistudio up` hands to jupyterhub, then the baseline config on top.
            env.update(AISTUDIO_CONFIG=str(self.config_path), AISTUDIO_DATA_DIR=str(data),
                       AISTUDIO_PORT=str(self.config["hub"]["port"]), SPAWN_BENCH_HOMES=str(data / "homes"))
            cmd = [str(VENV_BIN / "jupyterhub"), "-f", str(BASELINE_CONFIG)]
            cwd = data
        else:
            cmd = [PYTHON, "-m", "hub_config.cli", "--config", str(self.config_path), "up"]
            cwd = self.root
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd, env=env)

    def wait_up(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.label} hub did not answer in {timeout}s:\n{self.log_tail()}")

    def login_all(self):
        for user in self.users:
            s = requests.Session()
            s.get(f"{self.url}/hub/login", timeout=10)
            r = s.post(f"{self.url}/hub/login",
                       data={"username": user, "password": PASSWORD, "_xsrf": s.cookies.get("_xsrf", "")},
                       allow_redirects=False, timeout=10)
            if r.status_code != 302:
                raise RuntimeError(f"{self.label}: login of {user} failed: {r.status_code} {r.text[:300]}")
            s.headers["X-XSRFToken"] = s.cookies.get("_xsrf", "")
            r = s.post(f"{self.url}/hub/api/users/{user}/tokens", json={"note": "spawn-bench"}, timeout=10)
            if r.status_code != 201:
                raise RuntimeError(f"{self.label}: token of {user}: {r.status_code} {r.text[:300]}")
            self.tokens[user] = r.json()["token"]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # as Ctrl-C: the hub stops its servers and the proxy
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def log_tail(self, n=4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    # ------------------------------------------------------------ API

    def headers(self, user):
        return {"Authorization": f"token {self.tokens[user]}"}

    def user_model(self, user) -> dict:
        r = requests.get(f"{self.url}/hub/api/users/{user}", headers=self.headers(user), timeout=30)
        r.raise_for_status()
        return r.json()

    def spawn(self, user: str, timeout=150) -> tuple[float, float]:
        """Start ``user``'s server; seconds from the POST to (hub ready, /api/status 200)."""
        h = self.headers(user)
        t0 = time.perf_counter()
        r = requests.post(f"{self.url}/hub/api/users/{user}/server", headers=h,
                          json={"user_options": {"profile": PROFILE}}, timeout=timeout)
        if r.status_code == 202:  # still starting: follow the progress stream until it says ready
            with requests.get(f"{self.url}/hub/api/users/{user}/server/progress", headers=h,
                              stream=True, timeout=timeout) as stream:
                for line in stream.iter_lines():
                    if not line.startswith(b"data:"):
                        continue
                    event = json.loads(line[5:])
                    if event.get("failed"):
                        raise RuntimeError(f"{self.label}: spawn of {user} failed: {event}\n{self.log_tail()}")
                    if event.get("ready"):
                        break
        elif r.status_code != 201:
            raise RuntimeError(f"{self.label}: POST server of {user}: {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + timeout
        while not (self.user_model(user)["servers"].get("") or {}).get("ready"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: {user} never ready\n{self.log_tail()}")
            time.sleep(0.05)
        t_ready = time.perf_counter() - t0
        while True:
            try:
                if requests.get(f"{self.url}/user/{user}/api/status", headers=h, timeout=30).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: /user/{user}/api/status never answered 200")
            time.sleep(0.05)
        return t_ready, time.perf_counter() - t0

    def stop_server(self, user: str, wait=True):
        r = requests.delete(f"{self.url}/hub/api/users/{user}/server", headers=self.headers(user), timeout=120)
        if r.status_code not in (202, 204):
            raise RuntimeError(f"{self.label}: DELETE server of {user}: {r.status_code} {r.text[:300]}")
        if wait:
            self.wait_stopped(user)

    def wait_stopped(self, user: str, timeout=60):
        deadline = time.monotonic() + timeout
        while self.user_model(user)["servers"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: {user}'s server did not stop")
            time.sleep(0.2)


# ---------------------------------------------------------------- runs


def concurrent_round(hub: Hub, users: list[str]) -> list[tuple[float, float]]:
    barrier = threading.Barrier(len(users))

    def one(user):
        barrier.wait()
        return hub.spawn(user)

    with ThreadPoolExecutor(len(users)) as pool:
        results = list(pool.map(one, users))
    for user in users:
        hub.stop_server(user, wait=False)
    for user in users:
        hub.wait_stopped(user)
    return results


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (as numpy's default)."""
    v = sorted(values)
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(samples: list[tuple[float, float]]) -> dict:
    full = [s[1] for s in samples]
    return {
        "n": len(full),
        "p50": percentile(full, 0.5),
        "p95": percentile(full, 0.95),
        "mean": sum(full) / len(full),
        "hub_p50": percentile([s[0] for s in samples], 0.5),
    }


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}, {platform.system()} {platform.release()}"


def render(results: dict, args, elapsed: float, load: tuple[str, str]) -> str:
    import jupyterhub

    rows = ["| spawner | mode | n | p50 (s) | p95 (s) | mean (s) | hub-ready p50 (s) |",
            "|---|---|---:|---:|---:|---:|---:|"]
    ratios = ["| mode | p50 ours/baseline | p95 ours/baseline |", "|---|---:|---:|"]
    for mode in results:
        for label in ("ours", "baseline"):
            s = results[mode][label]
            rows.append(f"| {label} | {mode} | {s['n']} | {s['p50']:.2f} | {s['p95']:.2f} | "
                        f"{s['mean']:.2f} | {s['hub_p50']:.2f} |")
        o, b = results[mode]["ours"], results[mode]["baseline"]
        ratios.append(f"| {mode} | {o['p50'] / b['p50']:.3f} | {o['p95'] / b['p95']:.3f} |")
    return "\n".join([
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {machine()}",
        f"- JupyterHub {jupyterhub.__version__}, Python {platform.python_version()}",
        f"- runs: sequential {args.seq} spawns per spawner (ABBA-alternated, each stopped before the next); "
        f"concurrent {args.concurrent} users at once, {args.rounds} round(s) per spawner; "
        f"1 uncounted warm-up per spawner; total {elapsed:.0f} s; "
        f"load average (1/5/15 min) before {load[0]}, after {load[1]}",
        f"- reproduce: `{COMMAND}`",
        "",
        "Seconds from `POST /hub/api/users/NAME/server` until the hub reports the server ready "
        "and `GET /user/NAME/api/status` answers 200 (last column: until the hub reports ready).",
        "",
        *rows,
        "",
        *ratios,
        "",
        "Both spawners run under the same account (`local.user_accounts: shared`) with the cpu-small "
        "profile; only the spawner class differs (see `bench/baseline_jupyterhub_config.py`). "
        "Single runs are noisy: the hub polls a starting server with exponential backoff and random "
        "jitter (waits of up to 5 s), which alone moves a spawn by seconds, and other work on a shared "
        "machine shifts whole rounds; compare ratios across several runs before reading a few percent.",
    ])


def write_doc(section: str):
    write_section("spawn-bench", f"## Spawn-to-ready time\n\n{section}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq", type=int, default=6, help="sequential spawns per spawner (default 6)")
    parser.add_argument("--concurrent", type=int, default=10, help="users spawning at once (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="concurrent rounds per spawner (default 2)")
    parser.add_argument("--write", action="store_true", help=f"replace the spawn-bench section of {DOC.relative_to(REPO)}")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (hub logs)")
    args = parser.parse_args(argv)

    # SIGTERM stops the hubs as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    users = [f"bench{i}" for i in range(max(args.concurrent, 1))]
    tmp = Path(tempfile.mkdtemp(prefix="spawn-bench-"))
    os.chmod(tmp, 0o755)
    hubs = {"ours": Hub("ours", tmp / "ours", users, baseline=False),
            "baseline": Hub("baseline", tmp / "baseline", users, baseline=True)}
    samples = {m: {k: [] for k in hubs} for m in ("sequential", "concurrent")}
    ok = False
    t_start = time.monotonic()
    load_before = loadavg()
    try:
        release_ports()
        for hub in hubs.values():
            hub.launch()
        for hub in hubs.values():
            hub.wait_up()
            hub.login_all()
        print(f"hubs up: ours {hubs['ours'].url}, baseline {hubs['baseline'].url} (logs in {tmp})", flush=True)
        for label, hub in hubs.items():  # warm-up, not counted
            t = hub.spawn(users[0])
            hub.stop_server(users[0])
            print(f"warm-up {label}: {t[1]:.2f} s", flush=True)
        order = [("ours", "baseline"), ("baseline", "ours")]
        for i in range(args.seq):
            user = users[i % len(users)]
            for label in order[i % 2]:
                t = hubs[label].spawn(user)
                hubs[label].stop_server(user)
                samples["sequential"][label].append(t)
                print(f"sequential {i + 1}/{args.seq} {label:8s} ready {t[0]:.2f} s, status {t[1]:.2f} s", flush=True)
                time.sleep(0.5)
        for r in range(args.rounds):
            for label in order[r % 2]:
                ts = concurrent_round(hubs[label], users[: args.concurrent])
                samples["concurrent"][label].extend(ts)
                print(f"concurrent {r + 1}/{args.rounds} {label:8s} " + " ".join(f"{t[1]:.1f}" for t in ts), flush=True)
                time.sleep(1)
        ok = True
    except KeyboardInterrupt:
        print("interrupted; stopping the hubs", file=sys.stderr)
        return 130
    except Exception as e:
        print(f"spawn-bench failed: {e}", file=sys.stderr)
        for hub in hubs.values():
            print(f"--- {hub.label} hub log tail ---\n{hub.log_tail(3000)}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the hubs stop cleanly
        for hub in hubs.values():
            hub.stop()
        if ok and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"hub logs kept in {tmp}", file=sys.stderr)
    elapsed = time.monotonic() - t_start
    results = {m: {k: summary(v) for k, v in samples[m].items()} for m in samples if all(samples[m].values())}
    section = render(results, args, elapsed, (load_before, loadavg()))
    print("\n" + section)
    if args.write:
        write_doc(section)
        print(f"\nwrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
