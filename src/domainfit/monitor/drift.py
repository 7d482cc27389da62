"""Drift of the query stream: every statistic of a current window against a reference window.

`drift_report` runs, on two `QueryWindow` objects:

========================  ================================================  ==========================
statistic                 what                                              needs
========================  ================================================  ==========================
``embedding_centroid``    cosine distance of the mean query embeddings      embeddings in both windows
``embedding_mmd``         MMD² (RBF, median heuristic), permutation p       embeddings in both windows
``embedding_classifier``  CV ROC AUC of a logistic regression               embeddings, ``classifier``
``top1_psi/_ks``          best score per search                             non-empty searches
``topk_psi/_ks``          mean of the ``top_k`` best scores per search      non-empty searches
``length_psi/_ks``        query length in words                             queries
``language_psi``          language shares (py3langid)                       queries
``empty_rate``            share of searches with no result (hard limit)     searches
``empty_rate_change``     growth of that share, Fisher exact test           searches
========================  ================================================  ==========================

A statistic whose inputs are missing or smaller than ``min_window`` is skipped
(with the reason) rather than guessed. Deciding which statistics alert is
`domainfit.monitor.verdict.decide`'s job.

How the ``monitor`` stage calls this: read the reference window (the query
log around the promotion, or the benchmark queries run through the service)
and the current window (the latest log lines) with
`domainfit.monitor.window.window_from_records`, embed both windows' texts
with the serving model, call `drift_report`, then `canary_check` on the
canary run, then `decide`, and exit with ``verdict.exit_code``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from domainfit.monitor.config import MonitorSettings
from domainfit.monitor.distributions import ks_test, psi_test
from domainfit.monitor.embedding import centroid_distance, classifier_auc, mmd
from domainfit.monitor.empty import empty_rate, empty_rate_change
from domainfit.monitor.language import language_shift
from domainfit.monitor.results import Statistic
from domainfit.monitor.window import QueryWindow
from domainfit.text.language import LanguageDetector


@dataclass(frozen=True)
class DriftReport:
    """The statistics computed, and the ones skipped with why (``{name: reason}``)."""

    statistics: tuple[Statistic, ...]
    skipped: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Statistic:
        """Return the statistic called ``name``; raises `KeyError` when it was not computed."""
        for stat in self.statistics:
            if stat.name == name:
                return stat
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready values."""
        return {"statistics": [s.to_dict() for s in self.statistics], "skipped": dict(self.skipped)}


def _embedding_statistics(
    reference: QueryWindow, current: QueryWindow, settings: MonitorSettings
) -> tuple[list[Statistic], dict[str, str]]:
    """Centroid distance, MMD and (when enabled) the classifier, or why they were skipped."""
    names = ["embedding_centroid", "embedding_mmd", "embedding_classifier"]
    if reference.embeddings is None or current.embeddings is None:
        return [], dict.fromkeys(names, "no query embeddings in both windows")
    stats = [
        centroid_distance(reference.embeddings, current.embeddings, settings),
        mmd(reference.embeddings, current.embeddings, settings),
    ]
    skipped = {}
    if settings.classifier:
        stats.append(classifier_auc(reference.embeddings, current.embeddings, settings))
    else:
        skipped["embedding_classifier"] = "turned off (classifier = false)"
    return stats, skipped


def _score_statistics(
    reference: QueryWindow, current: QueryWindow, settings: MonitorSettings
) -> tuple[list[Statistic], dict[str, str]]:
    """PSI and KS of top-1, top-k mean and query length, or why each was skipped."""
    quantities: dict[str, Callable[[QueryWindow], np.ndarray]] = {
        "top1": QueryWindow.top1,
        "topk": lambda w: w.topk_mean(settings.top_k),
        "length": QueryWindow.lengths,
    }
    stats: list[Statistic] = []
    skipped: dict[str, str] = {}
    for name, get in quantities.items():
        ref, cur = get(reference), get(current)
        if min(ref.size, cur.size) < settings.min_window:
            reason = f"fewer than {settings.min_window} values ({ref.size} reference, {cur.size} current)"
            skipped.update({f"{name}_psi": reason, f"{name}_ks": reason})
            continue
        stats += [psi_test(name, ref, cur, settings), ks_test(name, ref, cur, settings)]
    return stats, skipped


def drift_report(
    reference: QueryWindow,
    current: QueryWindow,
    settings: MonitorSettings | None = None,
    *,
    min_score: float | None = None,
    detector: LanguageDetector | None = None,
) -> DriftReport:
    """Compute every drift statistic of ``current`` against ``reference``.

    Inputs: the two windows, the settings, the calibrated score threshold
    (a search with no score at or above it counts as empty; None: only searches
    with no result) and a language detector (default: the shared default one).
    Output: a `DriftReport`. Raises `ValueError` when a window is malformed.
    """
    settings = settings or MonitorSettings()
    reference, current = reference.checked(), current.checked()
    if min(len(reference), len(current)) < settings.min_window:
        reason = f"fewer than {settings.min_window} searches ({len(reference)} reference, {len(current)} current)"
        return DriftReport((), {"all": reason})
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small matrix products: contending BLAS threads cost more than they save
        stats, skipped = _embedding_statistics(reference, current, settings)
    more, more_skipped = _score_statistics(reference, current, settings)
    stats += more
    skipped.update(more_skipped)
    stats.append(language_shift(reference.texts, current.texts, settings, detector))
    ref_empty, cur_empty = reference.empty(min_score), current.empty(min_score)
    stats += [empty_rate(cur_empty, settings), empty_rate_change(ref_empty, cur_empty, settings)]
    return DriftReport(tuple(stats), skipped)
