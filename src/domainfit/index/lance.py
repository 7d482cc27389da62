"""The LanceDB backend (default): an embedded, versioned table per corpus, no server to run.

One table per corpus in a LanceDB folder; one row per document (``id``,
``title``, ``text``, ``full_text`` = what BM25 and the encoder see,
``content_hash``, one column per scalar metadata key) and one fixed-size
vector column per model version (``vec_<version>``, null until embedded).
Dense search is exact (flat: the vector index is bypassed, so it matches
bench's exact search); BM25 is LanceDB's native full-text index on
``full_text``; hybrid fuses both with bench's fusion (`domainfit.index.fusion`).
Every write is a new table version; tags name versions; restore commits a
tagged version as the latest. Not fork-safe: worker processes are spawned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from domainfit.core.errors import UsageError
from domainfit.index.fusion import fuse, overfetch, top
from domainfit.index.schema import BASE_COLUMNS, FULL_TEXT, metadata_types
from domainfit.index.types import (
    HYBRID_DEPTH,
    DocState,
    Hit,
    IndexDocument,
    IndexMissing,
    Scalar,
    SearchQuery,
    searched_version,
    vector_column,
)

_TABLE = re.compile(r"[^A-Za-z0-9_.-]")
#: Rows per delete statement / per write of `upsert` (bounds the SQL and the memory of one commit).
_CHUNK = 5000
#: How old an untagged version must be before `optimize` prunes it.
_CLEANUP = timedelta(days=7)


def table_name(corpus: str) -> str:
    """Return the LanceDB table name of a corpus (characters other than letters, digits, ``_.-`` become ``_``)."""
    return _TABLE.sub("_", corpus) or "corpus"


def _literal(value: Scalar) -> str:
    """Return ``value`` as a SQL literal (strings quoted, quotes doubled)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def where_clause(filters: Mapping[str, Scalar | Sequence[Scalar]], columns: Sequence[str]) -> str | None:
    """Return the SQL ``WHERE`` of metadata equality filters (a list: any of its values), or None for none.

    Raises `UsageError` for a key that is not a filterable column.
    """
    parts: list[str] = []
    for key, value in filters.items():
        if key not in columns or key in BASE_COLUMNS or key.startswith("vec_"):
            raise UsageError(f"cannot filter on {key!r}: not a metadata field of this index")
        if isinstance(value, list | tuple):
            if not value:
                return "FALSE"
            parts.append(f"`{key}` IN ({', '.join(_literal(v) for v in value)})")
        else:
            parts.append(f"`{key}` = {_literal(value)}")  # type: ignore[arg-type]
    return " AND ".join(parts) or None


class LanceBackend:
    """`IndexBackend` over one LanceDB table (see the module docstring).

    Inputs: the LanceDB folder, the corpus name, ``read_only`` (True: the table
    must exist; nothing is created). Example::

        store = LanceBackend(folder / "lancedb", "docs")
        store.add_version("base", 384)
        store.upsert(docs, {"base": vectors})
        store.optimize()
        hits = store.search(SearchQuery(text="refund", vector=q, mode="hybrid", k=10))
    """

    def __init__(self, folder: Path | str, corpus: str, *, read_only: bool = False) -> None:
        import lancedb

        self.folder = Path(folder)
        self.corpus = corpus
        self.name = table_name(corpus)
        self.read_only = read_only
        if read_only and not self.folder.is_dir():
            raise IndexMissing(f"no LanceDB index at {self.folder}")
        self._db = lancedb.connect(str(self.folder))
        self._table: Any = None
        if self.name in self._table_names():
            self._table = self._db.open_table(self.name)
        elif read_only:
            raise IndexMissing(f"no table {self.name!r} in the LanceDB index at {self.folder}")

    def _table_names(self) -> list[str]:
        """Return the tables of the database."""
        listed = self._db.list_tables()
        names = getattr(listed, "tables", listed)
        return [str(n) for n in names]

    # -- schema -----------------------------------------------------------------------------------

    @property
    def table(self) -> Any:
        """The LanceDB table (raises `IndexMissing` before the first write)."""
        if self._table is None:
            raise IndexMissing(f"the index of {self.corpus!r} holds no documents yet")
        return self._table

    def _columns(self) -> list[str]:
        """Return the table's column names ([] before the first write)."""
        return list(self._table.schema.names) if self._table is not None else []

    def _ensure(self, meta: Mapping[str, pa.DataType]) -> None:
        """Create the table (empty, base columns plus ``meta``) or add the metadata columns it lacks."""
        if self._table is None:
            fields = [
                pa.field("id", pa.string(), nullable=False),
                pa.field("title", pa.string()),
                pa.field("text", pa.string()),
                pa.field(FULL_TEXT, pa.string()),
                pa.field("content_hash", pa.string()),
            ]
            fields += [pa.field(key, kind) for key, kind in sorted(meta.items())]
            self._table = self._db.create_table(self.name, schema=pa.schema(fields))
            return
        schema = self._table.schema
        missing = [pa.field(key, kind) for key, kind in sorted(meta.items()) if key not in schema.names]
        if missing:
            self._table.add_columns(missing)
        for key, kind in meta.items():
            have = schema.field(key).type if key in schema.names else kind
            if have != kind and not (pa.types.is_floating(have) and pa.types.is_integer(kind)):
                raise UsageError(f"metadata field {key!r} holds {kind} values, but the index stores it as {have}")

    def versions(self) -> dict[str, int]:
        """Return the model versions present: version → vector dimension."""
        found: dict[str, int] = {}
        for fld in self._table.schema if self._table is not None else []:
            if fld.name.startswith("vec_") and pa.types.is_fixed_size_list(fld.type):
                found[fld.name[4:]] = int(fld.type.list_size)
        return found

    def add_version(self, version: str, dimension: int) -> None:
        """Add an empty (null) vector column for ``version``; raises `UsageError` for another dimension."""
        self._writable()
        have = self.versions()
        if version in have:
            if have[version] != dimension:
                raise UsageError(
                    f"model version {version!r} has dimension {have[version]} in the index, not {dimension}"
                )
            return
        self._ensure({})
        self._table.add_columns(pa.field(vector_column(version), pa.list_(pa.float32(), dimension)))

    def _writable(self) -> None:
        """Refuse to write through a read-only handle."""
        if self.read_only:
            raise UsageError("this index was opened for reading; it cannot be written")

    # -- writes -----------------------------------------------------------------------------------

    def _rows(self, docs: Sequence[IndexDocument], vectors: Mapping[str, np.ndarray]) -> pa.Table:
        """Return the full-schema Arrow rows of ``docs`` (vectors of versions not given are null)."""
        schema = self._table.schema
        columns: dict[str, pa.Array] = {}
        for fld in schema:
            name = fld.name
            if name == "id":
                values: list[Any] = [d.id for d in docs]
            elif name in ("title", "text", "content_hash"):
                values = [getattr(d, name) for d in docs]
            elif name == FULL_TEXT:
                values = [d.embed_text() for d in docs]
            elif name.startswith("vec_"):
                given = vectors.get(name[4:])
                if given is not None:
                    columns[name] = _vector_array(given, fld.type.list_size)
                    continue
                values = [None] * len(docs)
            else:
                values = [d.metadata.get(name) for d in docs]
            columns[name] = pa.array(values, type=fld.type)
        return pa.table(columns, schema=schema)

    def upsert(self, docs: Sequence[IndexDocument], vectors: Mapping[str, np.ndarray] | None = None) -> int:
        """Insert or replace whole rows keyed on id (one commit per `_CHUNK` rows); return how many."""
        self._writable()
        if not docs:
            return 0
        vectors = dict(vectors or {})
        for version, array in vectors.items():
            self.add_version(version, int(array.shape[1]))
        self._ensure(metadata_types(docs))
        written = 0
        for start in range(0, len(docs), _CHUNK):
            part = docs[start : start + _CHUNK]
            rows = self._rows(part, {v: a[start : start + _CHUNK] for v, a in vectors.items()})
            merge = self._table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
            result = merge.execute(rows, on_bad_vectors="null")  # the versions not given are null on purpose
            written += int(result.num_updated_rows) + int(result.num_inserted_rows)
        return written

    def set_vectors(self, version: str, ids: Sequence[str], hashes: Sequence[str], vectors: np.ndarray) -> int:
        """Set ``version``'s vectors of the rows whose id and content hash match (one commit); return how many."""
        self._writable()
        if not len(ids):
            return 0
        dim = self.versions().get(version)
        if dim is None:
            raise UsageError(f"no model version {version!r} in the index; add it first")
        column = vector_column(version)
        rows = pa.table(
            {
                "id": pa.array(list(ids), type=pa.string()),
                "content_hash": pa.array(list(hashes), type=pa.string()),
                column: _vector_array(vectors, dim),
            }
        )
        result = (
            self._table.merge_insert("id")
            .when_matched_update_all(where="target.content_hash = source.content_hash")
            .execute(rows)
        )
        return int(result.num_updated_rows)

    def delete(self, ids: Sequence[str]) -> int:
        """Delete the rows with these ids (one commit per `_CHUNK` ids); return how many were deleted."""
        self._writable()
        if self._table is None or not ids:
            return 0
        before = self._table.count_rows()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            self._table.delete(f"id IN ({', '.join(_literal(i) for i in chunk)})")
        return int(before - self._table.count_rows())

    def optimize(self) -> None:
        """Create the full-text index (first time) or fold new rows into it, and compact the table."""
        self._writable()
        if self._table is None or self._table.count_rows() == 0:
            return
        from lancedb.index import FTS

        if not any(FULL_TEXT in idx.columns for idx in self._table.list_indices()):
            self._table.create_index(FULL_TEXT, config=FTS())
            return
        try:
            self._table.optimize(cleanup_older_than=_CLEANUP)
        except RuntimeError as exc:  # a tag older than the horizon blocks pruning: compact and index without it
            if "tagged" not in str(exc):
                raise
            self._table.optimize(cleanup_older_than=timedelta(days=365_000))

    # -- reads ------------------------------------------------------------------------------------

    def states(self, version: str | None = None) -> dict[str, DocState]:
        """Return every row's content hash and whether it has ``version``'s vector."""
        if self._table is None:
            return {}
        rows = self._table.search().select(["id", "content_hash"]).limit(None).to_arrow()
        with_vector: set[str] = set()
        if version is not None and version in self.versions():
            found = (
                self._table.search()
                .where(f"{vector_column(version)} IS NOT NULL")
                .select(["id"])
                .limit(None)
                .to_arrow()
            )
            with_vector = set(found.column("id").to_pylist())
        return {
            ident: DocState(digest, ident in with_vector)
            for ident, digest in zip(
                rows.column("id").to_pylist(), rows.column("content_hash").to_pylist(), strict=True
            )
        }

    def count(self) -> int:
        """Return the number of documents."""
        return int(self._table.count_rows()) if self._table is not None else 0

    def _version(self, query: SearchQuery) -> str:
        """Return the model version a query searches (the only one, when it names none)."""
        return searched_version(query.version, self.versions())

    def _select(self, query: SearchQuery) -> list[str]:
        """Return the columns a search reads: the id and the fields asked for."""
        columns = self._columns()
        unknown = [f for f in query.fields if f not in columns or f.startswith("vec_") or f == FULL_TEXT]
        if unknown:
            raise UsageError(f"unknown field(s) {unknown}; this index stores: {', '.join(self.fields())}")
        return ["id", *[f for f in query.fields if f != "id"]]

    def fields(self) -> list[str]:
        """Return the stored fields a hit can carry (title, text, content_hash, metadata keys)."""
        return [c for c in self._columns() if c not in ("id", FULL_TEXT) and not c.startswith("vec_")]

    def _hits(self, rows: pa.Table, fields: Sequence[str], score: str) -> list[Hit]:
        """Turn result rows into hits (``score``: ``_distance`` of a dot search, or ``_score`` of BM25)."""
        data = rows.to_pylist()
        out = []
        for row in data:
            value = 1.0 - float(row[score]) if score == "_distance" else float(row[score])
            out.append(Hit(str(row["id"]), value, {f: row[f] for f in fields if f != "id"}))
        return out

    def _dense(self, query: SearchQuery, k: int, select: list[str], where: str | None) -> list[Hit]:
        """Exact inner-product search over the version's vectors (rows without one are skipped)."""
        column = vector_column(self._version(query))
        builder = (
            self.table.search(query.vector_array(), vector_column_name=column)
            .distance_type("dot")
            .bypass_vector_index()
            .where(f"{column} IS NOT NULL" + (f" AND ({where})" if where else ""), prefilter=True)
            .select([*select, "_distance"])
            .limit(k)
        )
        return self._hits(builder.to_arrow(), query.fields, "_distance")

    def _bm25(self, query: SearchQuery, k: int, select: list[str], where: str | None) -> list[Hit]:
        """BM25 over ``full_text`` with LanceDB's native full-text index."""
        builder = self.table.search(query.text, query_type="fts", fts_columns=FULL_TEXT)
        if where:
            builder = builder.where(where, prefilter=True)
        rows = builder.select([*select, "_score"]).limit(k).to_arrow()
        return self._hits(rows, query.fields, "_score")

    def search(self, query: SearchQuery) -> list[Hit]:
        """Return the top ``query.k`` hits, best first (dense: exact; hybrid: bench's fusion of both lists)."""
        query = query.checked()
        if self._table is None:
            return []
        select = self._select(query)
        where = where_clause(query.filters, self._columns())
        if query.mode == "dense":
            return top(self._dense(query, overfetch(query.k), select, where), query.k)
        if query.mode == "bm25":
            return top(self._bm25(query, overfetch(query.k), select, where), query.k)
        depth = max(HYBRID_DEPTH, query.k)
        self._version(query)
        return fuse(
            top(self._dense(query, overfetch(depth), select, where), depth),
            top(self._bm25(query, overfetch(depth), select, where), depth),
            query.k,
            fusion=query.fusion,
            alpha=query.alpha,
        )

    # -- versions and tags ------------------------------------------------------------------------

    def table_version(self) -> int:
        """Return the table's current version number."""
        return int(self.table.version)

    def create_tag(self, tag: str) -> int:
        """Tag the current version as ``tag`` (moving an existing tag of that name); return the version."""
        version = self.table_version()
        tags = self.table.tags
        if tag in tags.list():
            tags.update(tag, version)
        else:
            tags.create(tag, version)
        return version

    def tags(self) -> dict[str, int]:
        """Return the tags: name → table version."""
        if self._table is None:
            return {}
        return {name: int(info["version"]) for name, info in self._table.tags.list().items()}

    def restore(self, tag: str) -> int:
        """Commit the tagged version as the latest (no data copied); return the new version."""
        self._writable()
        if tag not in self.tags():
            raise UsageError(f"no tag {tag!r} in the index (it has: {', '.join(self.tags()) or 'none'})")
        self.table.checkout_latest()
        self.table.restore(tag)
        return self.table_version()

    def checkout(self, tag: str | None) -> None:
        """Read the tagged version (read-only) or, with None, the latest again."""
        if tag is None:
            self.table.checkout_latest()
            return
        if tag not in self.tags():
            raise IndexMissing(f"no tag {tag!r} in the index of {self.corpus!r}")
        self.table.checkout(tag)

    def close(self) -> None:
        """Drop the handles (LanceDB holds no lock on the folder)."""
        self._table = None


def _vector_array(vectors: np.ndarray, dimension: int) -> pa.FixedSizeListArray:
    """Return float32 vectors as an Arrow fixed-size-list array (raises `UsageError` on a wrong dimension)."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dimension:
        raise UsageError(f"vectors of shape {array.shape} do not have dimension {dimension}")
    return pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1), type=pa.float32()), dimension)
