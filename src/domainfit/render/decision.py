"""A decision as Markdown (``decide/decision-<when>.md`` and the terminal)."""

from __future__ import annotations

from domainfit.evaluation.decision import Decision


def render(decision: Decision) -> str:
    """Render a decision as Markdown: the recommendation, then its reasons."""
    title = "Before training" if decision.when == "before" else "After training"
    lines = [f"# {title}: {decision.recommendation}", ""] + [f"- {reason}" for reason in decision.reasons]
    return "\n".join(lines) + "\n"
