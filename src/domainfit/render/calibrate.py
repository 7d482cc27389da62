"""The ``summary.md`` of ``calibrate``: one row per (model, compression configuration)."""

from __future__ import annotations

from domainfit.compress.calibrate import CalibrateResult


def _signed(value: float | None) -> str:
    """Format a signed number, or '-'."""
    return "-" if value is None else f"{value:+.4f}"


def calibrate_markdown(result: CalibrateResult) -> str:
    """Render the ``summary.md`` of a calibrate run: one row per (model, configuration)."""
    held = f" | P ({result.eval_split}) | R ({result.eval_split}) | empty ({result.eval_split})"
    lines = [
        f"# Similarity thresholds (F{result.beta:g}, calibrated on '{result.split}')",
        "",
        "A pair is returned when its score is >= the threshold. 'empty' is the share of queries whose best "
        "document scores below it. Δ ref: move against the model's first configuration; Δ model: against "
        "the first model's same configuration.",
        "",
        f"| model | configuration | threshold | Δ ref | Δ model | precision | recall | F | empty{held} |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model in result.models:
        for c in model.configurations:
            h = c.held_out or {}
            held_cells = " | ".join(f"{h[k]:.3f}" if k in h else "-" for k in ("precision", "recall", "empty_rate"))
            lines.append(
                f"| {model.model} | `{c.configuration}` | {c.threshold:.4f} | {_signed(c.delta_vs_reference)} | "
                f"{_signed(c.delta_vs_first_model)} | {c.precision:.3f} | {c.recall:.3f} | {c.f_beta:.3f} | "
                f"{c.empty_rate:.3f} | {held_cells} |"
            )
    if result.notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in result.notes]]
    return "\n".join(lines) + "\n"
