"""The frontier plot: quality against bytes per vector and against latency (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from domainfit.compress.pareto import bytes_of, latency_of, quality
from domainfit.compress.sweep import VariantResult
from domainfit.core.files import atomic_write_bytes

_MARKERS = {"truncate": "o", "pca": "s"}


def plot_frontier(
    variants: Sequence[VariantResult],
    primary: str,
    latency_metric: str,
    operating_point: str | None,
    path: Path,
    title: str = "",
    basis: str = "memory",
) -> Path:
    """Write a two-panel PNG to ``path`` (atomically) and return it.

    Left: retention of ``primary`` against bytes per vector on ``basis`` (see
    `bytes_of`; log scale), the quality–bytes frontier drawn as a step line. Right: retention
    against ``latency_metric``. Colours are store families, circles truncation,
    squares PCA, the operating point a star.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = sorted({v.family for v in variants})
    cmap = plt.get_cmap("tab10")
    colours = {family: cmap(i % 10) for i, family in enumerate(families)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    for v in variants:
        for axis, x in ((left, bytes_of(v, basis)), (right, latency_of(v, latency_metric))):
            axis.scatter(
                x,
                quality(v, primary),
                color=colours[v.family],
                marker=_MARKERS.get(v.reduction, "o"),
                s=46 if v.pareto else 18,
                edgecolors="black" if v.pareto else "none",
                linewidths=0.6,
                alpha=0.9 if v.pareto else 0.5,
                zorder=3,
            )
    front = sorted((v for v in variants if v.frontier_2d), key=lambda v: bytes_of(v, basis))
    if front:
        left.step(
            [bytes_of(v, basis) for v in front],
            [quality(v, primary) for v in front],
            where="post",
            color="black",
            linewidth=1,
            zorder=2,
            label="quality–bytes frontier",
        )
    chosen = next((v for v in variants if v.name == operating_point), None)
    if chosen is not None:
        for axis, x in ((left, bytes_of(chosen, basis)), (right, latency_of(chosen, latency_metric))):
            axis.scatter(x, quality(chosen, primary), marker="*", s=320, color="gold", edgecolors="black", zorder=4)
            axis.annotate(chosen.name, (x, quality(chosen, primary)), textcoords="offset points", xytext=(8, -14))
    for family in families:
        left.scatter([], [], color=colours[family], label=family)
    left.set_xscale("log", base=2)
    left.set_xlabel(f"bytes per vector, {basis} (log scale)")
    right.set_xscale("log")
    right.set_xlabel(f"{latency_metric.replace('_', ' ')} (log scale)")
    for axis in (left, right):
        axis.set_ylabel(f"{primary} retention vs float32 full dimension")
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(1.1, -0.2), ncol=5)  # below both panels
    fig.suptitle(title or "Compression frontier (outlined: Pareto-optimal; circles: truncation, squares: PCA)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
