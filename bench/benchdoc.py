"""Writes a benchmark's figures into its own section of docs/benchmarks.md."""

from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\nBenchmarks of AI Studio, each a script under `bench/` run from the repository root "
    "with the project's venv; `--write` replaces its section below with fresh figures.\n"
)


def write_section(name: str, text: str) -> Path:
    """Replace the section between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` (append it if new)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text}\n{end}"
    doc = DOC.read_text() if DOC.exists() else HEADER
    if start in doc and end in doc:
        doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(doc)
    return DOC
