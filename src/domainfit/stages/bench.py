"""The ``bench`` stage: BM25, dense, hybrid and reranked baselines on one split.

Input: a BEIR folder and a `BenchConfig`. Output, in ``<workspace>/bench/``:
``metrics.json`` (overall, per slice, significance vs BM25, hybrid tuning,
similarity verdicts, languages and cross-language queries, the text normalisation applied),
``runs/<system>.trec``, ``per_query.json``, ``summary.md``, ``config.json``
(resolved) and ``manifest.json``. Re-running with unchanged data and config is a no-op.
The systems are run by `domainfit.evaluation.systems`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from domainfit import __version__
from domainfit.core.files import atomic_write_json, atomic_write_text
from domainfit.core.types import Qrels
from domainfit.core.workspace import Workspace
from domainfit.data.beir import BeirDataset, load_beir
from domainfit.data.config import ChunkingConfig
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.data.judged import check_evaluated_split, tuning_qrels
from domainfit.data.splits import check_qrels_leakage
from domainfit.evaluation.config import BenchConfig
from domainfit.evaluation.metrics import per_query
from domainfit.evaluation.results import BenchResult
from domainfit.evaluation.significance import compare_runs
from domainfit.evaluation.trec import write_trec_run
from domainfit.render.bench_summary import markdown_summary
from domainfit.stages.contract import MEASURE, Previous, ReportSection, Stage, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Section, Text, Value
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from domainfit.evaluation.systems import SystemRunner


class BenchStage(Stage[BenchResult]):
    """Measure the baselines of ``[bench]`` on one split of a BEIR folder.

    Inputs: the workspace, the BEIR folder, the bench settings, the largest
    accepted JSONL record, the ``[chunking]`` settings (None: no chunked
    systems; otherwise long documents are reported, and chunked rows and a size
    x overlap sweep are added as configured, see `domainfit.evaluation.chunk_bench`)
    and the ``[text]`` settings every text is prepared under. Output: the `BenchResult`.
    """

    name: ClassVar[str] = "bench"
    command: ClassVar[str | None] = "bench"
    panel: ClassVar[str] = MEASURE
    report: ClassVar[tuple[ReportSection, ...]] = (ReportSection("summary.md", 10),)
    report_config: ClassVar[tuple[str, ...]] = ("bench", "chunking", "text")

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str,
        config: BenchConfig,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        chunking: ChunkingConfig | None = None,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        super().__init__(workspace, data)
        self.config, self.max_line_bytes, self.chunking, self.text = config, max_line_bytes, chunking, text
        self.dataset: BeirDataset | None = None
        self.qrels: Qrels = {}
        self.tune: Qrels | None = None

    def check(self) -> None:
        """Load and validate the data, the evaluated split and the tuning split."""
        assert self.data is not None
        self.dataset = load_beir(self.data, max_line_bytes=self.max_line_bytes, text=self.text)
        self.qrels = check_evaluated_split(self.dataset, self.config.split, self.data / "qrels")
        self.tune, _, _ = tuning_qrels(self.dataset, self.config.tune_split)

    def inputs(self) -> dict[str, Input]:
        """Declare the data, the bench, text and (when given) chunking settings."""
        assert self.data is not None
        inputs: dict[str, Input] = {
            "data": Value(str(self.data)),
            "data_sha256": DataFiles(self.data),
            "config": Section(self.config),
            "domainfit_version": Value(__version__),
            "text": Text(self.text),
        }
        if self.chunking is not None:
            inputs["chunking"] = Section(self.chunking)
        return inputs

    def _runner(self) -> SystemRunner:
        """Return the system runner over the loaded data, its tuning split resolved and its notes started."""
        from domainfit.evaluation.systems import SystemRunner  # numpy and the retrievers load when bench runs

        assert self.dataset is not None
        _, tune_split, note = tuning_qrels(self.dataset, self.config.tune_split)
        tuned = self.config if note is None else self.config.model_copy(update={"tune_split": tune_split})
        cache = self.workspace.cache_dir
        bench = SystemRunner(self.dataset, self.qrels, self.tune, tuned, cache, chunking=self.chunking, text=self.text)
        if note is not None:
            bench.notes.append(note)
        queries = self.dataset.queries
        leaks = check_qrels_leakage(self.dataset.qrels, queries) if len(self.dataset.qrels) > 1 else []
        if leaks:
            bench.notes.append(
                f"{len(leaks)} query families cross splits (e.g. {leaks[0].family!r} in {'/'.join(leaks[0].splits)}): "
                "scores may be optimistic; re-split with `domainfit split`"
            )
        return bench

    def compute(self, out: Path, previous: Previous | None) -> BenchResult:
        """Run every system, test significance against BM25, and write the runs, metrics and summary."""
        from domainfit.evaluation.systems import profile_languages, slices_of

        assert self.dataset is not None
        config, qrels = self.config, self.qrels
        bench = self._runner()
        bench.run_all()
        languages = profile_languages(bench)
        significance = compare_runs(
            qrels, bench.runs, baseline="bm25", metrics=config.metrics, test=config.significance_test
        ).to_dict()
        result = BenchResult(
            split=config.split,
            n_queries=len(qrels),
            n_documents=len(self.dataset.corpus),
            systems=bench.systems,
            slices=slices_of(bench, config.metrics),
            significance=significance,
            hybrid_tuning=bench.tuning,
            output_dir=str(self.folder),
            notes=bench.notes,
            similarity=bench.similarity,
            languages=languages,
            chunking=bench.chunking,
        )
        for name, run in bench.runs.items():
            write_trec_run(out / "runs" / f"{name.replace(':', '__')}.trec", run, tag=name)
        atomic_write_json(
            out / "per_query.json", {name: per_query(qrels, run, config.metrics) for name, run in bench.runs.items()}
        )
        atomic_write_json(out / "metrics.json", result.to_json())
        resolved = {"bench": config.model_dump(), "text": self.text.model_dump(), "data": str(self.data)}
        if self.chunking is not None:
            resolved["chunking"] = self.chunking.model_dump()
        atomic_write_json(out / "config.json", resolved)
        atomic_write_text(out / "summary.md", markdown_summary(result, config.primary_metric))
        return result

    def outputs(self, out: Path) -> list[str]:
        """List the metrics, per-query scores, config, summary and every run file."""
        runs = [str(p.relative_to(out)) for p in sorted((out / "runs").glob("*.trec"))]
        return ["metrics.json", "per_query.json", "config.json", "summary.md", *runs]

    def load(self, folder: Path) -> BenchResult:
        """Read ``metrics.json`` back."""
        return read_result(folder / "metrics.json", BenchResult.from_json)


def run_bench(
    data: Path,
    workspace: Workspace,
    config: BenchConfig,
    *,
    force: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
    chunking: ChunkingConfig | None = None,
    text: TextConfig = DEFAULT_TEXT,
) -> BenchResult:
    """Run the bench stage over a BEIR folder and write its artifacts into the workspace (see `BenchStage`).

    ``force`` re-runs even when nothing changed. Output: the `BenchResult`.
    Raises `InputError` on bad data (nothing is written then).
    """
    stage = BenchStage(workspace, data, config, max_line_bytes=max_line_bytes, chunking=chunking, text=text)
    return run_stage(stage, force=force).result
