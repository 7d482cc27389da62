"""The ``calibrate`` stage: similarity thresholds by F-beta, per model and compression configuration.

Input: a BEIR folder, the workspace (compress's operating point, when it ran
for one of the models) and a `CalibrateConfig`. Output, in
``<workspace>/calibrate/``: ``thresholds.json``, ``summary.md``, ``config.json``
and ``manifest.json``. The calibration itself is `domainfit.compress.calibrate`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from domainfit import __version__
from domainfit.compress.calibrate import CalibrateResult, calibrate_model, cross_model_deltas
from domainfit.compress.config import CalibrateConfig
from domainfit.core.files import atomic_write_json, atomic_write_text
from domainfit.core.workspace import Workspace
from domainfit.data.beir import BeirDataset
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.render.calibrate import calibrate_markdown
from domainfit.stages.contract import SHIP, Previous, Stage, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Models, Section, Text, Upstream, Value
from domainfit.text.config import DEFAULT_TEXT, TextConfig


def operating_points(workspace: Workspace) -> dict[str, str]:
    """Return compress's operating point by the fingerprint of the model it was chosen for (empty: none)."""
    path = workspace.stage_dir("compress") / "results.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    name = (data.get("operating_point") or {}).get("name")
    return {data["model_fingerprint"]: name} if name and data.get("model_fingerprint") else {}


class CalibrateStage(Stage[CalibrateResult]):
    """Calibrate the thresholds of every model and configuration of ``[calibrate]``.

    Inputs: the workspace, the BEIR folder, the settings, the largest JSONL
    record and the ``[text]`` settings. Output: the `CalibrateResult`.
    """

    name: ClassVar[str] = "calibrate"
    command: ClassVar[str | None] = "calibrate"
    panel: ClassVar[str] = SHIP
    reads: ClassVar[tuple[str, ...]] = ("compress",)

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str,
        config: CalibrateConfig,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        super().__init__(workspace, data)
        self.config, self.max_line_bytes, self.text = config, max_line_bytes, text
        self.dataset: BeirDataset | None = None

    def check(self) -> None:
        """Load the data and check the calibration split (before any model loads)."""
        from domainfit.compress.embed import split_qrels
        from domainfit.data.beir import load_beir

        assert self.data is not None
        self.dataset = load_beir(self.data, max_line_bytes=self.max_line_bytes, text=self.text)
        split_qrels(self.dataset, self.config.split)

    def inputs(self) -> dict[str, Input]:
        """Declare the data, the settings, every model and (when used) compress's results."""
        assert self.data is not None
        compress = self.workspace.stage_dir("compress") / "results.json"
        return {
            "data": Value(str(self.data)),
            "data_sha256": DataFiles(self.data),
            "config": Section(self.config),
            "models": Models(tuple(self.config.models)),
            "compress_sha256": Upstream("compress", compress) if self.config.include_operating_point else Value(None),
            "text_normalization": Text(self.text, only_normalization=True),
            "domainfit_version": Value(__version__),
        }

    def compute(self, out: Path, previous: Previous | None) -> CalibrateResult:
        """Calibrate each model; write the thresholds, the summary and the resolved config."""
        assert self.dataset is not None and self.data is not None
        notes: list[str] = []
        chosen = operating_points(self.workspace)
        cache = self.workspace.cache_dir / "embeddings"
        models = [
            calibrate_model(m, self.dataset, cache, self.config, notes, self.text, chosen) for m in self.config.models
        ]
        cross_model_deltas(models)
        cfg = self.config
        result = CalibrateResult(cfg.split, cfg.eval_split, cfg.beta, models, notes, str(self.folder))
        atomic_write_json(out / "thresholds.json", result.to_json())
        atomic_write_text(out / "summary.md", calibrate_markdown(result))
        atomic_write_json(out / "config.json", {"calibrate": cfg.model_dump(), "data": str(self.data)})
        return result

    def load(self, folder: Path) -> CalibrateResult:
        """Read ``thresholds.json`` back."""
        return read_result(folder / "thresholds.json", CalibrateResult.from_json)


def run_calibrate(
    data: Path,
    workspace: Workspace,
    config: CalibrateConfig,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    text: TextConfig = DEFAULT_TEXT,
    force: bool = False,
) -> CalibrateResult:
    """Calibrate thresholds for every model and configuration; write ``<workspace>/calibrate/``.

    Inputs: a BEIR folder, the workspace, the config, the largest JSONL
    record and the ``[text]`` settings. Output: the `CalibrateResult`. Raises
    `InputError` on bad data or a missing split, `UsageError` on a malformed
    configuration name; nothing is written then. ``force`` calibrates again when nothing changed.
    """
    stage = CalibrateStage(workspace, data, config, max_line_bytes=max_line_bytes, text=text)
    return run_stage(stage, force=force).result
