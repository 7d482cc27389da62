"""Keep a store's vectors in step with a corpus: incremental, resumable re-embedding.

Each row carries the content hash of what it holds. A sync compares the
corpus with the store (`plan_sync`): rows that are new or whose content
changed are written (without vectors: their old vectors are stale), rows that
left the corpus are deleted, and only the rows that lack the target version's
vector are embedded, in batches, each batch one commit keyed on
``(id, content_hash)``. A run killed at any point leaves committed batches in
place; the next run finds them embedded and does not redo them, and a row is
never duplicated (writes are keyed on the id).

Inputs: an `IndexBackend`, the corpus as `IndexDocument` rows, the model
version, its dimension and an encoder (texts → L2-normalised float32 rows).
No process is forked here; a caller that runs this in a child spawns it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from domainfit.core.progress import progress_bar
from domainfit.index.backend import DocState, IndexBackend, IndexDocument

#: texts → (len(texts), dim) float32 vectors.
Encoder = Callable[[list[str]], np.ndarray]
#: Documents embedded and committed together (one commit per batch).
DEFAULT_BATCH = 256


@dataclass
class SyncPlan:
    """What a sync does: rows to write (new or changed), ids to delete, rows to embed, rows already done."""

    write: list[IndexDocument] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    embed: list[IndexDocument] = field(default_factory=list)
    unchanged: int = 0


@dataclass
class SyncResult:
    """What a sync did: rows written, deleted and embedded, rows whose vector was already there, batches, time."""

    version: str
    documents: int
    written: int
    deleted: int
    embedded: int
    already_embedded: int
    batches: int
    seconds: float
    embed_seconds: float

    @property
    def docs_per_second(self) -> float:
        """Embedded documents per second of embedding and committing (0 when nothing was embedded)."""
        return self.embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form stored in the index stage's result."""
        return {**asdict(self), "docs_per_second": round(self.docs_per_second, 2)}


def plan_sync(states: dict[str, DocState], docs: Sequence[IndexDocument]) -> SyncPlan:
    """Compare the corpus with the store's rows (``states`` for the target version); return the `SyncPlan`."""
    plan = SyncPlan()
    seen: set[str] = set()
    for doc in docs:
        seen.add(doc.id)
        state = states.get(doc.id)
        if state is None or state.content_hash != doc.content_hash:
            plan.write.append(doc)
            plan.embed.append(doc)
        elif not state.has_vector:
            plan.embed.append(doc)
        else:
            plan.unchanged += 1
    plan.delete = sorted(set(states) - seen)
    return plan


def sync_index(
    store: IndexBackend,
    docs: Sequence[IndexDocument],
    version: str,
    dimension: int,
    encode: Encoder,
    *,
    batch_size: int = DEFAULT_BATCH,
    description: str = "embedding documents",
    on_commit: Callable[[int], None] | None = None,
) -> SyncResult:
    """Bring ``store`` in step with ``docs`` for ``version``; return what was done.

    Order: the version's column is added, new and changed rows are written, rows
    that left the corpus are deleted, then the rows lacking a vector are encoded
    ``batch_size`` at a time (longest first, so a batch pads little), each batch committed before the next is encoded
    (``on_commit(n)`` is called after each, with the rows committed so far). A
    progress bar shows documents, rate and time left.
    """
    started = time.perf_counter()
    store.add_version(version, dimension)
    plan = plan_sync(store.states(version), docs)
    plan.embed.sort(key=lambda d: -len(d.embed_text()))  # similar lengths per batch: less padding, as encode does
    written = store.upsert(plan.write) if plan.write else 0  # first: a row the store refuses fails before any delete
    deleted = store.delete(plan.delete) if plan.delete else 0
    embedded = batches = 0
    embed_started = time.perf_counter()
    with progress_bar(description, len(plan.embed), unit="docs") as advance:
        for start in range(0, len(plan.embed), batch_size):
            batch = plan.embed[start : start + batch_size]
            vectors = encode([doc.embed_text() for doc in batch])
            store.set_vectors(version, [d.id for d in batch], [d.content_hash for d in batch], vectors)
            embedded += len(batch)
            batches += 1
            advance(len(batch))
            if on_commit is not None:
                on_commit(embedded)
    now = time.perf_counter()
    return SyncResult(
        version=version,
        documents=len(docs),
        written=written,
        deleted=deleted,
        embedded=embedded,
        already_embedded=plan.unchanged,
        batches=batches,
        seconds=now - started,
        embed_seconds=now - embed_started,
    )
