"""A dual run of the old and the new version on the same queries, and the migration gate.

`compare_versions` takes the two runs (``{query_id: {doc_id: score}}``, as
any domainfit retriever or the search service returns them), the qrels of the
judged queries, optional slice labels (``{query_id: {slice: value}}``, as
`domainfit.evaluation.slices.slice_labels` returns) and the canary query ids.
It returns, as a `Comparison`:

* per slice and metric, the old and new means, the delta and the paired
  significance test (`domainfit.evaluation.significance.compare_runs`);
* per query (judged or not), overlap@k, Jaccard@k and top-1 agreement of the
  two result lists, and their means, over all queries and over the canaries;
* the queries that changed most (lowest Jaccard, then largest metric change).

`migration_gate` turns a `Comparison` (and, when a bridge is served, its
retention) into go / no-go with one reason per check.

How the ``migrate compare`` stage calls this: run the benchmark queries and
the canary queries through both versions of the index (old and new vector
column), call `compare_versions`, add each version's calibrated threshold
(``old_threshold``/``new_threshold``), then `migration_gate`; write
``Comparison.to_dict()`` and the gate to ``<workspace>/migrate/`` and append
the decision to the migration log.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from domainfit.core.types import Qrels, Run
from domainfit.evaluation.metrics import evaluated_query_ids, per_query
from domainfit.evaluation.significance import compare_runs
from domainfit.migrate.config import MigrateSettings
from domainfit.retrieval.ranking import ranked_ids


@dataclass(frozen=True)
class SliceDelta:
    """One metric on one slice value: both means, the delta (new - old), the paired p-value (None below 2 queries)."""

    slice: str
    value: str
    metric: str
    n_queries: int
    old: float
    new: float
    delta: float
    p_value: float | None
    significant: bool


@dataclass(frozen=True)
class QueryChange:
    """How one query's results moved: overlap@k, Jaccard@k, top-1 agreement and (judged) the primary metric."""

    query_id: str
    overlap: float
    jaccard: float
    top1_same: bool
    old_metric: float | None = None
    new_metric: float | None = None

    @property
    def metric_delta(self) -> float | None:
        """New minus old on the primary metric (None for a query without judgements)."""
        if self.old_metric is None or self.new_metric is None:
            return None
        return self.new_metric - self.old_metric


@dataclass(frozen=True)
class Agreement:
    """Mean overlap@k, Jaccard@k and top-1 agreement over a set of queries."""

    n_queries: int
    overlap: float
    jaccard: float
    top1_agreement: float

    @property
    def churn(self) -> float:
        """The share of top-k results that changed: ``1 - jaccard``."""
        return 1.0 - self.jaccard


@dataclass(frozen=True)
class Comparison:
    """The outcome of `compare_versions` (see the module docstring); `to_dict` gives JSON-ready values."""

    k: int
    primary_metric: str
    slices: tuple[SliceDelta, ...]
    agreement: Agreement
    canary_agreement: Agreement | None
    changed_most: tuple[QueryChange, ...]
    old_threshold: float | None = None
    new_threshold: float | None = None
    test: str = "student"
    alpha: float = 0.05
    settings: dict[str, Any] = field(default_factory=dict)

    def overall(self, metric: str | None = None) -> SliceDelta:
        """Return the ``all`` row of ``metric`` (default: the primary one); raises `KeyError` when absent."""
        name = metric or self.primary_metric
        for row in self.slices:
            if row.slice == "all" and row.metric == name:
                return row
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as plain JSON-ready values."""
        out = asdict(self)
        out["agreement"]["churn"] = self.agreement.churn
        if self.canary_agreement is not None:
            out["canary_agreement"]["churn"] = self.canary_agreement.churn
        for row, change in zip(out["changed_most"], self.changed_most, strict=True):
            row["metric_delta"] = change.metric_delta
        return out


def top_k(run: Run, query_id: str, k: int) -> list[str]:
    """Return the ids of one query's ``k`` best documents (trec_eval tie rule; empty when the run lacks it)."""
    return ranked_ids(run.get(query_id) or {})[:k]


def list_agreement(old: list[str], new: list[str], k: int) -> tuple[float, float, bool]:
    """Overlap@k, Jaccard@k and top-1 agreement of two ranked lists (both empty: full agreement).

    Overlap@k is ``|old ∩ new| / min(k, max(|old|, |new|))``, so two identical
    short lists agree fully; Jaccard is ``|∩| / |∪|`` of the top-k sets.
    """
    a, b = set(old[:k]), set(new[:k])
    if not a and not b:
        return 1.0, 1.0, True
    common = len(a & b)
    overlap = common / min(k, max(len(a), len(b)))
    top1 = bool(old and new and old[0] == new[0])
    return overlap, common / len(a | b), top1


def agreement(changes: Iterable[QueryChange]) -> Agreement:
    """Average the per-query agreement of ``changes`` (NaN means when there are none)."""
    items = list(changes)
    if not items:
        return Agreement(0, math.nan, math.nan, math.nan)
    n = len(items)
    return Agreement(
        n_queries=n,
        overlap=math.fsum(c.overlap for c in items) / n,
        jaccard=math.fsum(c.jaccard for c in items) / n,
        top1_agreement=sum(c.top1_same for c in items) / n,
    )


def _slice_groups(qrels: Qrels, labels: Mapping[str, Mapping[str, str]] | None) -> list[tuple[str, str, list[str]]]:
    """``(slice, value, evaluated query ids)`` for the ``all`` row and every labelled slice value."""
    evaluated = evaluated_query_ids(qrels)
    groups: list[tuple[str, str, list[str]]] = [("all", "all", evaluated)]
    names = list(dict.fromkeys(name for qid in evaluated for name in (labels or {}).get(qid, {})))
    for name in names:
        by_value: dict[str, list[str]] = {}
        for qid in evaluated:
            by_value.setdefault((labels or {}).get(qid, {}).get(name, "(none)"), []).append(qid)
        groups += [(name, value, by_value[value]) for value in sorted(by_value)]
    return groups


def slice_deltas(
    qrels: Qrels,
    old: Run,
    new: Run,
    labels: Mapping[str, Mapping[str, str]] | None,
    settings: MigrateSettings,
) -> list[SliceDelta]:
    """Old and new means, delta and paired test of every metric on every slice value."""
    rows: list[SliceDelta] = []
    for name, value, qids in _slice_groups(qrels, labels):
        sub = {qid: qrels[qid] for qid in qids}
        if len(qids) >= 2:
            result = compare_runs(
                sub, {"old": old, "new": new}, "old", settings.metrics, settings.significance_test, settings.alpha
            )
            for metric in settings.metrics:
                c = result.comparison("new", metric)
                rows.append(
                    SliceDelta(
                        name,
                        value,
                        metric,
                        len(qids),
                        c.baseline_mean,
                        c.system_mean,
                        c.delta,
                        c.p_value,
                        c.significant,
                    )
                )
            continue
        old_scores, new_scores = per_query(sub, old, settings.metrics), per_query(sub, new, settings.metrics)
        for metric in settings.metrics:
            o, n = sum(old_scores[metric].values()), sum(new_scores[metric].values())
            rows.append(SliceDelta(name, value, metric, len(qids), o, n, n - o, None, False))
    return rows


def query_changes(qrels: Qrels, old: Run, new: Run, settings: MigrateSettings) -> dict[str, QueryChange]:
    """Per query of either run (and of the qrels), how its top k moved, with the primary metric when judged."""
    k = settings.overlap_k
    judged = evaluated_query_ids(qrels)
    metric = settings.primary_metric
    old_scores = per_query(qrels, old, [metric])[metric] if judged else {}
    new_scores = per_query(qrels, new, [metric])[metric] if judged else {}
    qids = sorted(set(old) | set(new) | set(judged))
    changes = {}
    for qid in qids:
        overlap, jaccard, top1 = list_agreement(top_k(old, qid, k), top_k(new, qid, k), k)
        changes[qid] = QueryChange(qid, overlap, jaccard, top1, old_scores.get(qid), new_scores.get(qid))
    return changes


def compare_versions(
    qrels: Qrels,
    old: Run,
    new: Run,
    *,
    labels: Mapping[str, Mapping[str, str]] | None = None,
    canaries: Iterable[str] = (),
    old_threshold: float | None = None,
    new_threshold: float | None = None,
    settings: MigrateSettings | None = None,
) -> Comparison:
    """Compare the old and the new version's runs on the same queries.

    Inputs: the qrels of the judged queries, both runs, slice labels, the
    canary query ids (their agreement feeds the churn check of the gate), each
    version's calibrated score threshold (reported only) and the settings.
    Output: a `Comparison`. Raises `ValueError` when no query of the qrels has
    a relevant document, or a canary id is in neither run.
    """
    settings = settings or MigrateSettings()
    if not evaluated_query_ids(qrels):
        raise ValueError("the qrels have no query with a relevant document (grade > 0)")
    canary_ids = list(dict.fromkeys(canaries))
    unknown = [qid for qid in canary_ids if qid not in old and qid not in new]
    if unknown:
        raise ValueError(f"canary queries {unknown[:5]} are in neither run")
    changes = query_changes(qrels, old, new, settings)
    ordered = sorted(changes.values(), key=lambda c: (c.jaccard, -abs(c.metric_delta or 0.0), c.query_id))
    return Comparison(
        k=settings.overlap_k,
        primary_metric=settings.primary_metric,
        slices=tuple(slice_deltas(qrels, old, new, labels, settings)),
        agreement=agreement(changes.values()),
        canary_agreement=agreement(changes[qid] for qid in canary_ids) if canary_ids else None,
        changed_most=tuple(ordered[: settings.changed_examples]),
        old_threshold=old_threshold,
        new_threshold=new_threshold,
        test=settings.significance_test,
        alpha=settings.alpha,
        settings=settings.model_dump(),
    )


@dataclass(frozen=True)
class GateCheck:
    """One check of the migration gate: its name, the measured value, the limit, whether it passed and why."""

    name: str
    value: float
    limit: float
    passed: bool
    reason: str


@dataclass(frozen=True)
class GateDecision:
    """Go or no-go, with every check; ``reasons`` are the failed checks' reasons (empty on go)."""

    go: bool
    checks: tuple[GateCheck, ...]

    @property
    def reasons(self) -> list[str]:
        """One line per failed check."""
        return [c.reason for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as plain JSON-ready values."""
        return {"go": self.go, "reasons": self.reasons, "checks": [asdict(c) for c in self.checks]}


def _lift_check(comparison: Comparison, settings: MigrateSettings) -> GateCheck:
    """Check that the new version gains at least ``min_lift`` on the primary metric (significantly, if required)."""
    row = comparison.overall()
    passed = row.delta >= settings.min_lift and (
        not settings.require_significant or (row.significant and row.delta > 0)
    )
    why = f"{row.metric} lift {row.delta:+.4f} (old {row.old:.4f}, new {row.new:.4f}, p = {row.p_value})"
    need = f"needs >= {settings.min_lift:+.4f}" + (" and significant" if settings.require_significant else "")
    return GateCheck("lift", row.delta, settings.min_lift, passed, f"{why}: {'ok' if passed else need}")


def _slice_check(comparison: Comparison, settings: MigrateSettings) -> GateCheck | None:
    """No slice of enough queries may lose more than ``max_slice_drop``, significantly, on the primary metric."""
    if settings.max_slice_drop is None:
        return None
    rows = [
        r
        for r in comparison.slices
        if r.metric == comparison.primary_metric and r.slice != "all" and r.n_queries >= settings.min_slice_queries
    ]
    worst = min(rows, key=lambda r: r.delta, default=None)
    if worst is None:
        return GateCheck("slices", 0.0, -settings.max_slice_drop, True, "no slice large enough to check")
    bad = [r for r in rows if r.delta < -settings.max_slice_drop and r.significant]
    where = f"worst slice {worst.slice}={worst.value} ({worst.n_queries} queries) {worst.metric} {worst.delta:+.4f}"
    if bad:
        return GateCheck(
            "slices", worst.delta, -settings.max_slice_drop, False,
            f"{len(bad)} slice(s) lose more than {settings.max_slice_drop:.4f} significantly; {where}",
        )  # fmt: skip
    return GateCheck("slices", worst.delta, -settings.max_slice_drop, True, f"{where}: ok")


def migration_gate(
    comparison: Comparison,
    settings: MigrateSettings | None = None,
    *,
    bridge_retention: float | None = None,
    churn_gates: bool = True,
) -> GateDecision:
    """Decide go / no-go from a comparison and, when a bridge is to be served, its measured retention.

    Checks: the lift on the primary metric (``min_lift``, ``require_significant``),
    slice losses (``max_slice_drop``), canary churn (``max_canary_churn``, when
    the comparison has canaries) and bridge retention (``min_bridge_retention``,
    when given). ``churn_gates`` False records the canary churn without letting
    it refuse: canaries that are the judged benchmark queries themselves, whose
    results a real lift must change and whose quality the lift and slice checks
    already gate. Output: a `GateDecision`, go only when every check passes.
    """
    settings = settings or MigrateSettings()
    checks = [_lift_check(comparison, settings)]
    slice_check = _slice_check(comparison, settings)
    if slice_check is not None:
        checks.append(slice_check)
    canary = comparison.canary_agreement
    if canary is not None:
        within = canary.churn <= settings.max_canary_churn
        verdict = "ok" if within else f"more than {settings.max_canary_churn:.3f}"
        if not churn_gates:
            verdict += " (not gated: the canaries are the judged queries, gated by quality)"
        checks.append(
            GateCheck(
                "canary_churn", canary.churn, settings.max_canary_churn, within or not churn_gates,
                f"canary churn {canary.churn:.3f} over {canary.n_queries} queries "
                f"(Jaccard@{comparison.k} {canary.jaccard:.3f}): {verdict}",
            )
        )  # fmt: skip
    if bridge_retention is not None:
        passed = bridge_retention >= settings.min_bridge_retention
        checks.append(
            GateCheck(
                "bridge_retention", bridge_retention, settings.min_bridge_retention, passed,
                f"bridge retains {bridge_retention:.3f} of full re-embedding: "
                + ("ok" if passed else f"below the minimum {settings.min_bridge_retention:.3f}"),
            )
        )  # fmt: skip
    return GateDecision(go=all(c.passed for c in checks), checks=tuple(checks))
