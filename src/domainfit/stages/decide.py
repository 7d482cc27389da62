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
from typing import Any, ClassVar

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
    ) -> None:
        super().__init__(workspace, data)
        self.config, self.when, self.max_line_bytes, self.text = config, when, max_line_bytes, text
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
        return {
            "data_sha256": DataFiles(self.data),
            "bench_metrics_sha256": Upstream("bench", self._metrics("bench")),
            "synthetic_sha256": Upstream("synth", self.workspace.stage_dir("synth") / "queries.jsonl"),
            **settings,
        }

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
        atomic_write_json(out / f"decision-{decision.when}.json", decision.to_json())
        atomic_write_text(out / f"decision-{decision.when}.md", render(decision))
        atomic_write_json(out / "decision.json", decision.to_json())
        return decision

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
) -> Decision:
    """Decide from the workspace and write ``<workspace>/decide/decision-<when>.json`` and ``.md``.

    ``when``: ``before`` (needs ``bench``), ``after`` (needs ``eval``) or ``auto``
    (after when an evaluation exists, else before); ``max_line_bytes`` caps one
    JSONL record of the BEIR folder (``[data] max_line_mib``); ``text``: the ``[text]`` settings.
    """
    stage = DecideStage(workspace, data, cfg, when, max_line_bytes=max_line_bytes, text=text)
    return run_stage(stage).result
