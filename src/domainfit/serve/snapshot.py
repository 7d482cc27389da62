"""What one request reads: a `Snapshot` of the served index, and `Current`, which swaps it without a failed request.

A `Snapshot` is everything a search depends on that a promotion or a rollback
changes: the opened (read-only) backend, what production serves, the model
versions the index holds, the query encoders and, while a migration's
backfill runs, the query-side bridge. The service reads it once
per request (`Current.lease`), so one response never mixes two versions.
`Current.swap` replaces the reference atomically; the snapshot swapped out is
released (its backend closed) only when the last request that leased it has
finished, so no in-flight request loses its index.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from domainfit.serve.config import SearchMode

if TYPE_CHECKING:
    from domainfit.index.backend import Fusion, IndexBackend, ServingPointer
    from domainfit.serve.bridge import ServedBridge
    from domainfit.serve.encoder import Encoder


@dataclass(frozen=True)
class Served:
    """What production serves: the default model version and how it is searched.

    ``version`` is the vector column searched when a request names none,
    ``model`` the model its queries are encoded with; ``mode``, ``fusion`` and
    ``alpha`` the default search; ``thresholds`` the calibrated dense
    ``min_score`` per version (absent: no default floor); ``tag`` the index
    tag read and ``backend`` the store's name (both for ``/info``).
    """

    version: str
    model: str
    mode: SearchMode = "dense"
    fusion: Fusion = "rrf"
    alpha: float | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    tag: str | None = None
    backend: str = "lancedb"


@dataclass(frozen=True)
class Snapshot:
    """One consistent view of production: backend, what it serves, its versions (name → dimension) and encoders.

    ``pointer`` is the production pointer the snapshot was opened from (None
    when the service was given an index directly); ``owns_backend``: whether
    releasing the snapshot closes the backend (the first one belongs to its
    caller, who closes it); ``bridge``: the query-side bridge searches of the
    old version go through (``serve --bridge``; None once production serves
    another version, `domainfit.serve.bridge`).
    """

    backend: IndexBackend
    served: Served
    versions: Mapping[str, int]
    encoders: Mapping[str, Encoder]
    pointer: ServingPointer | None = None
    owns_backend: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    bridge: ServedBridge | None = None

    def release(self) -> None:
        """Close the backend when this snapshot opened it (the first snapshot's backend is its caller's)."""
        if self.owns_backend:
            self.backend.close()


@dataclass
class _Entry:
    """A snapshot with the number of requests reading it, and whether it was swapped out."""

    snapshot: Snapshot
    readers: int = 0
    retired: bool = False


class Current:
    """The snapshot production serves now; requests lease it, a promotion swaps it.

    Inputs: the first snapshot and what to call on a snapshot once it is
    swapped out and no request reads it any more (default: `Snapshot.release`).
    Thread-safe: leases come from the request threads, swaps from the pointer watcher.
    """

    def __init__(self, first: Snapshot, retire: Callable[[Snapshot], None] | None = None) -> None:
        self._entry = _Entry(first)
        self._lock = threading.Lock()
        self._retire = retire or Snapshot.release
        self.swaps = 0

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot a new request would read (for descriptions; a request should `lease`)."""
        return self._entry.snapshot

    @contextmanager
    def lease(self) -> Iterator[Snapshot]:
        """Yield the current snapshot, kept open until the block ends even if it is swapped out meanwhile."""
        with self._lock:
            entry = self._entry
            entry.readers += 1
        try:
            yield entry.snapshot
        finally:
            with self._lock:
                entry.readers -= 1
                done = entry.retired and entry.readers == 0
            if done:
                self._retire(entry.snapshot)

    def swap(self, snapshot: Snapshot) -> Snapshot:
        """Make ``snapshot`` the current one; return the one it replaced (released once no request reads it)."""
        with self._lock:
            old = self._entry
            self._entry = _Entry(snapshot)
            old.retired = True
            self.swaps += 1
            done = old.readers == 0
        if done:
            self._retire(old.snapshot)
        return old.snapshot
