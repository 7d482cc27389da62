"""The state of a benchmark run: the data, the settings, and every system measured so far.

`domainfit.evaluation.systems.SystemRunner` fills it (BM25, dense, hybrids,
reranking); the plug-ins that add systems of their own (chunked retrieval,
`domainfit.evaluation.chunk_bench`; domain-specific similarity,
`domainfit.evaluation.similarity`) read and extend it through `add`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domainfit.core.types import Qrels, Run
from domainfit.data.beir import BeirDataset
from domainfit.data.config import ChunkingConfig
from domainfit.evaluation.config import BenchConfig
from domainfit.evaluation.metrics import evaluate
from domainfit.text.config import DEFAULT_TEXT, TextConfig


@dataclass
class SystemResult:
    """One evaluated system: its name, kind, settings and mean metrics."""

    name: str
    kind: str
    config: dict[str, Any]
    metrics: dict[str, float]
    seconds: float


class Benchmark:
    """The systems measured on one evaluation split, with their runs, tuning records and notes.

    Inputs: the dataset, the evaluation qrels, the tuning qrels (or None), the
    bench config, the cache folder, optional display labels per model
    (default: a single model is unlabelled, several are labelled by their name)
    the ``[chunking]`` settings (None: no chunked systems) and the ``[text]``
    settings every retriever prepares texts under.
    """

    def __init__(
        self,
        dataset: BeirDataset,
        qrels: Qrels,
        tune: Qrels | None,
        config: BenchConfig,
        cache: Path,
        labels: dict[str, str] | None = None,
        chunking: ChunkingConfig | None = None,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        self.text = text
        self.dataset, self.qrels, self.tune, self.config, self.cache = (
            dataset,
            qrels,
            tune,
            config,
            cache,
        )
        self.runs: dict[str, Run] = {}
        self.systems: list[SystemResult] = []
        self.tuning: dict[str, Any] = {}
        self.notes: list[str] = []
        self.labels = labels or {}
        self.chunking_config = chunking  # [chunking]; None: no chunked systems (e.g. in eval)
        self.chunking: dict[str, Any] = {}  # per model label: chunked vs unchunked, the sweep
        self.similarity: dict[str, Any] = {}  # verdicts of the domain-specific similarity systems
        self.extra_labels: dict[str, dict[str, str]] = {}  # slice labels added by systems, by query

    def add(self, name: str, kind: str, run: Run, config: dict[str, Any], seconds: float) -> None:
        """Record a system's run and its mean metrics."""
        self.runs[name] = run
        metrics = evaluate(self.qrels, run, self.config.metrics)
        self.systems.append(SystemResult(name, kind, config, metrics, round(seconds, 3)))

    def score(self, qrels: Qrels, run: Run) -> float:
        """Return the primary metric of ``run`` on ``qrels``."""
        return evaluate(qrels, run, [self.config.primary_metric])[self.config.primary_metric]
