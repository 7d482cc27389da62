"""Compression: reductions, quantisers, FAISS stores, the sweep grid, the frontier and `domainfit compress`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.compress.config import CompressConfig, OperatingPointConfig
from domainfit.compress.pareto import choose_operating_point, mark_frontier, pareto_indices
from domainfit.compress.pipeline import build_index
from domainfit.compress.quantize import Int8Codec, binary_codes, hamming_to_similarity, vector_bytes
from domainfit.compress.reduce import PCA, Truncate
from domainfit.compress.spec import VariantSpec, auto_nlist, enumerate_variants, parse_spec
from domainfit.compress.stores import (
    BinaryStore,
    Float16Store,
    Float32Store,
    Int8Store,
    IVFPQStore,
    PQStore,
    RescoredStore,
)
from domainfit.compress.sweep import VariantResult
from domainfit.core.errors import UsageError

runner = CliRunner()


def unit_rows(n: int, d: int, seed: int = 0, clusters: int = 0) -> np.ndarray:
    """Random unit vectors, optionally around a few cluster centres (so neighbours exist)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    if clusters:
        centres = rng.standard_normal((clusters, d)).astype(np.float32) * 3
        x += centres[rng.integers(0, clusters, n)]
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """FAISS and BLAS on one thread: on a shared two-core machine more threads only add waiting."""
    from domainfit.compress.latency import limited_threads

    with limited_threads(1):
        yield


@pytest.fixture(scope="module")
def data():
    docs = unit_rows(600, 64, seed=1, clusters=12)
    queries = unit_rows(25, 64, seed=2) * 0.3 + docs[:25]
    return docs, queries / np.linalg.norm(queries, axis=1, keepdims=True)


# --- dimensions -------------------------------------------------------------


def test_truncation_keeps_the_first_dims_and_renormalises(data):
    docs, _ = data
    for dim in (64, 32, 8):
        out = Truncate(dim).apply(docs)
        assert out.shape == (600, dim) and out.dtype == np.float32
        assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
        expected = docs[:, :dim] / np.linalg.norm(docs[:, :dim], axis=1, keepdims=True)
        assert np.allclose(out, expected, atol=1e-6)


def test_pca_dims_components_and_variance_match_sklearn(data):
    from sklearn.decomposition import PCA as SkPCA

    docs, queries = data
    for dim in (48, 16):
        pca = PCA(dim).fit(docs)
        out = pca.apply(queries)
        assert out.shape == (25, dim)
        assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
        assert np.allclose(pca.components @ pca.components.T, np.eye(dim), atol=1e-5)
        reference = SkPCA(n_components=dim, svd_solver="full").fit(docs.astype(np.float64))
        agreement = np.abs(np.sum(pca.components * reference.components_, axis=1))
        assert np.all(agreement > 0.999)  # same components up to sign
        assert pca.explained_variance_ratio == pytest.approx(reference.explained_variance_ratio_.sum(), rel=1e-6)
        # projection = centred data times components, then re-normalised
        raw = (queries - docs.mean(axis=0)) @ pca.components.T
        assert np.allclose(out, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)
        assert pca.fixed_bytes == (dim * 64 + 64) * 4


def test_pca_needs_as_many_documents_as_dimensions():
    with pytest.raises(UsageError, match="at least 32 documents"):
        PCA(32).fit(unit_rows(20, 64))


# --- quantisation -----------------------------------------------------------


def test_int8_ranges_round_trip(data):
    from sentence_transformers import quantize_embeddings

    docs, queries = data
    codec = Int8Codec.calibrate(docs)
    assert codec.ranges.shape == (2, 64)
    assert np.array_equal(codec.ranges[0], docs.min(axis=0)) and np.array_equal(codec.ranges[1], docs.max(axis=0))
    codes = codec.encode(docs)
    assert codes.dtype == np.int8 and codes.min() >= -128 and codes.max() <= 127
    # the same codes as sentence-transformers calibrating on the same embeddings
    assert np.array_equal(codes, quantize_embeddings(docs, "int8", calibration_embeddings=docs))
    # decoding lands within half a bucket of every calibrated value (the top value sits at the last bucket's edge)
    error = np.abs(codec.decode(codes) - docs)
    assert np.all(error <= codec.steps * 0.5 + 1e-6)
    # the FAISS 8-bit index holding these codes decodes them the same way
    store = Int8Store(docs, codec)
    assert np.allclose(store.index.reconstruct_n(0, 600), codec.decode(codes), atol=1e-6)
    # the ranges can be stored and reloaded
    again = Int8Codec(np.asarray(codec.ranges.tolist(), dtype=np.float32))
    assert np.array_equal(again.encode(queries), codec.encode(queries))


def test_binary_codes_and_hamming_similarity(data):
    docs, _ = data
    codes = binary_codes(docs[:10])
    assert codes.shape == (10, 8) and codes.dtype == np.uint8
    assert np.array_equal(codes, np.packbits(docs[:10] > 0, axis=1))
    signs = np.where(docs[:10] > 0, 1.0, -1.0)
    cosine = signs @ signs.T / 64
    hamming = np.array([[np.unpackbits(a ^ b).sum() for b in codes] for a in codes])
    assert np.allclose(hamming_to_similarity(hamming, 64), cosine)


def test_vector_bytes():
    assert [vector_bytes(768, p) for p in ("float32", "float16", "int8", "binary")] == [3072, 1536, 768, 96]
    assert vector_bytes(100, "binary") == 13


# --- stores -----------------------------------------------------------------


def _exact(queries, docs, k):
    sims = queries @ docs.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


@pytest.mark.parametrize(
    "make",
    [
        lambda d: Float32Store(d),
        lambda d: Float16Store(d),
        lambda d: Int8Store(d),
        lambda d: BinaryStore(d),
        lambda d: PQStore(d, 8, 8),
        lambda d: IVFPQStore(d, 16, 6, nlist=8, nprobe=3),
        lambda d: RescoredStore(BinaryStore(d), Int8Store(d), 4),
    ],
    ids=["float32", "float16", "int8", "binary", "pq", "ivfpq", "binary+int8"],
)
def test_store_search_returns_valid_ids_and_scores_that_pair_scoring_reproduces(data, make):
    docs, queries = data
    store = make(docs)
    ids, scores = store.search(queries, 10)
    assert ids.shape == scores.shape == (25, 10) and ids.dtype == np.int64
    valid = ids >= 0
    assert np.all(ids[valid] < 600)
    assert valid[:, 0].all()
    for row in range(25):
        real = ids[row][valid[row]]
        assert len(set(real.tolist())) == real.size  # no duplicate document
        assert np.all(np.diff(scores[row][valid[row]]) <= 1e-6)  # best first
    assert np.all(np.isneginf(scores[~valid]))
    assert np.allclose(store.pair_scores(queries, ids)[valid], scores[valid], atol=2e-3)
    # every store finds most of the exact top 10 on clustered data
    exact, _ = _exact(queries, docs, 10)
    recall = np.mean([len(set(ids[r]) & set(exact[r])) / 10 for r in range(25)])
    assert recall > 0.3, recall


def test_float32_store_is_exact_and_int8_rescoring_ranks_candidates_by_int8_score(data):
    docs, queries = data
    ids, scores = Float32Store(docs).search(queries, 10)
    exact_ids, exact_scores = _exact(queries, docs, 10)
    assert np.allclose(scores, exact_scores, atol=1e-5)
    assert np.array_equal(ids, exact_ids)
    binary, int8 = BinaryStore(docs), Int8Store(docs)
    rescored_ids, rescored_scores = RescoredStore(binary, int8, 3).search(queries, 10)
    candidates, _ = binary.search(queries, 30)
    cand_scores = queries @ int8.codec.decode(int8.codes).T
    for row in range(25):
        by_int8 = sorted(candidates[row], key=lambda i: -cand_scores[row, i])[:10]
        assert np.allclose(sorted(cand_scores[row, by_int8])[::-1], rescored_scores[row], atol=1e-5)
        assert set(rescored_ids[row]) <= set(candidates[row])


def test_batch_search_takes_the_blas_path_and_agrees_with_one_query_at_a_time(data):
    from domainfit.compress.stores import BATCH_MIN, blocked_top_k

    docs, _ = data
    queries = unit_rows(BATCH_MIN + 8, 64, seed=5)
    exact_ids, exact_scores = _exact(queries, docs, 10)
    ids, scores = blocked_top_k(len(queries), 600, 10, lambda a, b: queries @ docs[a:b].T, block=7)  # blocks < k
    assert np.array_equal(ids, exact_ids) and np.allclose(scores, exact_scores, atol=1e-5)
    for store in (Float32Store(docs), Float16Store(docs), Int8Store(docs)):
        batch_ids, batch_scores = store.search(queries, 10)
        single = [store.search(queries[i : i + 1], 10) for i in range(len(queries))]
        assert np.array_equal(batch_ids, np.vstack([s[0] for s in single])), store.kind
        assert np.allclose(batch_scores, np.vstack([s[1] for s in single]), atol=1e-4), store.kind


def test_pq_needs_m_dividing_dim_and_enough_training_vectors(data):
    docs, _ = data
    with pytest.raises(ValueError, match="divid"):
        PQStore(docs, 7, 8)
    with pytest.raises(ValueError, match="training vectors"):
        PQStore(docs[:100], 8, 8)


def test_index_sizes_and_projection(data):
    docs, _ = data
    pq = build_index(parse_spec("full/pq8x8", 64), docs)
    assert pq.bytes_per_vector == 8 and pq.fixed_bytes == 256 * 64 * 4
    assert pq.projected_bytes(1_000_000) == 256 * 64 * 4 + 8_000_000
    assert pq.index_bytes() >= 600 * 8
    ivf = build_index(parse_spec("full/ivfpq16x6", 64), docs, nlist=8)
    assert ivf.bytes_per_vector == 12 + 8  # 16 codes of 6 bits, plus the 8-byte id in its list
    rescored = build_index(parse_spec("pca-32/binary+int8x4", 64), docs)
    assert rescored.bytes_per_vector == 4 and rescored.rescore_bytes_per_vector == 32
    assert rescored.fixed_bytes == (32 * 64 + 64) * 4 + 2 * 32 * 4  # PCA matrix + mean, int8 ranges
    flat = build_index(parse_spec("trunc-32/float16", 64), docs)
    assert flat.bytes_per_vector == 64 and flat.projected_bytes(10) == 640


# --- specs and grid ---------------------------------------------------------


def test_spec_names_round_trip_and_bad_names_are_usage_errors():
    for name in ("trunc-384/float32", "pca-128/int8", "trunc-256/binary+int8x4", "trunc-384/ivfpq32x8+float32x2"):
        assert parse_spec(name, 384).name == name
    assert parse_spec("full/binary", 384) == VariantSpec("truncate", 384, "binary")
    for bad in ("full/int4", "trunc-512/float32", "pca-100/int8", "trunc-384/pq7x8", "trunc-384/binary+int8x0"):
        with pytest.raises(UsageError):
            parse_spec(bad, 384)


def test_grid_for_a_384_dimensional_model():
    config = CompressConfig()
    specs, notes = enumerate_variants(config, 384, 5000)
    names = [s.name for s in specs]
    assert names[0] == "trunc-384/float32" and len(names) == len(set(names))
    dims = sorted({s.dim for s in specs if s.store == "float32"}, reverse=True)
    assert dims == [384, 256, 128, 64]
    assert any("[768, 512]" in n for n in notes)
    # 4 dims x 2 reductions x (4 precisions + 2 rescored binary), then 3 PQ + 1 IVF-PQ, each with 2 rescored
    assert len(specs) == 4 * 2 * 6 + 4 * 3
    assert {"pca-64/binary+int8x4", "trunc-384/pq48x8+int8x1", "trunc-384/ivfpq32x8"} <= set(names)
    small, notes = enumerate_variants(config, 384, 200)
    assert not any(s.reduction == "pca" and s.dim > 200 for s in small)
    assert not any(s.store in ("pq", "ivfpq") for s in enumerate_variants(config, 384, 100)[0])
    assert auto_nlist(2209) == 56 and auto_nlist(30) == 1 and auto_nlist(1_000_000) == 4000


# --- frontier and operating point ------------------------------------------


def variant(name, retention, nbytes, latency, rescore_bytes=0.0):
    return VariantResult(
        name=name,
        family="x",
        reduction="truncate",
        dim=8,
        store="float32",
        rescore=None,
        oversample=1,
        metrics={"ndcg@10": retention},
        retention={"ndcg@10": retention},
        bytes_per_vector=nbytes,
        rescore_bytes_per_vector=rescore_bytes,
        compression_ratio=1.0,
        fixed_bytes=0,
        index_bytes=0,
        projected_bytes={},
        latency={"single_p95_ms": latency},
        build_seconds=0.0,
    )


def test_pareto_indices_match_brute_force():
    rng = np.random.default_rng(3)
    costs = rng.integers(0, 5, size=(40, 3)).astype(float)
    expected = [
        i
        for i in range(40)
        if not any(np.all(costs[j] <= costs[i]) and np.any(costs[j] < costs[i]) for j in range(40) if j != i)
    ]
    assert pareto_indices(costs) == expected


def test_operating_point_by_constraints_and_by_weights():
    variants = [
        variant("full", 1.0, 1536, 1.0),
        variant("int8", 0.99, 384, 0.8),
        variant("binary", 0.90, 48, 0.2),
        variant("binary+rescore", 0.97, 48, 0.5, rescore_bytes=384),
        variant("slow-and-big", 0.95, 2000, 5.0),
    ]
    mark_frontier(variants, "ndcg@10", "single_p95_ms")
    assert [v.name for v in variants if v.pareto] == ["full", "int8", "binary", "binary+rescore"]
    choose = choose_operating_point
    assert choose(variants, OperatingPointConfig(), "ndcg@10", "single_p95_ms").name == "binary+rescore"
    strict = OperatingPointConfig(min_retention=0.98)
    assert choose(variants, strict, "ndcg@10", "single_p95_ms").name == "int8"
    fast = OperatingPointConfig(min_retention=0.9, max_p95_ms=0.3)
    assert choose(variants, fast, "ndcg@10", "single_p95_ms").name == "binary"
    none = choose(variants, OperatingPointConfig(min_retention=0.99, max_bytes_per_vector=100), "ndcg@10", "x")
    assert none.name is None and "best retention is 1.000 (full)" in none.reason
    quality_first = OperatingPointConfig(min_retention=None, weights={"quality": 1.0, "bytes": 0.0, "latency": 0.0})
    assert choose(variants, quality_first, "ndcg@10", "single_p95_ms").name == "full"
    # counting the rescoring copy, binary+rescore (432 bytes) falls off the quality-bytes frontier
    # (int8 is better and smaller), but stays on the three-way one (it is faster)
    assert next(v for v in variants if v.name == "binary+rescore").frontier_2d
    mark_frontier(variants, "ndcg@10", "single_p95_ms", basis="memory+rescore")
    moved = next(v for v in variants if v.name == "binary+rescore")
    assert moved.pareto and not moved.frontier_2d
    total = OperatingPointConfig(min_retention=0.95, bytes_basis="memory+rescore")
    assert choose(variants, total, "ndcg@10", "single_p95_ms").name == "int8"


def test_latency_measurement_reports_both_modes():
    import time

    from domainfit.compress.latency import measure_latency

    def search(q, k):
        time.sleep(0.001 * (1 if q.shape[0] == 1 else 0.1 * q.shape[0]))

    lat = measure_latency(search, np.zeros((20, 4), np.float32), 10, batch_size=10, single_queries=5, repeats=1)
    assert lat.single_queries == 5
    assert 1.0 <= lat.single_p50_ms <= lat.single_p95_ms < 50
    assert 0.09 <= lat.batch_p50_ms < 20
    assert lat.batch_queries_per_second > 0


# --- the command ------------------------------------------------------------

MINI_TOML = """
[compress]
dims = [384, 64]
pq = [{m = 8, nbits = 4}]
ivf_pq = [{m = 8, nbits = 4}]
oversample = [2]
latency_queries = 3
latency_repeats = 1
"""


def test_compress_command_end_to_end(tmp_path, mini_beir, minilm):
    from domainfit.data.beir import load_beir
    from domainfit.evaluation.metrics import evaluate
    from domainfit.retrieval.dense import DenseRetriever

    config = tmp_path / "domainfit.toml"
    config.write_text(MINI_TOML)
    ws = tmp_path / "ws"
    args = ["compress", str(mini_beir), "--workspace", str(ws), "--config", str(config), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = ws / "compress"
    for name in ("results.json", "summary.md", "frontier.png", "config.json", "manifest.json"):
        assert (out / name).is_file(), name
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "results.json").read_text())
    names = [v["name"] for v in data["variants"]]
    assert names[0] == data["reference"] == "trunc-384/float32"
    assert {"trunc-64/int8", "trunc-384/binary+int8x2", "trunc-384/pq8x4", "trunc-384/ivfpq8x4+int8x2"} <= set(names)
    assert any("pca-64" in note for note in data["notes"])  # 30 documents: PCA skipped, and said so
    for v in data["variants"]:
        assert set(v["metrics"]) == {"ndcg@10", "recall@100"}
        assert v["projected_bytes"]["1000000000"] == pytest.approx(v["fixed_bytes"] + 1e9 * v["bytes_per_vector"])
        assert v["latency"]["single_p95_ms"] > 0 and v["index_bytes"] > 0
    assert data["variants"][0]["retention"]["ndcg@10"] == 1.0
    # the reference equals plain exact dense retrieval with the same model
    dataset = load_beir(mini_beir)
    dense = DenseRetriever(minilm, max_seq_length=256)
    dense.index(dataset.corpus)
    qrels = dataset.qrels["test"]
    run = dense.search({q: dataset.queries[q].text for q in qrels}, 100)
    assert data["variants"][0]["metrics"]["ndcg@10"] == pytest.approx(evaluate(qrels, run)["ndcg@10"], abs=1e-6)
    assert data["operating_point"]["name"] in data["frontier"]
    assert "| `trunc-64/binary` |" in (out / "summary.md").read_text()
    assert "Compression sweep" in runner.invoke(app, [*args[:-1]]).output  # table printed (and up to date)
    # the embeddings came from the workspace cache the second time
    assert any((ws / "cache" / "embeddings").rglob("*.keys"))
    # a new operating-point rule is applied without re-measuring
    before = data["variants"]
    again = runner.invoke(app, [*args, "--json", "--max-bytes", "10", "--min-retention", "0"])
    assert again.exit_code == 0, again.output
    redone = json.loads(again.stdout)
    assert [v["latency"] for v in redone["variants"]] == [v["latency"] for v in before]
    chosen = next(v for v in redone["variants"] if v["name"] == redone["operating_point"]["name"])
    assert chosen["bytes_per_vector"] <= 10


def test_compress_bad_config_and_bad_split_exit_2(tmp_path, mini_beir):
    ws = tmp_path / "ws"
    config = tmp_path / "domainfit.toml"
    config.write_text("[compress]\ndims = [384]\nbogus = 1\n")
    result = runner.invoke(app, ["compress", str(mini_beir), "-w", str(ws), "-c", str(config)])
    assert result.exit_code == 2
    assert f"{config}:3: compress.bogus: unknown key" in result.output
    config.write_text("[compress]\ndims = [100]\n")
    result = runner.invoke(app, ["compress", str(mini_beir), "-w", str(ws), "-c", str(config)])
    assert result.exit_code == 2 and "multiples of 8" in result.output
    result = runner.invoke(app, ["compress", str(mini_beir), "-w", str(ws), "--split", "nope"])
    assert result.exit_code == 2 and "available: dev, test, train" in result.output
    result = runner.invoke(app, ["compress", "-w", str(ws)])
    assert result.exit_code == 2 and "DATA" in result.output
    assert not (ws / "compress").exists()


@pytest.mark.slow
def test_demo_binary_with_rescoring_keeps_95_percent_at_one_32nd_of_the_bytes(tmp_path):
    from domainfit.core.progress import set_quiet
    from domainfit.core.workspace import Workspace
    from domainfit.data.demo import demo_path
    from domainfit.stages.compress import run_compress

    set_quiet(True)
    config = CompressConfig(
        dims=[384],
        reductions=["truncate"],
        precisions=["float32", "int8", "binary"],
        pq=[],
        ivf_pq=[],
        oversample=[1],
        latency_queries=5,
        latency_repeats=1,
    )
    result = run_compress(demo_path(), Workspace(tmp_path / "ws"), config)
    by_name = {v.name: v for v in result.variants}
    assert result.n_documents == 2209 and result.n_queries == 426
    assert by_name["trunc-384/float32"].metrics["ndcg@10"] == pytest.approx(0.630, abs=0.005)  # as `bench` measured
    rescored = by_name["trunc-384/binary+int8x1"]
    assert rescored.compression_ratio == 32 and rescored.retention["ndcg@10"] >= 0.95
    assert by_name["trunc-384/int8"].retention["ndcg@10"] >= 0.98
    assert by_name["trunc-384/binary"].retention["ndcg@10"] < rescored.retention["ndcg@10"]
