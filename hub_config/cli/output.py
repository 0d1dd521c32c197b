"""What the commands print: one table layout, times and sizes as people read them."""

from __future__ import annotations

from datetime import datetime, timezone


def print_table(rows, *, right=(), file=None) -> None:
    """Rows of cells (the first: headings), indented by two spaces, columns two apart.
    Columns in ``right`` are right-aligned; the last column is not padded otherwise."""
    rows = [[str(cell) for cell in row] for row in rows]
    right = set(right)
    last = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(last + 1)]
    for row in rows:
        cells = [v.rjust(widths[i]) if i in right else v if i == last else v.ljust(widths[i]) for i, v in enumerate(row)]
        print("  " + "  ".join(cells), file=file)


def iso(ts: float | None) -> str:
    """An epoch time as ``2026-12-01 14:00 UTC`` (``-`` for none)."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ts else "-"


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""
