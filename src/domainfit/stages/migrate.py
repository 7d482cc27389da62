"""The ``migrate`` stage: move the serving index to a new model one recorded, reversible step at a time.

Steps (``domainfit migrate STEP``), each its own stage under the contract, in
``<workspace>/migrate/<step>/`` (``result.json``, the step's artifacts and
``manifest.json``), each appending one line to ``<workspace>/migrate/log.jsonl``
when it did something (`domainfit.migrate.log`), each a no-op when re-run with
nothing changed:

* ``plan`` (`domainfit.stages.migrate_steps`): what must be embedded, the
  time at a rate measured on this machine, the bytes and the cost, whether a
  query-side bridge is possible;
* ``backfill``: the new model's vectors into the index beside the old ones
  (incremental and resumable, like ``index``), tagged ``migrate-<version>``;
  production does not move;
* ``bridge``: a query-side map from the new model into the old vectors' space,
  chosen on dev, with its retention of full re-embedding on the benchmark;
* ``compare`` (`domainfit.stages.migrate_switch`): a dual run of both versions
  on the benchmark and canary queries, and the go / no-go gate;
* ``promote``: production's pointer moves to the new version (a new tag, one
  atomic rename), with the new calibrated threshold and canary baseline;
* ``rollback``: production's pointer goes back to exactly what it was.

The index is written in place (as the ``index`` stage writes it), never in a
staged folder; production is whatever ``<workspace>/index/serving.json`` names.
This module holds what every step shares and the registered stage, which
renders the report section (``<workspace>/migrate/summary/migrate.md``: the
log, the plan, the last comparison and gate) after each step.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from domainfit import __version__
from domainfit.core.errors import UsageError
from domainfit.core.files import atomic_write_json, atomic_write_text
from domainfit.core.workspace import Workspace
from domainfit.index.backend import IndexBackend, ServingPointer, open_backend, read_pointer
from domainfit.index.versions import read_versions
from domainfit.migrate.config import MigrateSettings
from domainfit.migrate.log import append_entry, read_log
from domainfit.migrate.plan import VersionFacts
from domainfit.stages.contract import OPERATE, Previous, ReportSection, Stage, StaleOutput, read_result
from domainfit.stages.inputs import Input, Section, Upstream, Value

if TYPE_CHECKING:
    from domainfit.config import Config

#: The steps, in the order a migration takes them.
STEPS: tuple[str, ...] = ("plan", "backfill", "bridge", "compare", "promote", "rollback")
#: The migration log's file name in ``<workspace>/migrate/``.
LOG = "log.jsonl"
#: Version of a step's ``result.json``.
RESULT_FORMAT = 1
#: The tag prefix of a backfilled version (``migrate-<version>``).
BACKFILL_TAG = "migrate"
#: The canary baseline recorded beside the serving pointer at promotion (and restored by rollback).
CANARY_BASELINE = "canary-baseline.json"


@dataclass
class StepResult:
    """What one step did: the versions it concerned, a one-line summary, its numbers, and the gate's go (compare).

    ``numbers`` are the step's figures (also in its log line); ``go`` is the
    migration gate's decision for ``compare`` (and what ``promote`` required).
    """

    step: str
    from_version: str | None
    to_version: str | None
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)
    go: bool | None = None
    output_dir: str = ""
    up_to_date: bool = False
    format_version: int = RESULT_FORMAT

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (``result.json``)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepResult:
        """Read the JSON form back (ValueError for another format)."""
        if data.get("format_version") != RESULT_FORMAT:
            raise ValueError(f"migrate result format {data.get('format_version')!r}, expected {RESULT_FORMAT}")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def migrate_home(workspace: Workspace) -> Path:
    """Return ``<workspace>/migrate/`` (the log and one folder per step)."""
    return workspace.stage_dir("migrate")


def index_home(workspace: Workspace) -> Path:
    """Return ``<workspace>/index/`` (the store, ``serving.json`` and ``versions.json``)."""
    return workspace.stage_dir("index")


def stored_result(workspace: Workspace, step: str) -> StepResult | None:
    """Return a step's stored result (None when it has not run or the file is unreadable)."""
    try:
        return read_result(migrate_home(workspace) / step / "result.json", StepResult.from_json)
    except StaleOutput:
        return None


def promoted_production(workspace: Workspace, current: Any) -> StepResult | None:
    """Return the `migrate promote` whose pointer production reads now (None when production is not a promotion's).

    ``current`` is ``serving.json`` as JSON. The ``index`` stage asks this so a
    later build does not move production away from a version a migration
    promoted (a rollback puts back the pointer the build itself wrote, which
    the build then keeps up to date as before).
    """
    found = stored_result(workspace, "promote")
    if found is not None and current is not None and found.numbers.get("promoted_pointer") == current:
        return found
    return None


def required_result(workspace: Workspace, step: str, before: str) -> StepResult:
    """Return a step's stored result, or raise `UsageError` saying to run it before ``before``."""
    found = stored_result(workspace, step)
    if found is None:
        raise UsageError(f"no `migrate {step}` in {workspace.root}: run it before `migrate {before}`")
    return found


def old_facts(home: Path, pointer: ServingPointer) -> VersionFacts:
    """Return production's version as the migration's old side (its model from the index's record, else the pointer)."""
    record = read_versions(home).get(pointer.version)
    model = record.model if record is not None else pointer.model
    return VersionFacts(pointer.version, model, pointer.dimension, pointer.mode)


def open_store(home: Path, pointer: ServingPointer, *, read_only: bool) -> IndexBackend:
    """Open the index store production's pointer names (its latest version)."""
    return open_backend(home, pointer.corpus, backend=pointer.backend, read_only=read_only)


def store_tags(home: Path, pointer: ServingPointer) -> dict[str, int]:
    """Return the store's tags (tag -> table version) without writing."""
    store = open_store(home, pointer, read_only=True)
    try:
        return store.tags()
    finally:
        store.close()


def _clear_leftovers(home: Path, out: Path) -> None:
    """Remove staged or swapped-out step folders a killed run left in ``migrate/`` (not ``out``, this run's)."""
    for leftover in home.glob(".*"):
        stale = ".tmp" in leftover.name or ".old." in leftover.name
        if stale and leftover.is_dir() and leftover.resolve() != out.resolve():
            shutil.rmtree(leftover, ignore_errors=True)


class MigrateStep(Stage[StepResult]):
    """Base of the steps: the workspace, DATA (None for the steps that read only the workspace) and the config.

    Subclasses set ``step`` (and with it the folder ``<workspace>/migrate/<step>``)
    and implement ``inputs``, ``run`` (the work, returning the result) and,
    when a stored result can go stale outside the contract's view (the index
    moved), ``still_valid``. ``force`` is the step's own override (promote
    despite a no-go, roll back over a moved pointer), separate from re-running.
    """

    name: ClassVar[str] = "migrate"
    step: ClassVar[str] = ""
    workspace_first: ClassVar[bool] = True

    def __init__(self, workspace: Workspace, data: Path | str | None, config: Config, *, force: bool = False) -> None:
        super().__init__(workspace, data)
        self.config = config
        self.settings: MigrateSettings = config.migrate
        self.override = force
        self.home = index_home(workspace)
        self._pointer: ServingPointer | None = None

    @property
    def folder(self) -> Path:
        """The step's folder: ``<workspace>/migrate/<step>``."""
        return migrate_home(self.workspace) / self.step

    @property
    def pointer(self) -> ServingPointer:
        """Production's pointer, read once (raises `IndexMissing`, exit 2, when there is no index)."""
        if self._pointer is None:
            self._pointer = read_pointer(self.home)
        return self._pointer

    def check(self) -> None:
        """Read production's pointer before anything heavy (no index: a one-line error, exit 2)."""
        self.pointer  # noqa: B018 - raises when there is no index

    def compute(self, out: Path, previous: Previous | None) -> StepResult:
        """Run the step into ``out``, write ``result.json`` and append the log line."""
        _clear_leftovers(migrate_home(self.workspace), out)
        result = self.run(out)
        result.output_dir = str(self.folder)
        atomic_write_json(out / "result.json", result.to_json())
        append_entry(
            migrate_home(self.workspace) / LOG,
            self.step,
            from_version=result.from_version,
            to_version=result.to_version,
            summary=result.summary,
            numbers=result.numbers,
        )
        return result

    def run(self, out: Path) -> StepResult:
        """Do the step's work, writing its artifacts into ``out``; return its result."""
        raise NotImplementedError

    def still_valid(self, result: StepResult) -> bool:
        """Return False when the index changed since ``result`` was made outside the declared inputs."""
        return True

    def load(self, folder: Path) -> StepResult:
        """Read ``result.json`` back; stale when `still_valid` says the index moved since."""
        result = read_result(folder / "result.json", StepResult.from_json)
        if not self.still_valid(result):
            raise StaleOutput(f"the index changed since `migrate {self.step}` ran")
        return result


@dataclass
class Summary:
    """The migration's report section: where it is, and how many log entries it shows."""

    markdown: str
    entries: int
    up_to_date: bool = False


class MigrateStage(Stage[Summary]):
    """The registered stage of ``domainfit migrate``: its report section, rendered from the log and the steps.

    Inputs: the workspace and the ``[migrate]`` settings (the gate's limits the
    section shows). Output: ``<workspace>/migrate/summary/migrate.md``. The
    steps themselves are the `MigrateStep` classes (`domainfit.stages.migrate_run.steps`).
    """

    name: ClassVar[str] = "migrate"
    command: ClassVar[str | None] = "migrate"
    panel: ClassVar[str] = OPERATE
    reads: ClassVar[tuple[str, ...]] = ("index",)
    report: ClassVar[tuple[ReportSection, ...]] = (ReportSection("summary/migrate.md", 88),)
    subfolder: ClassVar[str] = "summary"
    workspace_first: ClassVar[bool] = True

    def __init__(self, workspace: Workspace, settings: MigrateSettings) -> None:
        super().__init__(workspace)
        self.settings = settings

    def inputs(self) -> dict[str, Input]:
        """Declare the log, every step's result and artifacts, and the settings."""
        home = migrate_home(self.workspace)
        found: dict[str, Input] = {"log_sha256": Upstream("migrate", home / LOG), "config": Section(self.settings)}
        for step in STEPS:
            found[f"{step}_sha256"] = Upstream("migrate", home / step / "result.json")
        for step, name in (
            ("plan", "plan.json"),
            ("bridge", "bridge.json"),
            ("compare", "compare.json"),
            ("compare", "gate.json"),
        ):
            found[f"{step}_{name.replace('.', '_')}_sha256"] = Upstream("migrate", home / step / name)
        found["domainfit_version"] = Value(__version__)
        return found

    def compute(self, out: Path, previous: Previous | None) -> Summary:
        """Render ``migrate.md`` from the log, the plan, the bridge and the last comparison."""
        from domainfit.render.migrate import migrate_markdown

        home = migrate_home(self.workspace)
        entries = read_log(home / LOG)

        def load(path: Path) -> Any:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

        text = migrate_markdown(
            entries,
            plan=load(home / "plan" / "plan.json"),
            bridge=load(home / "bridge" / "bridge.json"),
            comparison=load(home / "compare" / "compare.json"),
            gate=load(home / "compare" / "gate.json"),
            settings=self.settings.model_dump(),
            version=__version__,
        )
        atomic_write_text(out / "migrate.md", text)
        return Summary(str(self.folder / "migrate.md"), len(entries))

    def load(self, folder: Path) -> Summary:
        """Return the stored section."""
        path = folder / "migrate.md"
        if not path.is_file():
            raise StaleOutput("no migrate.md")
        return Summary(str(path), len(read_log(migrate_home(self.workspace) / LOG)))
