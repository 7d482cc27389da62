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


def _run_labels(history: list[dict[str, Any]]) -> list[str]:
    """Label each monitoring run by its time (``MM-DD HH:MM``) for the x axis."""
    return [str(r.get("time", ""))[5:16].replace("T", " ") for r in history]


def monitor_history(history: list[dict[str, Any]]) -> bytes:
    """Draw the monitoring runs over time as PNG bytes: canary metrics with their floors; drift statistics.

    Top: each canary metric per run (solid) and its floor (dashed). Bottom:
    each drift statistic as value / threshold (1 is the threshold), alerting
    runs marked red, and the empty-result rate.
    """
    labels = _run_labels(history)
    x = list(range(len(history)))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    metrics = sorted({m for r in history for m in (r.get("canary") or {})})
    for metric in metrics:
        values = [(r.get("canary") or {}).get(metric, {}) for r in history]
        line = top.plot(x, [v.get("value") for v in values], "o-", label=metric)[0]
        top.plot(x, [v.get("floor") for v in values], "--", color=line.get_color(), linewidth=1)
    top.set_ylabel("canary (dashed: floor)")
    top.set_ylim(-0.02, 1.05)
    if metrics:
        top.legend(fontsize=7, loc="lower left")
    names = sorted({n for r in history for n in (r.get("statistics") or {}) if n != "empty_rate"})
    for name in names:
        stats = [(r.get("statistics") or {}).get(name) for r in history]
        ratios = [s["value"] / s["threshold"] if s and s["threshold"] else None for s in stats]
        bottom.plot(x, ratios, ".-", linewidth=1, label=name)
        alerts = [(i, v) for i, (s, v) in enumerate(zip(stats, ratios, strict=True)) if s and s["alert"]]
        if alerts:
            bottom.scatter([i for i, _ in alerts], [v for _, v in alerts], color="#d62728", zorder=3, s=18)
    bottom.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    bottom.set_yscale("symlog", linthresh=1.0)  # linear up to the threshold, logarithmic above
    bottom.set_yticks([0, 0.5, 1, 2, 5, 10, 100])
    bottom.set_yticklabels(["0", "0.5", "1", "2", "5", "10", "100"])
    bottom.set_ylabel("drift: value / threshold")
    if names:
        bottom.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    bottom.set_xticks(x)
    bottom.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
    top.set_title("monitoring over time")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
