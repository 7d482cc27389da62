"""Empty results: the share of searches that returned nothing (or nothing above the calibrated threshold).

Two statistics: ``empty_rate`` (the current share, alerting above
``max_empty_rate``; no test, a hard limit) and ``empty_rate_change`` (the
current share minus the reference's, alerting when it grew by more than
``empty_rate_change`` with a significant one-sided Fisher exact test).
"""

from __future__ import annotations

import numpy as np

from domainfit.monitor.config import MonitorSettings
from domainfit.monitor.results import Statistic


def empty_rate(current: np.ndarray, settings: MonitorSettings | None = None) -> Statistic:
    """Return the share of empty searches in the current window (one bool per search) against the hard limit."""
    settings = settings or MonitorSettings()
    flags = np.asarray(current, dtype=bool)
    if flags.size == 0:
        raise ValueError("the current window is empty")
    return Statistic(
        name="empty_rate",
        value=float(flags.mean()),
        threshold=settings.max_empty_rate,
        p_value=None,
        source="domainfit default max_empty_rate 0.2 (searches with no result above the calibrated threshold)",
        n_reference=0,
        n_current=int(flags.size),
        details={"empty": int(flags.sum())},
    )


def empty_rate_change(reference: np.ndarray, current: np.ndarray, settings: MonitorSettings | None = None) -> Statistic:
    """Return the growth of the empty share from the reference window to the current one, with Fisher's exact test."""
    from scipy.stats import fisher_exact

    settings = settings or MonitorSettings()
    ref = np.asarray(reference, dtype=bool)
    cur = np.asarray(current, dtype=bool)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("each window needs at least one search")
    table = [[int(cur.sum()), int((~cur).sum())], [int(ref.sum()), int((~ref).sum())]]
    p_value = float(fisher_exact(table, alternative="greater").pvalue)
    return Statistic(
        name="empty_rate_change",
        value=float(cur.mean() - ref.mean()),
        threshold=settings.empty_rate_change,
        p_value=p_value,
        source="domainfit default: +0.05 absolute, one-sided Fisher exact test",
        n_reference=int(ref.size),
        n_current=int(cur.size),
        details={"reference_rate": float(ref.mean()), "current_rate": float(cur.mean())},
    )
