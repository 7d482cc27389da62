"""Read training pairs: JSONL or CSV files, and Hugging Face datasets.

A pair is (query, positive[, negative][, score]). Column names accepted:
``query``/``anchor``, ``positive``/``pos``, ``negative``/``neg``, ``score``/``label``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domainfit.core.errors import InputError
from domainfit.data.checks import surrogate_problem
from domainfit.data.jsonl import iter_jsonl, iter_lines, require_str
from domainfit.text.config import DEFAULT_TEXT, TextConfig

ALIASES: dict[str, tuple[str, ...]] = {
    "query": ("query", "anchor"),
    "positive": ("positive", "pos"),
    "negative": ("negative", "neg"),
    "score": ("score", "label"),
}


@dataclass
class Pair:
    """One training example: a query, a positive text, an optional negative and an optional score."""

    query: str
    positive: str
    negative: str | None = None
    score: float | None = None


def _pick(record: dict[str, Any], name: str) -> str | None:
    """Return which alias of column ``name`` the record uses, if any."""
    return next((alias for alias in ALIASES[name] if alias in record), None)


def _score(value: Any, path: Path, line: int, key: str) -> float:
    """Parse a score cell as a float, raising `InputError` when it is not a number."""
    if isinstance(value, bool):
        raise InputError(path, line, key, "must be a number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(path, line, key, f"must be a number, got {value!r:.30}") from None
    if not math.isfinite(number):
        raise InputError(path, line, key, f"must be a finite number, got {value!r:.30}")
    return number


def _pair_from_record(record: dict[str, Any], path: Path, line: int, text: TextConfig) -> Pair:
    """Validate one record (JSON object or CSV row) into a `Pair`; texts are prepared under ``text``."""
    keys = {name: _pick(record, name) for name in ALIASES}
    for name in ("query", "positive"):
        if keys[name] is None:
            raise InputError(path, line, name, f"missing (accepted names: {', '.join(ALIASES[name])})")
    problem = surrogate_problem({key: record[key] for key in keys.values() if key is not None})
    if problem is not None:  # rows that did not come through `iter_jsonl` (which checks whole records)
        raise InputError(path, line, *problem)
    query = text.prepare(require_str(record, keys["query"] or "query", path, line))
    positive = text.prepare(require_str(record, keys["positive"] or "positive", path, line))
    negative = None
    if keys["negative"] is not None and record[keys["negative"]] not in (None, ""):
        negative = text.prepare(require_str(record, keys["negative"], path, line))
    score = None
    if keys["score"] is not None and record[keys["score"]] not in (None, ""):
        score = _score(record[keys["score"]], path, line, keys["score"])
    return Pair(query=query, positive=positive, negative=negative, score=score)


def read_pairs_jsonl(path: Path, text: TextConfig = DEFAULT_TEXT) -> list[Pair]:
    """Read a JSONL pair file; each line is an object with query/positive[/negative][/score]."""
    pairs = [_pair_from_record(record, path, line, text) for line, record in iter_jsonl(path)]
    if not pairs:
        raise InputError(path, 0, "-", "no pairs in the file")
    return pairs


def read_pairs_csv(path: Path, delimiter: str | None = None, settings: TextConfig = DEFAULT_TEXT) -> list[Pair]:
    """Read a CSV/TSV pair file with a header row naming the columns.

    Quoted cells may span lines; errors name the line where the record starts.
    """
    lines = list(iter_lines(path))  # validates UTF-8, BOM and line sizes; skips blank lines
    if not lines:
        raise InputError(path, 0, "-", "empty file")
    delim = delimiter or ("\t" if path.suffix == ".tsv" else ",")
    text = "\n".join(line for _, line in lines)
    numbers = [number for number, _ in lines]
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    known = {alias for names in ALIASES.values() for alias in names}
    header: list[str] | None = None
    pairs = []
    start = 1
    try:
        for cells in reader:
            line = numbers[start - 1]
            start = reader.line_num + 1
            if header is None:
                header = [h.strip() for h in cells]
                if not known.intersection(header):
                    raise InputError(path, line, "-", f"missing header row naming the columns ({', '.join(known)})")
                continue
            if len(cells) != len(header):
                raise InputError(path, line, "-", f"expected {len(header)} columns, got {len(cells)}")
            pairs.append(_pair_from_record(dict(zip(header, cells, strict=True)), path, line, settings))
    except csv.Error as exc:
        raise InputError(path, numbers[min(start, len(numbers)) - 1], "-", f"malformed CSV ({exc})") from None
    if not pairs:
        raise InputError(path, 0, "-", "no pairs in the file")
    return pairs


def read_pairs(path: Path | str, text: TextConfig = DEFAULT_TEXT) -> list[Pair]:
    """Read pairs from a ``.jsonl``, ``.csv`` or ``.tsv`` file, or a saved Hugging Face dataset folder.

    Texts are prepared under the ``[text]`` settings ``text``.
    """
    source = Path(path).expanduser().resolve()
    if not source.exists():
        raise InputError(source, 0, "-", "not found")
    if source.is_dir():
        markers = ("dataset_info.json", "state.json", "dataset_dict.json")
        if not any((source / marker).is_file() for marker in markers):
            raise InputError(
                source, 0, "-", "not a BEIR folder (no corpus.jsonl) and not a dataset saved with save_to_disk"
            )
        return pairs_from_hf(source, text=text)
    if source.suffix in (".jsonl", ".json"):
        return read_pairs_jsonl(source, text)
    if source.suffix in (".csv", ".tsv"):
        return read_pairs_csv(source, settings=text)
    raise InputError(source, 0, "-", "unknown pair file type (use .jsonl, .csv, .tsv or a dataset folder)")


def pairs_from_records(records: Iterable[dict[str, Any]], source: str, text: TextConfig = DEFAULT_TEXT) -> list[Pair]:
    """Validate an iterable of row dicts (e.g. a Hugging Face dataset) into pairs; rows are numbered from 1."""
    pairs = [_pair_from_record(dict(row), Path(source), n, text) for n, row in enumerate(records, start=1)]
    if not pairs:
        raise InputError(source, 0, "-", "no rows")
    return pairs


def pairs_from_hf(path_or_name: Path | str, split: str = "train", text: TextConfig = DEFAULT_TEXT) -> list[Pair]:
    """Load pairs from a Hugging Face dataset saved with ``save_to_disk`` (or a cached hub name)."""
    import datasets

    path = Path(path_or_name)
    if path.is_dir():
        loaded = datasets.load_from_disk(str(path))
    else:
        loaded = datasets.load_dataset(str(path_or_name), split=split)
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise InputError(path, 0, "-", f"split {split!r} not in dataset (has: {', '.join(loaded)})")
        loaded = loaded[split]
    return pairs_from_records(loaded, str(path_or_name), text)
