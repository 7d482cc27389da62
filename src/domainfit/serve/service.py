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
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from domainfit.core.errors import UsageError
from domainfit.index.backend import Fusion, Hit, IndexBackend, SearchQuery
from domainfit.serve.config import SearchMode, ServeConfig
from domainfit.serve.encoder import Encoder
from domainfit.serve.errors import RequestError
from domainfit.serve.metrics import ServiceMetrics
from domainfit.serve.querylog import QueryLog
from domainfit.serve.schemas import (
    EmbedBody,
    Health,
    Info,
    Limits,
    SearchBody,
    SearchHit,
    SearchResponse,
    VersionInfo,
)


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


class SearchService:
    """Answer searches and embeddings from one opened index and its encoders (read-only).

    Inputs: the backend, encoders by version, what production serves, the
    caps, the metrics and an optional query log. Raises `RequestError` (with
    status and kind) for a request it refuses.
    """

    def __init__(
        self,
        backend: IndexBackend,
        encoders: Mapping[str, Encoder],
        served: Served,
        settings: ServeConfig,
        metrics: ServiceMetrics,
        query_log: QueryLog | None = None,
    ) -> None:
        self.backend = backend
        self.encoders = dict(encoders)
        self.served = served
        self.settings = settings
        self.metrics = metrics
        self.query_log = query_log
        self.versions = dict(backend.versions())
        if served.version not in self.versions:
            raise UsageError(
                f"model version {served.version!r} is not in the index (it has: {', '.join(self.versions) or 'none'})"
            )
        if served.version not in self.encoders:
            raise UsageError(f"no encoder given for the served model version {served.version!r}")
        self.metrics.documents.set(backend.count())

    def _version(self, requested: str | None) -> str:
        """Return the version a request searches; 404 for one the index does not hold."""
        version = requested or self.served.version
        if version not in self.versions:
            raise RequestError(
                404, f"model version {version!r} is not in the index (versions: {', '.join(self.versions)})"
            )
        return version

    def _encoder(self, version: str) -> Encoder:
        """Return the encoder of a version; 422 when the service has none for it."""
        encoder = self.encoders.get(version)
        if encoder is None:
            served = ", ".join(self.encoders)
            raise RequestError(422, f"model version {version!r} has no query encoder here (served: {served})")
        return encoder

    def floor(self, mode: str, version: str, requested: float | None) -> float | None:
        """Return the score floor of a search: the request's, else (dense only) the configured or calibrated one."""
        if requested is not None:
            return requested
        if mode != "dense":
            return None
        if self.settings.min_score is not None:
            return self.settings.min_score
        return self.served.thresholds.get(version)

    def _run(self, query: SearchQuery) -> list[Hit]:
        """Search the backend; a query it refuses is a 422.

        Both backends refuse with a `UsageError` naming what is wrong: an unknown
        field, or a filter value of another type than its field (``{"rank": "3"}``
        on an integer field), so each is a 422 with that message.
        """
        try:
            return self.backend.search(query.checked())
        except UsageError as exc:
            raise RequestError(422, str(exc), "Validation") from None

    def search(self, body: SearchBody) -> SearchResponse:
        """Run one search; count it (and whether it came back empty) and log it."""
        start = time.perf_counter()
        mode: SearchMode = body.mode or self.settings.default_mode or self.served.mode
        version = self._version(body.model_version)
        if not body.query.strip():
            raise RequestError(422, "query: may not be blank", "Validation")
        vector = None
        if mode in ("dense", "hybrid"):
            encoder = self._encoder(version)
            vector = encoder.encode([body.query], prompt_name=encoder.query_prompt_name)[0].tolist()
        query = SearchQuery(
            text=body.query,
            vector=vector,
            mode=mode,
            k=body.k,
            version=version,
            filters=dict(body.filters or {}),
            fields=tuple(body.fields),
            fusion=self.served.fusion,
            alpha=self.served.alpha,
        )
        hits = self._run(query)
        floor = self.floor(mode, version, body.min_score)
        if floor is not None:
            hits = [h for h in hits if h.score >= floor]
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
            )
        return SearchResponse(
            hits=[SearchHit(id=h.id, score=float(h.score), fields=dict(h.fields)) for h in hits],
            mode=mode,
            version=version,
            k=body.k,
            min_score=floor,
            took_ms=round(took, 3),
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
        encoder = self._encoder(self._version(body.model_version))
        if body.prompt_name is not None and body.prompt_name not in encoder.prompt_names:
            known = ", ".join(encoder.prompt_names) or "none"
            raise RequestError(422, f"prompt_name: {body.prompt_name!r} is not a prompt of the model ({known})")
        vectors = encoder.encode(texts, normalize=body.normalize, prompt_name=body.prompt_name)
        self.metrics.embedded.inc(len(texts))
        return vectors.tolist()

    def health(self) -> Health:
        """Count the documents (so a broken index fails the health check)."""
        count = self.backend.count()
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
        """Describe the served model, version, dimension, index size, threshold and caps."""
        served = self.served
        versions = [
            VersionInfo(
                version=v,
                dimension=d,
                model=self.encoders[v].name if v in self.encoders else None,
                threshold=served.thresholds.get(v),
                precision=self.backend.precision(v).name,
            )
            for v, d in sorted(self.versions.items())
        ]
        return Info(
            model_id=served.model,
            version=served.version,
            dimension=self.versions[served.version],
            documents=self.backend.count(),
            threshold=self.floor("dense", served.version, None),
            mode=self.settings.default_mode or served.mode,
            tag=served.tag,
            backend=served.backend,
            versions=versions,
            limits=self.limits(),
            auth=auth,
        )
