"""Precision–recall curves of similarity scores and the threshold that maximises F-beta.

A pair is predicted relevant when its score is ``>= threshold``. The curve has
one point per distinct score (taken as the threshold), highest first. F-beta
is ``(1 + b²) P R / (b² P + R)``; beta > 1 favours recall, beta < 1 precision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class PRCurve:
    """Thresholds (distinct scores, descending) and the precision and recall at each."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and flatten labels (0/1) and finite scores of equal length, with at least one positive."""
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if not y.any():
        raise ValueError("no positive pair: a threshold cannot be calibrated")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    return y, s


def pr_curve(labels: np.ndarray, scores: np.ndarray) -> PRCurve:
    """Precision and recall at every distinct score used as the threshold.

    Inputs: binary labels (1 = relevant) and scores, one per pair.
    Output: a `PRCurve` with thresholds in descending order.
    """
    y, s = _check(labels, scores)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last_of_value]
    predicted = last_of_value + 1
    return PRCurve(
        thresholds=s_sorted[last_of_value],
        precision=tps / predicted,
        recall=tps / y.sum(),
    )


def f_beta(precision: np.ndarray, recall: np.ndarray, beta: float) -> np.ndarray:
    """F-beta of precision and recall arrays (0 where both are 0)."""
    if beta <= 0:
        raise ValueError("beta must be positive")
    b2 = beta * beta
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    denominator = b2 * p + r
    return np.where(denominator > 0, (1 + b2) * p * r / np.where(denominator > 0, denominator, 1), 0.0)


@dataclass
class Threshold:
    """The calibrated threshold and what it gives on the calibration pairs."""

    threshold: float
    precision: float
    recall: float
    f_beta: float
    beta: float
    n_positive: int
    n_negative: int

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)


def best_threshold(labels: np.ndarray, scores: np.ndarray, beta: float = 1.0) -> Threshold:
    """Return the threshold maximising F-beta over the precision–recall curve (ties: the highest threshold)."""
    y, _ = _check(labels, scores)
    curve = pr_curve(labels, scores)
    f = f_beta(curve.precision, curve.recall, beta)
    best = int(np.argmax(f))  # thresholds descend, so the first maximum is the highest threshold
    return Threshold(
        threshold=float(curve.thresholds[best]),
        precision=float(curve.precision[best]),
        recall=float(curve.recall[best]),
        f_beta=float(f[best]),
        beta=beta,
        n_positive=int(y.sum()),
        n_negative=int((~y).sum()),
    )


def precision_recall_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """Precision and recall when pairs scoring ``>= threshold`` are predicted relevant (precision 0 if none are)."""
    y, s = _check(labels, scores)
    predicted = s >= threshold
    tp = int((predicted & y).sum())
    return (tp / int(predicted.sum()) if predicted.any() else 0.0), tp / int(y.sum())


def empty_result_rate(top_scores: np.ndarray, threshold: float) -> float:
    """Share of queries whose best document scores below ``threshold`` (they would get no result)."""
    top = np.asarray(top_scores, dtype=np.float64)
    if top.size == 0:
        raise ValueError("no query to compute an empty-result rate over")
    return float(np.mean(top < threshold))


def downsample_curve(curve: PRCurve, points: int = 101) -> dict[str, list[float]]:
    """At most ``points`` evenly spaced points of a curve, as plain lists (for JSON and plots)."""
    n = curve.thresholds.size
    keep = np.unique(np.linspace(0, n - 1, min(points, n)).round().astype(int))
    return {
        "threshold": [round(float(x), 6) for x in curve.thresholds[keep]],
        "precision": [round(float(x), 6) for x in curve.precision[keep]],
        "recall": [round(float(x), 6) for x in curve.recall[keep]],
    }
