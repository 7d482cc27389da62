"""Which measured system to deploy: chosen on the selection split, proved on the test split.

After training, several systems are measured side by side: BM25, base and
fine-tuned dense, the hybrids of each with their tuned weights, a merged
model. The one to deploy is the best of them on the *selection* split (dev, or
held-out train queries when there is no dev split), so the test split stays an
honest judge; its lift over today's system is then measured on test, with
paired significance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from domainfit.core.types import Qrels, Run
from domainfit.evaluation.significance import compare_runs


@dataclass
class Deployable:
    """The system to deploy and the evidence for it.

    ``chosen`` is the system's name; ``chosen_on`` the split it was chosen on
    ("dev", "train (held-out folds)", or "test" when nothing else was judged,
    which the report flags as optimistic); ``selection`` every candidate's
    score there; ``versus`` per system of today (the base systems) the test
    lift of ``chosen`` over it and the p-value; ``notes`` what the reader must know.
    """

    chosen: str
    chosen_on: str
    metric: str
    selection: dict[str, float]
    test: dict[str, float]
    versus: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form stored in ``eval/metrics.json`` → ``deployable``."""
        return asdict(self)


def is_base_system(name: str, base_label: str = "base") -> bool:
    """Return True for a system that needs no training: BM25 or anything built on the base model."""
    return name == "bm25" or name.endswith(f":{base_label}")


def choose(selection: Mapping[str, float], prefer: tuple[str, ...] = ()) -> str:
    """Return the best-scoring system; ties go to the first of ``prefer`` among them, then the cheapest name.

    Inputs: ``{system: score}`` on the selection split and an order of preference
    (simpler systems first, e.g. base before fine-tuned) that breaks exact ties.
    """
    best = max(selection.values())
    tied = [name for name, score in selection.items() if score >= best - 1e-12]
    for name in prefer:
        if name in tied:
            return name
    return sorted(tied, key=lambda n: (n.count(":") + n.count("-"), n))[0]


def deployable(
    selection: Mapping[str, float] | None,
    selection_split: str,
    test_qrels: Qrels,
    test_runs: Mapping[str, Run],
    metric: str,
    *,
    significance_test: str = "student",
    base_label: str = "base",
) -> Deployable:
    """Choose the system to deploy and measure it against every base system on test.

    Inputs: each candidate's score on the selection split (None when no split
    other than test is judged: the choice is then made on test and flagged),
    that split's name, the test qrels and every system's test run, the metric,
    the paired test and the label of the base model's systems.
    Output: a `Deployable`.
    """
    from domainfit.evaluation.metrics import evaluate

    test_scores = {name: evaluate(test_qrels, run, [metric])[metric] for name, run in test_runs.items()}
    notes: list[str] = []
    if selection:
        candidates = {k: v for k, v in selection.items() if k in test_runs}
        chosen_on = selection_split
    else:
        candidates, chosen_on = dict(test_scores), "test"
        notes.append("no selection split was judged: the system was chosen on test, so its lift is optimistic")
    prefer = tuple(sorted((n for n in candidates if is_base_system(n, base_label)), key=len))
    chosen = choose(candidates, prefer)
    versus: dict[str, dict[str, float]] = {}
    for today in sorted(n for n in test_runs if is_base_system(n, base_label) and n != chosen):
        sig = compare_runs(
            test_qrels,
            {today: test_runs[today], chosen: test_runs[chosen]},
            baseline=today,
            metrics=[metric],
            test=significance_test,
        ).to_dict()
        comparison = next(c for c in sig["comparisons"] if c["metric"] == metric)
        versus[today] = {
            "lift": round(test_scores[chosen] - test_scores[today], 6),
            "p_value": float(comparison["p_value"]),
        }
    return Deployable(
        chosen=chosen,
        chosen_on=chosen_on,
        metric=metric,
        selection={k: round(v, 6) for k, v in candidates.items()},
        test={k: round(v, 6) for k, v in test_scores.items()},
        versus=versus,
        notes=notes,
    )
