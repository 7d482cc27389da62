"""Vectors stored at compress's operating points: the index searches them exactly as compress measured them.

For each precision an index can hold (truncation, float16, int8, binary with and
without rescoring) both backends, on real folders, return the ids and scores of
compress's own index (`domainfit.compress.pipeline.build_index`) over the same
seeded unit vectors; the precision is recorded with the vectors (it survives a
re-open, a tag and a restore); storage shrinks as the precision says; bad
settings are refused with a clear message. Also: a filter value of the wrong type
is a `UsageError` naming the field and the types, on both backends alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from domainfit.compress.pipeline import build_index
from domainfit.compress.spec import parse_spec
from domainfit.core.errors import UsageError
from domainfit.index.backend import IndexDocument, SearchQuery, open_backend
from domainfit.index.config import IndexConfig
from domainfit.index.precision import RangeCalibration, StoredPrecision, check_setting, spec_name

BACKENDS = ("lancedb", "qdrant")
DIM = 64
N = 300
SPECS = ("trunc-32/float32", "full/float16", "full/int8", "trunc-32/int8", "full/binary",
         "full/binary+float32x4", "trunc-32/binary+int8x2")  # fmt: skip


def vectors(n: int, seed: int) -> np.ndarray:
    """Seeded unit vectors (n, DIM)."""
    x = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


DOCS = [IndexDocument(f"d{i:03d}", f"note {i}", metadata={"lang": "en" if i % 3 else "fr", "year": 2020 + i % 4})
        for i in range(N)]  # fmt: skip
DOC_VECTORS = vectors(N, 0)
QUERIES = vectors(15, 1)


def calibrated(name: str) -> StoredPrecision:
    """The precision of ``name`` for DIM-wide vectors, int8 ranges calibrated on the corpus (as compress does)."""
    precision = StoredPrecision.of(name, DIM)
    if not precision.needs_ranges:
        return precision
    calibration = RangeCalibration(precision)
    for start in range(0, N, 128):  # in batches, as the index stage feeds it
        calibration.add(DOC_VECTORS[start : start + 128])
    return precision.calibrated(calibration.ranges())


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.mark.parametrize("name", SPECS)
def test_the_index_searches_as_compress_measured(tmp_path: Path, backend: str, name: str) -> None:
    reference = build_index(parse_spec(name, DIM), DOC_VECTORS)
    precision = calibrated(name)
    store = open_backend(tmp_path, "p", backend=backend)
    try:
        store.add_version("m", DIM, precision)
        store.upsert(DOCS[:100], {"m": DOC_VECTORS[:100]})  # whole rows with vectors, then the rest by set_vectors
        store.upsert(DOCS[100:])
        assert store.set_vectors("m", [d.id for d in DOCS[100:]], [d.content_hash for d in DOCS[100:]],
                                 DOC_VECTORS[100:]) == N - 100  # fmt: skip
        store.optimize()
        assert store.versions() == {"m": DIM} and store.precision("m").name == parse_spec(name, DIM).name
        k = 10
        ids, scores = reference.search(QUERIES, k)
        for row, q in enumerate(QUERIES):
            hits = store.search(SearchQuery(vector=q.tolist(), k=k))
            want = dict(zip([DOCS[i].id for i in ids[row]], scores[row].tolist(), strict=True))
            got = {h.id: h.score for h in hits}
            if precision.store == "binary" and precision.rescore is None:  # integer Hamming distances tie often
                assert sorted(got.values(), reverse=True) == pytest.approx(sorted(want.values(), reverse=True))
                tied = min(want.values())
                assert {i for i, s in got.items() if s > tied} == {i for i, s in want.items() if s > tied}
            else:
                assert [h.id for h in hits] == [DOCS[i].id for i in ids[row]], name
                assert [got[i] for i in want] == pytest.approx(list(want.values()), abs=2e-5)
    finally:
        store.close()


def test_filters_and_hybrid_read_the_stored_precision(tmp_path: Path, backend: str) -> None:
    name = "trunc-32/binary+int8x2"
    reference = build_index(parse_spec(name, DIM), DOC_VECTORS)
    store = open_backend(tmp_path, "p", backend=backend)
    try:
        store.add_version("m", DIM, calibrated(name))
        store.upsert(DOCS, {"m": DOC_VECTORS})
        store.optimize()
        q = QUERIES[0]
        french = store.search(SearchQuery(vector=q.tolist(), k=5, filters={"lang": "fr"}))
        assert french and all(int(h.id[1:]) % 3 == 0 for h in french)
        scores = reference.pair_scores(q[None, :], np.array([[int(h.id[1:]) for h in french]]))[0]
        assert [h.score for h in french] == pytest.approx(scores.tolist(), abs=2e-5)
        hybrid = store.search(SearchQuery(text="note", vector=q.tolist(), mode="hybrid", k=5))
        assert len(hybrid) == 5
    finally:
        store.close()


def test_the_precision_is_recorded_with_the_vectors_and_shrinks_them(tmp_path: Path, backend: str) -> None:
    name = "full/binary+float32x4"
    store = open_backend(tmp_path, "p", backend=backend)
    store.add_version("m", DIM, calibrated(name))
    store.add_version("f", DIM)
    store.upsert(DOCS, {"m": DOC_VECTORS, "f": DOC_VECTORS})
    store.optimize()
    store.create_tag("t1")
    q = QUERIES[2].tolist()
    before = store.search(SearchQuery(vector=q, k=10, version="m"))
    store.delete([h.id for h in before[:3]])
    store.restore("t1")
    assert store.search(SearchQuery(vector=q, k=10, version="m")) == before
    with pytest.raises(UsageError, match="stored as trunc-64/binary"):
        store.add_version("m", DIM, StoredPrecision.of("full/int8", DIM).calibrated(np.ones((2, DIM))))
    store.close()
    reader = open_backend(tmp_path, "p", backend=backend, read_only=True)
    try:
        reader.checkout("t1")
        recorded = reader.precision("m")
        assert recorded.name == parse_spec(name, DIM).name
        assert recorded.rescore == "float32" and recorded.oversample == 4
        assert reader.precision("f").is_full and reader.versions() == {"m": DIM, "f": DIM}
        assert reader.search(SearchQuery(vector=q, k=10, version="m")) == before
    finally:
        reader.close()


def test_lancedb_stores_fewer_bytes(tmp_path: Path) -> None:
    import lancedb

    sizes = {}
    for name in ("full/float32", "full/int8", "full/binary"):
        store = open_backend(tmp_path / name.replace("/", "_"), "p")
        store.add_version("m", DIM, calibrated(name))
        store.upsert(DOCS, {"m": DOC_VECTORS})
        table = lancedb.connect(str(tmp_path / name.replace("/", "_") / "lancedb")).open_table("p")
        column = table.to_arrow().column("vec_m")
        sizes[name] = column.nbytes
        store.close()
    assert sizes["full/int8"] * 3 < sizes["full/float32"]
    assert sizes["full/binary"] * 20 < sizes["full/float32"]


def test_settings_and_names(tmp_path: Path) -> None:
    assert spec_name("int8", 384) == "full/int8"
    assert spec_name("truncate:256", 384) == "trunc-256/float32"
    assert spec_name("truncate:128/binary+float32x4", 384) == "trunc-128/binary+float32x4"
    assert spec_name("binary+int8x2", 384) == "full/binary+int8x2"
    assert StoredPrecision.of("trunc-384/float32", 384).is_full
    assert StoredPrecision.of("trunc-256/binary+float32x4", 384).slug() == "trunc256_binary_float32x4"
    assert check_setting("operating-point") == "operating-point"
    for bad, message in [("pca-128/int8", "PCA"), ("full/pq32x8", "PQ"), ("int4", "bad configuration"),
                         ("full/int8+float32x4", "only binary")]:  # fmt: skip
        with pytest.raises(UsageError, match=message):
            StoredPrecision.of(spec_name(bad, 384), 384)
    with pytest.raises(ValueError, match="precision"):
        IndexConfig(precision="pca-64/int8")
    assert IndexConfig(precision="int8").precision == "int8"
    store = open_backend(tmp_path, "p")
    with pytest.raises(UsageError, match="calibrate the int8 ranges"):
        store.add_version("m", DIM, StoredPrecision.of("full/int8", DIM))
    store.close()


def test_a_filter_value_of_the_wrong_type_names_the_field(tmp_path: Path, backend: str) -> None:
    store = open_backend(tmp_path, "p", backend=backend)
    try:
        store.upsert(DOCS[:30], {"m": DOC_VECTORS[:30]})
        store.optimize()
        q = QUERIES[0].tolist()
        with pytest.raises(UsageError, match=r"filter 'year': the field holds integer values, got text '2021'"):
            store.search(SearchQuery(vector=q, filters={"year": "2021"}))
        with pytest.raises(UsageError, match=r"filter 'lang': the field holds text values, got integer 3"):
            store.search(SearchQuery(vector=q, filters={"lang": ["en", 3]}))
        with pytest.raises(UsageError, match=r"filter 'year': .* got boolean True"):
            store.search(SearchQuery(text="note", mode="bm25", filters={"year": True}))
        with pytest.raises(UsageError, match="not a metadata field"):
            store.search(SearchQuery(vector=q, filters={"nope": 1}))
        assert store.search(SearchQuery(vector=q, k=50, filters={"year": 2021, "lang": ["en"]}))
    finally:
        store.close()
