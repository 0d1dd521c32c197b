"""Datasets benchmark: the catalogue's listing at lab scale, and previews of large files.

1. Listing: a registry of 10,000 published datasets and 1,000 groups (each dataset
   granted to one group), served by the real catalogue app (hub_config.datasets.service)
   in its own process on loopback, against listing a folder of 10,000 folders through
   jupyter_server's contents API (a real `jupyter server`, loopback, token auth). The
   catalogue's HubOAuth check is replaced by a fixed user (the hub's answer is cached
   per token by HubAuth, so a warm request costs a dictionary lookup there too).
   Two members: one in 10 of the 1,000 groups (about 100 datasets), one granted all 10,000;
   for the one granted all, also one page of 50 as the Datasets panel asks it (the first,
   one from the middle by its cursor, a search).
2. Preview: the first 100 rows of a >= 1 GiB CSV and a >= 1 GiB Parquet file through
   hub_config.datasets.files.preview (what the catalogue runs), against pandas.read_csv
   (and pandas.read_parquet) of the whole file; each measured in a fresh process for
   its peak memory (ru_maxrss). The files are generated in /tmp and deleted after.

    .venv/bin/python bench/datasets_bench.py [--write] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

from benchdoc import DOC, write_section

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATASETS, GROUPS, MEMBER_GROUPS = 10_000, 1_000, 10
GiB = 1024**3
LOAD_BEFORE = ""


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, headers=None, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, headers=headers, timeout=5).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def percentiles(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"n": len(s), "p50": statistics.median(s) * 1000, "p99": s[min(len(s) - 1, int(len(s) * 0.99))] * 1000,
            "mean": statistics.fmean(s) * 1000}


def timed_gets(url, n, headers=None, params=None) -> tuple[dict, int]:
    session = requests.Session()
    size = 0
    for _ in range(2):  # warm-up
        session.get(url, headers=headers, params=params, timeout=60).raise_for_status()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        r = session.get(url, headers=headers, params=params, timeout=60)
        r.raise_for_status()
        size = len(r.content)
        samples.append(time.perf_counter() - t)
    return percentiles(samples), size


# --------------------------------------------------------------------------- listing

CATALOGUE_SERVER = r"""
import json, os, sys
sys.path.insert(0, sys.argv[3])
from tornado import ioloop
from hub_config.datasets import service as datasets_service
from hub_config.datasets import DatasetStore
users = json.loads(sys.argv[4])
async def prepare(self):
    name = self.request.headers.get("X-Bench-User", "m10")
    self.current_user = {"name": name, "groups": users[name]}
datasets_service.CatalogueHandler.prepare = prepare
settings = {"mount_root": "/datasets", "preview": {"max_rows": 100, "max_bytes": 1048576}}
app = datasets_service.DatasetsService(store=DatasetStore(sys.argv[1]), settings=settings).make_app()
app.listen(int(sys.argv[2]), "127.0.0.1")
ioloop.IOLoop.current().start()
"""


def build_registry(path: Path, rng: random.Random) -> dict:
    from hub_config.datasets.models import Base
    from hub_config.datasets.store import DatasetStore

    url = f"sqlite:///{path}"
    store = DatasetStore(url)
    Base.metadata.create_all(store.engine)
    now = time.time()
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO dataset (id, name, title, description, steward, source_kind, path, format, schema_json, row_count,"
        " size_bytes, deid_method, deid_date, deid_steward, licence, terms, version, tags_json, quasi_identifiers_json,"
        " status, scan_status, scan_json, created_at, updated_at) VALUES "
        "(?, ?, ?, ?, 'steward', 'local', ?, 'parquet', '[]', 1000, 100000, 'k-anonymised', '2026-11-01', 'steward',"
        " 'internal', 'lab only', '1', ?, '[]', 'published', 'pass', '{}', ?, ?)",
        [(i + 1, f"ds-{i:05d}", f"Dataset {i}", f"Synthetic cohort number {i} for the benchmark", f"/srv/ds/{i}",
          json.dumps(sorted(rng.sample(["icu", "imaging", "labs", "notes", "genomics", "outcomes"], 2))), now, now)
         for i in range(DATASETS)])
    groups = [f"g{i:04d}" for i in range(GROUPS)]
    grants = [(i + 1, "group", rng.choice(groups), "steward", now) for i in range(DATASETS)]
    grants += [(i + 1, "user", "mall", "steward", now) for i in range(DATASETS)]
    conn.executemany("INSERT INTO dataset_grant (dataset_id, kind, principal, granted_by, granted_at) VALUES "
                     "(?, ?, ?, ?, ?)", grants)
    conn.commit()
    conn.close()
    return {"url": url, "users": {"m10": rng.sample(groups, MEMBER_GROUPS), "mall": rng.sample(groups, MEMBER_GROUPS)}}


def bench_listing(work: Path, n: int, contents_n: int) -> dict:
    rng = random.Random(7)
    reg = build_registry(work / "registry.sqlite", rng)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", CATALOGUE_SERVER, reg["url"], str(port), str(REPO),
                             json.dumps(reg["users"])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}
    try:
        base = f"http://127.0.0.1:{port}/services/datasets/api/datasets"
        wait_http(base)
        for user in ("m10", "mall"):
            stats, size = timed_gets(base, n, headers={"X-Bench-User": user})
            count = len(requests.get(base, headers={"X-Bench-User": user}, timeout=60).json()["datasets"])
            results[f"catalogue-{user}"] = {**stats, "entries": count, "bytes": size}
        results.update(bench_pages(base, n))
    finally:
        proc.terminate()
        proc.wait(30)
    # jupyter_server's contents API listing a folder of 10,000 folders
    root = work / "contents"
    (root / "big").mkdir(parents=True)
    for i in range(DATASETS):
        (root / "big" / f"ds-{i:05d}").mkdir()
    port, token = free_port(), "bench-token"
    server = shutil.which("jupyter-server", path=str(Path(sys.executable).parent)) or "jupyter-server"
    proc = subprocess.Popen(
        [server, "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1", f"--ServerApp.root_dir={root}",
         f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
    )
    try:
        headers = {"Authorization": f"token {token}"}
        url = f"http://127.0.0.1:{port}/api/contents/big"
        wait_http(f"http://127.0.0.1:{port}/api/status", headers)
        stats, size = timed_gets(url, contents_n, headers=headers, params={"content": "1"})
        count = len(requests.get(url, headers=headers, params={"content": "1"}, timeout=60).json()["content"])
        results["contents-api"] = {**stats, "entries": count, "bytes": size}
    finally:
        proc.terminate()
        proc.wait(30)
    return results


PAGE = 50  # what the Datasets panel asks per page


def bench_pages(base: str, n: int) -> dict:
    """One page of the list of the member granted all 10,000: the first, one from the middle
    (its cursor), and a search as the panel sends it while the member types."""
    headers = {"X-Bench-User": "mall"}
    middle = requests.get(base, headers=headers, params={"limit": 200}, timeout=60).json()
    for _ in range(24):  # 25 pages of 200 in: the 5,001st dataset on
        middle = requests.get(base, headers=headers, params={"limit": 200, "cursor": middle["next_cursor"]},
                              timeout=60).json()
    cases = {"page-first": {"limit": PAGE}, "page-middle": {"limit": PAGE, "cursor": middle["next_cursor"]},
             "page-search": {"limit": PAGE, "q": "cohort 77"}}
    out = {}
    for key, params in cases.items():
        stats, size = timed_gets(base, n, headers=headers, params=params)
        count = len(requests.get(base, headers=headers, params=params, timeout=60).json()["items"])
        out[key] = {**stats, "entries": count, "bytes": size}
    return out


# --------------------------------------------------------------------------- previews

MEASURE = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
kind, path = sys.argv[1], sys.argv[2]
if kind == "preview":
    from hub_config.datasets import files as datasets_files
else:
    import pandas as pd
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the interpreter and its imports
t = time.perf_counter()
if kind == "preview":
    rows = len(datasets_files.preview(path, 100, 1 << 20)["rows"])
elif kind == "read_csv":
    rows = len(pd.read_csv(path).head(100))
else:
    rows = len(pd.read_parquet(path).head(100))
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": elapsed, "peak_rss": peak, "added_rss": peak - before, "rows": rows}))
"""

def generate(work: Path, target: int) -> dict[str, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(11)
    csv_path, pq_path = work / "big.csv", work / "big.parquet"
    chunk = 500_000

    def table(start):
        return pa.table({
            "row_id": pa.array(np.arange(start, start + chunk)),
            "age_band": pa.array(np.array(["18-29", "30-39", "40-49", "50-59", "60-69", "70+"])[rng.integers(0, 6, chunk)]),
            "sex": pa.array(np.array(["F", "M"])[rng.integers(0, 2, chunk)]),
            "heart_rate": pa.array(rng.normal(85, 12, chunk).round(1)),
            "lactate": pa.array(rng.gamma(2, 0.8, chunk)),
            "sbp": pa.array(rng.integers(80, 190, chunk)),
            "value_a": pa.array(rng.random(chunk)),
            "value_b": pa.array(rng.random(chunk)),
            "code": pc.cast(pa.array(rng.integers(10**8, 10**9, chunk)), pa.string()),
        })

    start = 0
    with pacsv.CSVWriter(str(csv_path), table(0).schema) as writer:
        while not csv_path.exists() or csv_path.stat().st_size < target:
            writer.write_table(table(start))
            start += chunk
    csv_rows = start
    start = 0
    with pq.ParquetWriter(str(pq_path), table(0).schema, compression="snappy") as writer:
        while not pq_path.exists() or pq_path.stat().st_size < target:
            writer.write_table(table(start), row_group_size=chunk)
            start += chunk
    return {"csv": csv_path, "parquet": pq_path, "csv_rows": csv_rows, "parquet_rows": start}


def measure(kind: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, kind, str(path), str(REPO)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def bench_previews(work: Path, target: int, repeats: int) -> dict:
    t = time.monotonic()
    made = generate(work, target)
    gen_seconds = time.monotonic() - t
    results = {"generate_seconds": gen_seconds,
               "csv_bytes": made["csv"].stat().st_size, "parquet_bytes": made["parquet"].stat().st_size,
               "csv_rows": made["csv_rows"], "parquet_rows": made["parquet_rows"]}
    for label, kind, path, n in (("preview CSV (ours)", "preview", made["csv"], repeats),
                                 ("preview Parquet (ours)", "preview", made["parquet"], repeats),
                                 ("pandas.read_csv whole CSV", "read_csv", made["csv"], 1),
                                 ("pandas.read_parquet whole Parquet", "read_parquet", made["parquet"], 1)):
        runs = [measure(kind, path) for _ in range(n)]
        results[label] = {"seconds": statistics.median(r["seconds"] for r in runs),
                          "peak_rss": max(r["peak_rss"] for r in runs), "added_rss": max(r["added_rss"] for r in runs),
                          "rows": runs[0]["rows"], "n": n}
    return results


# --------------------------------------------------------------------------- report


def report(listing: dict, previews: dict, elapsed: float) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    import pyarrow
    import pandas
    import jupyter_server

    lines = [
        "## Datasets: catalogue listing and previews",
        "",
        f"- date: {now}; machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
        f"pyarrow {pyarrow.__version__}, pandas {pandas.__version__}, jupyter_server {jupyter_server.__version__}",
        f"- total {elapsed:.0f} s; load average (1/5/15 min) before {LOAD_BEFORE}, after "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "- reproduce: `.venv/bin/python bench/datasets_bench.py --write`",
        "",
        f"Listing: {DATASETS:,} published datasets, {GROUPS:,} groups (each dataset granted to one group, plus every "
        f"dataset to member `mall`); member `m10` is in {MEMBER_GROUPS} groups. Ours: `GET /services/datasets/api/datasets` "
        "of the catalogue app (grant query, JSON, audit row per call) in its own process; baseline: "
        "`GET /api/contents/big?content=1` of a real jupyter_server on a folder of 10,000 folders. Loopback HTTP, one "
        "client, sequential.",
        "",
        "| listing | entries | response | n | p50 (ms) | p99 (ms) | mean (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"catalogue-m10": "catalogue, member in 10 groups", "catalogue-mall": "catalogue, member granted all",
             "contents-api": "jupyter_server contents API (baseline)",
             "page-first": f"one page ({PAGE}), member granted all: the first",
             "page-middle": f"one page ({PAGE}), member granted all: from the 5,001st (cursor)",
             "page-search": f"one page ({PAGE}), member granted all: search `cohort 77`"}
    for key in ("catalogue-m10", "catalogue-mall", "contents-api", "page-first", "page-middle", "page-search"):
        r = listing[key]
        lines.append(f"| {names[key]} | {r['entries']:,} | {r['bytes'] / 1024:,.0f} KiB | {r['n']} | {r['p50']:.1f} | "
                     f"{r['p99']:.1f} | {r['mean']:.1f} |")
    worst = max(listing[k]["p99"] for k in ("page-first", "page-middle", "page-search"))
    lines += [
        "",
        f"The Datasets panel asks one page at a time (`?limit={PAGE}&cursor=…&q=…`: a keyset page on the name, "
        "the search in the database), so what it waits for does not grow with the member's grants: the slowest "
        f"page's p99 is {worst:.1f} ms against {listing['catalogue-mall']['p99']:.1f} ms for the whole list "
        "(goal: p99 < 50 ms).",
    ]
    lines += [
        "",
        f"Previews: the first 100 rows of a {previews['csv_bytes'] / GiB:.2f} GiB CSV ({previews['csv_rows']:,} rows) "
        f"and a {previews['parquet_bytes'] / GiB:.2f} GiB Parquet file ({previews['parquet_rows']:,} rows, snappy, "
        "500,000-row groups), each run in a fresh process; peak memory is the process's maximum resident set, "
        "the added memory its growth during the read past the imports' high-water mark (pandas for the baselines, "
        "pyarrow alone for ours; 0: the read stayed below it). Files "
        f"generated in /tmp in {previews['generate_seconds']:.0f} s and deleted after.",
        "",
        "| read | rows returned | n | time (s, median) | peak memory (MiB) | added by the read (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label in ("preview CSV (ours)", "preview Parquet (ours)", "pandas.read_csv whole CSV",
                  "pandas.read_parquet whole Parquet"):
        r = previews[label]
        lines.append(f"| {label} | {r['rows']} | {r['n']} | {r['seconds']:.3f} | {r['peak_rss'] / 2**20:,.0f} | "
                     f"{r['added_rss'] / 2**20:,.0f} |")
    csv_ratio = previews["pandas.read_csv whole CSV"]["seconds"] / max(previews["preview CSV (ours)"]["seconds"], 1e-9)
    lines += [
        "",
        f"A preview reads one block of the CSV (1 MiB, pyarrow's streaming reader) or the first pages of the first "
        f"row group of the Parquet file, so its time and memory do not grow with the file: the CSV preview is "
        f"{csv_ratio:,.0f}× faster than reading the file with pandas. Previews are capped at "
        "`datasets.preview.max_rows` rows and `max_bytes` of JSON.",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"replace the section in {DOC.relative_to(REPO)}")
    parser.add_argument("--quick", action="store_true", help="64 MiB files and fewer requests (a smoke run)")
    args = parser.parse_args(argv)
    global LOAD_BEFORE
    LOAD_BEFORE = " ".join(f"{x:.2f}" for x in os.getloadavg())
    t = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="aistudio-datasets-bench-", dir="/tmp"))
    try:
        listing = bench_listing(work, 20 if args.quick else 200, 3 if args.quick else 10)
        print(json.dumps(listing, indent=1), flush=True)
        previews = bench_previews(work, (64 << 20) if args.quick else GiB, 1 if args.quick else 3)
        print(json.dumps(previews, indent=1), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(listing, previews, time.monotonic() - t)
    print(text)
    if args.write:
        print(f"wrote {write_section('datasets-bench', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
