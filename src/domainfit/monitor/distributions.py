"""Drift of one-number-per-query distributions (top-1 score, top-k mean score, query length): PSI and KS.

* **PSI** (population stability index), as Evidently computes it: the
  reference's quantiles cut ``bins`` bins (30), both windows' shares per bin
  (an empty bin counts as 0.0001), ``PSI = sum((cur - ref) * ln(cur / ref))``;
  drift from 0.1. Its p-value comes from a seeded permutation test (the bins
  re-cut from each permuted reference): the usual chi-square approximation
  fails on small windows, where empty bins inflate PSI.
* **KS**: scipy's two-sample Kolmogorov-Smirnov test; the statistic is the
  largest gap between the two empirical CDFs.
* `categorical_psi`: PSI over labels (for the language mix), same formula.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from domainfit.monitor.config import EVIDENTLY_PSI_EMPTY_SHARE, MonitorSettings
from domainfit.monitor.permutation import permutation_test_rows
from domainfit.monitor.results import Statistic


def _checked(values: np.ndarray, what: str) -> np.ndarray:
    """Return a finite, non-empty 1-d float array or raise `ValueError`."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"the {what} window is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"the {what} window holds a NaN or an infinity")
    return arr


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges: the reference's quantiles at ``1/bins ... (bins-1)/bins``, duplicates dropped."""
    return np.unique(np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def _shares(counts: np.ndarray, empty_share: float) -> np.ndarray:
    """Turn bin counts (the last axis) into shares, an empty bin taking ``empty_share``."""
    shares = counts / np.maximum(counts.sum(axis=-1, keepdims=True), 1)
    return np.where(shares == 0, empty_share, shares)


def psi_from_counts(
    reference_counts: np.ndarray, current_counts: np.ndarray, empty_share: float = EVIDENTLY_PSI_EMPTY_SHARE
) -> np.ndarray:
    """PSI from per-bin (or per-label) counts of both windows, over the last axis (a float for 1-d counts)."""
    ref = _shares(np.asarray(reference_counts, dtype=np.float64), empty_share)
    cur = _shares(np.asarray(current_counts, dtype=np.float64), empty_share)
    return np.asarray(np.sum((cur - ref) * np.log(cur / ref), axis=-1))


def _row_counts(rows: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per-row bin counts of ``rows`` (p, n) against per-row sorted inner ``edges`` (p, b - 1)."""
    p, width = edges.shape
    bins = width + 1
    flat = np.concatenate([r * bins + np.searchsorted(edges[r], rows[r], side="right") for r in range(p)])
    return np.bincount(flat, minlength=p * bins).reshape(p, bins)


def _psi_rows(bins: int, empty_share: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Row-wise PSI: each row's reference quantiles cut that row's bins (a statistic for `permutation_test_rows`).

    Equal edges leave bins empty in both windows, which add nothing, so the
    value equals `psi` with its duplicate edges dropped.
    """
    levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]

    def statistic(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
        edges = np.quantile(reference, levels, axis=1).T
        return psi_from_counts(_row_counts(reference, edges), _row_counts(current, edges), empty_share)

    return statistic


def psi(
    reference: np.ndarray,
    current: np.ndarray,
    bins: int = 30,
    empty_share: float = EVIDENTLY_PSI_EMPTY_SHARE,
) -> float:
    """Compute the population stability index of ``current`` against ``reference`` over the reference's quantiles.

    Inputs: two 1-d samples, the number of bins and the share an empty bin takes.
    Output: PSI (0 for identical shares). Ties at an edge fall in the upper bin;
    a sample of few distinct values gets fewer bins (duplicate edges merge).
    """
    ref = _checked(reference, "reference")
    cur = _checked(current, "current")
    edges = quantile_edges(ref, bins)
    size = edges.size + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=size)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=size)
    return float(psi_from_counts(ref_counts, cur_counts, empty_share))


def psi_test(
    name: str, reference: np.ndarray, current: np.ndarray, settings: MonitorSettings | None = None
) -> Statistic:
    """PSI of one quantity with a permutation p-value; the `Statistic` is named ``<name>_psi``."""
    settings = settings or MonitorSettings()
    ref, cur = _checked(reference, "reference"), _checked(current, "current")
    rng = np.random.default_rng([settings.seed, len(name)])
    statistic = _psi_rows(settings.psi_bins, EVIDENTLY_PSI_EMPTY_SHARE)
    value, p_value = permutation_test_rows(ref, cur, statistic, settings.permutations, rng)
    return Statistic(
        name=f"{name}_psi",
        value=value,
        threshold=settings.psi_threshold,
        p_value=p_value,
        source="Evidently 0.7.23 stattests/psi.py: threshold 0.1, 30 quantile bins of the reference",
        n_reference=ref.size,
        n_current=cur.size,
        details={"bins": settings.psi_bins, "permutations": settings.permutations},
    )


def ks_test(
    name: str, reference: np.ndarray, current: np.ndarray, settings: MonitorSettings | None = None
) -> Statistic:
    """Two-sample Kolmogorov-Smirnov test of one quantity; the `Statistic` is named ``<name>_ks``.

    The value is the KS statistic (largest CDF gap), its threshold
    ``settings.ks_threshold``, the p-value scipy's (exact for small samples;
    conservative for discrete values such as query lengths).
    """
    from scipy.stats import ks_2samp

    settings = settings or MonitorSettings()
    ref = _checked(reference, "reference")
    cur = _checked(current, "current")
    result = ks_2samp(ref, cur)
    return Statistic(
        name=f"{name}_ks",
        value=float(result.statistic),
        threshold=settings.ks_threshold,
        p_value=float(result.pvalue),
        source="scipy.stats.ks_2samp; p < alpha as in Evidently's ks stattest, statistic threshold domainfit's",
        n_reference=ref.size,
        n_current=cur.size,
        details={"reference_median": float(np.median(ref)), "current_median": float(np.median(cur))},
    )


def label_codes(
    reference: Sequence[str], current: Sequence[str], min_count: int = 1
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Both windows' labels as integer codes into a label list; labels seen fewer than ``min_count`` times pool.

    The pooled labels become ``other`` (the last label). Output: ``(labels,
    reference codes, current codes)``.
    """
    pooled: dict[str, int] = {}
    for label in [*reference, *current]:
        pooled[label] = pooled.get(label, 0) + 1
    kept = sorted(label for label, n in pooled.items() if n >= min_count)
    labels = [*kept, "other"] if len(kept) < len(pooled) else kept
    index = {label: i for i, label in enumerate(kept)}
    other = len(kept)

    def codes(items: Sequence[str]) -> np.ndarray:
        return np.array([index.get(label, other) for label in items], dtype=np.int64)

    return labels, codes(reference), codes(current)


def code_psi_rows(n_labels: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Row-wise PSI between label codes (p, n) and (p, m): a statistic for `permutation_test_rows`."""

    def counts(rows: np.ndarray) -> np.ndarray:
        p = rows.shape[0]
        flat = (np.arange(p)[:, None] * n_labels + rows.astype(np.int64)).ravel()
        return np.bincount(flat, minlength=p * n_labels).reshape(p, n_labels)

    def statistic(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
        return psi_from_counts(counts(reference), counts(current))

    return statistic


def categorical_psi(reference: Sequence[str], current: Sequence[str], min_count: int = 1) -> tuple[float, list[str]]:
    """PSI between the label shares of two windows.

    Inputs: one label per item in each window, and the fewest occurrences (both
    windows together) a label needs to stand alone; rarer labels pool as
    ``other``.
    Output: ``(PSI, the labels compared)``.
    """
    labels, ref, cur = label_codes(reference, current, min_count)
    value = code_psi_rows(len(labels))(ref[None, :], cur[None, :])[0]
    return float(value), labels
