"""What the endpoints do, over plain inputs: search an opened index, embed texts, describe the service.

`SearchService` takes an opened `IndexBackend` (read-only, checked out at
production's tag), one `Encoder` per model version it can encode queries for,
what production serves (`Served`) and the `ServeConfig` caps. It never writes
the index. The HTTP layer is `domainfit.serve.app`.

Score floors: a request's ``min_score`` is applied to whatever score its mode
returns. Without one, a dense search is cut at the configured ``min_score``,
else at the calibrated threshold of the version searched (calibrate's F-beta
threshold is a cosine similarity, so it means nothing for BM25 scores or
fused ranks: bm25 and hybrid searches are not cut by default).

Stored precision: a version whose vectors the index holds quantised or
truncated (`domainfit.index.precision`) is searched with the same full-width
query vector; the backend reduces and quantises it as it did the documents,
so the service encodes every query the same way, and ``/info`` says each
version's precision.

Bridge (``serve --bridge``, `domainfit.serve.bridge`): while a snapshot
carries one, a dense or hybrid search of its old version embeds the query with
the new model and maps it into the old space before searching; the response
and ``/info`` name the map and its retention. Calibrate's threshold was
measured on the old model's own query vectors, so a bridged search has no
default floor (a request's ``min_score`` or ``[serve] min_score`` still applies).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from domainfit.core.errors import UsageError
from domainfit.index.backend import Hit, IndexBackend, SearchQuery, ServingPointer
from domainfit.serve.bridge import ServedBridge
from domainfit.serve.config import SearchMode, ServeConfig
from domainfit.serve.encoder import Encoder
from domainfit.serve.errors import RequestError
from domainfit.serve.metrics import ServiceMetrics
from domainfit.serve.pointer_watch import PointerWatcher
from domainfit.serve.querylog import QueryLog
from domainfit.serve.schemas import (
    BridgeUsed,
    EmbedBody,
    Health,
    Info,
    Limits,
    SearchBody,
    SearchHit,
    SearchResponse,
    VersionInfo,
)
from domainfit.serve.shadow import ShadowSearcher, ShadowTask
from domainfit.serve.snapshot import Current, Served, Snapshot

__all__ = ["SearchService", "Served", "Snapshot", "checked_snapshot"]


def checked_snapshot(snapshot: Snapshot) -> Snapshot:
    """Return the snapshot after checking that its served version is in the index and has an encoder (`UsageError`)."""
    version, have = snapshot.served.version, snapshot.versions
    if version not in have:
        raise UsageError(f"model version {version!r} is not in the index (it has: {', '.join(have) or 'none'})")
    if version not in snapshot.encoders:
        raise UsageError(f"no encoder given for the served model version {version!r}")
    return snapshot


def _version(snapshot: Snapshot, requested: str | None) -> str:
    """Return the version a request searches; 404 for one the index does not hold."""
    version = requested or snapshot.served.version
    if version not in snapshot.versions:
        have = ", ".join(snapshot.versions)
        raise RequestError(404, f"model version {version!r} is not in the index (versions: {have})")
    return version


def version_encoder(snapshot: Snapshot, version: str) -> Encoder:
    """Return the encoder of a version; 422 when the service has none for it."""
    encoder = snapshot.encoders.get(version)
    if encoder is None:
        served = ", ".join(snapshot.encoders)
        raise RequestError(422, f"model version {version!r} has no query encoder here (served: {served})")
    return encoder


def run_search(snapshot: Snapshot, query: SearchQuery) -> list[Hit]:
    """Search the snapshot's backend; a query it refuses is a 422.

    Both backends refuse with a `UsageError` naming what is wrong: an unknown
    field, or a filter value of another type than its field (``{"rank": "3"}``
    on an integer field), so each is a 422 with that message.
    """
    try:
        return snapshot.backend.search(query.checked())
    except UsageError as exc:
        raise RequestError(422, str(exc), "Validation") from None


class SearchService:
    """Answer searches and embeddings from one opened index and its encoders (read-only).

    Inputs: the backend, encoders by version, what production serves, the
    caps, the metrics, an optional query log, the production pointer the
    index was opened from and the bridge (``serve --bridge``; `UsageError`
    when it does not map into the served version). What production serves is held in `current` (a
    `Snapshot`): every request reads one snapshot from start to end, and a
    promotion (`PointerWatcher`) swaps it without failing a request. Raises
    `RequestError` (with status and kind) for a request it refuses.
    """

    def __init__(
        self,
        backend: IndexBackend,
        encoders: Mapping[str, Encoder],
        served: Served,
        settings: ServeConfig,
        metrics: ServiceMetrics,
        query_log: QueryLog | None = None,
        *,
        pointer: ServingPointer | None = None,
        bridge: ServedBridge | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.query_log = query_log
        versions = dict(backend.versions())
        if bridge is not None and not bridge.fits(served.version, versions):
            raise UsageError(f"the bridge maps into version {bridge.old_version}, not the served {served.version}")
        first = checked_snapshot(Snapshot(backend, served, versions, dict(encoders), pointer, bridge=bridge))
        #: What production serves now; a request leases it once (`Current.lease`), a promotion swaps it.
        self.current = Current(first)
        #: The shadow searcher (``serve --shadow``), when one runs.
        self.shadow: ShadowSearcher | None = None
        #: The production pointer's watcher, when the service follows it.
        self.watcher: PointerWatcher | None = None
        self.metrics.documents.set(backend.count())

    @property
    def served(self) -> Served:
        """What production serves now."""
        return self.current.snapshot.served

    def floor(
        self, mode: str, version: str, requested: float | None, served: Served | None = None, *, bridged: bool = False
    ) -> float | None:
        """Return the score floor of a search: the request's, else (dense only) the configured or calibrated one.

        ``bridged``: the query went through a bridge, so the calibrated
        threshold (measured on the old model's own queries) is not applied.
        """
        if requested is not None:
            return requested
        if mode != "dense":
            return None
        if self.settings.min_score is not None:
            return self.settings.min_score
        if bridged:
            return None
        return (served or self.served).thresholds.get(version)

    def search(self, body: SearchBody) -> SearchResponse:
        """Run one search on one snapshot; count it (and whether it came back empty), log it, offer it to the shadow."""
        with self.current.lease() as snapshot:
            return self._search(snapshot, body)

    def _search(self, snapshot: Snapshot, body: SearchBody) -> SearchResponse:
        """Run one search on ``snapshot`` (see `search`)."""
        start = time.perf_counter()
        served = snapshot.served
        mode: SearchMode = body.mode or self.settings.default_mode or served.mode
        version = _version(snapshot, body.model_version)
        if not body.query.strip():
            raise RequestError(422, "query: may not be blank", "Validation")
        vector = None
        bridge = snapshot.bridge if mode != "bm25" and snapshot.bridge and snapshot.bridge.applies(version) else None
        if bridge is not None:
            vector = bridge.query_vector(body.query)
        elif mode in ("dense", "hybrid"):
            encoder = version_encoder(snapshot, version)
            vector = encoder.encode([body.query], prompt_name=encoder.query_prompt_name)[0].tolist()
        query = SearchQuery(
            text=body.query,
            vector=vector,
            mode=mode,
            k=body.k,
            version=version,
            filters=dict(body.filters or {}),
            fields=tuple(body.fields),
            fusion=served.fusion,
            alpha=served.alpha,
        )
        found = run_search(snapshot, query)
        floor = self.floor(mode, version, body.min_score, served, bridged=bridge is not None)
        hits = [h for h in found if h.score >= floor] if floor is not None else found
        took = (time.perf_counter() - start) * 1000.0
        self.metrics.observe_search(mode, version, len(hits))
        if self.query_log is not None:
            self.query_log.record(
                query=body.query,
                mode=mode,
                version=version,
                k=body.k,
                min_score=floor,
                filters=dict(body.filters) if body.filters else None,
                ids=[h.id for h in hits],
                scores=[round(float(h.score), 6) for h in hits],
                latency_ms=took,
                bridge=bridge.label if bridge is not None else None,
            )
        if self.shadow is not None and version == served.version:
            self.shadow.submit(
                ShadowTask(body.query, mode, body.k, dict(body.filters or {}), version,
                           tuple(h.id for h in found), tuple(float(h.score) for h in found))
            )  # fmt: skip
        return SearchResponse(
            hits=[SearchHit(id=h.id, score=float(h.score), fields=dict(h.fields)) for h in hits],
            mode=mode,
            version=version,
            k=body.k,
            min_score=floor,
            took_ms=round(took, 3),
            bridge=BridgeUsed(**bridge.info()) if bridge is not None else None,
        )

    def embed(self, body: EmbedBody) -> list[list[float]]:
        """Embed one text or a batch (413 over the batch cap, 422 for a text too long or an unknown prompt)."""
        texts = [body.inputs] if isinstance(body.inputs, str) else list(body.inputs)
        if not texts:
            raise RequestError(422, "inputs: give at least one text", "Validation")
        if len(texts) > self.settings.max_batch:
            raise RequestError(
                413, f"batch size {len(texts)} is larger than the cap of {self.settings.max_batch}", "PayloadTooLarge"
            )
        cap = self.settings.max_query_chars
        for i, text in enumerate(texts):
            if len(text) > cap:
                raise RequestError(422, f"inputs.{i}: {len(text)} characters, more than the cap of {cap}", "Validation")
        with self.current.lease() as snapshot:
            encoder = version_encoder(snapshot, _version(snapshot, body.model_version))
        if body.prompt_name is not None and body.prompt_name not in encoder.prompt_names:
            known = ", ".join(encoder.prompt_names) or "none"
            raise RequestError(422, f"prompt_name: {body.prompt_name!r} is not a prompt of the model ({known})")
        vectors = encoder.encode(texts, normalize=body.normalize, prompt_name=body.prompt_name)
        self.metrics.embedded.inc(len(texts))
        return vectors.tolist()

    def health(self) -> Health:
        """Count the documents (so a broken index fails the health check)."""
        with self.current.lease() as snapshot:
            count = snapshot.backend.count()
        self.metrics.documents.set(count)
        return Health(status="ok", documents=count)

    def limits(self) -> Limits:
        """Return the caps of one request."""
        s = self.settings
        return Limits(
            max_k=s.max_k,
            max_query_chars=s.max_query_chars,
            max_client_batch_size=s.max_batch,
            max_body_bytes=s.max_body_bytes,
            max_filters=s.max_filters,
        )

    def info(self, auth: bool) -> Info:
        """Describe the served model, version, dimension, index size, threshold and caps (and shadow, pointer)."""
        with self.current.lease() as snapshot:
            served = snapshot.served
            versions = [
                VersionInfo(
                    version=v,
                    dimension=d,
                    model=snapshot.encoders[v].name if v in snapshot.encoders else None,
                    threshold=served.thresholds.get(v),
                    precision=snapshot.backend.precision(v).name,
                )
                for v, d in sorted(snapshot.versions.items())
            ]
            return Info(
                model_id=served.model,
                version=served.version,
                dimension=snapshot.versions[served.version],
                documents=snapshot.backend.count(),
                threshold=self.floor("dense", served.version, None, served, bridged=snapshot.bridge is not None),
                mode=self.settings.default_mode or served.mode,
                tag=served.tag,
                backend=served.backend,
                versions=versions,
                limits=self.limits(),
                auth=auth,
                shadow=self.shadow.info() if self.shadow is not None else None,
                pointer=self.watcher.info() if self.watcher is not None else None,
                bridge=BridgeUsed(**snapshot.bridge.info()) if snapshot.bridge is not None else None,
            )
