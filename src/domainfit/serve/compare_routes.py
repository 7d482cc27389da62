"""The ``/compare`` routes: the side-by-side page (``GET /compare``) and its judgements (``POST /compare/judge``).

Installed by `domainfit.serve.app.create_app` only when the service was
started with a judgements folder (``serve --judgements DIR``). Both routes
sit behind the service's bearer check (a browser passes it with the page's
session cookie, `domainfit.serve.session`). ``GET /compare`` takes ``q``
(the query), ``old`` / ``new`` (versions, default: production and the
shadow or newest other version), ``k`` and ``mode`` (``dense`` or
``hybrid``). ``POST /compare/judge`` takes an url-encoded form with ``q``,
``doc_id``, ``grade`` and ``form_token`` (plus ``old``, ``new``, ``k`` to
come back to); the document must be in the served index; the judgement goes
to the folder named at start (no request names a path) and the answer is a
303 back to the comparison. Refusals are small HTML pages: 403 (form token),
404 (version), 415 (not a form), 422 (a field).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from domainfit.serve.compare import pick_versions, side_by_side
from domainfit.serve.compare_page import back_to, compare_page, error_page, notice_of, query_form
from domainfit.serve.config import SearchMode
from domainfit.serve.errors import RequestError
from domainfit.serve.judgements import InvalidJudgement, JudgementFolder
from domainfit.serve.service import SearchService
from domainfit.serve.session import BrowserSession
from domainfit.serve.snapshot import Snapshot

#: The paths these routes answer (for the request metrics).
COMPARE_ENDPOINTS = ("/compare", "/compare/judge")


class KnownIds:
    """The document ids of the snapshot production serves, read once per snapshot (a promotion may add some)."""

    def __init__(self) -> None:
        self._for: tuple[Snapshot, frozenset[str]] | None = None

    def of(self, snapshot: Snapshot) -> frozenset[str]:
        """Return the ids of ``snapshot``'s index."""
        cached = self._for
        if cached is None or cached[0] is not snapshot:
            cached = (snapshot, frozenset(snapshot.backend.states()))
            self._for = cached
        return cached[1]


def _int(value: str | None, name: str, default: int) -> int:
    """Parse an integer parameter (`RequestError` 422 when it is not one)."""
    if value is None or not value.strip():
        return default
    try:
        return int(value.strip())
    except ValueError:
        raise RequestError(422, f"{name}: must be an integer, got {value[:20]!r}") from None


def _k(value: str | None, service: SearchService) -> int:
    """Return the ``k`` asked for, within 1..``max_k``."""
    k = _int(value, "k", service.settings.default_k)
    if not 1 <= k <= service.settings.max_k:
        raise RequestError(422, f"k: must be between 1 and {service.settings.max_k}")
    return k


def _mode(value: str | None, snapshot: Snapshot, service: SearchService) -> SearchMode:
    """Return the search mode: ``dense`` or ``hybrid`` (BM25 would rank both versions alike)."""
    if value:
        if value not in ("dense", "hybrid"):
            raise RequestError(422, "mode: must be dense or hybrid")
        return "hybrid" if value == "hybrid" else "dense"
    served: SearchMode = service.settings.default_mode or snapshot.served.mode
    return "hybrid" if served == "hybrid" else "dense"


def _query(value: str | None, service: SearchService) -> str:
    """Return the query text (stripped); 422 above the query length cap."""
    query = (value or "").strip()
    if len(query) > service.settings.max_query_chars:
        raise RequestError(422, f"q: longer than the cap of {service.settings.max_query_chars} characters")
    return query


def install_compare(
    app: FastAPI,
    service: SearchService,
    folder: JudgementFolder,
    session: BrowserSession,
    created: Mapping[str, str],
) -> None:
    """Add the two routes to ``app``, over the service's snapshots and the judgements folder.

    ``created``: when each model version was embedded (``versions.json``), to
    find the newest one.
    """
    known = KnownIds()
    shown = f"{folder.root.name}/qrels/{folder.split}.tsv"

    def shadow() -> str | None:
        return service.shadow.version if service.shadow is not None else None

    @app.get("/compare", include_in_schema=False)
    def page(request: Request) -> Response:
        params = request.query_params
        with service.current.lease() as snapshot:
            versions = sorted(v for v in snapshot.versions if v in snapshot.encoders)
            try:
                k = _k(params.get("k"), service)
                query = _query(params.get("q"), service)
                old, new = pick_versions(snapshot, params.get("old"), params.get("new"), shadow(), created)
                mode = _mode(params.get("mode"), snapshot, service)
                found = side_by_side(snapshot, query, old, new, k=k, mode=mode, shadow=shadow()) if query else None
            except RequestError as exc:
                form = query_form(params.get("q") or "", versions, params.get("old"), params.get("new"), 10)
                return error_page(exc.status_code, str(exc.detail), form)
        grades = folder.grades(query) if query else {}
        return compare_page(
            found, versions=versions, old=old, new=new, k=k, form_token=session.form_token, grades=grades,
            notice=notice_of(params.get("judged"), params.get("outcome"), grades), folder=shown,
        )  # fmt: skip

    @app.post("/compare/judge", include_in_schema=False)
    async def judge(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return error_page(415, "send the judgement as a form (application/x-www-form-urlencoded)")
        try:
            fields = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return error_page(422, "the form is not valid url-encoded UTF-8")
        if not session.valid_form_token(fields.get("form_token", "")):
            return error_page(403, "the form token is missing or wrong: reload the page and judge again")
        try:
            grade = _int(fields.get("grade"), "grade", 0) if fields.get("grade") else None
            k = _k(fields.get("k"), service)
            query = _query(fields.get("q"), service)
        except RequestError as exc:
            return error_page(exc.status_code, str(exc.detail))
        if grade is None or not query or not fields.get("doc_id"):
            return error_page(422, "q, doc_id and grade are required")
        with service.current.lease() as snapshot:
            ids = await run_in_threadpool(known.of, snapshot)
        try:
            done = await run_in_threadpool(folder.judge, query, fields["doc_id"], grade, ids)
        except InvalidJudgement as exc:
            return error_page(422, str(exc))
        where = back_to(query, fields.get("old", ""), fields.get("new", ""), k, done.doc_id, done.written)
        return RedirectResponse(where, status_code=303)
