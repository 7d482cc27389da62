"""One row of the levels table: what a level of effort gave (eval) and what it cost (train, encoding, re-index).

A row joins the train record of the level (``train/result.json``: level, train
time, details), eval's measurements (dense NDCG@10 base and fine-tuned, lift,
paired p-value, forgetting) and two measured here: the encoding speed of the
model that embeds documents, and the size of what the level adds. Re-indexing
cost is every document at that speed, except for the levels that leave stored
vectors alone (the query-side adapter; prompts whose document prompt is empty).

Rows are kept across runs in ``eval/level-<level>.json`` (with the data's
fingerprint), so the report's table shows every level that ran on the same data.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

LEVEL_FILE = "level-{}.json"
ORDER = ("prompts", "adapter", "static", "top-layers", "full")


def folder_bytes(path: str | Path) -> int:
    """Bytes of the weights and configs in a model (or adapter) folder, checkpoints and cards left out."""
    root = Path(path)
    if not root.is_dir():
        return 0
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.name != "README.md")


def documents_per_second(model: Any, texts: list[str], batch_size: int = 32) -> float:
    """Documents per second ``model`` encodes ``texts`` at (after a two-text warm-up; no cache)."""
    sample = texts or ["probe"]
    model.encode(sample[:2], batch_size=batch_size, show_progress_bar=False)
    start = time.perf_counter()
    model.encode(sample, batch_size=batch_size, show_progress_bar=False)
    return len(sample) / max(time.perf_counter() - start, 1e-9)


def re_embeds_documents(level: str, train: dict[str, Any] | None) -> bool:
    """Return whether deploying the level means re-embedding the stored documents."""
    if level == "adapter":
        return False
    if level == "prompts":
        prompts = ((train or {}).get("level_details") or {}).get("prompts") or {}
        return bool(prompts.get("document_prompt"))
    return True


def level_row(
    metrics: dict[str, Any],
    train: dict[str, Any] | None,
    *,
    speed: dict[str, float],
    model_bytes: int,
    base_bytes: int,
    data_sha256: str | None,
    metric: str = "ndcg@10",
) -> dict[str, Any]:
    """Build the row of the level that produced eval's fine-tuned model.

    Inputs: eval's ``metrics.json`` form, the train ``result.json`` (None when the
    model did not come from this workspace's train: level "given"), the measured
    speed (``{"base": docs/s, "level": docs/s}``), the bytes of the level's
    folder and of the base model, the data fingerprint, the metric.
    """
    level = str((train or {}).get("level", "full")) if train is not None else "given"
    by_name = {s["name"]: s["metrics"] for s in metrics["systems"]}
    base, tuned = by_name.get("dense:base", {}).get(metric), by_name.get("dense:fine-tuned", {}).get(metric)
    comparison: dict[str, Any] = next(
        (c for c in metrics.get("significance", {}).get("dense", {}).get("comparisons", []) if c["metric"] == metric),
        {},
    )
    forgetting = metrics.get("forgetting", {})
    n_docs = int(metrics.get("n_documents", 0))
    reembed = re_embeds_documents(level, train)
    level_speed = speed["level"] if reembed else speed["base"]
    return {
        "level": level,
        "data_sha256": data_sha256,
        "model": metrics.get("model"),
        "metric": metric,
        "base": base,
        "score": tuned,
        "lift": (tuned - base) if base is not None and tuned is not None else None,
        "p_value": comparison.get("p_value"),
        "n_queries": metrics.get("n_queries"),
        "train_seconds": (train or {}).get("seconds"),
        "train_steps": (train or {}).get("steps"),
        "documents_per_second": round(level_speed, 1),
        "base_documents_per_second": round(speed["base"], 1),
        "speedup": round(level_speed / speed["base"], 2) if speed["base"] else None,
        "model_bytes": model_bytes,
        "base_model_bytes": base_bytes,
        "documents_reembedded": n_docs if reembed else 0,
        "reindex_seconds": round(n_docs / level_speed, 1) if reembed and level_speed else 0.0,
        "forgetting_drop": (forgetting.get("labelled") or {}).get("drop"),
        "neighbour_overlap": (forgetting.get("neighbour_overlap") or {}).get("mean"),
        "details": (train or {}).get("level_details"),
    }


def read_rows(folder: Path, data_sha256: str | None) -> list[dict[str, Any]]:
    """Read the kept level rows of ``folder`` measured on the same data, in level order (damaged files skipped)."""
    rows = []
    for path in sorted(folder.glob(LEVEL_FILE.format("*"))):
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(row, dict) and row.get("data_sha256") == data_sha256:
            rows.append(row)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(rows, key=lambda r: rank.get(str(r.get("level")), len(ORDER)))
