"""Result types of monitoring: one tested statistic, its decision, and the overall verdict (all JSON-ready)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["healthy", "alert"]


@dataclass(frozen=True)
class Statistic:
    """One drift statistic of the current window against the reference.

    Fields: ``name`` (e.g. ``embedding_mmd``), its ``value`` (larger means more
    drift), the effect ``threshold`` it must exceed to count, the ``p_value`` of
    the test of no drift (None for a statistic without one), where the
    threshold comes from (``source``), the window sizes and free-form
    ``details`` (JSON-ready values only).
    """

    name: str
    value: float
    threshold: float
    p_value: float | None
    source: str
    n_reference: int
    n_current: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def exceeds(self) -> bool:
        """True when the value is above the effect threshold."""
        return self.value > self.threshold

    def to_dict(self) -> dict[str, Any]:
        """Return the statistic as plain JSON-ready values."""
        return {**asdict(self), "exceeds": self.exceeds}


@dataclass(frozen=True)
class Decision:
    """A statistic with its decision: Holm-adjusted p-value (None without a test), alert flag and the reason."""

    statistic: Statistic
    adjusted_p: float | None
    alert: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as plain JSON-ready values."""
        return {**self.statistic.to_dict(), "adjusted_p": self.adjusted_p, "alert": self.alert, "reason": self.reason}


@dataclass(frozen=True)
class CanaryMetric:
    """One canary metric: the current value, the baseline recorded at promotion, the floor and whether it fell below."""

    metric: str
    value: float
    baseline: float
    floor: float
    n_queries: int

    @property
    def alert(self) -> bool:
        """True when the current value is below the floor."""
        return self.value < self.floor

    def to_dict(self) -> dict[str, Any]:
        """Return the metric as plain JSON-ready values."""
        return {**asdict(self), "alert": self.alert}


@dataclass(frozen=True)
class CanaryResult:
    """Every canary metric, and the canary queries that lost their relevant documents from the top k."""

    metrics: tuple[CanaryMetric, ...]
    failed_queries: tuple[str, ...] = ()

    @property
    def alert(self) -> bool:
        """True when any canary metric is below its floor."""
        return any(m.alert for m in self.metrics)

    def reasons(self) -> list[str]:
        """One line per metric below its floor."""
        return [
            f"canary {m.metric} = {m.value:.4f} is below its floor {m.floor:.4f} (baseline {m.baseline:.4f})"
            for m in self.metrics
            if m.alert
        ]

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-ready values."""
        return {
            "alert": self.alert,
            "metrics": [m.to_dict() for m in self.metrics],
            "failed_queries": list(self.failed_queries),
        }


@dataclass(frozen=True)
class Verdict:
    """The overall monitoring verdict: ``healthy`` or ``alert``, with one reason per alerting check.

    ``decisions`` holds every drift and empty-rate decision (alerting or not),
    ``canary`` the canary result (None when no canary was run) and ``skipped``
    the checks that could not run (too few queries, no embeddings...), each
    with why. `exit_code` is what ``domainfit monitor`` exits with.
    """

    status: Status
    reasons: tuple[str, ...]
    alpha: float
    decisions: tuple[Decision, ...] = ()
    canary: CanaryResult | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True when nothing alerted."""
        return self.status == "healthy"

    @property
    def exit_code(self) -> int:
        """0 when healthy, 1 on an alert."""
        return 0 if self.healthy else 1

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as plain JSON-ready values."""
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "alpha": self.alpha,
            "decisions": [d.to_dict() for d in self.decisions],
            "canary": None if self.canary is None else self.canary.to_dict(),
            "skipped": dict(self.skipped),
        }
