"""Follow the production pointer: when ``serving.json`` is replaced, switch the running service to it.

A promotion or a rollback replaces ``<index>/serving.json`` in one rename
(`domainfit.index.backend.write_pointer`). `PointerWatcher` runs a thread that
looks at the file every ``interval_ms`` (one ``stat``: inode, size and
modification time); when it changed and the pointer it now holds differs from
the one served, it builds the new `Snapshot` off the request path (opens the
index at the new tag, loads the new model when no encoder of that version is
loaded yet, takes the new threshold) and swaps it in (`Current.swap`). Requests
keep reading the old snapshot until the swap, and the old backend is closed
only when the last request reading it has finished: no request fails and no
response mixes the two.

A pointer that cannot be read or opened (damaged, a tag that is not there, a
model that does not load) is not applied: the service keeps serving what it
served, counts the failure (``domainfit_pointer_errors_total``, ``/info``) and
tries again when the file changes again. Switches are counted in
``domainfit_pointer_switches_total``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.index.backend import POINTER, ServingPointer, read_pointer

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from domainfit.serve.snapshot import Current, Snapshot

#: Builds the snapshot of a new pointer, given the one served now (to re-use its loaded encoders).
SnapshotBuilder = Callable[[ServingPointer, "Snapshot"], "Snapshot"]

#: Default milliseconds between two looks at the pointer.
POLL_MS = 500


def _file_key(path: Path) -> tuple[int, int, int] | None:
    """Return what changes when the pointer file is replaced (inode, size, mtime in ns), or None when it is absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class PointerWatcher:
    """Watch an index folder's ``serving.json`` and swap the service's snapshot when it names something else.

    Inputs: the index folder, the service's `Current`, the builder of a new
    snapshot, the polling interval in milliseconds and the Prometheus registry.
    `poll` looks once (the thread calls it; tests may too); `start` / `stop`
    run and end the thread.
    """

    def __init__(
        self,
        folder: Path | str,
        current: Current,
        build: SnapshotBuilder,
        *,
        interval_ms: int = POLL_MS,
        registry: CollectorRegistry | None = None,
    ) -> None:
        from prometheus_client import Counter

        self.path = Path(folder) / POINTER
        self.current = current
        self.build = build
        self.interval = max(1, interval_ms) / 1000.0
        self._key = _file_key(self.path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()
        kwargs: dict[str, Any] = {"registry": registry} if registry is not None else {}
        self.switches = Counter("domainfit_pointer_switches", "production pointer changes applied", **kwargs)
        self.errors = Counter("domainfit_pointer_errors", "pointer changes that could not be applied", **kwargs)
        self.counts = {"switches": 0, "errors": 0}
        self.last_error: str | None = None

    def poll(self) -> bool:
        """Look at the pointer once; apply it when it changed. Return True when the service switched."""
        with self._poll_lock:
            key = _file_key(self.path)
            if key is None or key == self._key:
                return False
            self._key = key
            served = self.current.snapshot
            try:
                pointer = read_pointer(self.path.parent)
                if pointer == served.pointer:
                    return False
                fresh = self.build(pointer, served)
            except Exception as exc:  # a bad pointer must not stop the service
                self.errors.inc()
                self.counts["errors"] += 1
                self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return False
            self.current.swap(fresh)
            self.switches.inc()
            self.counts["switches"] += 1
            self.last_error = None
            return True

    def _run(self) -> None:
        """Thread loop: poll every interval until stopped."""
        while not self._stop.wait(self.interval):
            self.poll()

    def start(self) -> None:
        """Start the watching thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="domainfit-pointer-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def info(self) -> dict[str, Any]:
        """Return what ``GET /info`` says of the pointer: the file followed, the interval and the counts."""
        interval = round(self.interval * 1000)
        return {"file": POINTER, "interval_ms": interval, **self.counts, "last_error": self.last_error}
