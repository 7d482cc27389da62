"""Line-numbered, validating readers and atomic writers for JSONL files.

Every problem raises `InputError` naming the file, the 1-based line and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from domainfit.core.errors import InputError
from domainfit.data.checks import SURROGATE_ESCAPE, surrogate_problem

BOM = b"\xef\xbb\xbf"
#: Largest accepted line (one record) in bytes; a larger document should be split.
MAX_LINE_BYTES = 8 * 1024 * 1024


def iter_lines(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for every line of a UTF-8 text file.

    A byte-order mark at the very start and CRLF line endings are accepted;
    invalid UTF-8, a byte-order mark inside the file (files concatenated) and
    a line over ``max_line_bytes`` raise `InputError`. Blank lines are skipped.
    """
    if not path.is_file():
        raise InputError(path, 0, "-", "file not found")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            if len(raw) > max_line_bytes:
                size = len(raw) / (1024 * 1024)
                limit = max_line_bytes / (1024 * 1024)
                raise InputError(
                    path,
                    number,
                    "-",
                    f"record is {size:.1f} MiB, over the {limit:.0f} MiB limit per line; "
                    "split the document into smaller ones",
                )
            if raw.startswith(BOM):
                raise InputError(path, number, "-", "byte-order mark inside the file (were files concatenated?)")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(path, number, "-", f"invalid UTF-8 at byte {exc.start} of the line") from None
            text = text.rstrip("\r\n")
            if text.strip():
                yield number, text


def iter_jsonl(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, dict[str, Any]]]:
    r"""Yield ``(line_number, object)`` for every JSON object line of ``path``.

    Raises `InputError` for a line that is not a JSON object, and for a string
    (value or key, at any depth) holding a lone surrogate: ``"\ud800"`` is
    valid JSON but no UTF-8 writer can write it back. The field named is the
    dotted path of the value (``title``, ``metadata.tags.0``).
    """
    for number, text in iter_lines(path, max_line_bytes):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, number, "-", f"invalid JSON ({exc.msg} at column {exc.colno})") from None
        except ValueError as exc:  # an integer of thousands of digits
            raise InputError(path, number, "-", f"invalid JSON ({str(exc).split(':')[0]})") from None
        except RecursionError:
            raise InputError(path, number, "-", "invalid JSON (nested too deeply)") from None
        if not isinstance(record, dict):
            raise InputError(path, number, "-", f"expected a JSON object, got {type(record).__name__}")
        if SURROGATE_ESCAPE.search(text):  # only a \ud800-style escape can produce a lone surrogate
            problem = surrogate_problem(record)
            if problem is not None:
                raise InputError(path, number, *problem)
        yield number, record


def require_str(
    record: dict[str, Any],
    key: str,
    path: Path,
    line: int,
    *,
    required: bool = True,
    allow_empty: bool = False,
) -> str:
    """Return ``record[key]`` as a string, raising `InputError` when it is missing or not a string."""
    if key not in record or record[key] is None:
        if required:
            raise InputError(path, line, key, "missing")
        return ""
    value = record[key]
    if not isinstance(value, str):
        raise InputError(path, line, key, f"must be a string, got {type(value).__name__} {value!r:.40}")
    if not allow_empty and not value.strip():
        raise InputError(path, line, key, "is empty")
    return value


def dumps_line(record: dict[str, Any]) -> str:
    """Serialise one record as a compact JSON line (UTF-8, no ASCII escaping)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
