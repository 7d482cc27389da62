"""The canary baseline recorded at promotion: ``canary-baseline.json`` beside the production pointer.

One file holds a baseline per canary set (keyed by the set's fingerprint: its
query texts and qrels), so the benchmark's canaries and a user's list each
keep their own. ``domainfit migrate promote`` records the new version's
baseline when it moves production; ``domainfit monitor`` records one when
there is none for its canary set and says so. Each write replaces the file
atomically. Format::

    {"format": 1,
     "baselines": {"<sha256 of the canary set>": {
         "metrics": {"recall@10": 0.95, "mrr@10": 0.81}, "k": 10, "n_queries": 20,
         "version": "base", "model": "...", "tag": "prod", "table_version": 4,
         "created": "2026-12-01T20:00:00Z", "recorded_by": "promote"}}}
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from domainfit.core.files import atomic_write_json
from domainfit.core.types import Qrels

#: The baseline file's name in the index folder (beside ``serving.json``).
BASELINE = "canary-baseline.json"
#: Version of the file's format.
BASELINE_FORMAT = 1


def canary_fingerprint(queries: Mapping[str, str], qrels: Qrels) -> str:
    """Return the SHA-256 of a canary set: each query's text and graded relevant documents (sorted)."""
    payload = {qid: [queries.get(qid, ""), dict(sorted(qrels.get(qid, {}).items()))] for qid in sorted(qrels)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CanaryBaseline:
    """The canary metrics of one canary set on the version production served when they were recorded."""

    metrics: dict[str, float]
    k: int
    n_queries: int
    version: str = ""
    model: str = ""
    tag: str = ""
    table_version: int | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    recorded_by: str = "monitor"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form of one baseline."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CanaryBaseline:
        """Build a baseline from its JSON form (KeyError / TypeError / ValueError when malformed)."""
        known = set(cls.__dataclass_fields__)
        found = cls(**{k: v for k, v in data.items() if k in known})
        if not isinstance(found.metrics, dict) or not all(isinstance(v, int | float) for v in found.metrics.values()):
            raise ValueError("metrics must map metric names to numbers")
        return found


def _read_all(folder: Path) -> dict[str, dict[str, Any]]:
    """Return every recorded baseline by fingerprint (empty when the file is absent); ValueError when damaged."""
    path = folder / BASELINE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    baselines = data.get("baselines") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT or not isinstance(baselines, dict):
        raise ValueError(f"{path}: not a canary baseline of format {BASELINE_FORMAT}")
    return dict(baselines)


def read_baseline(folder: Path | str, fingerprint: str) -> CanaryBaseline | None:
    """Return the baseline of the canary set with this fingerprint, or None when none was recorded.

    Raises `ValueError` when the file is damaged or of another format.
    """
    entry = _read_all(Path(folder)).get(fingerprint)
    if entry is None:
        return None
    try:
        return CanaryBaseline.from_json(entry)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{Path(folder) / BASELINE}: a damaged baseline ({exc})") from None


def forget_baseline(folder: Path | str, fingerprint: str) -> None:
    """Remove the baseline of one canary set (nothing when none was recorded); the file is replaced atomically."""
    folder = Path(folder)
    entries = _read_all(folder)
    if entries.pop(fingerprint, None) is not None:
        atomic_write_json(folder / BASELINE, {"format": BASELINE_FORMAT, "baselines": entries})


def write_baseline(folder: Path | str, fingerprint: str, baseline: CanaryBaseline) -> Path:
    """Record (or replace) the baseline of one canary set, keeping the others; the file is replaced atomically."""
    folder = Path(folder)
    entries = _read_all(folder)
    entries[fingerprint] = baseline.to_json()
    path = folder / BASELINE
    atomic_write_json(path, {"format": BASELINE_FORMAT, "baselines": entries})
    return path
