"""Paired significance tests between retrieval runs, through `ranx.compare`.

Every run is scored on the same evaluated queries, with the same trec_eval tie
rule and the same treatment of missing queries as `domainfit.evaluation.metrics`
(the inputs are built by its `RanxInputs`), so the means here equal
`metrics.evaluate`. Each system is then tested against the baseline, query by
query, with ranx's two-sided paired Student's t-test (``"student"``, default)
or Fisher's randomization test (``"fisher"``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from domainfit.core.errors import UsageError
from domainfit.core.types import Qrels, Run
from domainfit.evaluation.metrics import DEFAULT_METRICS, RanxInputs, check_metrics

TESTS: dict[str, str] = {
    "student": "two-sided paired Student's t-test",
    "fisher": "Fisher's randomization test (paired, two-sided)",
}
"""Supported tests: ranx's name -> description."""


@dataclass
class PairedComparison:
    """One system against the baseline on one metric.

    Fields: system and baseline names, metric, the two means, ``delta`` (system
    mean minus baseline mean), the p-value and whether it is <= alpha.
    """

    system: str
    baseline: str
    metric: str
    system_mean: float
    baseline_mean: float
    delta: float
    p_value: float
    significant: bool


@dataclass
class SignificanceResult:
    """Outcome of `compare_runs`.

    Fields: ``test`` (ranx's name: ``student`` or ``fisher``), ``test_description``,
    ``alpha``, ``n_queries`` (evaluated queries, the sample size of every test),
    ``baseline``, ``metrics``, ``means`` (``{system: {metric: mean}}``, baseline
    included), ``comparisons`` (one `PairedComparison` per non-baseline system
    and metric) and ``n_permutations`` (Fisher's test only, else None).
    """

    test: str
    test_description: str
    alpha: float
    n_queries: int
    baseline: str
    metrics: list[str]
    means: dict[str, dict[str, float]]
    comparisons: list[PairedComparison] = field(default_factory=list)
    n_permutations: int | None = None

    def comparison(self, system: str, metric: str) -> PairedComparison:
        """Return the comparison of ``system`` with the baseline on ``metric``.

        Raises `KeyError` when there is none (e.g. for the baseline itself).
        """
        for item in self.comparisons:
            if item.system == system and item.metric == metric:
                return item
        raise KeyError((system, metric))

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-ready dicts and lists."""
        return asdict(self)


def compare_runs(
    qrels: Qrels,
    runs: Mapping[str, Run],
    baseline: str | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    test: str = "student",
    alpha: float = 0.05,
    n_permutations: int = 1000,
    seed: int = 42,
) -> SignificanceResult:
    """Test each run against a baseline run, query by query.

    Inputs: qrels; ``{system name: run}`` (at least two); the baseline's name
    (default: the first run); measure names (see `metrics`); the test,
    ``"student"`` (paired t-test) or ``"fisher"`` (randomization test, with
    ``n_permutations`` and ``seed``); and the significance level ``alpha``.
    Output: a `SignificanceResult` with every system's means and, for every
    other system and metric, the p-value against the baseline and whether it is
    significant (p <= alpha, ranx's rule). When a system's per-query scores are
    identical to the baseline's the t-test is undefined; its p-value is then 1.
    Fisher's p-values are Monte Carlo estimates: ranx runs the permutations in
    numba worker threads that its ``seed`` does not reach, so they vary between
    calls by about ``sqrt(p * (1 - p) / n_permutations)``.
    Raises `UsageError` for a bad test, alpha, baseline or run count, and
    `ValueError` when no query of the qrels has a relevant document.
    """
    from ranx import compare as ranx_compare

    names = check_metrics(metrics)
    if test not in TESTS:
        raise UsageError(f"unknown test {test!r}: use one of {', '.join(TESTS)}")
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must be between 0 and 1, got {alpha}")
    if len(runs) < 2:
        raise UsageError("significance needs at least two runs")
    base = next(iter(runs)) if baseline is None else baseline
    if base not in runs:
        raise UsageError(f"baseline {base!r} is not one of the runs: {', '.join(runs)}")

    inputs = RanxInputs(qrels)
    if inputs.qrels is None:
        raise ValueError("the qrels have no query with a relevant document (grade > 0)")
    ranx_runs = [inputs.run(run, name=name) for name, run in runs.items()]
    with warnings.catch_warnings():
        # scipy warns when all paired differences are equal; handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        report = ranx_compare(
            inputs.qrels,
            ranx_runs,
            names,
            stat_test=test,
            n_permutations=n_permutations,
            max_p=alpha,
            random_seed=seed,
        )

    means = {name: {m: float(report.results[name][m]) for m in names} for name in runs}
    comparisons: list[PairedComparison] = []
    base_run = ranx_runs[list(runs).index(base)]
    for name, ranx_run in zip(runs, ranx_runs, strict=True):
        if name == base:
            continue
        for m in names:
            outcome = report.comparisons[name, base][m]
            p_value = float(outcome["p_value"])
            if math.isnan(p_value) and _identical(ranx_run.scores[m], base_run.scores[m]):
                p_value = 1.0
            comparisons.append(
                PairedComparison(
                    system=name,
                    baseline=base,
                    metric=m,
                    system_mean=means[name][m],
                    baseline_mean=means[base][m],
                    delta=means[name][m] - means[base][m],
                    p_value=p_value,
                    significant=bool(p_value <= alpha),
                )
            )
    return SignificanceResult(
        test=test,
        test_description=TESTS[test],
        alpha=alpha,
        n_queries=len(inputs.query_ids),
        baseline=base,
        metrics=names,
        means=means,
        comparisons=comparisons,
        n_permutations=n_permutations if test == "fisher" else None,
    )


def _identical(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """Tell whether two ``{query_id: score}`` maps hold exactly the same scores."""
    return a.keys() == b.keys() and all(a[q] == b[q] for q in a)
