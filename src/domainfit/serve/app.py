"""The search service's FastAPI application: `create_app` over an opened index, its encoders and the caps.

Endpoints: ``POST /search``, ``POST /embed`` (text-embeddings-inference's
shape), ``GET /health``, ``GET /info``, ``GET /metrics`` (Prometheus), and with a
judgements folder the side-by-side page ``GET /compare`` and its
``POST /compare/judge`` (`domainfit.serve.compare_routes`). The service only
reads the index; the page appends to the judgements folder only. Requests pass, outermost first: the metrics
middleware (every request counted and timed), the bearer-token check (when a
token is configured; before any body is read), the body-size cap, then the
routes, whose bodies are validated against the caps of `ServeConfig` (``k``,
query length, filters) and whose errors are all JSON ``{error, error_type}``
(`domainfit.serve.errors`).

This module deliberately does not use postponed annotations: the request
bodies are classes built inside `create_app` (their caps come from the
settings), and FastAPI reads the endpoints' annotations as objects.
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import Field
from starlette.responses import Response

from domainfit.index.backend import IndexBackend, ServingPointer
from domainfit.serve.auth import BearerAuth
from domainfit.serve.bridge import ServedBridge
from domainfit.serve.config import ServeConfig
from domainfit.serve.encoder import Encoder
from domainfit.serve.errors import install_error_handlers
from domainfit.serve.judgements import JudgementFolder
from domainfit.serve.limits import BodyLimit
from domainfit.serve.metrics import RequestMetrics, ServiceMetrics
from domainfit.serve.pointer_watch import PointerWatcher, SnapshotBuilder
from domainfit.serve.querylog import QueryLog
from domainfit.serve.schemas import EmbedBody, ErrorBody, FilterValue, Health, Info, SearchBody, SearchResponse
from domainfit.serve.service import SearchService, Served
from domainfit.serve.shadow import ShadowSpec

#: The paths the service answers (anything else is a JSON 404).
ENDPOINTS = ("/search", "/embed", "/health", "/info", "/metrics", "/openapi.json", "/docs")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI response entries for error statuses, each with the JSON error body."""
    described = {
        401: "missing or invalid bearer token",
        404: "unknown model version",
        413: "body or batch larger than its cap",
        422: "invalid request (a field, a cap, or a body that is not JSON)",
    }
    return {s: {"model": ErrorBody, "description": described[s]} for s in (401, *statuses)}


def _attach(service: SearchService, follow: tuple[Path, SnapshotBuilder] | None, shadow: ShadowSpec | None) -> None:
    """Give the service its shadow searcher and its pointer watcher (when asked for); they start with the app."""
    metrics, settings = service.metrics, service.settings
    if shadow is not None:
        service.shadow = shadow.searcher(settings.shadow_queue, metrics.registry)
    if follow is not None:
        folder, build = follow
        service.watcher = PointerWatcher(
            folder, service.current, build, interval_ms=settings.pointer_poll_ms, registry=metrics.registry
        )


def _start(service: SearchService) -> None:
    """Start the shadow worker and the pointer watcher of the service (at the application's start)."""
    if service.shadow is not None:
        service.shadow.start(service.current)
    if service.watcher is not None:
        service.watcher.start()


def _stop(service: SearchService) -> None:
    """Stop the watcher, drain the shadow queue and close the query log (at the application's end)."""
    if service.watcher is not None:
        service.watcher.stop()
    if service.shadow is not None:
        service.shadow.close()
    if service.query_log is not None:
        service.query_log.close()


def create_app(
    backend: IndexBackend,
    encoders: Mapping[str, Encoder],
    served: Served,
    settings: ServeConfig,
    *,
    token_digest: bytes | None = None,
    query_log: QueryLog | None = None,
    pointer: ServingPointer | None = None,
    follow: tuple[Path, SnapshotBuilder] | None = None,
    shadow: ShadowSpec | None = None,
    judgements: JudgementFolder | None = None,
    version_created: Mapping[str, str] | None = None,
    bridge: ServedBridge | None = None,
) -> FastAPI:
    """Build the service over an opened (read-only) index.

    Inputs: the backend, the query encoders by model version (the served
    version's is required), what production serves, the ``[serve]`` caps, the
    bearer token's SHA-256 digest (None: no token; the caller refuses a
    non-loopback bind without one, `domainfit.serve.auth.check_bind`) and an
    optional query log (closed when the application shuts down); the
    production pointer the index was opened from; ``follow``: the index folder
    whose ``serving.json`` the service follows and the builder of a snapshot for
    a new pointer (`domainfit.serve.pointer_watch`); ``shadow``: the version
    whose results are computed off the request path and compared
    (`domainfit.serve.shadow`); ``judgements``: the folder the ``/compare``
    page appends to (None: no page), with ``version_created`` (version →
    when it was embedded) to find the newest version; ``bridge``: the query-side bridge searches of
    the served version go through while it is served (`domainfit.serve.bridge`;
    the snapshot builder decides for each new pointer). The watcher and the
    shadow worker run while the application does (its lifespan).
    Output: the FastAPI application (serve it with uvicorn). Raises
    `UsageError` when the served version is not in the index or has no encoder.
    """
    metrics = ServiceMetrics()
    service = SearchService(backend, encoders, served, settings, metrics, query_log, pointer=pointer, bridge=bridge)
    _attach(service, follow, shadow)
    s = settings

    class SearchRequest(SearchBody):
        """``POST /search``: a query, how many results, how to search, which model version and which fields."""

        query: str = Field(
            min_length=1, max_length=s.max_query_chars, pattern=r"\S", description="the query text (not blank)"
        )
        k: int = Field(s.default_k, ge=1, le=s.max_k, description=f"number of results (at most {s.max_k})")
        filters: dict[str, FilterValue | list[FilterValue]] | None = Field(
            None, max_length=s.max_filters, description="metadata equality filters; a list means any of its values"
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        _start(service)
        yield
        _stop(service)

    app = FastAPI(
        title="domainfit search",
        version=served.version,
        summary="Search the domainfit index; embed texts with the served model.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.state.service = service
    app.state.metrics = metrics

    @app.post("/search", response_model=SearchResponse, responses=_errors(404, 413, 422))
    def search(body: SearchRequest) -> SearchResponse:
        """Search the index: ids, scores and the fields asked for, best first."""
        return service.search(body)

    @app.post("/embed", response_model=list[list[float]], responses=_errors(404, 413, 422))
    def embed(body: EmbedBody) -> list[list[float]]:
        """Embed one text or a batch with the served model (text-embeddings-inference's ``/embed``)."""
        return service.embed(body)

    @app.get("/health", response_model=Health, responses=_errors())
    def health() -> Health:
        """Report that the service is up and can read its index."""
        return service.health()

    @app.get("/info", response_model=Info, responses=_errors())
    def info() -> Info:
        """Describe the served model, version, dimension, index size, threshold and caps."""
        return service.info(auth=token_digest is not None)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}, **_errors()})
    def prometheus() -> Response:
        """Request counts, latencies and empty results in the Prometheus text format."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    session = None
    endpoints: tuple[str, ...] = ENDPOINTS
    if judgements is not None:
        from domainfit.serve.compare_routes import COMPARE_ENDPOINTS, install_compare
        from domainfit.serve.session import BrowserSession

        session = BrowserSession(token_digest)
        install_compare(app, service, judgements, session, version_created or {})
        endpoints += COMPARE_ENDPOINTS
    app.add_middleware(BodyLimit, max_bytes=s.max_body_bytes)
    if token_digest is not None:
        app.add_middleware(BearerAuth, digest=token_digest, session=session)
    app.add_middleware(RequestMetrics, metrics=metrics, endpoints=endpoints)
    return app
