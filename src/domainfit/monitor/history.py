"""One monitoring run's result, and its line of the history (``history.jsonl``) that the report plots over time.

`MonitorRun` is what ``domainfit monitor`` returns and writes as
``result.json``: the verdict (`domainfit.monitor.results.Verdict` as a dict),
which version was watched, the windows compared, the canary set and its
baseline, and notes. `MonitorRun.history_record` is its compact line of the
time series: per run, the status, each statistic's value against its
threshold and each canary metric against its floor.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Version of the result's and the history lines' format.
MONITOR_FORMAT = 1


@dataclass
class MonitorRun:
    """The result of one ``domainfit monitor`` run (see the module's docstring).

    ``exit_code`` is 0 when healthy and 1 on an alert; ``baseline_recorded``
    is True when this run recorded the canary baseline (there was none);
    ``notes`` say what was skipped or assumed.
    """

    time: str
    status: str
    exit_code: int
    version: str
    model: str
    tag: str
    verdict: dict[str, Any]
    windows: dict[str, Any]
    canary: dict[str, Any] | None
    baseline_recorded: bool = False
    notes: list[str] = field(default_factory=list)
    output_dir: str = ""
    format: int = MONITOR_FORMAT
    up_to_date: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the run as JSON-ready values (``result.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitorRun:
        """Read a run back (ValueError for another format, KeyError / TypeError when malformed)."""
        if data.get("format") != MONITOR_FORMAT:
            raise ValueError(f"monitor result format {data.get('format')!r}, expected {MONITOR_FORMAT}")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def history_record(self) -> dict[str, Any]:
        """Return this run's line of ``history.jsonl``: status, statistics and canary metrics, compactly."""
        statistics = {
            d["name"]: {"value": d["value"], "threshold": d["threshold"], "alert": d["alert"]}
            for d in self.verdict.get("decisions", [])
        }
        canary = self.verdict.get("canary") or {}
        metrics = {
            m["metric"]: {"value": m["value"], "floor": m["floor"], "baseline": m["baseline"], "alert": m["alert"]}
            for m in canary.get("metrics", [])
        }
        return {
            "format": MONITOR_FORMAT,
            "time": self.time,
            "status": self.status,
            "version": self.version,
            "tag": self.tag,
            "n_reference": self.windows.get("n_reference", 0),
            "n_current": self.windows.get("n_current", 0),
            "statistics": statistics,
            "canary": metrics,
            "reasons": list(self.verdict.get("reasons", [])),
        }


def read_history(path: Path | str) -> list[dict[str, Any]]:
    """Return the history's records in order (an absent file: none; a line that does not parse is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("format") == MONITOR_FORMAT:
            found.append(record)
    return found
