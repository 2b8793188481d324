"""Shared output of the benchmark scripts: print the Markdown table and write it to `--out` when given."""

from __future__ import annotations

from pathlib import Path


def emit_table(lines: list[str], out: Path | None) -> None:
    table = "\n".join(lines) + "\n"
    print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table)
