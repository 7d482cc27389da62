"""The Pareto frontier over quality, bytes and latency, and the operating point chosen on it.

Objectives: retention of the primary metric (higher is better), bytes per
vector (in memory, or in memory plus the rescoring copy: the ``bytes_basis``)
and a latency statistic (lower is better). A configuration is
on the frontier when no other one is at least as good on every objective and
strictly better on one. The two-objective frontier (quality vs bytes) is what
the plot draws as a line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from domainfit.compress.config import OperatingPointConfig
from domainfit.compress.sweep import VariantResult


def pareto_indices(costs: np.ndarray) -> list[int]:
    """Return the indices of the non-dominated rows of ``costs`` (n, k), every column to be minimised.

    A row is dominated when another row is <= on every column and < on one.
    Identical rows are all kept. Output in ascending index order.
    """
    costs = np.asarray(costs, dtype=np.float64)
    keep = []
    for i in range(costs.shape[0]):
        others = np.delete(costs, i, axis=0)
        dominated = np.any(np.all(others <= costs[i], axis=1) & np.any(others < costs[i], axis=1))
        if not dominated:
            keep.append(i)
    return keep


def quality(variant: VariantResult, primary: str) -> float:
    """Retention of the primary metric (0 when undefined)."""
    value = variant.retention.get(primary)
    return float(value) if value is not None else 0.0


def bytes_of(variant: VariantResult, basis: str = "memory") -> float:
    """Bytes per vector on ``basis``: "memory" (the searched index) or "memory+rescore" (plus the rescoring copy)."""
    if basis == "memory+rescore":
        return variant.bytes_per_vector + variant.rescore_bytes_per_vector
    return variant.bytes_per_vector


def latency_of(variant: VariantResult, latency_metric: str) -> float:
    """Return the chosen latency statistic of a configuration, in milliseconds."""
    return float(variant.latency[latency_metric])


def mark_frontier(variants: Sequence[VariantResult], primary: str, latency_metric: str, basis: str = "memory") -> None:
    """Set ``pareto`` (quality, bytes, latency) and ``frontier_2d`` (quality, bytes) on every variant."""
    if not variants:
        return
    three = np.array([[-quality(v, primary), bytes_of(v, basis), latency_of(v, latency_metric)] for v in variants])
    on3 = set(pareto_indices(three))
    on2 = set(pareto_indices(three[:, :2]))
    for i, variant in enumerate(variants):
        variant.pareto = i in on3
        variant.frontier_2d = i in on2


@dataclass
class OperatingPoint:
    """The chosen configuration (None when nothing meets the constraints) and why."""

    name: str | None
    rule: str
    reason: str
    constraints: dict[str, Any]
    weights: dict[str, float] | None = None
    feasible: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)


def _meets(variant: VariantResult, cfg: OperatingPointConfig, primary: str, latency_metric: str) -> bool:
    """Return True when the configuration meets every constraint that is set."""
    if cfg.max_bytes_per_vector is not None and bytes_of(variant, cfg.bytes_basis) > cfg.max_bytes_per_vector:
        return False
    if cfg.min_retention is not None and quality(variant, primary) < cfg.min_retention:
        return False
    return cfg.max_p95_ms is None or latency_of(variant, latency_metric) <= cfg.max_p95_ms


def _scaled(values: list[float]) -> list[float]:
    """Min-max scale to [0, 1] (all zeros when the values are equal)."""
    low, high = min(values), max(values)
    return [0.0 if high == low else (v - low) / (high - low) for v in values]


def _by_weights(
    feasible: list[VariantResult], cfg: OperatingPointConfig, primary: str, latency_metric: str
) -> VariantResult:
    """Highest utility: w_q·quality − w_b·log2(bytes) − w_l·latency, each min-max scaled over ``feasible``."""
    assert cfg.weights is not None
    q = _scaled([quality(v, primary) for v in feasible])
    b = _scaled([math.log2(max(bytes_of(v, cfg.bytes_basis), 1e-9)) for v in feasible])
    lat = _scaled([latency_of(v, latency_metric) for v in feasible])
    w = cfg.weights
    utility = [w.quality * q[i] - w.bytes * b[i] - w.latency * lat[i] for i in range(len(feasible))]
    best = max(range(len(feasible)), key=lambda i: (utility[i], -bytes_of(feasible[i], cfg.bytes_basis)))
    return feasible[best]


def choose_operating_point(
    variants: Sequence[VariantResult], cfg: OperatingPointConfig, primary: str, latency_metric: str
) -> OperatingPoint:
    """Pick the operating point among the frontier configurations (call `mark_frontier` with the same basis first).

    Constraints filter; then, without weights, the fewest bytes per vector wins
    (ties: higher quality, then lower latency); with weights, the highest utility.
    """
    constraints = {
        "max_bytes_per_vector": cfg.max_bytes_per_vector,
        "bytes_basis": cfg.bytes_basis,
        f"min_retention ({primary})": cfg.min_retention,
        f"max_latency_ms ({latency_metric})": cfg.max_p95_ms,
    }
    weights = cfg.weights.model_dump() if cfg.weights else None
    rule = "weights" if weights else "fewest bytes meeting the constraints"
    feasible = [v for v in variants if v.pareto and _meets(v, cfg, primary, latency_metric)]
    if not feasible:
        best = max(variants, key=lambda v: quality(v, primary), default=None)
        hint = f"; the best retention is {quality(best, primary):.3f} ({best.name})" if best else ""
        return OperatingPoint(
            None, rule, f"no frontier configuration meets the constraints{hint}", constraints, weights
        )
    if weights:
        chosen = _by_weights(feasible, cfg, primary, latency_metric)
    else:
        chosen = min(
            feasible,
            key=lambda v: (bytes_of(v, cfg.bytes_basis), -quality(v, primary), latency_of(v, latency_metric)),
        )
    reason = (
        f"{chosen.name}: {quality(chosen, primary):.1%} of float32 {primary} at "
        f"{bytes_of(chosen, cfg.bytes_basis):g} bytes/vector ({cfg.bytes_basis}), "
        f"{latency_of(chosen, latency_metric):.3g} ms {latency_metric}; "
        f"{len(feasible)} frontier configuration(s) met the constraints"
    )
    return OperatingPoint(chosen.name, rule, reason, constraints, weights, [v.name for v in feasible])
