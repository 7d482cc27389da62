"""Re-embedding beyond one machine: the same incremental sync, its encoding on Ray Data (``domainfit[ray]``).

The plan is the single-machine one (`domainfit.index.embed.plan_sync`): only
rows that are new, changed or lack the version's vector are embedded. Those
rows become a Ray dataset; ``map_batches`` runs one model actor per worker
(`EmbedActor`: the model loaded once per actor, a GPU when the cluster has
one), and the driver writes the vectors back into the index batch by batch
(`IndexBackend.set_vectors`, keyed on id and content hash), so a run that
dies keeps every committed batch and the next run embeds only the rest, as on
one machine. Only the driver writes the store; workers never open it.

Ray is imported here only: the single-machine path never imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from domainfit.core.progress import progress_bar
from domainfit.index.backend import IndexBackend, IndexDocument
from domainfit.index.embed import SyncResult, plan_sync


class EmbedActor:
    """A Ray Data actor holding one model: ``{"text": [...]} → {"id", "content_hash", "vector"}``.

    Inputs: the model name or folder, its max sequence length, the batch size
    it encodes with and the device (None: CUDA when present, else CPU).
    """

    def __init__(self, model: str, max_seq_length: int | None = None, batch_size: int = 32) -> None:
        from domainfit.core.models import load_bi_encoder
        from domainfit.retrieval.dense import DenseRetriever

        device = "cuda" if _cuda() else None
        self.retriever = DenseRetriever(
            load_bi_encoder(model, device=device, max_seq_length=max_seq_length), batch_size=batch_size
        )

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Encode one batch of documents (their ``text`` as the encoder sees it)."""
        from domainfit.core.progress import set_quiet

        set_quiet(True)
        vectors = self.retriever.encode_documents([str(t) for t in batch["text"]])
        return {"id": batch["id"], "content_hash": batch["content_hash"], "vector": list(vectors)}


def _cuda() -> bool:
    """Return True when a CUDA device is visible to this worker."""
    import torch

    return bool(torch.cuda.is_available())


def ray_sync_index(
    store: IndexBackend,
    docs: Sequence[IndexDocument],
    version: str,
    dimension: int,
    model: str,
    *,
    max_seq_length: int | None = None,
    workers: int = 2,
    batch_size: int = 256,
    encode_batch_size: int = 32,
    gpus_per_worker: float = 0.0,
) -> SyncResult:
    """Bring ``store`` in step with ``docs`` for ``version``, encoding on Ray Data; return what was done.

    Inputs: the store, the corpus rows, the version and its dimension, the
    model (a name or a folder every worker can read), ``workers`` model actors,
    ``batch_size`` rows per commit (and per actor call), ``gpus_per_worker``.
    Ray must be initialised by the caller (``ray.init(...)``) or it starts a
    local instance.
    """
    import ray.data

    started = time.perf_counter()
    store.add_version(version, dimension)
    plan = plan_sync(store.states(version), docs)
    written = store.upsert(plan.write) if plan.write else 0
    deleted = store.delete(plan.delete) if plan.delete else 0
    embedded = batches = 0
    embed_started = time.perf_counter()
    if plan.embed:
        rows = [{"id": d.id, "content_hash": d.content_hash, "text": d.embed_text()} for d in plan.embed]
        dataset = ray.data.from_items(rows).map_batches(
            EmbedActor,
            fn_constructor_kwargs={"model": model, "max_seq_length": max_seq_length, "batch_size": encode_batch_size},
            batch_size=batch_size,
            concurrency=workers,
            num_cpus=1,
            num_gpus=gpus_per_worker,
        )
        with progress_bar("embedding documents (ray)", len(rows), unit="docs") as advance:
            for out in dataset.iter_batches(batch_size=batch_size, batch_format="numpy"):
                vectors = np.stack([np.asarray(v, dtype=np.float32) for v in out["vector"]])
                store.set_vectors(version, [str(i) for i in out["id"]], [str(h) for h in out["content_hash"]], vectors)
                embedded += len(vectors)
                batches += 1
                advance(len(vectors))
    now = time.perf_counter()
    return SyncResult(version, len(docs), written, deleted, embedded, plan.unchanged, batches, now - started,
                      now - embed_started)  # fmt: skip
