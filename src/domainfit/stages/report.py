"""The ``report`` stage: ``<workspace>/report/report.html`` (self-contained) and ``report.md``.

Input: whatever stages have run in the workspace; missing stages are left out.
Each stage declares the Markdown sections it adds to ``report.md`` and the
config sections of its ``config.json`` the report shows (`Stage.report`,
`Stage.report_config`); the stages reported on are passed in (the registry's,
`domainfit.stages.registry.build_report`). The report's declared inputs are
the manifests of every stage folder (which hash each stage's outputs) and the
run's ``plan/timings.json``, so it is up to date until one of them changes.
Rendering is `domainfit.render.report`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from domainfit.core.files import atomic_write_text, sha256_file
from domainfit.core.workspace import Workspace
from domainfit.render.report import ReportInputs, render_html, render_markdown
from domainfit.stages.contract import SHIP, Previous, Stage, StaleOutput
from domainfit.stages.inputs import Input, Upstream, Value
from domainfit.stages.manifest import MANIFEST

TIMINGS = Path("plan") / "timings.json"


def _load(path: Path) -> Any:
    """Read a JSON artifact, or None when the stage has not run."""
    return json.loads(path.read_text()) if path.is_file() else None


class ReportStage(Stage[tuple[Path, Path]]):
    """Render every stage that ran into one HTML page and one Markdown summary.

    Inputs: the workspace and the stage classes reported on (their declared
    sections, in order). Output: the paths of ``report.html`` and ``report.md``.
    """

    name: ClassVar[str] = "report"
    command: ClassVar[str | None] = "report"
    panel: ClassVar[str] = SHIP
    workspace_first: ClassVar[bool] = True  # it reads every stage's records

    def __init__(self, workspace: Workspace, stages: Sequence[type[Stage[Any]]] = ()) -> None:
        super().__init__(workspace)
        self.stages = [s for s in stages if s.name != self.name]

    def _stage_folders(self) -> list[str]:
        """Return the stage folders holding a manifest (every stage that ran, the plan included)."""
        root = self.workspace.root
        found = [p.parent.name for p in root.glob(f"*/{MANIFEST}") if p.parent.name != self.name]
        nested = [f"{s.name}/{s.subfolder}" for s in self.stages if s.subfolder]
        return sorted(found + [name for name in nested if (root / name / MANIFEST).is_file()])

    def inputs(self) -> dict[str, Input]:
        """Declare the stages that ran, each one's manifest, and the run's timings."""
        root = self.workspace.root
        folders = self._stage_folders()
        return {
            "stages": Value(folders, of="upstream"),
            "manifests": Value({name: sha256_file(root / name / MANIFEST) for name in folders}, of="upstream"),
            "timings_sha256": Upstream("plan", root / TIMINGS),
        }

    def _found(self) -> ReportInputs:
        """Read what the stages wrote: their results, decisions, config sections and Markdown sections."""
        root = self.workspace.root
        config: dict[str, dict[str, Any]] = {}
        sections: list[tuple[int, Path]] = []
        for stage in self.stages:
            recorded = _load(root / stage.name / "config.json") if stage.report_config else None
            for key in stage.report_config:
                if recorded and isinstance(recorded.get(key), dict):
                    config[key] = recorded[key]
            sections += [(section.order, root / stage.name / section.markdown) for section in stage.report]
        frontier = root / "compress" / "frontier.png"
        monitor_plot = root / "monitor" / "history.png"
        return ReportInputs(
            workspace=str(root),
            bench=_load(root / "bench" / "metrics.json"),
            train=_load(root / "train" / "result.json"),
            history=_load(root / "train" / "history.json"),
            evaluation=_load(root / "eval" / "metrics.json"),
            recipe=_load(root / "recipe" / "search.json"),
            timings=_load(root / TIMINGS),
            decisions={w: d for w in ("before", "after") if (d := _load(root / "decide" / f"decision-{w}.json"))},
            frontier=frontier.read_bytes() if frontier.is_file() else None,
            config=config,
            markdown=[path.read_text() for _, path in sorted(sections, key=lambda s: s[0]) if path.is_file()],
            monitor=_load(root / "monitor" / "result.json"),
            monitor_plot=monitor_plot.read_bytes() if monitor_plot.is_file() else None,
        )

    def compute(self, out: Path, previous: Previous | None) -> tuple[Path, Path]:
        """Render and write ``report.html`` and ``report.md``."""
        found = self._found()
        atomic_write_text(out / "report.html", render_html(found))
        atomic_write_text(out / "report.md", render_markdown(found))
        return self.folder / "report.html", self.folder / "report.md"

    def load(self, folder: Path) -> tuple[Path, Path]:
        """Return the paths of the stored report."""
        html, markdown = folder / "report.html", folder / "report.md"
        if not (html.is_file() and markdown.is_file()):
            raise StaleOutput("no report in the folder")
        return html, markdown
