"""The migration log: one JSON line per step that did something, appended, never rewritten.

Each line records what was done, when, and with which numbers::

    {"format_version": 1, "time": "2026-12-01T21:04:11Z", "step": "compare",
     "from_version": "base_1a2b3c4d", "to_version": "model_5e6f7a8b",
     "summary": "go: ndcg@10 +0.0412 ...", "numbers": {...}}

A line is written with one ``write`` of its bytes on a file opened for
appending and flushed to disk before the step returns, so a reader sees whole
lines; a line a crash cut short (no newline at the end) is skipped on reading,
and cut off before the next line is appended (`drop_torn_tail`), so a torn
line never swallows the next entry: the step it belonged to had not finished
(its folder is swapped in after the line is written) and runs again.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Version of a log line.
LOG_FORMAT = 1


def append_entry(
    path: Path,
    step: str,
    *,
    from_version: str | None,
    to_version: str | None,
    summary: str,
    numbers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one line to the log at ``path`` (created with its folder when missing); return the entry."""
    entry = {
        "format_version": LOG_FORMAT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "step": step,
        "from_version": from_version,
        "to_version": to_version,
        "summary": summary,
        "numbers": _finite(dict(numbers or {})),
    }
    line = json.dumps(entry, ensure_ascii=False, sort_keys=True, allow_nan=False, default=str) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    drop_torn_tail(path)
    with path.open("ab") as handle:
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def drop_torn_tail(path: Path) -> int:
    """Cut a last line that has no newline (a write a crash cut short) off the log; return the bytes removed.

    Whole lines are never touched; a missing or empty log, or one ending in a
    newline, is left as it is.
    """
    try:
        handle = path.open("rb+")
    except FileNotFoundError:
        return 0
    with handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        keep, end = 0, size
        while end > 0:
            start = max(0, end - (1 << 16))
            handle.seek(start)
            found = handle.read(end - start).rfind(b"\n")
            if found >= 0:
                keep = start + found + 1
                break
            end = start
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
        return size - keep


def _finite(value: Any) -> Any:
    """Return ``value`` with every NaN or infinite float replaced by None (the log is strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def read_log(path: Path) -> list[dict[str, Any]]:
    """Return the log's entries in order ([] when there is no log); lines that are not whole JSON are skipped."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.endswith("\n"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("format_version") == LOG_FORMAT:
            entries.append(entry)
    return entries
