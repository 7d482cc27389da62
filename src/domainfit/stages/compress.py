"""The ``compress`` stage: sweep, frontier, operating point and artifacts in ``<workspace>/compress/``.

Input: a BEIR folder, a workspace and a `CompressConfig`. Output files:
``results.json`` (every configuration, the frontier, the operating point),
``summary.md``, ``frontier.png``, ``config.json`` and ``manifest.json``,
written together (the folder is swapped in only when complete).

Re-running with the same data, model and sweep settings re-uses the measured
sweep; when only the operating-point rule changed, the point is re-chosen and
the artifacts re-written without re-measuring.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from domainfit import __version__
from domainfit.compress.config import CompressConfig
from domainfit.compress.pareto import choose_operating_point, mark_frontier
from domainfit.compress.results import CompressResult
from domainfit.compress.sweep import run_sweep
from domainfit.core.errors import InputError
from domainfit.core.files import atomic_write_json, atomic_write_text, staged_dir
from domainfit.core.models import folder_fingerprint, resolve_model
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.render.compress import summary_markdown
from domainfit.render.frontier import plot_frontier
from domainfit.text.config import DEFAULT_TEXT, TextConfig

STAGE = "compress"
OUTPUTS = ("results.json", "summary.md", "frontier.png", "config.json")


def _machine() -> dict[str, Any]:
    """Where the latencies were measured: CPU count and FAISS threads."""
    from domainfit.compress.stores import require_faiss

    faiss = require_faiss()

    return {
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "faiss_version": faiss.__version__,
    }


def _inputs(root: Path, config: CompressConfig) -> dict[str, Any]:
    """Collect what the sweep depends on (the operating-point rule is kept apart)."""
    from domainfit.stages.bench import data_fingerprint

    sweep = config.model_dump(exclude={"operating_point"})
    return {
        "data": str(root),
        "data_sha256": data_fingerprint(root),
        "model_sha256": folder_fingerprint(resolve_model(config.model).path),
        "sweep": sweep,
        "operating_point": config.operating_point.model_dump(),
        "domainfit_version": __version__,
    }


def _previous(out_dir: Path, inputs: dict[str, Any]) -> tuple[CompressResult | None, bool]:
    """Return the stored result when its sweep inputs match, and whether the operating point matches too."""
    manifest, results = out_dir / "manifest.json", out_dir / "results.json"
    if not (manifest.is_file() and results.is_file()):
        return None, False
    old = json.loads(manifest.read_text()).get("inputs", {})
    if {k: v for k, v in old.items() if k != "operating_point"} != {
        k: v for k, v in inputs.items() if k != "operating_point"
    }:
        return None, False
    return CompressResult.from_json(json.loads(results.read_text())), old.get("operating_point") == inputs[
        "operating_point"
    ]


def _measure(
    root: Path, workspace: Workspace, config: CompressConfig, max_line_bytes: int, text: TextConfig
) -> CompressResult:
    """Encode (through the cache) and sweep every configuration."""
    from domainfit.compress.embed import encode_corpus, encode_split_queries, open_retriever, split_qrels

    dataset = load_beir(root, max_line_bytes=max_line_bytes, text=text)
    split_qrels(dataset, config.split)
    retriever = open_retriever(
        config.model,
        workspace.cache_dir / "embeddings",
        batch_size=config.batch_size,
        max_seq_length=config.max_seq_length,
        text=text,
    )
    corpus = encode_corpus(dataset, retriever)
    queries = encode_split_queries(dataset, config.split, retriever)
    sweep = run_sweep(corpus.vectors, queries.vectors, corpus.doc_ids, queries.query_ids, queries.qrels, config)
    return CompressResult(
        model=config.model,
        model_fingerprint=retriever.fingerprint,
        split=config.split,
        n_queries=len(queries.query_ids),
        n_documents=len(corpus.doc_ids),
        full_dim=int(corpus.vectors.shape[1]),
        primary_metric=config.primary_metric,
        latency_metric=config.latency_metric,
        reference=sweep.variants[0].name,
        variants=sweep.variants,
        operating_point={},
        notes=sweep.notes,
        machine=_machine(),
        output_dir="",
    )


def _write(out_dir: Path, workspace: Workspace, result: CompressResult, config: CompressConfig, inputs: dict) -> None:
    """Write every artifact into a staged folder and swap it in."""
    with staged_dir(out_dir) as tmp:
        atomic_write_json(tmp / "results.json", result.to_json())
        atomic_write_text(tmp / "summary.md", summary_markdown(result))
        plot_frontier(
            result.variants,
            result.primary_metric,
            result.latency_metric,
            result.operating_point.get("name"),
            tmp / "frontier.png",
            title=f"{result.model} on '{result.split}': {result.primary_metric} retention vs bytes and latency",
            basis=config.operating_point.bytes_basis,
        )
        atomic_write_json(tmp / "config.json", {"compress": config.model_dump(), "data": inputs["data"]})
        workspace.write_manifest(tmp, STAGE, inputs, list(OUTPUTS))


def run_compress(
    data: Path,
    workspace: Workspace,
    config: CompressConfig,
    *,
    force: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
    text: TextConfig = DEFAULT_TEXT,
) -> CompressResult:
    """Run the compress stage over a BEIR folder and write its artifacts into the workspace.

    Inputs: the BEIR folder, the workspace, the resolved config, ``force`` to
    re-measure even when nothing changed, the largest accepted JSONL record and
    the ``[text]`` settings.
    Output: the `CompressResult` (``up_to_date`` when nothing had to be redone).
    Raises `InputError` on bad data or an unknown split (nothing is written then).
    """
    root = Path(data).expanduser().resolve()
    workspace.attach_data(root)  # a workspace inside, above or equal to the data is refused
    if not root.is_dir():
        raise InputError(root, 0, "-", "not a folder (expected a BEIR folder with corpus.jsonl)")
    out_dir = workspace.stage_dir(STAGE)
    inputs = _inputs(root, config)
    with workspace.lock():  # the up-to-date check runs under the lock, so two runs cannot race
        previous, same = (None, False) if force else _previous(out_dir, inputs)
        if previous is not None and same:
            previous.up_to_date = True
            return previous
        result = previous or _measure(root, workspace, config, max_line_bytes, text)
        basis = config.operating_point.bytes_basis
        mark_frontier(result.variants, result.primary_metric, result.latency_metric, basis)
        op = choose_operating_point(
            result.variants, config.operating_point, result.primary_metric, result.latency_metric
        )
        result.operating_point = op.to_json()
        result.frontier = [v.name for v in result.variants if v.pareto]
        result.output_dir = str(out_dir)
        _write(out_dir, workspace, result, config, inputs)
    return result
