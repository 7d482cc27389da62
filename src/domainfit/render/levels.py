"""The levels table as Markdown (``eval/levels.md``, a section of the report): one row per level that ran."""

from __future__ import annotations

from typing import Any

NUMBER = {"prompts": "1", "adapter": "1q", "static": "4", "top-layers": "2", "full": "3", "given": "-"}


def _num(value: Any, spec: str, none: str = "-") -> str:
    """Format a number, or ``none`` for a missing one."""
    return none if value is None else format(value, spec)


def _size(n: int | None) -> str:
    """Bytes as MB with one decimal."""
    return "-" if not n else f"{n / 1e6:.1f} MB"


def levels_table(rows: list[dict[str, Any]]) -> str:
    """Render every level's row: score and lift with p, train time, encoding speed, size, re-index cost, forgetting."""
    if not rows:
        return ""
    metric = rows[0].get("metric", "ndcg@10")
    lines = [
        "## Levels of effort",
        "",
        f"Each row is one `domainfit train --level ...` then `eval` on this data; {metric} on the test split, lift "
        "over the base model with the paired test's p-value; encoding speed is of the model that embeds the "
        "documents; re-index is every stored document at that speed (none for the query-side adapter).",
        "",
        f"| level | {metric} | lift | p | train | docs/s | size | re-index | forgetting (drop / overlap) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        level = f"{NUMBER.get(str(r['level']), '?')} {r['level']}"
        reindex = (
            "0 docs"
            if not r["documents_reembedded"]
            else f"{r['documents_reembedded']} docs, {r['reindex_seconds']:.0f} s"
        )
        lines.append(
            f"| {level} | {_num(r['score'], '.4f')} | {_num(r['lift'], '+.4f')} | {_num(r['p_value'], '.3g')} "
            f"| {_num(r['train_seconds'], '.0f')} s | {_num(r['documents_per_second'], '.0f')} "
            f"({_num(r['speedup'], '.1f')}x) | {_size(r['model_bytes'])} | {reindex} "
            f"| {_num(r['forgetting_drop'], '+.4f')} / {_num(r['neighbour_overlap'], '.2f')} |"
        )
    return "\n".join(lines) + "\n"
