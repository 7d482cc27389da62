"""The ``eval`` stage: the fine-tuned model against its base on the test split.

Input: a BEIR folder, the workspace (``train/model`` by default) and an
`EvalConfig`. Output, in ``<workspace>/eval/``: ``metrics.json`` (BM25, dense
and hybrid for both models, per slice, paired significance fine-tuned vs base,
queries that improved and got worse, the forgetting check), ``runs/*.trec``,
``summary.md`` and ``manifest.json``. With multilingual data, the slices
include the query ``language`` and ``cross_language`` (see `domainfit.evaluation.systems.profile_languages`).

With ``[chunking]`` on, both models are also evaluated chunked, exactly as ``bench``
does it (``dense-chunked:<model>``, ``hybrid-rrf-chunked:<model>``,
``hybrid-convex-chunked:<model>``: documents ranked by their chunks, the main
setting only, no sweep), so before/after compare with bench's chunked rows; lift and
significance are reported for the chunked kinds too, and ``metrics.json`` →
``chunking`` records the settings per model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from domainfit import __version__
from domainfit.core.errors import InputError
from domainfit.core.files import atomic_write_json, atomic_write_text
from domainfit.core.models import resolve_model
from domainfit.core.types import Qrels, Run
from domainfit.core.workspace import Workspace
from domainfit.data.beir import BeirDataset, load_beir
from domainfit.data.config import ChunkingConfig
from domainfit.data.general_set import general_dataset
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.data.judged import check_evaluated_split, tuning_qrels
from domainfit.evaluation.benchmark import SystemResult
from domainfit.evaluation.config import BenchConfig, EvalConfig
from domainfit.evaluation.deployable import Deployable, deployable
from domainfit.evaluation.forgetting import cosine_of, overlap_of
from domainfit.evaluation.level_row import LEVEL_FILE, documents_per_second, folder_bytes, level_row, read_rows
from domainfit.evaluation.metrics import evaluate, per_query
from domainfit.evaluation.results import EvalResult
from domainfit.evaluation.significance import compare_runs
from domainfit.evaluation.systems import SystemRunner, profile_languages, slices_of
from domainfit.evaluation.trec import write_trec_run
from domainfit.render.eval_summary import BASE, MERGED, TUNED, eval_summary
from domainfit.render.levels import levels_table
from domainfit.retrieval.dense import DenseRetriever
from domainfit.retrieval.ranking import ranked_ids
from domainfit.stages.contract import TRAIN, Previous, ReportSection, Stage, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Model, Section, Text, Value
from domainfit.text.config import DEFAULT_TEXT, TextConfig


def _tuned_model(workspace: Workspace, cfg: EvalConfig) -> str:
    """Return the fine-tuned model to evaluate, checking that it exists."""
    path = cfg.model or str(workspace.stage_dir("train") / "model")
    if cfg.model is None and not Path(path).is_dir():
        raise InputError(
            path, 0, "model", "no fine-tuned model in the workspace: run `domainfit train` or pass --model"
        )
    return path


def _examples(
    dataset: BeirDataset, qrels: Qrels, base: Run, tuned: Run, n: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the ``n`` queries whose NDCG@10 rose and fell most, with the first relevant document's rank."""
    before = per_query(qrels, base, ["ndcg@10"])["ndcg@10"]
    after = per_query(qrels, tuned, ["ndcg@10"])["ndcg@10"]

    def rank(run: Run, qid: str) -> int | None:
        order = ranked_ids(run.get(qid, {}))
        hits = [i + 1 for i, d in enumerate(order) if qrels[qid].get(d, 0) > 0]
        return hits[0] if hits else None

    rows: list[dict[str, Any]] = []
    for qid in before:
        delta = after[qid] - before[qid]
        if delta:
            relevant = next((d for d, g in qrels[qid].items() if g > 0), None)
            rows.append(
                {
                    "query_id": qid,
                    "query": dataset.queries[qid].text,
                    "relevant": dataset.corpus[relevant].title or relevant if relevant else None,
                    "ndcg@10_base": before[qid],
                    "ndcg@10_fine_tuned": after[qid],
                    "delta": delta,
                    "rank_base": rank(base, qid),
                    "rank_fine_tuned": rank(tuned, qid),
                }
            )
    rows.sort(key=lambda r: (float(r["delta"]), str(r["query_id"])))
    improved = [r for r in reversed(rows) if r["delta"] > 0][:n]
    worsened = [r for r in rows if r["delta"] < 0][:n]
    return improved, worsened


def head_tail_labels(dataset: BeirDataset, qrels: Qrels, head_share: float = 0.5) -> tuple[dict[str, str], str]:
    """Label each judged query ``head`` or ``tail`` and say by what.

    With a ``frequency`` (or ``count``) query field, the most frequent queries
    making up ``head_share`` of the total frequency are the head. Otherwise
    queries are grouped by family (``family`` field, else their first relevant
    document) and the largest groups covering ``head_share`` of the queries are
    the head: the common topics versus the long tail.
    """
    queries = [dataset.queries[qid] for qid in qrels]
    key = next(
        (k for k in ("frequency", "count") if all(isinstance(q.metadata.get(k), int | float) for q in queries)), None
    )
    if key:
        weights = {q.id: float(q.metadata[key]) for q in queries}
        basis = f"query {key}"
    else:
        groups: dict[str, list[str]] = {}
        for q in queries:
            group = q.metadata.get("family") or next(iter(qrels[q.id]), q.id)
            groups.setdefault(str(group), []).append(q.id)
        weights = {qid: float(len(members)) for members in groups.values() for qid in members}
        basis = "family size"
    total = sum(weights.values()) if key else float(len(weights))
    labels, covered = {}, 0.0
    for qid in sorted(weights, key=lambda q: (-weights[q], q)):
        labels[qid] = "head" if covered < head_share * total else "tail"
        covered += weights[qid] if key else 1.0
    return labels, basis


def _head_tail(runner: SystemRunner, qrels: Qrels, metrics: list[str]) -> dict[str, Any]:
    """Return mean metrics of head and tail queries for every system, and what head/tail means here."""
    labels, basis = head_tail_labels(runner.dataset, qrels)
    out: dict[str, Any] = {
        "basis": basis,
        "n": {g: sum(1 for v in labels.values() if v == g) for g in ("head", "tail")},
    }
    for name, run in runner.runs.items():
        scores = per_query(qrels, run, metrics)
        out[name] = {
            group: {m: _mean([s for q, s in scores[m].items() if labels.get(q) == group]) for m in metrics}
            for group in ("head", "tail")
        }
    return out


def _mean(values: list[float]) -> float:
    """Return the mean of ``values`` (0.0 for none)."""
    return sum(values) / len(values) if values else 0.0


def _variants(workspace: Workspace, cfg: EvalConfig, tuned_model: str) -> dict[str, str]:
    """Return the trained models to check for forgetting: the fine-tuned one and, when train saved it, the merge."""
    merged = workspace.stage_dir("train") / "merged"
    out = {TUNED: tuned_model}
    if cfg.model is None and merged.is_dir():
        out[MERGED] = str(merged)
    return out


def _train_options(workspace: Workspace, cfg: EvalConfig) -> dict[str, Any] | None:
    """Return what the train run did against forgetting (from ``train/result.json``), when it evaluated that model."""
    path = workspace.stage_dir("train") / "result.json"
    if cfg.model is not None or not path.is_file():
        return None
    result = json.loads(path.read_text())
    options = dict(result.get("against_forgetting") or {})
    options["separate_encoders"] = bool(result.get("separate_encoders"))
    options["merge_weight"] = result.get("merge_weight")
    return options


def _general_set(cfg: EvalConfig, text: TextConfig) -> BeirDataset | None:
    """Load the general-domain set of the forgetting check (None when ``eval.general`` turns it off)."""
    if not cfg.general or cfg.general.lower() == "none":
        return None
    return general_dataset(cfg.general, text)


def _forgetting(
    cfg: EvalConfig,
    base_model: str,
    variants: dict[str, str],
    cache: Path,
    general: BeirDataset | None,
    text: TextConfig = DEFAULT_TEXT,
) -> dict[str, Any]:
    """Forgetting on the general set (`_general_set`), for the fine-tuned model and every other variant (the merge).

    Per variant: the NDCG@10 drop (when the set has qrels; the bundled pairs do),
    the nearest-neighbour overlap with the base and the mean cosine to the base
    embeddings. The top-level ``labelled`` / ``neighbour_overlap`` entries describe the fine-tuned model.
    """
    if general is None:
        return {"measured": False, "reason": "no general-domain set given (eval.general / --general)"}
    out: dict[str, Any] = {"measured": True, "general": cfg.general if cfg.general == "bundled" else str(general.root)}
    split = next(iter(general.qrels), None)
    texts = [d.full_text() for d in general.corpus.values()][: cfg.max_general_texts]
    vectors: dict[str, Any] = {}
    scores: dict[str, float] = {}
    for label, name in ((BASE, base_model), *variants.items()):
        dense = DenseRetriever(
            name,  # a name or folder: an adapter folder maps the queries, its documents are the base model's
            max_seq_length=cfg.max_seq_length,
            cache_dir=cache / "embeddings",
            batch_size=cfg.batch_size,
            text=text,
            encode=cfg.encode,
        )
        vectors[label] = dense.encode_documents(texts)
        if split is not None:
            dense.index(general.corpus)
            queries = {qid: general.queries[qid].text for qid in general.qrels[split]}
            scores[label] = evaluate(general.qrels[split], dense.search(queries, cfg.depth), ["ndcg@10"])["ndcg@10"]
    per_variant: dict[str, dict[str, float | None]] = {}
    for label in variants:
        per_variant[label] = {
            "neighbour_overlap": overlap_of(vectors[BASE], vectors[label], k=cfg.neighbours_k)[0],
            "cosine_to_base": cosine_of(vectors[BASE], vectors[label])  # a static model may have another width
            if vectors[BASE].shape == vectors[label].shape
            else None,
        }
        if split is not None:
            per_variant[label]["ndcg@10_drop"] = scores[BASE] - scores[label]
    if split is not None:
        out["labelled"] = {"split": split, "ndcg@10": scores, "drop": scores[BASE] - scores[TUNED]}
    out["neighbour_overlap"] = {
        "k": cfg.neighbours_k,
        "texts": len(texts),
        "mean": per_variant[TUNED]["neighbour_overlap"],
    }
    out["cosine_to_base"] = per_variant[TUNED]["cosine_to_base"]
    out["variants"] = per_variant
    return out


#: Documents whose encoding is timed for the levels table.
SPEED_SAMPLE = 64
#: System kinds compared fine-tuned vs base (the chunked ones exist only when chunking is on).
LIFT_KINDS = ("dense", "hybrid-rrf", "hybrid-convex", "dense-chunked", "hybrid-rrf-chunked", "hybrid-convex-chunked")
#: System kinds given a paired significance test.
SIGNIFICANCE_KINDS = ("dense", "hybrid-convex", "dense-chunked", "hybrid-convex-chunked")


def _lift(systems: list[SystemResult]) -> dict[str, dict[str, float]]:
    """Return fine-tuned (and merged) minus base, per retrieval kind and metric."""
    by_name = {s.name: s.metrics for s in systems}
    lift = {}
    for kind in LIFT_KINDS:
        base = by_name.get(f"{kind}:{BASE}")
        for label, key in ((TUNED, kind), (MERGED, f"{kind} ({MERGED})")):
            other = by_name.get(f"{kind}:{label}")
            if base and other:
                lift[key] = {m: other[m] - base[m] for m in base}
    return lift


def _deployable(
    runner: SystemRunner,
    dataset: BeirDataset,
    tune: Qrels | None,
    bench_cfg: BenchConfig,
    workspace: Workspace,
    cfg: EvalConfig,
    chunked: ChunkingConfig | None,
) -> Deployable:
    """Choose what to deploy among every measured system on the tuning split, and prove it on test.

    Every system is run again on the tuning split's queries (document embeddings
    come from the cache, so this costs the queries only); without a tuning split
    the choice falls back to test and says so.
    """
    selection = None
    if tune:
        dev = SystemRunner(
            dataset,
            tune,
            tune,
            bench_cfg,
            workspace.cache_dir,
            labels=runner.labels,
            chunking=chunked,
            text=runner.text,
        )
        dev.run_all()
        selection = {s.name: s.metrics[cfg.primary_metric] for s in dev.systems}
    return deployable(
        selection,
        cfg.tune_split or "dev",
        runner.qrels,
        runner.runs,
        cfg.primary_metric,
        significance_test=cfg.significance_test,
        base_label=BASE,
    )


class EvalStage(Stage[EvalResult]):
    """Evaluate the fine-tuned model (and the merge) against its base on the test split.

    Inputs: the workspace (``train/model`` by default), the BEIR folder, the
    ``[eval]`` settings, the ``[chunking]`` settings (None or ``none``: no chunked
    rows; otherwise the dense systems are also evaluated chunked, as in
    ``bench``, without the sweep), the largest JSONL record and the ``[text]``
    settings every text is prepared under. Output: the `EvalResult`. Raises
    `InputError` on bad data or a missing model (nothing is written then).
    """

    name: ClassVar[str] = "eval"
    command: ClassVar[str | None] = "eval"
    panel: ClassVar[str] = TRAIN
    reads: ClassVar[tuple[str, ...]] = ("train",)
    report: ClassVar[tuple[ReportSection, ...]] = (ReportSection("summary.md", 40), ReportSection("levels.md", 41))

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str,
        cfg: EvalConfig,
        *,
        chunking: ChunkingConfig | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        super().__init__(workspace, data)
        self.cfg, self.max_line_bytes, self.text = cfg, max_line_bytes, text
        self.chunked = chunking.model_copy(update={"sweep": False}) if chunking and chunking.method != "none" else None

    def check(self) -> None:
        """Find the fine-tuned model; load the data, the evaluated split and the general-domain set."""
        assert self.data is not None
        self.tuned_model = _tuned_model(self.workspace, self.cfg)
        self.merged = self.workspace.stage_dir("train") / "merged"
        self.dataset = load_beir(self.data, max_line_bytes=self.max_line_bytes, text=self.text)
        check_evaluated_split(self.dataset, self.cfg.split, self.data / "qrels")
        self.general = _general_set(self.cfg, self.text)  # a bad general-domain set fails here, before any model

    def inputs(self) -> dict[str, Input]:
        """Declare the data, the fine-tuned (and merged) model, the settings and (when on) chunking."""
        assert self.data is not None
        inputs: dict[str, Input] = {
            "data_sha256": DataFiles(self.data),
            "model_sha256": Model(self.tuned_model),
            "merged_sha256": Model(str(self.merged)) if self.merged.is_dir() else Value(None, of="model"),
            "config": Section(self.cfg),
            "domainfit_version": Value(__version__),
            "text": Text(self.text),
        }
        if self.chunked is not None:
            inputs["chunking"] = Section(self.chunked)
        return inputs

    def compute(self, out: Path, previous: Previous | None) -> EvalResult:
        """Run base, fine-tuned (and merged) systems; compare; measure forgetting; write runs, metrics, summary."""
        cfg, dataset, workspace, text, chunked = self.cfg, self.dataset, self.workspace, self.text, self.chunked
        tuned_model, merged, general = self.tuned_model, self.merged, self.general
        models = [cfg.base_model, tuned_model] + ([str(merged)] if cfg.model is None and merged.is_dir() else [])
        bench_cfg = BenchConfig(
            split=cfg.split, tune_split=cfg.tune_split, models=models, depth=cfg.depth,
            metrics=cfg.metrics, primary_metric=cfg.primary_metric, batch_size=cfg.batch_size,
            max_seq_length=cfg.max_seq_length, significance_test=cfg.significance_test, encode=cfg.encode,
        )  # fmt: skip
        qrels = dataset.qrels[cfg.split]
        tune, tune_split, tune_note = tuning_qrels(dataset, cfg.tune_split)
        if tune_note is not None:  # the fine-tuned model saw these queries in training: its hybrid weight is optimistic
            tune_note += "; the fine-tuned model was trained on them, so its hybrid weight is optimistic"
            bench_cfg = bench_cfg.model_copy(update={"tune_split": tune_split})
        runner = SystemRunner(
            dataset,
            qrels,
            tune,
            bench_cfg,
            workspace.cache_dir,
            labels={cfg.base_model: BASE, tuned_model: TUNED, str(merged): MERGED},
            chunking=chunked,
            text=text,
        )
        runner.run_all()
        languages = profile_languages(runner)
        significance = {
            kind: compare_runs(
                qrels,
                {f"{kind}:{BASE}": runner.runs[f"{kind}:{BASE}"], f"{kind}:{TUNED}": runner.runs[f"{kind}:{TUNED}"]},
                metrics=cfg.metrics,
                test=cfg.significance_test,
            ).to_dict()
            for kind in SIGNIFICANCE_KINDS
            if f"{kind}:{BASE}" in runner.runs and f"{kind}:{TUNED}" in runner.runs
        }
        if tune_note is not None:
            runner.notes.append(tune_note)
        selection = tune if tune_note is None else None  # never choose what to deploy on queries trained on
        chosen = _deployable(runner, dataset, selection, bench_cfg, workspace, cfg, chunked)
        improved, worsened = _examples(
            dataset, qrels, runner.runs[f"dense:{BASE}"], runner.runs[f"dense:{TUNED}"], cfg.examples
        )
        result = EvalResult(
            split=cfg.split, n_queries=len(qrels), n_documents=len(dataset.corpus), base_model=cfg.base_model,
            model=tuned_model, systems=runner.systems, slices=slices_of(runner, cfg.metrics),
            significance=significance, lift=_lift(runner.systems), improved=improved, worsened=worsened,
            forgetting=_forgetting(
                cfg, cfg.base_model, _variants(workspace, cfg, tuned_model), workspace.cache_dir, general, text
            ),
            head_tail=_head_tail(runner, qrels, cfg.metrics),
            output_dir=str(self.folder), notes=runner.notes, languages=languages, chunking=runner.chunking,
        )  # fmt: skip
        result.deployable = chosen.to_json()
        result.forgetting["train_options"] = _train_options(workspace, cfg)
        if not result.forgetting["measured"]:
            result.notes.append(f"forgetting not measured: {result.forgetting['reason']}")
        for name, run in runner.runs.items():
            write_trec_run(out / "runs" / f"{name.replace(':', '__')}.trec", run, tag=name)
        atomic_write_json(out / "metrics.json", result.to_json())
        atomic_write_text(out / "summary.md", eval_summary(result, cfg.primary_metric))
        self._level_row(out, result)
        return result

    def _level_row(self, out: Path, result: EvalResult) -> None:
        """Write this run's row of the levels table (``level-<level>.json``) and ``levels.md`` over every kept row."""
        assert self.data is not None
        cfg = self.cfg
        train_path = self.workspace.stage_dir("train") / "result.json"
        train = json.loads(train_path.read_text()) if cfg.model is None and train_path.is_file() else None
        texts = [d.full_text() for d in list(self.dataset.corpus.values())[:SPEED_SAMPLE]]
        speed = {
            label: documents_per_second(DenseRetriever(name, max_seq_length=cfg.max_seq_length).model, texts)
            for label, name in (("base", cfg.base_model), ("level", self.tuned_model))
        }
        data_sha = DataFiles(self.data).fingerprint()
        row = level_row(
            result.to_json(), train, speed=speed, model_bytes=folder_bytes(self.tuned_model),
            base_bytes=folder_bytes(resolve_model(cfg.base_model).path), data_sha256=data_sha,
            metric=cfg.primary_metric,
        )  # fmt: skip
        atomic_write_json(out / LEVEL_FILE.format(row["level"]), row)
        atomic_write_text(out / "levels.md", levels_table(read_rows(out, data_sha)))

    def keep(self) -> tuple[str, ...]:
        """Keep the rows of the levels that ran before (each train level, evaluated on this data)."""
        return (LEVEL_FILE.format("*"),)

    def outputs(self, out: Path) -> list[str]:
        """List the metrics and the summary."""
        return ["metrics.json", "summary.md"]

    def load(self, folder: Path) -> EvalResult:
        """Read ``metrics.json`` back."""
        return read_result(folder / "metrics.json", EvalResult.from_json)


def run_eval(
    data: Path,
    workspace: Workspace,
    cfg: EvalConfig,
    *,
    force: bool = False,
    chunking: ChunkingConfig | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    text: TextConfig = DEFAULT_TEXT,
) -> EvalResult:
    """Evaluate base vs fine-tuned on the test split and write ``<workspace>/eval`` (see `EvalStage`).

    ``force`` re-runs even when nothing changed. Output: the `EvalResult`.
    """
    stage = EvalStage(workspace, data, cfg, chunking=chunking, max_line_bytes=max_line_bytes, text=text)
    return run_stage(stage, force=force).result
