"""The stage contract: what every stage declares, and the one runner that does the rest.

A stage (a subclass of `Stage`) says only what it reads and how it computes:

* ``inputs()``: its declared inputs (data files, config sections, models,
  upstream artifacts; see `domainfit.stages.inputs`);
* ``check()``: validation of those inputs before any expensive work (loading
  and checking the data, the splits, user files), so bad input fails in seconds;
* ``compute(out, previous)``: the work, writing its artifacts into ``out``
  (a staged folder) and returning its result;
* ``load(folder)``: the result of an earlier run, read back from its folder;
* its CLI command and help panel, and the sections it adds to the report.

`run_stage` owns, once for every stage, everything else: refusing a workspace
that overlaps the data, validation before the lock, the workspace lock, the
up-to-date check under the lock (the fingerprint of the declared inputs
against the manifest, whose format version is checked on read), the staged
output folder swapped in atomically, the manifest, and the `Outcome`. A stage
that fails leaves nothing behind; a stage whose inputs did not change is not
run again. Kedro's split between pure functions and the catalog that does
their I/O, and DVC's stages, are the models.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from domainfit.core.files import staged_dir
from domainfit.core.workspace import Workspace
from domainfit.stages.inputs import Input, fingerprint
from domainfit.stages.manifest import FORMAT_VERSION, MANIFEST, Manifest, outputs_intact, read_manifest, write_manifest

R = TypeVar("R")

#: The help panels of the command line, in the order of the loop.
PREPARE, MEASURE, TRAIN, SHIP, OPERATE = "Prepare", "Measure", "Train", "Ship", "Operate"


class StaleOutput(Exception):
    """Raised by `Stage.load` when the stored result cannot be used (missing, damaged, another format)."""


def read_result(path: Path, build: Callable[[Any], R]) -> R:
    """Return ``build(json of path)``: a stage's stored result read back for `Stage.load`.

    A missing, unreadable or damaged file, or one of another format (``build``
    raises ValueError, KeyError or TypeError), raises `StaleOutput`, so the
    stage runs again.
    """
    try:
        return build(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StaleOutput(str(exc)) from None


@dataclass(frozen=True)
class ReportSection:
    """A Markdown file of a stage's folder that the report includes, and where (``order``: lower comes first)."""

    markdown: str
    order: int


@dataclass
class Previous:
    """What the stage's folder held before this run: the inputs its manifest recorded, and the folder."""

    inputs: dict[str, Any]
    folder: Path


@dataclass
class Outcome(Generic[R]):
    """What running a stage gave: its result, whether it was up to date (not run again), and its folder."""

    stage: str
    result: R
    up_to_date: bool
    folder: Path


class Stage(ABC, Generic[R]):
    """Base class of the stages: declare the inputs, check them, compute into a folder, load a stored result.

    Inputs: the workspace and the BEIR folder the stage reads (None for a stage
    that reads only the workspace). Subclasses add their settings. Class
    attributes: ``name`` (the workspace folder and the manifest's stage),
    ``command`` and ``panel`` (its CLI command and help group; None: it runs only
    inside ``domainfit run``), ``reads`` (the stages whose artifacts it reads),
    ``report`` and ``report_config`` (its Markdown sections of ``report.md`` and
    the keys of its ``config.json`` the report shows), ``manifest_format``,
    ``workspace_first`` (True: the workspace is checked before the stage's own
    check, for a stage whose check reads the workspace's records; otherwise bad
    data is reported first, and the workspace is checked when it is locked),
    ``subfolder`` (non-empty: the stage's folder is ``<workspace>/<name>/<subfolder>``,
    for a stage whose workspace folder also holds data written in place, the index).
    """

    name: ClassVar[str]
    command: ClassVar[str | None] = None
    panel: ClassVar[str] = ""
    reads: ClassVar[tuple[str, ...]] = ()
    report: ClassVar[tuple[ReportSection, ...]] = ()
    report_config: ClassVar[tuple[str, ...]] = ()
    manifest_format: ClassVar[int] = FORMAT_VERSION
    workspace_first: ClassVar[bool] = False
    subfolder: ClassVar[str] = ""

    def __init__(self, workspace: Workspace, data: Path | str | None = None) -> None:
        self.workspace = workspace
        self.data = Path(data).expanduser().resolve() if data is not None else None
        #: The part of the folder this run writes, for a stage that writes one folder in several runs (decide).
        self.part: str | None = None

    @property
    def folder(self) -> Path:
        """The stage's folder in the workspace (may not exist yet)."""
        folder = self.workspace.stage_dir(self.name)
        return folder / self.subfolder if self.subfolder else folder

    def check(self) -> None:
        """Validate the inputs before the lock and any expensive work (raise `InputError`); the default checks none."""

    @abstractmethod
    def inputs(self) -> dict[str, Input]:
        """Return the declared inputs by name (their fingerprints are the manifest's ``inputs``)."""

    @abstractmethod
    def compute(self, out: Path, previous: Previous | None) -> R:
        """Do the work, writing the artifacts into ``out`` (a staged folder); return the result.

        ``previous``: what the folder held before (None when it held nothing usable,
        or when the run is forced), for a stage that can re-use part of its earlier work.
        """

    @abstractmethod
    def load(self, folder: Path) -> R:
        """Return the result stored in ``folder`` by an earlier run; raise `StaleOutput` when it cannot be used."""

    def outputs(self, out: Path) -> list[str]:
        """Return the output files the manifest lists (relative to ``out``); default: the top-level files."""
        return sorted(p.name for p in out.iterdir() if p.is_file() and p.name != MANIFEST)

    def keep(self) -> tuple[str, ...]:
        """Return patterns of files the earlier folder keeps when this run replaces it (default: none)."""
        return ()

    def writes(self) -> bool:
        """Return True when this process writes the stage's folder (False for the other ranks of a launched run)."""
        return True


def mark_up_to_date(result: Any) -> Any:
    """Set ``up_to_date`` on a result that has the flag (every stage result but the report's paths)."""
    if hasattr(result, "up_to_date"):
        result.up_to_date = True
    return result


def _recorded(stage: Stage[Any], inputs: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the inputs a manifest recorded for this run's part of the folder (all of them when it has no parts)."""
    if inputs is None or stage.part is None:
        return inputs
    found = inputs.get(stage.part)
    return found if isinstance(found, dict) else None


def _up_to_date(stage: Stage[R], fingerprinted: dict[str, Any], manifest: Manifest | None) -> R | None:
    """Return the stored result when nothing changed since it was made, else None.

    Nothing changed: the recorded inputs equal ``fingerprinted``, every output
    the manifest lists is there with its recorded size, and the result can be read.
    """
    if manifest is None or _recorded(stage, manifest.inputs) != fingerprinted:
        return None
    if not outputs_intact(stage.folder, manifest):
        return None
    try:
        return mark_up_to_date(stage.load(stage.folder))
    except StaleOutput:
        return None


def _carry(stage: Stage[Any], source: Path, out: Path) -> None:
    """Copy the files the stage keeps from its earlier folder into the staged one."""
    if not source.is_dir():
        return
    for pattern in stage.keep():
        for file in sorted(source.glob(pattern)):
            if file.is_file():
                shutil.copy2(file, out / file.name)


@contextlib.contextmanager
def _writer_lock(stage: Stage[Any]) -> Iterator[None]:
    """Hold the workspace lock while the stage checks and writes (a process that does not write takes none)."""
    if stage.writes():
        with stage.workspace.lock():
            yield
    else:
        yield


def run_stage(stage: Stage[R], *, force: bool = False) -> Outcome[R]:
    """Run one stage through the contract; return its `Outcome`.

    Order: the data folder is attached (a workspace equal to, inside or above it
    is refused); the stage checks its inputs (after the workspace is checked,
    for a stage whose check reads it: `Stage.workspace_first`); then,
    under the workspace lock, its declared inputs are fingerprinted and compared
    with its manifest: equal (and ``force`` not set) means up to date, and the
    stored result is returned. Otherwise the stage computes into a staged folder
    that replaces its folder only when it succeeded, with its manifest written
    last. Raises whatever the stage raises; nothing is written then.
    """
    workspace = stage.workspace
    if stage.data is not None:
        workspace.attach_data(stage.data)
    if stage.workspace_first:
        workspace.check()
    stage.check()
    with _writer_lock(stage):  # locking a workspace checks it (a folder domainfit did not make is refused)
        fingerprinted = fingerprint(stage.inputs())
        manifest = read_manifest(stage.folder, stage.name, stage.manifest_format)
        previous = Previous(manifest.inputs, stage.folder) if manifest is not None else None
        if not force and (stored := _up_to_date(stage, fingerprinted, manifest)) is not None:
            return Outcome(stage.name, stored, True, stage.folder)
        earlier = None if force else previous
        if not stage.writes():
            with tempfile.TemporaryDirectory(prefix=f"domainfit-{stage.name}-") as scratch:
                return Outcome(stage.name, stage.compute(Path(scratch), earlier), False, stage.folder)
        recorded: dict[str, Any] = fingerprinted
        if stage.part is not None:
            kept = previous.inputs if previous is not None else {}
            recorded = {**{k: v for k, v in kept.items() if isinstance(v, dict)}, stage.part: fingerprinted}
        with staged_dir(stage.folder) as out:
            _carry(stage, stage.folder, out)
            result = stage.compute(out, earlier)
            write_manifest(out, stage.name, recorded, stage.outputs(out), stage.manifest_format)
    return Outcome(stage.name, result, False, stage.folder)
