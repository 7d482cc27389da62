"""The workspace: one folder, a marker saying domainfit made it, one sub-folder per stage, and its lock.

A workspace is one folder; each stage owns a sub-folder named after it
(``bench/``, ``synth/``, ``train/`` ...). Stages write through the stage
contract (`domainfit.stages.contract`), which builds each output in a hidden
staged folder (`domainfit.core.files.staged_dir`) and swaps it in only when
everything succeeded, so an interrupted or failed stage never leaves a
half-written artifact behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from domainfit.core.files import atomic_write_json

DEFAULT_WORKSPACE = Path("domainfit-work")


#: The file that marks a folder as a domainfit workspace, and the format it records.
MARKER = ".domainfit-workspace"
MARKER_FORMAT = 1

#: Top-level names an earlier domainfit version could have written into a workspace.
_KNOWN_ENTRIES = frozenset(
    {
        "bench", "decide", "synth", "mine", "train", "train-checkpoints", "eval", "compress", "cost",
        "calibrate", "report", "cache", "index", "migrate", "monitor", ".lock", MARKER,
    }
)  # fmt: skip

_HELD: dict[Path, tuple[Any, int]] = {}
_HELD_GUARD = threading.Lock()


def _relation(a: Path, b: Path) -> str | None:
    """Return how folder ``a`` relates to folder ``b``: "the same as", "inside", "above" or None."""
    if a == b:
        return "the same as"
    if a.is_relative_to(b):
        return "inside"
    if b.is_relative_to(a):
        return "above"
    return None


def check_output_folder(out: Path | str, data: Path | str, option: str = "--out") -> Path:
    """Refuse an output folder that could destroy user data; return it resolved.

    Inputs: the folder a command is about to create and the input data folder.
    Raises `UsageError` when ``out`` is the data folder, inside it or above it,
    or an existing file or non-empty folder (nothing is ever replaced).
    """
    from domainfit.core.errors import UsageError

    target, source = Path(out).expanduser().resolve(), Path(data).expanduser().resolve()
    relation = _relation(target, source)
    if relation is not None:
        raise UsageError(f"{option} {target} is {relation} the data folder {source}; give a new folder elsewhere")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{option} {target} already exists and is not empty; give a new or empty folder")
    return target


def _remove(path: Path) -> None:
    """Remove a file or folder domainfit left behind (best effort)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class Workspace:
    """A domainfit workspace folder.

    Inputs: the root path (created on the first write, with a marker file) and,
    optionally, the data folder the stages read (a workspace equal to, inside or
    above it is refused). A non-empty folder without the marker is refused, so
    nothing domainfit did not create is ever replaced; a workspace of an earlier
    version (recognised by its stage manifests) is adopted and marked.
    Example: ``ws = Workspace(Path("work")); with ws.lock(): ...``.
    """

    def __init__(self, root: Path | str = DEFAULT_WORKSPACE, data: Path | str | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.data: Path | None = None
        if data is not None:
            self.attach_data(data)

    def attach_data(self, data: Path | str) -> None:
        """Record the data folder the stages read, refusing a workspace that overlaps it (`UsageError`)."""
        from domainfit.core.errors import UsageError

        folder = Path(data).expanduser().resolve()
        relation = _relation(self.root, folder)
        if relation is not None:
            raise UsageError(
                f"workspace {self.root} is {relation} the data folder {folder}; "
                "give --workspace a folder outside the data"
            )
        self.data = folder

    def stage_dir(self, stage: str) -> Path:
        """Return the folder that holds one stage's artifacts (may not exist yet)."""
        return self.root / stage

    @property
    def cache_dir(self) -> Path:
        """Folder for caches shared by stages (embeddings, responses)."""
        return self.root / "cache"

    @property
    def marker(self) -> Path:
        """The marker file that says domainfit created this folder."""
        return self.root / MARKER

    def _adoptable(self) -> bool:
        """Return True when every entry is one an earlier domainfit wrote and a stage folder has its manifest."""
        entries = list(self.root.iterdir())
        known = all(e.name in _KNOWN_ENTRIES or (e.name.startswith(".") and e.name.endswith(".tmp")) for e in entries)
        manifests = False
        for entry in entries:
            manifest = entry / "manifest.json"
            if manifest.is_file():
                with contextlib.suppress(OSError, ValueError):
                    content = json.loads(manifest.read_text(encoding="utf-8"))
                    manifests = manifests or (isinstance(content, dict) and content.get("stage") == entry.name)
        return known and manifests

    def check(self) -> bool:
        """Check, without writing, that domainfit may write here; return True when the folder needs its marker.

        Raises `UsageError` (exit 2, with what to do) for a file in the way, a
        non-empty folder that domainfit did not create, or a marker of a newer format.
        """
        from domainfit.core.errors import UsageError

        if self.data is not None:
            self.attach_data(self.data)
        if not self.root.exists():
            return True
        if not self.root.is_dir():
            raise UsageError(f"workspace {self.root} is a file, not a folder; give --workspace a folder")
        if self.marker.is_file():
            try:
                found = json.loads(self.marker.read_text(encoding="utf-8")).get("format_version")
            except (OSError, ValueError, AttributeError):
                raise UsageError(
                    f"{self.marker}: -: unreadable workspace marker (remove it only if domainfit made this folder)"
                ) from None
            if not isinstance(found, int) or found > MARKER_FORMAT:
                raise UsageError(
                    f"{self.marker}: format_version: {found!r} is not supported by this domainfit "
                    f"(up to {MARKER_FORMAT}); upgrade domainfit or use another workspace"
                )
            return False
        if not any(self.root.iterdir()) or self._adoptable():
            return True
        raise UsageError(
            f"workspace {self.root} is not empty and was not created by domainfit (no {MARKER} file); "
            "give --workspace a new or empty folder"
        )

    def ensure(self) -> None:
        """Create the workspace (or adopt an earlier version's) and write its marker; see `check`."""
        if self.check():
            from domainfit import __version__

            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.marker, {"format_version": MARKER_FORMAT, "created_by": f"domainfit {__version__}"})

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the workspace's exclusive lock; re-entrant within a process (``run`` holds it across its stages).

        The workspace is created (with its marker) or checked first; a lock
        held by another process raises `UsageError`. When this call created the
        workspace and the block fails before any stage wrote anything, the
        empty workspace is removed again, so a failed first run leaves nothing.
        """
        with _HELD_GUARD:
            held = _HELD.get(self.root)
            if held is not None:
                _HELD[self.root] = (held[0], held[1] + 1)
        if held is not None:
            try:
                yield
            finally:
                with _HELD_GUARD:
                    handle, count = _HELD[self.root]
                    _HELD[self.root] = (handle, count - 1)
            return
        created = not self.root.exists()
        self.ensure()
        handle = (self.root / ".lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            from domainfit.core.errors import UsageError

            raise UsageError(f"workspace {self.root} is in use by another domainfit process") from None
        with _HELD_GUARD:
            _HELD[self.root] = (handle, 1)
        self._recover()
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            with _HELD_GUARD:
                del _HELD[self.root]
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
            if created and failed:
                self._remove_if_unused()

    def _recover(self) -> None:
        """Finish what a killed domainfit left behind; called with the lock held, so no writer is running.

        A stage folder swapped out but not yet replaced (``.<stage>.old.<pid>``
        with no ``<stage>``) is put back; otherwise the old copy is removed.
        Staged folders and temporary files (``.<name>.<random>.tmp``) of a run
        that was killed before its swap are removed, at the top of the
        workspace and in its caches.
        """
        for entry in list(self.root.iterdir()):
            name = entry.name
            if not name.startswith("."):
                continue
            stage, sep, pid = name[1:].rpartition(".old.")
            if sep and pid.isdigit() and entry.is_dir():
                final = self.root / stage
                if final.exists():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    os.replace(entry, final)
            elif name.endswith(".tmp"):
                _remove(entry)
        if self.cache_dir.is_dir():
            for entry in self.cache_dir.rglob(".*.tmp"):
                _remove(entry)

    def holds_lock(self) -> bool:
        """Return True while this process holds the workspace lock."""
        with _HELD_GUARD:
            return self.root in _HELD

    def _remove_if_unused(self) -> None:
        """Remove a workspace this process just created when it holds nothing but its marker and lock file."""
        with contextlib.suppress(OSError):
            if {p.name for p in self.root.iterdir()} <= {MARKER, ".lock"}:
                shutil.rmtree(self.root)
