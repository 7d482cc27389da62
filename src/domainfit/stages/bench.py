"""The ``bench`` stage: BM25, dense, hybrid and reranked baselines on one split.

Input: a BEIR folder and a `BenchConfig`. Output, in ``<workspace>/bench/``:
``metrics.json`` (overall, per slice, significance vs BM25, hybrid tuning,
similarity verdicts, languages and cross-language queries, the text normalisation applied),
``runs/<system>.trec``, ``per_query.json``, ``summary.md``, ``config.json``
(resolved) and ``manifest.json``. Re-running with unchanged data and config is a no-op.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from domainfit import __version__
from domainfit.core.errors import InputError
from domainfit.core.files import atomic_write_json, atomic_write_text, sha256_file, staged_dir
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
from domainfit.evaluation.systems import SystemRunner, profile_languages, slices_of
from domainfit.evaluation.trec import write_trec_run
from domainfit.render.bench_summary import markdown_summary
from domainfit.text.config import DEFAULT_TEXT, TextConfig

STAGE = "bench"


def data_fingerprint(root: Path) -> str:
    """Hash the files of a BEIR folder (corpus, queries, every qrels split)."""
    digest = hashlib.sha256()
    files = [root / "corpus.jsonl", root / "queries.jsonl", *sorted((root / "qrels").glob("*.tsv"))]
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def _load(
    root: Path, config: BenchConfig, max_line_bytes: int, text: TextConfig
) -> tuple[BeirDataset, Qrels, Qrels | None]:
    """Load and validate the dataset; return it with the evaluation and tuning qrels."""
    dataset = load_beir(root, max_line_bytes=max_line_bytes, text=text)
    qrels = check_evaluated_split(dataset, config.split, root / "qrels")
    tune, _, _ = tuning_qrels(dataset, config.tune_split)
    return dataset, qrels, tune


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
    """Run the bench stage over a BEIR folder and write its artifacts into the workspace.

    Inputs: the BEIR folder, the workspace, the resolved bench config,
    ``force`` to re-run even when nothing changed, the largest accepted
    JSONL record in bytes and the ``[chunking]`` settings (None: no chunked
    systems; otherwise long documents are reported, and chunked rows and a
    size x overlap sweep are added as configured, see `domainfit.evaluation.chunk_bench`)
    and the ``[text]`` settings every text is prepared under.
    Output: the `BenchResult`.
    Raises `InputError` on bad data (nothing is written then).
    """
    root = Path(data).expanduser().resolve()
    workspace.attach_data(root)  # a workspace inside, above or equal to the data is refused
    if not root.is_dir():
        raise InputError(root, 0, "-", "not a folder (expected a BEIR folder with corpus.jsonl)")
    out_dir = workspace.stage_dir(STAGE)
    inputs = {
        "data": str(root),
        "data_sha256": data_fingerprint(root),
        "config": config.model_dump(),
        "domainfit_version": __version__,
        "text": text.fingerprint(),
    }
    if chunking is not None:
        inputs["chunking"] = chunking.model_dump()
    manifest = out_dir / "manifest.json"
    dataset, qrels, tune = _load(root, config, max_line_bytes, text)
    with workspace.lock():  # the up-to-date check runs under the lock, so two runs cannot race
        if not force and manifest.is_file() and (out_dir / "metrics.json").is_file():
            previous = json.loads(manifest.read_text())
            if previous.get("inputs") == inputs:
                result = BenchResult.from_json(json.loads((out_dir / "metrics.json").read_text()))
                result.up_to_date = True
                return result
        _, tune_split, note = tuning_qrels(dataset, config.tune_split)
        tuned = config if note is None else config.model_copy(update={"tune_split": tune_split})
        bench = SystemRunner(dataset, qrels, tune, tuned, workspace.cache_dir, chunking=chunking, text=text)
        if note is not None:
            bench.notes.append(note)
        leaks = check_qrels_leakage(dataset.qrels, dataset.queries) if len(dataset.qrels) > 1 else []
        if leaks:
            bench.notes.append(
                f"{len(leaks)} query families cross splits (e.g. {leaks[0].family!r} in {'/'.join(leaks[0].splits)}): "
                "scores may be optimistic; re-split with `domainfit split`"
            )
        bench.run_all()
        languages = profile_languages(bench)
        significance = compare_runs(
            qrels,
            bench.runs,
            baseline="bm25",
            metrics=config.metrics,
            test=config.significance_test,
        ).to_dict()
        result = BenchResult(
            split=config.split,
            n_queries=len(qrels),
            n_documents=len(dataset.corpus),
            systems=bench.systems,
            slices=slices_of(bench, config.metrics),
            significance=significance,
            hybrid_tuning=bench.tuning,
            output_dir=str(out_dir),
            notes=bench.notes,
            similarity=bench.similarity,
            languages=languages,
            chunking=bench.chunking,
        )
        with staged_dir(out_dir) as tmp:
            for name, run in bench.runs.items():
                write_trec_run(tmp / "runs" / f"{name.replace(':', '__')}.trec", run, tag=name)
            atomic_write_json(
                tmp / "per_query.json",
                {name: per_query(qrels, run, config.metrics) for name, run in bench.runs.items()},
            )
            atomic_write_json(tmp / "metrics.json", result.to_json())
            resolved = {"bench": config.model_dump(), "text": text.model_dump(), "data": str(root)}
            if chunking is not None:
                resolved["chunking"] = chunking.model_dump()
            atomic_write_json(tmp / "config.json", resolved)
            atomic_write_text(tmp / "summary.md", markdown_summary(result, config.primary_metric))
            outputs = ["metrics.json", "per_query.json", "config.json", "summary.md"]
            outputs += [str(p.relative_to(tmp)) for p in sorted((tmp / "runs").glob("*.trec"))]
            workspace.write_manifest(tmp, STAGE, inputs, outputs)
    return result
