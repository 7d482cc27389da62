"""Which training checkpoints a resumed run may start from: complete ones only.

The trainer writes ``checkpoint-<step>/`` in place, file by file: the model
(safetensors, configs, tokenizer), then ``optimizer.pt``, ``scheduler.pt``
and the RNG state, and ``trainer_state.json`` last. A process killed while it
saves leaves a folder with files missing or cut short. After every save, once
the trainer is done with the folder, `completion_callback` adds
``domainfit-checkpoint.json``: the step and the size of every file.

A checkpoint is complete when its files check out (`checkpoint_problem`):
``trainer_state.json`` is readable JSON of the folder's step; the weights,
``optimizer.pt``, ``scheduler.pt`` and an RNG state are there; every
safetensors file is as long as its header says; every torch file is a whole
archive; every JSON file parses; and, when the folder has the marker, every
file it lists has its recorded size. Once any checkpoint of the folder has a
marker, one without it counts as cut off; checkpoints written before markers
existed (none has one) are judged by their files alone.

`last_complete_checkpoint` returns the newest complete checkpoint whose best
checkpoint (the one ``trainer_state.json`` names for loading at the end) is
complete too, and the ones it passed over, with the reason.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from domainfit.core.errors import DomainfitWarning
from domainfit.core.files import atomic_write_json

#: The completion marker domainfit writes into a checkpoint folder after the trainer saved it.
MARKER = "domainfit-checkpoint.json"
MARKER_FORMAT = 1
TRAINER_STATE = "trainer_state.json"
#: Files a resumable checkpoint must hold besides its weights and RNG state (the trainer restores them).
REQUIRED = ("optimizer.pt", "scheduler.pt", TRAINER_STATE)
_TORCH_SUFFIXES = (".pt", ".pth", ".bin")


class IncompleteCheckpointWarning(DomainfitWarning):
    """A checkpoint was cut off while it was saved (or damaged since) and is not resumed from."""


def step_of(folder: Path) -> int | None:
    """Return the step of a ``checkpoint-<step>`` folder name, or None."""
    prefix, _, tail = folder.name.rpartition("-")
    return int(tail) if prefix == "checkpoint" and tail.isdigit() else None


def checkpoints(folder: Path) -> list[Path]:
    """Return the ``checkpoint-<step>`` folders under ``folder``, newest step first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and step_of(p) is not None]
    return sorted(found, key=lambda p: step_of(p) or 0, reverse=True)


def _files(folder: Path) -> dict[str, int]:
    """Return every file under ``folder`` (relative POSIX path -> size), the marker and temp files left out."""
    out: dict[str, int] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MARKER and not path.name.endswith(".tmp"):
            out[path.relative_to(folder).as_posix()] = path.stat().st_size
    return out


def write_marker(folder: Path, step: int) -> None:
    """Record that ``folder`` is a complete checkpoint of ``step``: the size of every file in it."""
    atomic_write_json(folder / MARKER, {"format_version": MARKER_FORMAT, "step": step, "files": _files(folder)})


def completion_callback() -> Any:
    """Return a trainer callback that writes the completion marker once each checkpoint is saved.

    ``on_save`` runs after the trainer has written every file of the checkpoint
    (and rotated old ones); with several processes, all of them wait until
    each has written its share, then the main process writes the marker.
    """
    from transformers import TrainerCallback

    from domainfit.train import distributed

    class MarkCompleteCheckpoints(TrainerCallback):
        """Writes ``domainfit-checkpoint.json`` into each checkpoint folder after it is saved."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            distributed.barrier()  # every rank has written its RNG state
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir():
                write_marker(folder, int(state.global_step))

    return MarkCompleteCheckpoints()


def _safetensors_problem(path: Path) -> str | None:
    """Return why a safetensors file is not whole (shorter or longer than its header says), or None."""
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if length < 0 or length > size - 8:
                return f"{path.name} is cut off ({size} bytes, no complete header)"
            header = json.loads(handle.read(length))
        end = max((int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"), default=0)
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return f"{path.name} has an unreadable header"
    if 8 + length + end != size:
        return f"{path.name} is {size} bytes, its header says {8 + length + end}"
    return None


def _torch_problem(path: Path) -> str | None:
    """Return why a torch file is not a whole archive (its directory is written last), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            if not archive.infolist():
                return f"{path.name} is empty"
    except (OSError, zipfile.BadZipFile, ValueError):
        return f"{path.name} is cut off ({path.stat().st_size} bytes, not a complete torch file)"
    return None


def _state_problem(folder: Path, step: int) -> str | None:
    """Return why ``trainer_state.json`` cannot be resumed from, or None."""
    try:
        state = json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{TRAINER_STATE} is cut off or unreadable"
    if not isinstance(state, dict) or state.get("global_step", step) != step:
        return f"{TRAINER_STATE} is not the state of step {step}"
    return None


def _marker_problem(folder: Path, step: int) -> str | None:
    """Return why the completion marker does not match the folder (a file missing or of another size), or None."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        recorded = {str(name): int(size) for name, size in marker["files"].items()}
        marked_step = int(marker["step"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return f"{MARKER} is unreadable"
    if marked_step != step:
        return f"{MARKER} is the marker of step {marked_step}"
    present = _files(folder)
    for name, size in recorded.items():
        if name not in present:
            return f"{name} is missing"
        if present[name] != size:
            return f"{name} is {present[name]} bytes, {size} when it was saved"
    return None


def checkpoint_problem(folder: Path, *, require_marker: bool = False) -> str | None:
    """Return why ``folder`` is not a complete checkpoint, or None when it can be resumed from.

    ``require_marker``: a checkpoint without domainfit's completion marker is
    incomplete (set when other checkpoints of the run have one).
    """
    try:
        return _problem(folder, require_marker)
    except OSError as exc:  # a file removed or unreadable while it was checked
        return f"unreadable ({type(exc).__name__}: {exc.strerror or exc})"


def _problem(folder: Path, require_marker: bool) -> str | None:
    """`checkpoint_problem` without the guard against files vanishing while they are read."""
    step = step_of(folder)
    if step is None or not folder.is_dir():
        return "not a checkpoint-<step> folder"
    has_marker = (folder / MARKER).is_file()
    if has_marker:
        problem = _marker_problem(folder, step)
        if problem:
            return problem
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MARKER]
    for path in files:  # a file cut short first: it says most about where the save stopped
        problem = _file_problem(path, path.relative_to(folder).as_posix())
        if problem:
            return problem
    for name in REQUIRED:
        if not (folder / name).is_file():
            return f"{name} is missing"
    if not any(folder.glob("rng_state*.pth")):
        return "the RNG state (rng_state.pth) is missing"
    if not any(p.suffix == ".safetensors" or p.name == "pytorch_model.bin" for p in files):
        return "the model weights are missing"
    problem = _state_problem(folder, step)
    if problem is None and not has_marker and require_marker:
        return f"no {MARKER} (cut off before the save finished)"
    return problem


def _file_problem(path: Path, name: str) -> str | None:
    """Return why one file of a checkpoint is not whole (by its kind: safetensors, torch, JSON), or None."""
    if path.suffix not in (".safetensors", ".json", *_TORCH_SUFFIXES):
        return None  # text files (vocab, README) have no structure to check
    if path.stat().st_size == 0:
        return f"{name} is empty"
    if path.suffix == ".safetensors":
        return _safetensors_problem(path)
    if path.suffix in _TORCH_SUFFIXES:
        return _torch_problem(path)
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{name} is cut off or unreadable"
    return None


def _best_of(folder: Path) -> str | None:
    """Return the folder name of the best checkpoint ``folder``'s trainer state names, or None."""
    try:
        state = json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    best = state.get("best_model_checkpoint") if isinstance(state, dict) else None
    return Path(best).name if isinstance(best, str) and best else None


def last_complete_checkpoint(folder: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """Return the newest resumable checkpoint under ``folder`` (or None) and the newer ones skipped, with why.

    Resumable: complete (`checkpoint_problem`), and the best checkpoint its
    trainer state names (loaded at the end of training) is there and complete.
    """
    found = checkpoints(folder)
    require_marker = any((p / MARKER).is_file() for p in found)
    problems: dict[Path, str | None] = {}

    def problem(path: Path) -> str | None:
        if path not in problems:
            problems[path] = checkpoint_problem(path, require_marker=require_marker)
        return problems[path]

    skipped: list[tuple[Path, str]] = []
    for path in found:
        why = problem(path)
        best = _best_of(path) if why is None else None
        if why is None and best is not None and best != path.name:
            other = folder / best
            if not other.is_dir():
                why = f"its best checkpoint {best} is missing"
            elif problem(other) is not None:
                why = f"its best checkpoint {best} is incomplete ({problem(other)})"
        if why is None:
            return path, skipped
        skipped.append((path, why))
    return None, skipped
