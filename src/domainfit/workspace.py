"""Workspace layout, atomic writes and locking.

A workspace is one folder; each stage owns a sub-folder named after it
(``bench/``, later ``synth/``, ``train/`` ...). A stage builds its output in a
hidden temporary folder and swaps it in only when everything succeeded, so an
interrupted or failed stage never leaves a half-written artifact behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_WORKSPACE = Path("domainfit-work")


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (best effort on platforms without it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``final`` only if the block succeeds.

    On success the old folder (if any) is swapped out and deleted; on any
    exception the temporary folder is removed and ``final`` is left untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old.{os.getpid()}"
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class Workspace:
    """A domainfit workspace folder.

    Inputs: the root path (created lazily, on the first write).
    Example: ``ws = Workspace(Path("work")); with ws.lock(): ...``.
    """

    def __init__(self, root: Path | str = DEFAULT_WORKSPACE) -> None:
        self.root = Path(root).expanduser().resolve()

    def stage_dir(self, stage: str) -> Path:
        """Return the folder that holds one stage's artifacts (may not exist yet)."""
        return self.root / stage

    @property
    def cache_dir(self) -> Path:
        """Folder for caches shared by stages (embeddings, responses)."""
        return self.root / "cache"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the workspace for the duration of a stage."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                from domainfit.errors import UsageError

                raise UsageError(f"workspace {self.root} is in use by another domainfit process") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write_manifest(self, stage_path: Path, stage: str, inputs: dict[str, Any], outputs: list[str]) -> None:
        """Write ``manifest.json`` for a stage: its inputs (hashes, config) and output files."""
        from domainfit import __version__

        files = {}
        for name in outputs:
            file = stage_path / name
            if file.is_file():
                files[name] = {"sha256": sha256_file(file), "bytes": file.stat().st_size}
        atomic_write_json(
            stage_path / "manifest.json",
            {
                "format_version": 1,
                "stage": stage,
                "domainfit_version": __version__,
                "inputs": inputs,
                "outputs": files,
            },
        )
