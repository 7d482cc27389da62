"""The overall verdict: which statistics alert (Holm's correction at ``alpha``), plus the canaries.

A statistic with a p-value alerts when its value exceeds its threshold *and*
its Holm-adjusted p-value is at most ``alpha``. Holm's step-down correction
(Holm 1979) holds the chance of any false alarm among all tested statistics
at ``alpha`` whatever their dependence, and requiring the effect threshold as
well can only remove alarms; so on a stream from the reference's distribution
the verdict alerts with probability at most ``alpha``. A statistic without a
p-value (the ``empty_rate`` hard limit) alerts on its threshold alone, and the
canary check on its floors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from domainfit.monitor.config import MonitorSettings
from domainfit.monitor.drift import DriftReport
from domainfit.monitor.results import CanaryResult, Decision, Statistic, Verdict


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (each at most 1, monotone in the step-down order)."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m, dtype=np.float64)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted.tolist()


def _reason(stat: Statistic, adjusted: float | None, alert: bool, alpha: float) -> str:
    """Return a one-line reason for a decision."""
    where = f"{stat.name} = {stat.value:.4g} (threshold {stat.threshold:.4g}"
    if adjusted is None:
        return f"{where})" if alert else f"{where}, within)"
    test = f"Holm-adjusted p = {adjusted:.3g}, alpha {alpha:g})"
    if alert:
        return f"{where}, {test}"
    if not stat.exceeds:
        return f"{where}, within; {test}"
    return f"{where}, exceeded but not significant; {test}"


def decide_statistics(statistics: Sequence[Statistic], alpha: float) -> list[Decision]:
    """Decide every statistic: Holm over those with a p-value, the threshold alone for the rest."""
    tested = [s for s in statistics if s.p_value is not None]
    adjusted = dict(zip((id(s) for s in tested), holm([float(s.p_value or 0.0) for s in tested]), strict=True))
    decisions = []
    for stat in statistics:
        adj = adjusted.get(id(stat))
        alert = stat.exceeds and (adj is None or adj <= alpha)
        decisions.append(Decision(stat, adj, alert, _reason(stat, adj, alert, alpha)))
    return decisions


def decide(
    drift: DriftReport | None,
    canary: CanaryResult | None = None,
    settings: MonitorSettings | None = None,
) -> Verdict:
    """Return the verdict over a drift report and a canary result (either may be None).

    Output: a `Verdict`, ``alert`` with one reason per alerting statistic and
    canary metric, else ``healthy``. ``domainfit monitor`` exits with
    ``verdict.exit_code`` (0 healthy, 1 alert).
    """
    settings = settings or MonitorSettings()
    decisions = decide_statistics(drift.statistics, settings.alpha) if drift is not None else []
    reasons = [d.reason for d in decisions if d.alert]
    if canary is not None:
        reasons += canary.reasons()
    return Verdict(
        status="alert" if reasons else "healthy",
        reasons=tuple(reasons),
        alpha=settings.alpha,
        decisions=tuple(decisions),
        canary=canary,
        skipped=dict(drift.skipped) if drift is not None else {},
    )
