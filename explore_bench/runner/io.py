"""Atomic file writes and the progress.csv format of a run folder.

Every file of a run folder is written to a temp file in the same folder and moved into place with
``os.replace``, so a reader (or a resumed run) sees either the old or the new content, never half of it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from explore_bench.atomic import atomic_write_bytes

#: Columns of progress.csv (the format ``explore_bench.leaderboard.aggregate.read_progress`` consumes). New columns
#: go last (``tv_fraction`` came after ``fps``): a file of an older runner lacks them, and its rows read as NaN there.
PROGRESS_COLUMNS = (
    "frames", "episode_return", "success", "coverage", "intrinsic_mean", "intrinsic_std", "fps", "tv_fraction",
    "cells_visited",
)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None (strict JSON) and tuples by lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return json_safe(value.item())
    return value


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(json_safe(obj), indent=2, sort_keys=False, allow_nan=False, default=str)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> dict | None:
    """The JSON object in ``path``, or None if the file is absent."""
    path = Path(path)
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return repr(value)
    return str(value)


def write_table(path: str | os.PathLike, columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """(Re)write the CSV file ``path`` atomically: a header of ``columns``, then ``rows`` (None, NaN and missing
    values become empty cells; keys outside ``columns`` are left out)."""
    columns = tuple(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return atomic_write_text(path, buf.getvalue())


def read_rows_until(path: str | os.PathLike, max_frames: float) -> list[dict[str, str]]:
    """The rows of the CSV file ``path`` (as strings) whose ``frames`` is at most ``max_frames``; [] if the file is
    absent. A resumed run keeps the rows its checkpoint covers."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if int(row["frames"]) <= max_frames]


def write_progress(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """(Re)write progress.csv with ``rows`` (NaN / missing values become empty cells)."""
    return write_table(path, PROGRESS_COLUMNS, rows)


def read_progress_rows(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a progress.csv as dicts of floats (empty cells and columns the file lacks, e.g. ``tv_fraction``
    in a file of an older runner, are NaN); [] if the file is absent."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for raw in csv.DictReader(f):
            row = {}
            for c in PROGRESS_COLUMNS:
                v = raw.get(c)
                row[c] = float(v) if v not in (None, "") else float("nan")
            if math.isfinite(row["frames"]):
                row["frames"] = int(row["frames"])
                rows.append(row)
    return rows
