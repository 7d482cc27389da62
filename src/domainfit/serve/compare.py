"""Side by side: one query searched on two model versions of the same snapshot, with what moved between them.

Which two: ``old`` defaults to the version production serves, ``new`` to the
shadow version when the service runs one, else the newest other version the
index holds (by the time ``versions.json`` records it was embedded; the name
breaks ties). Both lists come from one leased snapshot, so a promotion during
the request cannot mix them. Results are the raw top ``k`` (no score floor:
a person judges what each model ranks, not what a threshold keeps).

What moved, per row: in the new column ``new`` (not in the old top k), ``up``
or ``down`` by how many places, or ``same``; in the old column ``dropped``
(not in the new top k) or where it moved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domainfit.index.backend import SearchQuery
from domainfit.serve.config import SearchMode
from domainfit.serve.errors import RequestError
from domainfit.serve.service import run_search, version_encoder
from domainfit.serve.snapshot import Snapshot

#: Characters of a document's text shown under its title.
SNIPPET_CHARS = 320


@dataclass(frozen=True)
class Row:
    """One result of one column: rank (1-based), id, score, title, snippet, and what moved (``move`` by ``places``)."""

    rank: int
    id: str
    score: float
    title: str
    snippet: str
    move: str
    places: int = 0


@dataclass(frozen=True)
class Column:
    """One version's results: the version, its role (``production``, ``shadow`` or ``candidate``) and rows."""

    version: str
    role: str
    rows: list[Row]


@dataclass(frozen=True)
class Comparison:
    """The two columns of one query, with the k and mode searched."""

    query: str
    k: int
    mode: SearchMode
    old: Column
    new: Column


def default_new(snapshot: Snapshot, shadow: str | None, created: Mapping[str, str]) -> str | None:
    """Return the version compared with production by default: the shadow, else the newest other one (None: none)."""
    production = snapshot.served.version
    others = [v for v in snapshot.versions if v != production and v in snapshot.encoders]
    if shadow is not None and shadow in others:
        return shadow
    return max(others, key=lambda v: (created.get(v, ""), v), default=None)


def pick_versions(
    snapshot: Snapshot, old: str | None, new: str | None, shadow: str | None, created: Mapping[str, str]
) -> tuple[str, str]:
    """Return the (old, new) versions a request compares; `RequestError` 404/422 for ones that cannot be searched."""
    old = old or snapshot.served.version
    new = new or default_new(snapshot, shadow, created)
    if new is None:
        raise RequestError(422, "the index holds only one searchable model version: nothing to compare")
    for name, version in (("old", old), ("new", new)):
        if version not in snapshot.versions:
            raise RequestError(404, f"{name}: model version {version!r} is not in the index")
        version_encoder(snapshot, version)
    if old == new:
        raise RequestError(422, f"old and new are both {old!r}: pick two different versions")
    return old, new


def role(snapshot: Snapshot, version: str, shadow: str | None) -> str:
    """Return what a version is to the service: ``production``, ``shadow`` or ``candidate``."""
    if version == snapshot.served.version:
        return "production"
    return "shadow" if version == shadow else "candidate"


def _snippet(text: object) -> str:
    """Return the first `SNIPPET_CHARS` characters of a text field (an ellipsis when cut)."""
    value = str(text or "")
    return value if len(value) <= SNIPPET_CHARS else value[: SNIPPET_CHARS - 1] + "…"


def _moves(ids: Sequence[str], other: Sequence[str], gone: str) -> list[tuple[str, int]]:
    """Return (move, places) for each id against its rank in ``other`` (``gone`` when it is not there)."""
    where = {doc: i for i, doc in enumerate(other)}
    found = []
    for rank, doc in enumerate(ids):
        if doc not in where:
            found.append((gone, 0))
            continue
        shift = where[doc] - rank  # seen from the new list (other: the old one), positive means it rose
        found.append(("up" if shift > 0 else "down" if shift < 0 else "same", abs(shift)))
    return found


def _search(
    snapshot: Snapshot, query: str, version: str, mode: SearchMode, k: int
) -> list[tuple[str, float, str, str]]:
    """Return (id, score, title, snippet) of the top ``k`` of one version (dense or hybrid)."""
    encoder = version_encoder(snapshot, version)
    vector = encoder.encode([query], prompt_name=encoder.query_prompt_name)[0].tolist()
    served = snapshot.served
    found = run_search(
        snapshot,
        SearchQuery(
            text=query, vector=vector, mode=mode, k=k, version=version, fields=("title", "text"),
            fusion=served.fusion, alpha=served.alpha,
        ),
    )  # fmt: skip
    return [(h.id, float(h.score), str(h.fields.get("title") or ""), _snippet(h.fields.get("text"))) for h in found]


def side_by_side(
    snapshot: Snapshot, query: str, old: str, new: str, *, k: int, mode: SearchMode, shadow: str | None
) -> Comparison:
    """Search ``query`` on both versions of ``snapshot`` and mark what moved (see the module's docstring)."""
    before = _search(snapshot, query, old, mode, k)
    after = _search(snapshot, query, new, mode, k)
    before_ids, after_ids = [r[0] for r in before], [r[0] for r in after]
    flip = {"up": "down", "down": "up"}  # seen from the old list, a positive shift means it fell in the new one
    old_moves = [(flip.get(m, m), n) for m, n in _moves(before_ids, after_ids, "dropped")]
    new_moves = _moves(after_ids, before_ids, "new")

    def rows(found: list[tuple[str, float, str, str]], moves: list[tuple[str, int]]) -> list[Row]:
        return [Row(i + 1, d, s, t, x, m, n) for i, ((d, s, t, x), (m, n)) in enumerate(zip(found, moves, strict=True))]

    return Comparison(
        query=query,
        k=k,
        mode=mode,
        old=Column(old, role(snapshot, old, shadow), rows(before, old_moves)),
        new=Column(new, role(snapshot, new, shadow), rows(after, new_moves)),
    )
