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

import os
import platform
from pathlib import Path
from typing import Any, ClassVar

from domainfit import __version__
from domainfit.compress.config import CompressConfig
from domainfit.compress.pareto import choose_operating_point, mark_frontier
from domainfit.compress.results import CompressResult
from domainfit.compress.sweep import run_sweep
from domainfit.core.errors import InputError
from domainfit.core.files import atomic_write_json, atomic_write_text
from domainfit.core.workspace import Workspace
from domainfit.data.beir import BeirDataset, load_beir
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.render.compress import summary_markdown
from domainfit.render.frontier import plot_frontier
from domainfit.stages.contract import SHIP, Previous, ReportSection, Stage, StaleOutput, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Model, Section, Text, Value, fingerprint
from domainfit.text.config import DEFAULT_TEXT, TextConfig

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


def _measure(dataset: BeirDataset, workspace: Workspace, config: CompressConfig, text: TextConfig) -> CompressResult:
    """Encode (through the cache) and sweep every configuration."""
    from domainfit.compress.embed import encode_corpus, encode_split_queries, open_retriever

    retriever = open_retriever(
        config.model,
        workspace.cache_dir / "embeddings",
        batch_size=config.batch_size,
        max_seq_length=config.max_seq_length,
        text=text,
        encode=config.encode,
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


def _write(out: Path, result: CompressResult, config: CompressConfig, data: Path) -> None:
    """Write every artifact into the (staged) folder ``out``."""
    atomic_write_json(out / "results.json", result.to_json())
    atomic_write_text(out / "summary.md", summary_markdown(result))
    plot_frontier(
        result.variants,
        result.primary_metric,
        result.latency_metric,
        result.operating_point.get("name"),
        out / "frontier.png",
        title=f"{result.model} on '{result.split}': {result.primary_metric} retention vs bytes and latency",
        basis=config.operating_point.bytes_basis,
    )
    atomic_write_json(out / "config.json", {"compress": config.model_dump(), "data": str(data)})


class CompressStage(Stage[CompressResult]):
    """Sweep compression configurations of one model, draw the frontier and choose an operating point.

    Inputs: the workspace, the BEIR folder, the ``[compress]`` settings, the
    largest accepted JSONL record and the ``[text]`` settings. Re-running with
    the same data, model and sweep settings re-uses the measured sweep; when only
    the operating-point rule changed, the point is re-chosen and the artifacts
    re-written without re-measuring. Output: the `CompressResult`. Raises
    `InputError` on bad data or an unknown split (nothing is written then).
    """

    name: ClassVar[str] = "compress"
    command: ClassVar[str | None] = "compress"
    panel: ClassVar[str] = SHIP
    reads: ClassVar[tuple[str, ...]] = ("train",)
    report: ClassVar[tuple[ReportSection, ...]] = (ReportSection("summary.md", 50),)
    report_config: ClassVar[tuple[str, ...]] = ("compress",)

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str,
        config: CompressConfig,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        super().__init__(workspace, data)
        self.config, self.max_line_bytes, self.text = config, max_line_bytes, text

    def check(self) -> None:
        """Load the data and check the evaluated split."""
        from domainfit.compress.embed import split_qrels

        assert self.data is not None
        if not self.data.is_dir():
            raise InputError(self.data, 0, "-", "not a folder (expected a BEIR folder with corpus.jsonl)")
        self.dataset = load_beir(self.data, max_line_bytes=self.max_line_bytes, text=self.text)
        split_qrels(self.dataset, self.config.split)

    def inputs(self) -> dict[str, Input]:
        """Declare what the sweep depends on, and the operating-point rule apart from it."""
        assert self.data is not None
        return {
            "data": Value(str(self.data)),
            "data_sha256": DataFiles(self.data),
            "model_sha256": Model(self.config.model),
            "sweep": Section(self.config, exclude=frozenset({"operating_point"})),
            "operating_point": Section(self.config.operating_point),
            "domainfit_version": Value(__version__),
            "text_normalization": Text(self.text, only_normalization=True),
        }

    def _reusable(self, previous: Previous | None) -> CompressResult | None:
        """Return the earlier sweep when only the operating-point rule changed since (else None)."""
        if previous is None:
            return None
        current = fingerprint(self.inputs())
        if {k: v for k, v in previous.inputs.items() if k != "operating_point"} != {
            k: v for k, v in current.items() if k != "operating_point"
        }:
            return None
        try:
            return self.load(previous.folder)
        except StaleOutput:
            return None

    def compute(self, out: Path, previous: Previous | None) -> CompressResult:
        """Measure the sweep (or re-use the earlier one), mark the frontier, choose the point, write everything."""
        config = self.config
        result = self._reusable(previous) or _measure(self.dataset, self.workspace, config, self.text)
        basis = config.operating_point.bytes_basis
        mark_frontier(result.variants, result.primary_metric, result.latency_metric, basis)
        op = choose_operating_point(
            result.variants, config.operating_point, result.primary_metric, result.latency_metric
        )
        result.operating_point = op.to_json()
        result.frontier = [v.name for v in result.variants if v.pareto]
        result.output_dir = str(self.folder)
        result.up_to_date = False
        assert self.data is not None
        _write(out, result, config, self.data)
        return result

    def outputs(self, out: Path) -> list[str]:
        """List the results, summary, frontier plot and config."""
        return list(OUTPUTS)

    def load(self, folder: Path) -> CompressResult:
        """Read ``results.json`` back."""
        return read_result(folder / "results.json", CompressResult.from_json)


def run_compress(
    data: Path,
    workspace: Workspace,
    config: CompressConfig,
    *,
    force: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
    text: TextConfig = DEFAULT_TEXT,
) -> CompressResult:
    """Run the compress stage over a BEIR folder and write its artifacts into the workspace (see `CompressStage`).

    ``force`` re-measures even when nothing changed. Output: the `CompressResult`
    (``up_to_date`` when nothing had to be redone).
    """
    stage = CompressStage(workspace, data, config, max_line_bytes=max_line_bytes, text=text)
    return run_stage(stage, force=force).result
