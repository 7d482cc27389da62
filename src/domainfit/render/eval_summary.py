"""The ``eval`` stage's Markdown: the before/after table, lift and significance, examples, head/tail, forgetting.

Input: an `EvalResult` (or its ``metrics.json`` entries). Output: Markdown text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domainfit.evaluation.results import EvalResult

BASE, TUNED, MERGED = "base", "fine-tuned", "merged"

__all__ = ["BASE", "MERGED", "TUNED", "eval_summary", "forgetting_table", "options_used"]


def _chunking_lines(chunking: dict[str, Any]) -> list[str]:
    """Markdown lines saying how the ``*-chunked`` rows were chunked (empty when chunking was off)."""
    chunked = [e for e in chunking.values() if e.get("resolved_method", "none") != "none"]
    if not chunked:
        return []
    entry = chunked[0]
    size = entry["settings"].get("size") or entry["window_tokens"]
    return [
        "",
        f"`*-chunked` rows rank documents by their chunks ({entry['resolved_method']}, size {size}, overlap "
        f"{entry['settings']['overlap']}, {entry['settings']['aggregate']}), as `bench` does.",
    ]


def eval_summary(result: EvalResult, primary: str) -> str:
    """Render the before/after table, significance, examples and forgetting as Markdown."""
    metrics = list(result.systems[0].metrics)
    lines = [
        f"# Base vs fine-tuned on `{result.split}`",
        "",
        f"{result.n_queries} judged queries, {result.n_documents} documents. Base: `{result.base_model}`; "
        f"fine-tuned: `{result.model}`.",
        "",
        "| system | " + " | ".join(metrics) + " |",
        "|---|" + "---:|" * len(metrics),
    ]
    for s in result.systems:
        lines.append(f"| {s.name} | " + " | ".join(f"{s.metrics[m]:.4f}" for m in metrics) + " |")
    lines += _chunking_lines(result.chunking)
    lines += ["", "## Fine-tuned minus base", ""]
    for kind, deltas in result.lift.items():
        sig = result.significance.get(kind)
        p = ""
        if sig:
            comp = next((c for c in sig["comparisons"] if c["metric"] == primary), None)
            if comp:
                p = f" (p={comp['p_value']:.3g}, {sig['test_description']})"
        lines.append(f"- {kind}: {primary} {deltas[primary]:+.4f}{p}")
    for title, rows in (("Improved most", result.improved), ("Got worse most", result.worsened)):
        if rows:
            lines += ["", f"## {title}", "", "| query | relevant | rank base | rank fine-tuned | delta |"]
            lines.append("|---|---|---:|---:|---:|")
            for r in rows:
                ranks = f"{r['rank_base']} | {r['rank_fine_tuned']}"
                lines.append(f"| {r['query']} | {r['relevant']} | {ranks} | {r['delta']:+.3f} |")
    ht = result.head_tail
    lines += ["", f"## Head vs tail (by {ht['basis']}: {ht['n']['head']} head, {ht['n']['tail']} tail queries)", ""]
    lines += ["| system | head | tail |", "|---|---:|---:|"]
    for s in result.systems:
        lines.append(f"| {s.name} | {ht[s.name]['head'][primary]:.4f} | {ht[s.name]['tail'][primary]:.4f} |")
    lines += ["", "## Forgetting", ""]
    f = result.forgetting
    if not f["measured"]:
        lines.append(f"Not measured: {f['reason']}.")
    else:
        if "labelled" in f:
            lab = f["labelled"]
            lines.append(f"- NDCG@10 on the general set: base {lab['ndcg@10'][BASE]:.4f}, "
                         f"fine-tuned {lab['ndcg@10'][TUNED]:.4f} (drop {lab['drop']:+.4f})")  # fmt: skip
        ov = f["neighbour_overlap"]
        lines.append(f"- nearest-neighbour overlap@{ov['k']} over {ov['texts']} general texts: {ov['mean']:.3f}")
        lines += forgetting_table(result.forgetting, result.lift)
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def options_used(options: dict[str, Any] | None) -> str:
    """Describe in words what the train run did against forgetting (from ``forgetting.train_options``)."""
    if not options:
        return "not recorded (the model was not trained in this workspace)"
    used = []
    if options.get("general_examples"):
        used.append(f"{options['general_examples']} general pairs mixed in ({options.get('general_pairs')})")
    reg = options.get("regularize")
    if reg:
        used.append(
            f"MSE pull towards the base (weight {reg['weight']:g}, {reg['pairs_per_step']} general pairs per step, "
            f"{reg['source']})"
        )
    if options.get("merge_weight") is not None:
        used.append(f"merged with the base at weight {options['merge_weight']:g}")
    if options.get("separate_encoders"):
        used.append("separate query and document encoders")
    return "; ".join(used) if used else "none (plain fine-tuning)"


def forgetting_table(
    forgetting: dict[str, Any], lift: dict[str, dict[str, float]], metric: str = "ndcg@10"
) -> list[str]:
    """Markdown rows comparing every trained variant: domain lift (what it gains) against general-set forgetting.

    Inputs: the ``forgetting`` and ``lift`` entries of an `EvalResult` (or of ``metrics.json``).
    Output: Markdown lines (empty when the check did not run).
    """
    variants = forgetting.get("variants") or {}
    if not variants:
        return []
    label = {TUNED: options_used(forgetting.get("train_options")), MERGED: "weight interpolation with the base"}
    lines = [
        "",
        f"Options against forgetting in this run: {label[TUNED]}.",
        "",
        f"| model | domain dense {metric} lift | general NDCG@10 drop | neighbour overlap | cosine to base |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in variants.items():
        gain = lift.get("dense" if name == TUNED else f"dense ({name})", {}).get(metric)
        cells = [
            f"{gain:+.4f}" if gain is not None else "-",
            f"{m['ndcg@10_drop']:+.4f}" if "ndcg@10_drop" in m else "-",
            f"{m['neighbour_overlap']:.3f}",
            f"{m['cosine_to_base']:.3f}" if m.get("cosine_to_base") is not None else "- (other width)",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
