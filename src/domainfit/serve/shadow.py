"""Shadow mode: the same searches run against another model version, off the request path, and compared.

``domainfit serve --shadow VERSION`` answers every search from production as
usual; after answering, the request thread only offers a small task to a
bounded queue (`ShadowSearcher.submit`, never blocking: when the queue is full
the task is dropped and counted). One worker thread takes the tasks, encodes
the query with the shadow version's model, searches the same index (the
snapshot current at that moment) on the shadow version's vectors and appends
one JSON line per search to the shadow log::

    {"format_version": 1, "time": "...Z", "query": "...", "mode": "dense", "k": 10,
     "production": "base", "shadow": "cls",
     "production_ids": [...], "shadow_ids": [...],
     "overlap": 0.8,          # |A ∩ B| / min(k, max(|A|, |B|)) of the top-k lists
     "jaccard": 0.667,        # |A ∩ B| / |A ∪ B|
     "top1_agree": true,      # same first result
     "top1_shift": -0.031,    # shadow's best score minus production's
     "score_shift": -0.024,   # mean shadow-minus-production score of the shared documents (null: none shared)
     "shadow_ms": 8.2}

Counted in Prometheus (the service's registry): ``domainfit_shadow_searches_total``,
``domainfit_shadow_dropped_total``, ``domainfit_shadow_errors_total`` and the
gauge ``domainfit_shadow_queue_depth``; ``GET /info`` reports the same counts.
Searches of the shadow version itself (or made while the shadow version has
been promoted to production) are not shadowed.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from domainfit.index.backend import Hit, SearchQuery
from domainfit.migrate.compare import list_agreement
from domainfit.serve.querylog import utc_now

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from domainfit.serve.encoder import Encoder
    from domainfit.serve.snapshot import Current

#: Version of the shadow log's line format.
SHADOW_LOG_FORMAT = 1

_STOP = object()


@dataclass(frozen=True)
class ShadowTask:
    """One answered production search to repeat on the shadow version (what the request thread hands over)."""

    query: str
    mode: str
    k: int
    filters: Mapping[str, Any]
    production: str
    ids: tuple[str, ...]
    scores: tuple[float, ...]


def compare_hits(
    production_ids: Sequence[str], production_scores: Sequence[float], shadow: Sequence[Hit], k: int
) -> dict[str, Any]:
    """Overlap@k, Jaccard, top-1 agreement and score shifts of the shadow's hits against production's.

    Output: the comparison fields of a shadow log line (see the module's docstring).
    """
    shadow_ids = [h.id for h in shadow]
    overlap, jaccard, top1 = list_agreement(list(production_ids), shadow_ids, k)
    prod = dict(zip(production_ids, production_scores, strict=True))
    shared = [h.score - prod[h.id] for h in shadow[:k] if h.id in prod]
    top1_shift = shadow[0].score - production_scores[0] if shadow and production_scores else None
    return {
        "shadow_ids": shadow_ids,
        "overlap": round(overlap, 6),
        "jaccard": round(jaccard, 6),
        "top1_agree": top1,
        "top1_shift": None if top1_shift is None else round(float(top1_shift), 6),
        "score_shift": round(float(sum(shared) / len(shared)), 6) if shared else None,
    }


@dataclass(frozen=True)
class ShadowSpec:
    """What ``serve --shadow`` asks for: the shadow version, its query encoder and the shadow log's path."""

    version: str
    encoder: Encoder
    log: Path

    def searcher(self, queue_size: int, registry: CollectorRegistry) -> ShadowSearcher:
        """Return the `ShadowSearcher` of this spec with a queue of ``queue_size``, counting in ``registry``."""
        return ShadowSearcher(self.version, self.encoder, self.log, queue_size, registry)


class ShadowSearcher:
    """Repeat production's searches on a shadow model version in a worker thread, through a bounded queue.

    Inputs: the shadow version (a vector column of the index), its query
    encoder (not production's: each encoder serialises its own calls), the
    shadow log's path (appended to, its folder created), the queue's size and
    the Prometheus registry to count in. `start` begins the worker over the
    service's `Current` snapshot; `submit` never blocks; `close` drains the
    queue and stops.
    """

    def __init__(
        self, version: str, encoder: Encoder, path: Path | str, queue_size: int, registry: CollectorRegistry
    ) -> None:
        from prometheus_client import Counter, Gauge

        self.version = version
        self.encoder = encoder
        self.path = Path(path)
        self.queue_size = queue_size
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._handle: TextIO | None = None
        self._thread: threading.Thread | None = None
        self._current: Current | None = None
        self.searched = Counter("domainfit_shadow_searches", "searches repeated on the shadow", registry=registry)
        self.dropped = Counter(
            "domainfit_shadow_dropped", "searches not shadowed because the shadow queue was full", registry=registry
        )
        self.errors = Counter("domainfit_shadow_errors", "shadow searches that failed", registry=registry)
        self.depth = Gauge("domainfit_shadow_queue_depth", "searches waiting in the shadow queue", registry=registry)
        self.counts = {"searched": 0, "dropped": 0, "errors": 0}

    def start(self, current: Current) -> None:
        """Open the log and start the worker over the service's current snapshot (idempotent)."""
        if self._thread is not None:
            return
        self._current = current
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")
        self._thread = threading.Thread(target=self._work, name="domainfit-shadow", daemon=True)
        self._thread.start()

    def submit(self, task: ShadowTask) -> bool:
        """Offer one search to the worker without waiting; return False (and count it) when the queue is full."""
        if task.production == self.version:
            return False
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            self.dropped.inc()
            self.counts["dropped"] += 1
            return False
        self.depth.set(self._queue.qsize())
        return True

    def _search(self, task: ShadowTask) -> dict[str, Any] | None:
        """Run one task on the shadow version; return its log line (None when production now is the shadow)."""
        assert self._current is not None
        start = time.perf_counter()
        with self._current.lease() as snapshot:
            if snapshot.served.version == self.version:
                return None  # promoted: production and shadow are the same version now
            vector = None
            if task.mode in ("dense", "hybrid"):
                vector = self.encoder.encode([task.query], prompt_name=self.encoder.query_prompt_name)[0].tolist()
            served = snapshot.served
            hits = snapshot.backend.search(
                SearchQuery(text=task.query, vector=vector, mode=task.mode, k=task.k, version=self.version,  # type: ignore[arg-type]
                            filters=dict(task.filters), fusion=served.fusion, alpha=served.alpha).checked()
            )  # fmt: skip
        line = {
            "format_version": SHADOW_LOG_FORMAT,
            "time": utc_now(),
            "query": task.query,
            "mode": task.mode,
            "k": task.k,
            "production": task.production,
            "shadow": self.version,
            "production_ids": list(task.ids),
            **compare_hits(task.ids, task.scores, hits, task.k),
            "shadow_ms": round((time.perf_counter() - start) * 1000.0, 3),
        }
        return line

    def _work(self) -> None:
        """Worker loop: take a task, search, append its line; stop at the sentinel."""
        assert self._handle is not None
        while True:
            item = self._queue.get()
            self.depth.set(self._queue.qsize())
            if item is _STOP:
                return
            assert isinstance(item, ShadowTask)
            try:
                line = self._search(item)
                if line is not None:
                    self._handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                    self._handle.flush()
                    self.searched.inc()
                    self.counts["searched"] += 1
            except Exception:  # a failed shadow search must never reach production
                self.errors.inc()
                self.counts["errors"] += 1

    def info(self) -> dict[str, Any]:
        """Return the shadow's version, queue size and counts (for ``GET /info``)."""
        return {"version": self.version, "queue_size": self.queue_size, "queued": self._queue.qsize(), **self.counts}

    def close(self) -> None:
        """Finish the queued searches, stop the worker and close the log (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
