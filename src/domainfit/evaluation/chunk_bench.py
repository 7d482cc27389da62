"""Chunked retrieval in ``bench``: the chunked row next to the unchunked one, and a size x overlap sweep.

For each dense model, `add_chunked_systems` (called by `domainfit.evaluation.systems.SystemRunner`)

1. notes how many documents exceed the model's window (the unchunked row reads only
   their beginning);
2. resolves the method (``auto``: ``recursive`` when some document exceeds the window);
3. adds the ``dense-chunked`` system (chunk search aggregated to documents), so
   metrics, significance tests and slices treat it like every other system;
4. sweeps chunk size x overlap (the main setting included; sizes above the window
   skipped), marking the best point on the primary metric;
5. returns the main chunked retriever, so the runner also fuses BM25 with the
   chunked run (``hybrid-rrf-chunked``, ``hybrid-convex-chunked``).

Everything it measured goes into ``runner.chunking[label]`` and from there into
``metrics.json`` (``chunking``), ``summary.md`` and the terminal table.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from domainfit.data.chunking import Chunker, TruncationReport, model_window
from domainfit.data.config import ChunkingConfig
from domainfit.evaluation.metrics import evaluate
from domainfit.retrieval.chunked import ChunkedDenseRetriever
from domainfit.retrieval.dense import DenseRetriever

if TYPE_CHECKING:
    from domainfit.evaluation.benchmark import Benchmark


def resolve_method(method: str, truncation: TruncationReport | None) -> str:
    """Return the chunker to use: ``auto`` is ``recursive`` when some document exceeds the window, else ``none``."""
    if method != "auto":
        return method
    return "recursive" if truncation is not None and truncation.n_over > 0 else "none"


def sweep_grid(config: ChunkingConfig, window: int) -> tuple[list[tuple[int, int]], list[str]]:
    """Return the (size, overlap) points to sweep and notes on the points skipped.

    The main setting (``size``, None meaning the window, and ``overlap``) is always in
    the grid; sizes above the window and overlaps not below the size are skipped.
    """
    main = (config.size or window, config.overlap)
    if not config.sweep:
        return [main], []
    sizes = sorted({*config.sweep_sizes, main[0]})
    overlaps = sorted({*config.sweep_overlaps, main[1]})
    notes = [f"sweep size {s} skipped: above the {window}-token window" for s in sizes if s > window]
    grid = [(s, o) for s in sizes if s <= window for o in overlaps if o < s]
    return grid, notes


def _retriever(
    dense: DenseRetriever, config: ChunkingConfig, method: str, size: int, overlap: int
) -> ChunkedDenseRetriever:
    """Build a chunked retriever for one (method, size, overlap)."""
    prompt = (dense.model.prompts or {}).get(dense.document_prompt_name or "") or ""
    chunker = Chunker.for_model(dense.model, config, method=method, size=size, overlap=overlap, prompt=prompt)
    return ChunkedDenseRetriever(
        dense, chunker, aggregate=config.aggregate, top_n=config.top_n, chunk_depth=config.chunk_depth
    )


def add_chunked_systems(
    runner: Benchmark,
    dense: DenseRetriever,
    queries: dict[str, str],
    label: str,
    suffix: str,
) -> ChunkedDenseRetriever | None:
    """Add the chunked system of one dense model to ``runner`` and record the sweep in ``runner.chunking``.

    Inputs: the runner (its config, qrels and ``chunking`` settings), the indexed
    dense retriever of the model, the evaluation queries, the model's label and the
    system-name suffix. Effects: ``dense-chunked<suffix>`` added to the runner's
    systems (unless the method resolves to ``none``); notes; ``runner.chunking[label]``.
    Output: the indexed chunked retriever of the main setting (None when chunking is off).
    """
    config = runner.chunking_config
    if config is None:
        return None
    bench = runner.config
    report = dense.truncation
    window = model_window(dense.model)
    method = resolve_method(config.method, report)
    entry: dict[str, Any] = {
        "method": config.method,
        "resolved_method": method,
        "window_tokens": window,
        "settings": config.model_dump(),
        "truncation": report.to_json() if report else None,
    }
    runner.chunking[label] = entry
    if report is not None and report.n_over:
        advice = "see the dense-chunked row" if method != "none" else 'set [chunking] method = "recursive" or "auto"'
        runner.notes.append(
            f"{report.n_over} of {report.n_texts} documents exceed the {report.max_seq_length}-token window of "
            f"{label} (longest {report.longest} tokens): unchunked dense reads only their beginning; {advice}"
        )
    if method == "none":
        return None
    primary = bench.primary_metric
    grid, skipped = sweep_grid(config, window)
    main = (config.size or window, config.overlap)
    rows: list[dict[str, Any]] = []
    main_retriever: ChunkedDenseRetriever | None = None
    for size, overlap in grid:
        start = time.perf_counter()
        chunked = _retriever(dense, config, method, size, overlap)
        chunked.index(runner.dataset.corpus)
        run = chunked.search(queries, bench.depth)
        seconds = time.perf_counter() - start
        if (size, overlap) == main:
            main_retriever = chunked
            runner.add(f"dense-chunked{suffix}", "dense", run, chunked.get_config_dict(), seconds)
        rows.append(
            {
                "size": size,
                "overlap": overlap,
                "n_chunks": len(chunked.chunks),
                "metrics": evaluate(runner.qrels, run, bench.metrics),
                "seconds": round(seconds, 3),
                "main": (size, overlap) == main,
                "best": False,
            }
        )
    unchunked = next(s for s in runner.systems if s.name == f"dense{suffix}")
    if rows:
        max(rows, key=lambda r: r["metrics"][primary])["best"] = True
    best = next((r for r in rows if r["best"]), None)
    entry.update(
        {
            "system": f"dense-chunked{suffix}",
            "unchunked": {"system": unchunked.name, "metrics": unchunked.metrics},
            "sweep": rows,
            "best": {"size": best["size"], "overlap": best["overlap"], primary: best["metrics"][primary]}
            if best
            else None,
            "sweep_metric": primary,
            "sweep_notes": skipped,
        }
    )
    if len(rows) > 1 and best is not None:
        runner.notes.append(
            f"chunk sweep ({label}, {method}): best {primary} {best['metrics'][primary]:.4f} at size {best['size']}, "
            f"overlap {best['overlap']} (unchunked {unchunked.metrics[primary]:.4f}); chosen on the evaluated "
            "split, so confirm it on held-out queries"
        )
    return main_retriever
