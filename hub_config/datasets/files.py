"""Reading a dataset's files on the hub, never more than asked: which files it has,
their schema and size, and the first rows (bounded in rows and bytes) through
pyarrow's streaming readers. Paths from members are checked against the files the
steward's scan recorded, after resolving symlinks, so nothing outside the dataset's
folder is ever opened."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import os
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
CELL_CHARS = 1000  # longer text cells are cut in previews


class FileRefused(Exception):
    """A path that is not one of the dataset's files (or that escapes it)."""


def file_format(path: str | os.PathLike) -> str | None:
    return SUFFIXES.get(Path(path).suffix.lower())


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def data_files(root: str, max_files: int = 1000) -> list[str]:
    """Relative paths of the CSV and Parquet files under ``root`` (symlinks leaving it are skipped)."""
    real_root = os.path.realpath(root)
    if not os.path.isdir(real_root):
        raise FileNotFoundError(f"{root} is not a folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(real_root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or file_format(name) is None:
                continue
            full = os.path.join(dirpath, name)
            if not _inside(real_root, os.path.realpath(full)) or not os.path.isfile(full):
                continue
            found.append(os.path.relpath(full, real_root))
            if len(found) >= max_files:
                return found
    return found


def resolve(root: str, rel: str, allowed: set[str] | None = None) -> str:
    """The real path of dataset file ``rel`` under ``root``, or FileRefused.

    Refused: absolute paths, '..', NUL, backslashes, anything not in ``allowed``
    (the files the scan recorded), and whatever resolves outside ``root``.
    """
    if not isinstance(rel, str) or not rel or len(rel) > 1024 or "\x00" in rel or "\\" in rel:
        raise FileRefused("not a file of this dataset")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or any(part in ("..", "") for part in rel.split("/")) or str(pure) != rel:
        raise FileRefused("not a file of this dataset")
    if allowed is not None and rel not in allowed:
        raise FileRefused("not a file of this dataset")
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, rel))
    if not _inside(real_root, real) or real == real_root or not os.path.isfile(real) or file_format(real) is None:
        raise FileRefused("not a file of this dataset")
    return real


# --------------------------------------------------------------------------- bounded reads


def csv_batches(path: str, *, block_size: int = 1 << 20, columns: list[str] | None = None,
                as_strings: list[str] | None = None):
    """Record batches of a CSV file, one block (about ``block_size`` bytes) at a time."""
    convert = pacsv.ConvertOptions(
        include_columns=columns or [],
        column_types={c: pa.string() for c in (as_strings or [])},
        strings_can_be_null=True,
    )
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=block_size, use_threads=False),
                            convert_options=convert)
    try:
        for batch in reader:
            yield batch
    finally:
        reader.close()


def parquet_batches(path: str, *, batch_size: int = 1024, columns: list[str] | None = None):
    """Record batches of a Parquet file, read page by page (buffered stream, no pre-buffering)."""
    pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    try:
        yield from pf.iter_batches(batch_size=batch_size, columns=columns, use_threads=False)
    finally:
        pf.close()


def head(path: str, rows: int, *, max_read_bytes: int = 4 << 20, columns: list[str] | None = None) -> pa.Table:
    """The first ``rows`` rows of a CSV or Parquet file, reading little more than needed."""
    fmt = file_format(path)
    if fmt == "parquet":
        batches = parquet_batches(path, batch_size=max(1, min(rows, 65536)), columns=columns)
    else:
        batches = csv_batches(path, block_size=max(64 << 10, min(max_read_bytes, 1 << 20)), columns=columns)
    taken, got = [], 0
    read = 0
    for batch in batches:
        taken.append(batch.slice(0, rows - got))
        got += taken[-1].num_rows
        read += batch.nbytes
        if got >= rows or read >= max_read_bytes:
            break
    batches.close()
    if not taken:
        return pa.table({})
    return pa.Table.from_batches(taken)


def _cell(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value[:CELL_CHARS] if isinstance(value, str) else value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, datetime.timedelta)):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value[:CELL_CHARS]).decode()
    return str(value)[:CELL_CHARS]


def preview(path: str, rows: int, max_bytes: int) -> dict:
    """Columns and the first ``rows`` rows as JSON values, cut to ``max_bytes`` of JSON."""
    table = head(path, rows, max_read_bytes=max(4 * max_bytes, 1 << 20))
    columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    out_rows, size, truncated = [], 2, False
    names = table.column_names
    for record in table.to_pylist():
        row = [_cell(record[n]) for n in names]
        size += len(json.dumps(row, ensure_ascii=False).encode()) + 1
        if size > max_bytes:
            truncated = True
            break
        out_rows.append(row)
    return {"columns": columns, "rows": out_rows, "truncated": truncated or len(out_rows) < table.num_rows}


# --------------------------------------------------------------------------- facts for the registry


def file_facts(path: str, rel: str) -> dict:
    """Format, size, columns and types, and row count of one file (Parquet: from its footer;
    CSV: one streaming pass that keeps no data)."""
    fmt = file_format(path)
    size = os.path.getsize(path)
    if fmt == "parquet":
        pf = pq.ParquetFile(path)
        schema, rows = pf.schema_arrow, pf.metadata.num_rows
        pf.close()
    else:
        batches = csv_batches(path, block_size=1 << 20)
        first = next(batches, None)
        schema = first.schema if first is not None else pa.schema([])
        rows = first.num_rows if first is not None else 0
        batches.close()
        if first is not None and first.num_columns:
            # count the rest reading one column only, as text (no type surprises further down)
            col = first.schema.names[0]
            rows = sum(b.num_rows for b in csv_batches(path, block_size=4 << 20, columns=[col], as_strings=[col]))
    return {"path": rel, "format": fmt, "size_bytes": size, "rows": rows,
            "columns": [{"name": f.name, "type": str(f.type)} for f in schema]}


def dataset_facts(root: str, max_files: int = 1000) -> dict:
    files = [file_facts(resolve(root, rel), rel) for rel in data_files(root, max_files)]
    formats = sorted({f["format"] for f in files})
    return {
        "files": files,
        "rows": sum(f["rows"] for f in files),
        "size_bytes": sum(f["size_bytes"] for f in files),
        "format": "+".join(formats) if formats else "",
    }


# --------------------------------------------------------------------------- load snippets


def snippet(mount_root: str, name: str, rel: str, fmt: str) -> dict:
    """Code that loads a file of a mounted dataset, for pandas and pyarrow."""
    path = f"{mount_root.rstrip('/')}/{name}/{rel}"
    folder = f"{mount_root.rstrip('/')}/{name}"
    if fmt == "parquet":
        return {
            "path": path,
            "pandas": f"import pandas as pd\n\ndf = pd.read_parquet({path!r})\ndf.head()",
            "pyarrow": f"import pyarrow.parquet as pq\n\ntable = pq.read_table({path!r})\n"
                       f"# a whole folder of Parquet files:\n# import pyarrow.dataset as ds; ds.dataset({folder!r})",
        }
    return {
        "path": path,
        "pandas": f"import pandas as pd\n\ndf = pd.read_csv({path!r})\ndf.head()\n"
                  f"# large files: pd.read_csv({path!r}, chunksize=100_000)",
        "pyarrow": f"import pyarrow.csv as pacsv\n\ntable = pacsv.read_csv({path!r})\n"
                   f"# streaming: pacsv.open_csv({path!r})",
    }
