"""The LanceDB backend (default): an embedded, versioned table per corpus, no server to run.

One table per corpus in a LanceDB folder; one row per document (``id``,
``title``, ``text``, ``full_text`` = what BM25 and the encoder see,
``content_hash``, one column per scalar metadata key) and one fixed-size
vector column per model version (``vec_<version>``, null until embedded).
Dense search is exact (flat: the vector index is bypassed, so it matches
bench's exact search); BM25 is LanceDB's native full-text index on
``full_text``; hybrid fuses both with bench's fusion (`domainfit.index.fusion`).
A version stored at a compressed precision (`domainfit.index.precision`) has
its column typed by it (float16, int8 codes, packed binary bits, plus a
rescoring copy ``vec_<version>__rescore``) and its record in the column's field
metadata, so a tag or restore carries it. A filter value of another type than
its column is refused with the field and both types named.
Every write is a new table version; tags name versions; restore commits a
tagged version as the latest. Not fork-safe: worker processes are spawned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from domainfit.core.errors import UsageError
from domainfit.index.fusion import fuse, overfetch, top
from domainfit.index.lance_arrow import codes as _codes
from domainfit.index.lance_arrow import fixed_list as _fixed_list
from domainfit.index.lance_arrow import literal, where_clause
from domainfit.index.lance_quantized import binary_search, int8_scan
from domainfit.index.precision import StoredPrecision, new_version_precision
from domainfit.index.schema import FULL_TEXT, metadata_types
from domainfit.index.types import (
    HYBRID_DEPTH,
    DocState,
    Hit,
    IndexDocument,
    IndexMissing,
    SearchQuery,
    rescore_column,
    searched_version,
    vector_column,
)

_TABLE = re.compile(r"[^A-Za-z0-9_.-]")
#: Rows per delete statement / per write of `upsert` (bounds the SQL and the memory of one commit).
_CHUNK = 5000
#: How old an untagged version must be before `optimize` prunes it.
_CLEANUP = timedelta(days=7)
#: The vector column's field-metadata key holding its `StoredPrecision` record.
PRECISION_KEY = b"domainfit_precision"
#: Arrow element type of each stored kind (binary: packed bits, eight dimensions a byte).
_ELEMENT = {"float32": pa.float32(), "float16": pa.float16(), "int8": pa.int8(), "binary": pa.uint8()}


def table_name(corpus: str) -> str:
    """Return the LanceDB table name of a corpus (characters other than letters, digits, ``_.-`` become ``_``)."""
    return _TABLE.sub("_", corpus) or "corpus"


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

    def _precisions(self) -> dict[str, StoredPrecision]:
        """Return every model version's precision (from its column's field metadata; none: float32)."""
        found: dict[str, StoredPrecision] = {}
        for fld in self._table.schema if self._table is not None else []:
            name = fld.name
            if not name.startswith("vec_") or name.endswith("__rescore") or not pa.types.is_fixed_size_list(fld.type):
                continue
            record = (fld.metadata or {}).get(PRECISION_KEY)
            if record is None:
                found[name[4:]] = StoredPrecision.full(int(fld.type.list_size))
            else:
                found[name[4:]] = StoredPrecision.from_json(json.loads(record))
        return found

    def versions(self) -> dict[str, int]:
        """Return the model versions present: version → the dimension of the vectors it takes (the model's)."""
        return {version: p.full_dim for version, p in self._precisions().items()}

    def precision(self, version: str) -> StoredPrecision:
        """Return how ``version``'s vectors are stored (`UsageError` for a version the index does not hold)."""
        found = self._precisions()
        if version not in found:
            raise UsageError(f"no model version {version!r} in the index (it has: {', '.join(found) or 'none'})")
        return found[version]

    def add_version(self, version: str, dimension: int, precision: StoredPrecision | None = None) -> None:
        """Add empty (null) vector columns for ``version`` at ``precision`` (default: float32).

        Raises `UsageError` when the version exists with another dimension or precision.
        """
        self._writable()
        wanted = new_version_precision(self._precisions(), version, dimension, precision)
        if wanted is None:
            return
        self._ensure({})
        metadata = None if wanted.is_full else {PRECISION_KEY: wanted.to_text().encode()}
        fields = [
            pa.field(vector_column(version), pa.list_(_ELEMENT[wanted.store], wanted.stored_width), metadata=metadata)
        ]
        if wanted.rescore is not None:
            fields.append(pa.field(rescore_column(version), pa.list_(_ELEMENT[wanted.rescore], wanted.dim)))
        self._table.add_columns(fields)

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
                version = name[4:].removesuffix("__rescore")
                given = vectors.get(version)
                if given is not None:
                    columns[name] = self._stored(version, given, rescore=name.endswith("__rescore"))
                    continue
                values = [None] * len(docs)
            else:
                values = [d.metadata.get(name) for d in docs]
            columns[name] = pa.array(values, type=fld.type)
        return pa.table(columns, schema=schema)

    def _stored(self, version: str, vectors: np.ndarray, *, rescore: bool = False) -> pa.FixedSizeListArray:
        """Return full-width float vectors of ``version`` as its column stores them (or its rescoring copy)."""
        precision = self.precision(version)
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != precision.full_dim:
            raise UsageError(f"vectors of shape {array.shape} do not have dimension {precision.full_dim}")
        if rescore:
            codes = precision.rescore_codes(array)
            assert codes is not None and precision.rescore is not None
            return _fixed_list(codes, _ELEMENT[precision.rescore])
        return _fixed_list(precision.codes(array), _ELEMENT[precision.store])

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
        if version not in self.versions():
            raise UsageError(f"no model version {version!r} in the index; add it first")
        data = {
            "id": pa.array(list(ids), type=pa.string()),
            "content_hash": pa.array(list(hashes), type=pa.string()),
            vector_column(version): self._stored(version, vectors),
        }
        if self.precision(version).rescore is not None:
            data[rescore_column(version)] = self._stored(version, vectors, rescore=True)
        rows = pa.table(data)
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
            self._table.delete(f"id IN ({', '.join(literal(i) for i in chunk)})")
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

    def _dense(self, query: SearchQuery, k: int, select: list[str], where: str | None, want: int) -> list[Hit]:
        """Exact search over the version's vectors at its precision (rows without one are skipped).

        float32 / float16: LanceDB's flat inner-product search on the reduced
        query (float16: LanceDB multiplies in float16, so the hits it returns
        are scored again in float32, as compress scores them). binary:
        LanceDB's flat Hamming search on the query's sign bits, scored
        ``1 - 2 h / dim``, or, rescored, its ``want * oversample`` nearest
        (``want``: the k asked for) ranked by the rescoring copy. int8: LanceDB
        0.40 cannot search int8 vectors with a float query (it refuses the
        type), so it returns the filtered rows' codes and they are scored here
        as compress scores them (float query · bucket centre).
        """
        version = self._version(query)
        precision = self.precision(version)
        column = vector_column(version)
        reduced = precision.reduce(query.vector_array()[None, :])[0]
        condition = f"{column} IS NOT NULL" + (f" AND ({where})" if where else "")
        if precision.store == "int8":
            return int8_scan(self.table, precision, column, reduced, k, select, condition, query.fields)
        if precision.store == "binary":
            return binary_search(self.table, precision, version, reduced, (k, want), select, condition, query)
        halves = precision.store == "float16"
        builder = (
            self.table.search(reduced, vector_column_name=column)
            .distance_type("dot")
            .bypass_vector_index()
            .where(condition, prefilter=True)
            .select([*select, *([column] if halves else []), "_distance"])
            .limit(k)
        )
        rows = builder.to_arrow()
        if halves and rows.num_rows:  # LanceDB multiplies in float16; score as compress does, float32 · float16
            exact = _codes(rows.column(column), precision.dim, np.float16).astype(np.float32) @ reduced
            rows = rows.set_column(rows.schema.get_field_index("_distance"), "_distance", pa.array(1.0 - exact))
        return self._hits(rows, query.fields, "_distance")

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
        where = where_clause(query.filters, self._table.schema)
        if query.mode == "dense":
            return top(self._dense(query, overfetch(query.k), select, where, query.k), query.k)
        if query.mode == "bm25":
            return top(self._bm25(query, overfetch(query.k), select, where), query.k)
        depth = max(HYBRID_DEPTH, query.k)
        self._version(query)
        return fuse(
            top(self._dense(query, overfetch(depth), select, where, depth), depth),
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
