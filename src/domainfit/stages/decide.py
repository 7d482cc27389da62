"""The ``decide`` stage: the decision before training (from ``bench``) or after it (from ``eval``).

Output, in ``<workspace>/decide/``: ``decision-before.json`` and ``.md``,
``decision-after.json`` and ``.md`` (each run writes its own and keeps the
other), ``decision.json`` (the latest) and ``manifest.json``. The folder is
written by two runs (before and after), so its manifest records the inputs
of each part (format version 2): ``{"before": {...}, "after": {...}}``. The
decision itself is `domainfit.evaluation.decision`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from domainfit import __version__
from domainfit.core.errors import InputError
from domainfit.core.files import atomic_write_json, atomic_write_text
from domainfit.core.workspace import Workspace
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.evaluation.config import DecideConfig
from domainfit.evaluation.decision import Decision, decide_after, decide_before, probe_cost
from domainfit.render.decision import render
from domainfit.stages.contract import MEASURE, Previous, ReportSection, Stage, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Section, Upstream, Value
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.train.config import TrainConfig

if TYPE_CHECKING:
    from domainfit.data.beir import BeirDataset

WHEN = ("auto", "before", "after")


def _read(path: Path, stage: str, metric: str | None = None) -> dict[str, Any]:
    """Read a stage's metrics.json or raise an error saying which stage to run; ``metric`` must be in it."""
    if not path.is_file():
        raise InputError(path, 0, "-", f"not found: run `domainfit {stage}` first")
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        computed = list(data["systems"][0]["metrics"]) if metric is not None else []
    except (ValueError, KeyError, IndexError, TypeError):
        raise InputError(path, 0, "-", f"not a metrics.json of `domainfit {stage}`: re-run it") from None
    if metric is not None and metric not in computed:
        raise InputError(
            path,
            0,
            "metrics",
            f"decide.metric {metric!r} was not computed (only {computed}): re-run `domainfit "
            f"{stage}` with it in {stage}.metrics",
        )
    return data


def training_pairs(workspace: Workspace, train_qrels: dict[str, dict[str, int]]) -> int:
    """Count labelled train positives plus synthetic queries already generated in the workspace."""
    labelled = sum(1 for docs in train_qrels.values() for g in docs.values() if g > 0)
    synth = workspace.stage_dir("synth") / "queries.jsonl"
    synthetic = sum(1 for line in synth.read_text().splitlines() if line.strip()) if synth.is_file() else 0
    return labelled + synthetic


def _triples(dataset: BeirDataset, split: str, seed: int) -> list[tuple[str, str, str]]:
    """Return (query, positive, random other document) triples of the train qrels, for timing training steps."""
    import random

    rng = random.Random(seed)
    ids = list(dataset.corpus)
    out = []
    for qid, docs in dataset.qrels.get(split, {}).items():
        for did, grade in docs.items():
            if grade > 0 and qid in dataset.queries and did in dataset.corpus and ids:
                other = dataset.corpus[ids[rng.randrange(len(ids))]].full_text()
                out.append((dataset.queries[qid].text, dataset.corpus[did].full_text(), other))
    return out


def _has_prompts(model: str) -> bool:
    """Return whether the model's folder defines non-empty prompts (a sign it was trained with instructions)."""
    from domainfit.core.models import resolve_model

    try:
        path = resolve_model(model).path / "config_sentence_transformers.json"
        prompts = json.loads(path.read_text(encoding="utf-8")).get("prompts") or {}
    except (OSError, ValueError, AttributeError):
        return False
    return any(str(v).strip() for v in prompts.values())


def _measured_lifts(workspace: Workspace, data: Path | None) -> dict[str, float]:
    """Return the lift eval measured per level on this data (``eval/level-*.json``), or nothing."""
    from domainfit.evaluation.level_row import read_rows

    if data is None:
        return {}
    rows = read_rows(workspace.stage_dir("eval"), DataFiles(data).fingerprint())
    return {str(r["level"]): float(r["lift"]) for r in rows if r.get("lift") is not None}


class DecideStage(Stage[Decision]):
    """Decide before training (reads ``bench`` and ``synth``) or after it (reads ``eval``).

    Inputs: the workspace, the BEIR folder (its train qrels and documents feed
    the cost probe), the ``[decide]`` settings, ``when`` (``before``, ``after``
    or ``auto``: after when an evaluation exists), the largest JSONL record and
    the ``[text]`` settings. Output: the `Decision`.
    """

    name: ClassVar[str] = "decide"
    command: ClassVar[str | None] = "decide"
    panel: ClassVar[str] = MEASURE
    reads: ClassVar[tuple[str, ...]] = ("bench", "synth", "eval")
    report: ClassVar[tuple[ReportSection, ...]] = (
        ReportSection("decision-before.md", 0),
        ReportSection("decision-after.md", 30),
    )
    manifest_format: ClassVar[int] = 2
    workspace_first: ClassVar[bool] = True  # the check reads bench's or eval's metrics

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str,
        config: DecideConfig,
        when: str = "auto",
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        text: TextConfig = DEFAULT_TEXT,
        train: TrainConfig | None = None,
    ) -> None:
        super().__init__(workspace, data)
        self.config, self.when, self.max_line_bytes, self.text = config, when, max_line_bytes, text
        self.train = train or TrainConfig()
        self._read: dict[str, Any] = {}

    def _metrics(self, stage: str) -> Path:
        """Return the path of ``stage``'s metrics.json in the workspace."""
        return self.workspace.stage_dir(stage) / "metrics.json"

    def check(self) -> None:
        """Resolve ``when`` and read (and check) the metrics the decision needs."""
        if self.when not in WHEN:
            raise InputError("--when", 0, "when", "must be auto, before or after")
        after = self.when == "after" or (self.when == "auto" and self._metrics("eval").is_file())
        self.part = "after" if after else "before"
        source = "eval" if after else "bench"
        self._read = _read(self._metrics(source), source, self.config.metric)

    def inputs(self) -> dict[str, Input]:
        """Declare, after: eval's metrics; before: the data, bench's metrics and synth's queries; and the settings."""
        settings: dict[str, Input] = {"config": Section(self.config), "domainfit_version": Value(__version__)}
        if self.part == "after":
            return {"eval_metrics_sha256": Upstream("eval", self._metrics("eval")), **settings}
        assert self.data is not None
        inputs: dict[str, Input] = {
            "data_sha256": DataFiles(self.data),
            "bench_metrics_sha256": Upstream("bench", self._metrics("bench")),
            "synthetic_sha256": Upstream("synth", self.workspace.stage_dir("synth") / "queries.jsonl"),
            **settings,
        }
        if self.config.levels:  # the levels' estimates read these settings and the lifts measured so far
            inputs["train"] = Section(self.train)
            inputs["measured_lifts"] = Value(_measured_lifts(self.workspace, self.data), of="upstream")
        return inputs

    def compute(self, out: Path, previous: Previous | None) -> Decision:
        """Decide, and write ``decision-<when>.json`` and ``.md`` and ``decision.json``."""
        if self.part == "after":
            decision = decide_after(self._read, self.config)
        else:
            from domainfit.data.beir import load_beir

            assert self.data is not None
            dataset = load_beir(self.data, max_line_bytes=self.max_line_bytes, text=self.text)
            n_pairs = training_pairs(self.workspace, dataset.qrels.get("train", {}))
            model = next((s["config"]["model"] for s in self._read["systems"] if s["kind"] == "dense"), None)
            texts = [doc.full_text() for doc in list(dataset.corpus.values())[:32]]
            cost = probe_cost(model, texts, n_pairs, len(dataset.corpus), self.config) if model else None
            decision = decide_before(self._read, n_pairs, cost, self.config)
            if self.config.levels and model:
                decision.levels = self._levels(dataset, model, n_pairs)
                decision.reasons.append(decision.levels["reason"])
        atomic_write_json(out / f"decision-{decision.when}.json", decision.to_json())
        atomic_write_text(out / f"decision-{decision.when}.md", render(decision))
        atomic_write_json(out / "decision.json", decision.to_json())
        return decision

    def _levels(self, dataset: BeirDataset, model: str, n_pairs: int) -> dict[str, Any]:
        """Estimate every level of effort on this machine (measured probe) and name the cheapest that suffices."""
        from domainfit.budget.levels import measure_level_times
        from domainfit.evaluation.levels import estimate_levels, expected_lifts, level_advice, needed_lift
        from domainfit.train.prompts import prompt_candidates

        train, cfg = self.train, self.config
        docs = [d.full_text() for d in dataset.corpus.values()]
        queries = [q.text for q in dataset.queries.values()]
        triples = _triples(dataset, train.train_split, train.seed)
        times = measure_level_times(
            model, docs, queries, triples, window=train.max_seq_length, batch_size=train.batch_size,
            top_layers=train.top_layers or max(train.top_layers_candidates, default=2), seed=train.seed,
        )  # fmt: skip
        scores = {s["name"]: s["metrics"][cfg.metric] for s in self._read["systems"]}
        base = max((v for k, v in scores.items() if k.startswith("dense")), default=0.0)
        measured = _measured_lifts(self.workspace, self.data)
        full = measured.get("full", cfg.expected_full_lift)
        lifts = expected_lifts(full, base, instruction_trained=_has_prompts(model), measured=measured)
        dev = dataset.qrels.get(train.eval_split, {})
        trials = 1 if train.top_layers else len(train.top_layers_candidates)
        candidates = prompt_candidates(train.prompt_candidates, (train.query_prompt, train.document_prompt))
        steps = cfg.max_steps if cfg.max_steps > 0 else max(1, round(n_pairs * cfg.epochs / cfg.batch_size))
        estimates = estimate_levels(
            times, n_pairs=n_pairs, n_docs=len(dataset.corpus), steps=steps, lifts=lifts,
            dev_docs=min(len(dataset.corpus), len(dev) * 2 * train.eval_pool_depth), dev_queries=len(dev),
            prompt_candidates=len(candidates),
            negatives=train.max_negatives, top_layer_trials=trials,
            distill=train.static_source == "distill",
        )  # fmt: skip
        needed, why = needed_lift(scores, cfg.target, cfg.min_lift)
        advice = level_advice(estimates, needed, why, times.basis)
        advice["probe"] = times.to_json()
        return advice

    def load(self, folder: Path) -> Decision:
        """Read ``decision-<when>.json`` back."""
        return read_result(folder / f"decision-{self.part}.json", Decision.from_json)

    def keep(self) -> tuple[str, ...]:
        """Keep the other part's decision (before or after)."""
        return ("decision-*",)


def run_decide(
    data: Path,
    workspace: Workspace,
    cfg: DecideConfig,
    when: str = "auto",
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    text: TextConfig = DEFAULT_TEXT,
    train: TrainConfig | None = None,
) -> Decision:
    """Decide from the workspace and write ``<workspace>/decide/decision-<when>.json`` and ``.md``.

    ``when``: ``before`` (needs ``bench``), ``after`` (needs ``eval``) or ``auto``
    (after when an evaluation exists, else before); ``max_line_bytes`` caps one
    JSONL record of the BEIR folder (``[data] max_line_mib``); ``text``: the ``[text]`` settings;
    ``train``: the ``[train]`` settings the level estimates follow (window, batch, top layers, prompts).
    """
    stage = DecideStage(workspace, data, cfg, when, max_line_bytes=max_line_bytes, text=text, train=train)
    return run_stage(stage).result
