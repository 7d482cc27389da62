"""Matplotlib figures for the report, returned as base64 PNG data URIs (so the HTML stands alone)."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _data_uri(fig: Any) -> str:
    """Encode a figure as a PNG data URI and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def systems_bar(systems: list[dict[str, Any]], metric: str, title: str) -> str:
    """Horizontal bars of ``metric`` per system."""
    names = [s["name"] for s in systems]
    values = [s["metrics"][metric] for s in systems]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1))
    ax.barh(names, values, color="#4878d0")
    ax.invert_yaxis()
    ax.set_xlabel(metric)
    ax.set_title(title)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.3f}", va="center", fontsize=8)
    ax.set_xlim(0, max([*values, 0.01]) * 1.15)
    return _data_uri(fig)


def slice_bars(
    rows: dict[str, list[dict[str, Any]]], systems: list[str], metric: str, max_values: int = 12, min_queries: int = 5
) -> str:
    """Draw grouped bars: one group per slice value (slices with few values), one bar per system."""
    first = rows[systems[0]]
    counts: dict[str, int] = {}
    for row in first:
        counts[row["slice"]] = counts.get(row["slice"], 0) + 1
    keep = [
        i
        for i, row in enumerate(first)
        if counts[row["slice"]] <= max_values and (row["slice"] == "all" or row["n_queries"] >= min_queries)
    ]
    labels = ["all" if first[i]["slice"] == "all" else f"{first[i]['slice']}={first[i]['value']}" for i in keep]
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(min(12.0, max(7.0, 0.2 * len(keep) * len(systems))), 4))
    for j, name in enumerate(systems):
        values = [rows[name][i]["scores"].get(metric) or 0.0 for i in keep]
        ax.bar([x + j * width for x in range(len(keep))], values, width, label=name)
    ax.set_xticks([x + width * (len(systems) - 1) / 2 for x in range(len(keep))])
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # beside the bars
    ax.set_title(f"{metric} per slice")
    return _data_uri(fig)


def training_curves(history: dict[str, list[dict[str, float]]]) -> str:
    """Training loss and dev NDCG@10 by step on twin axes."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    loss = history.get("train_loss", [])
    ax.plot([p["step"] for p in loss], [p["loss"] for p in loss], color="#d65f5f", label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    dev = history.get("dev_ndcg@10", [])
    if dev:
        twin = ax.twinx()
        twin.plot([p["step"] for p in dev], [p["ndcg@10"] for p in dev], "o-", color="#4878d0", label="dev NDCG@10")
        twin.set_ylabel("dev NDCG@10")
    ax.set_title("training")
    fig.legend(loc="upper left", bbox_to_anchor=(1.0, 0.9), fontsize=8)  # right of the axes, clear of the title
    return _data_uri(fig)
