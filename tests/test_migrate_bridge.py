"""The query-side bridge: Procrustes and low-rank affine maps, choosing on dev, retention, save/load.

Synthetic tests check the algebra (a rotation recovered exactly, a low-rank
map found, widths that differ); real-model tests use the packaged MiniLM, a
copy of it with a random orthogonal rotation on its output (a real
sentence-transformers model with a Dense layer) and a 3-layer truncation of
it (a genuinely different model of the same width).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from conftest import build_mini_dataset
from domainfit.core.errors import InputError
from domainfit.migrate.bridge import (
    Bridge,
    bridge_retention,
    choose_bridge,
    fit_affine,
    fit_procrustes,
    load_bridge,
    mean_cosine,
    normalize_rows,
    pair_mrr,
)
from domainfit.migrate.compare import migration_gate
from domainfit.migrate.config import MigrateSettings

# ---------------------------------------------------------------- synthetic algebra


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return normalize_rows(rng.normal(size=(n, d)))


def test_procrustes_recovers_a_random_rotation_exactly():
    rng = np.random.default_rng(0)
    old = _unit(rng, 300, 48)
    rotation = ortho_group.rvs(48, random_state=1)
    new = old @ rotation
    bridge = fit_procrustes(new, old)
    np.testing.assert_allclose(bridge.weight, rotation.T, atol=1e-5)
    held_out = _unit(rng, 20, 48)
    np.testing.assert_allclose(bridge.apply(held_out @ rotation), held_out, atol=1e-5)


def test_procrustes_handles_a_wider_and_a_narrower_new_model():
    rng = np.random.default_rng(2)
    old = _unit(rng, 200, 16)
    rotation = ortho_group.rvs(24, random_state=3)
    # wider: the old space embedded in 24 dimensions, then rotated
    new = np.pad(old, ((0, 0), (0, 8))) @ rotation
    wide = fit_procrustes(new, old)
    assert wide.dims == (24, 16)
    assert mean_cosine(wide, new, old) > 0.9999
    # narrower: the new model keeps 12 of the 16 directions; with isotropic pairs (orthonormal columns)
    # the best orthogonal map is exactly the projection back
    isotropic = np.linalg.qr(rng.normal(size=(200, 16)))[0]
    basis = ortho_group.rvs(16, random_state=4)
    narrow_new = isotropic @ basis[:, :12]
    narrow = fit_procrustes(narrow_new, isotropic)
    assert narrow.dims == (12, 16)
    projected = normalize_rows(narrow_new @ basis[:, :12].T)
    np.testing.assert_allclose(narrow.apply(narrow_new), projected, atol=1e-4)


def test_affine_finds_a_low_rank_map_and_beats_procrustes_on_it():
    rng = np.random.default_rng(5)
    new = rng.normal(size=(400, 32))
    low = rng.normal(size=(32, 4)) @ rng.normal(size=(4, 20))
    old = new @ low + 0.5 + 0.01 * rng.normal(size=(400, 20))
    bridge = fit_affine(new, old, rank=4, ridge=1e-4)
    assert bridge.rank == 4
    assert np.linalg.matrix_rank(bridge.weight, tol=1e-3) == 4
    assert mean_cosine(bridge, new, old) > 0.999
    assert mean_cosine(fit_procrustes(new, old), new, old) < mean_cosine(bridge, new, old) - 0.05
    assert pair_mrr(bridge, new[:100], old[:100]) > 0.95


def test_pair_mrr_rewards_keeping_texts_apart_not_predicting_the_mean():
    rng = np.random.default_rng(11)
    old = normalize_rows(rng.normal(size=(80, 16)) + 4.0)  # anisotropic: a large common direction
    exact = Bridge("procrustes", np.eye(16, dtype=np.float32), np.zeros(16, np.float32))
    mean_only = Bridge("affine", np.zeros((16, 16), np.float32), old.mean(0).astype(np.float32))
    assert pair_mrr(exact, old, old) == pytest.approx(1.0)
    assert mean_cosine(mean_only, old, old) > 0.9  # the mean direction scores a high cosine...
    assert pair_mrr(mean_only, old, old) < 0.2  # ...and finds nothing


def test_choose_bridge_picks_on_held_out_pairs_and_refits_on_all():
    rng = np.random.default_rng(6)
    new = rng.normal(size=(300, 24))
    old = new @ (rng.normal(size=(24, 3)) @ rng.normal(size=(3, 24))) + 0.05 * rng.normal(size=(300, 24))
    settings = MigrateSettings(bridge_ranks=[3, 12, None], bridge_ridge=[1e-3, 1.0])
    choice = choose_bridge(new, old, settings, header={"old_model": "a", "new_model": "b"})
    assert len(choice.candidates) == 1 + 3 * 2
    assert (choice.n_train, choice.n_dev) == (240, 60)
    best = max(choice.candidates, key=lambda c: c.dev_score)
    assert (choice.bridge.kind, choice.bridge.rank, choice.bridge.ridge) == (best.kind, best.rank, best.ridge)
    assert choice.bridge.kind == "affine" and choice.bridge.header["dev_score"] == best.dev_score
    assert choice.bridge.header["pairs"] == 300 and choice.bridge.header["old_model"] == "a"
    assert choice.best("affine").dev_score > choice.best("procrustes").dev_score
    json.dumps(choice.to_dict())


def test_save_and_load_round_trip_and_bad_files(tmp_path):
    rng = np.random.default_rng(7)
    bridge = fit_affine(rng.normal(size=(50, 8)), rng.normal(size=(50, 6)), rank=3, ridge=0.1)
    path = bridge.save(tmp_path / "bridge.npz")
    loaded = load_bridge(path)
    assert (loaded.kind, loaded.rank, loaded.ridge, loaded.dims) == ("affine", 3, 0.1, (8, 6))
    x = rng.normal(size=(5, 8))
    np.testing.assert_allclose(loaded.apply(x), bridge.apply(x), atol=1e-6)
    assert np.allclose(np.linalg.norm(loaded.apply(x), axis=1), 1.0, atol=1e-6)
    assert loaded.apply(x[0]).shape == (6,)
    with pytest.raises(ValueError, match="8-wide"):
        loaded.apply(rng.normal(size=(2, 7)))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a domainfit bridge"):
        load_bridge(tmp_path / "junk.npz")
    np.savez(tmp_path / "shapes.npz", weight=np.zeros((8, 6)), bias=np.zeros(5), header=np.frombuffer(
        json.dumps({"format_version": 1, "kind": "affine", "dims": [8, 6]}).encode(), dtype=np.uint8))  # fmt: skip
    with pytest.raises(InputError, match="do not fit the header"):
        load_bridge(tmp_path / "shapes.npz")
    with pytest.raises(InputError, match="not found"):
        load_bridge(tmp_path / "absent.npz")


# ---------------------------------------------------------------- real models


def _rotated(model, seed: int = 0):
    """A real sentence-transformers model: MiniLM's modules plus a Dense layer applying a random rotation."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    width = model.get_embedding_dimension()
    rotation = torch.tensor(ortho_group.rvs(width, random_state=seed), dtype=torch.float32)
    dense = Dense(width, width, bias=False, activation_function=torch.nn.Identity(), init_weight=rotation)
    return SentenceTransformer(modules=[model[0], model[1], dense, Normalize()], device="cpu"), rotation


def _truncated(model, layers: int = 3):
    """A real, different model: MiniLM keeping only its first ``layers`` transformer layers."""
    short = copy.deepcopy(model)
    encoder = short[0].auto_model.encoder
    encoder.layer = encoder.layer[:layers]
    short[0].auto_model.config.num_hidden_layers = layers
    return short


def _encode(model, texts):
    return model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)


@pytest.fixture(scope="module")
def mini_texts():
    data = build_mini_dataset()
    doc_ids = list(data.corpus)
    docs = [data.corpus[d].full_text() for d in doc_ids]
    qids = sorted(data.queries)
    queries = [data.queries[q].text for q in qids]
    qrels = {q: r for split in data.qrels.values() for q, r in split.items()}
    return doc_ids, docs, qids, queries, qrels


def test_procrustes_recovers_the_rotation_of_a_real_rotated_model(minilm, mini_texts):
    doc_ids, docs, qids, queries, qrels = mini_texts
    rotated, rotation = _rotated(minilm)
    old_docs, old_queries = _encode(minilm, docs), _encode(minilm, queries)
    new_docs, new_queries = _encode(rotated, docs), _encode(rotated, queries)
    # the rotated model really differs from the original, and is its rotation
    assert np.abs(new_docs - old_docs).max() > 0.1
    np.testing.assert_allclose(new_docs, old_docs @ rotation.numpy().T, atol=1e-4)
    bridge = fit_procrustes(np.vstack([new_docs, new_queries]), np.vstack([old_docs, old_queries]))
    np.testing.assert_allclose(bridge.apply(new_queries), old_queries, atol=1e-4)
    retention = bridge_retention(
        bridge, qrels, qids, new_queries, old_docs, new_docs, doc_ids, old_queries=old_queries, metric="ndcg@10"
    )
    assert retention.full > 0.5
    assert retention.bridged == pytest.approx(retention.full, abs=1e-9)
    assert retention.retention == pytest.approx(1.0, abs=1e-9)


def test_bridge_between_a_truncated_and_the_full_model_is_measured_and_gated(minilm, mini_texts, capsys):
    doc_ids, docs, qids, queries, qrels = mini_texts
    old_model = _truncated(minilm)  # the old version: a weaker 3-layer model
    old_docs, old_queries = _encode(old_model, docs), _encode(old_model, queries)
    new_docs, new_queries = _encode(minilm, docs), _encode(minilm, queries)
    assert float(np.mean(np.sum(old_docs * new_docs, axis=1))) < 0.95  # really another model
    settings = MigrateSettings(bridge_ranks=[8, 16, None], bridge_ridge=[1e-2, 1e-1, 1.0])
    choice = choose_bridge(new_docs, old_docs, settings)  # fitted on documents only; queries are held out
    assert {c.kind for c in choice.candidates} == {"procrustes", "affine"}
    measured = {}
    for kind in ("procrustes", "affine"):
        best = choice.best(kind)
        bridge = fit_procrustes(new_docs, old_docs) if kind == "procrustes" else fit_affine(
            new_docs, old_docs, best.rank, best.ridge or 0.0)  # fmt: skip
        measured[kind] = bridge_retention(
            bridge, qrels, qids, new_queries, old_docs, new_docs, doc_ids, old_queries=old_queries
        )
    with capsys.disabled():
        for kind, r in measured.items():
            print(
                f"\nmini {kind}: bridged {r.bridged:.4f} full {r.full:.4f} old {r.old:.4f} retention {r.retention:.3f}"
            )
    for retention in measured.values():
        assert 0.0 < retention.bridged <= 1.0
        assert retention.retention == pytest.approx(retention.bridged / retention.full)
    # a random orthogonal map from the same family scores far below the fitted Procrustes map
    random_map = Bridge(
        "procrustes", ortho_group.rvs(384, random_state=9).astype(np.float32), np.zeros(384, np.float32)
    )
    noise = bridge_retention(random_map, qrels, qids, new_queries, old_docs, new_docs, doc_ids)
    assert noise.bridged < measured["procrustes"].bridged - 0.2
    # the gate refuses a map below its configured minimum and accepts one above it
    from domainfit.migrate.compare import Agreement, Comparison, SliceDelta

    comparison = Comparison(
        k=10, primary_metric="ndcg@10",
        slices=(SliceDelta("all", "all", "ndcg@10", 20, 0.5, 0.6, 0.1, 0.01, True),),
        agreement=Agreement(20, 0.5, 0.4, 0.5), canary_agreement=None, changed_most=(),
    )  # fmt: skip
    settings = MigrateSettings(min_bridge_retention=0.9)
    for retention in measured.values():
        assert migration_gate(comparison, settings, bridge_retention=retention.retention).go == (
            retention.retention >= 0.9
        )
    refused = migration_gate(comparison, settings, bridge_retention=0.85)
    assert not refused.go and refused.reasons == ["bridge retains 0.850 of full re-embedding: below the minimum 0.900"]


@pytest.mark.slow
def test_bridge_retention_on_the_demo_corpus(minilm, capsys):
    """Old = 3-layer MiniLM, new = full MiniLM, on a demo subset: held-out test queries, both map kinds."""
    from domainfit.data.beir import load_beir
    from domainfit.data.demo import demo_path

    data = load_beir(demo_path())
    test_qids = sorted(data.qrels["test"])[:200]
    qrels = {q: data.qrels["test"][q] for q in test_qids}
    relevant = list(dict.fromkeys(d for q in test_qids for d in qrels[q]))
    others = [d for d in data.corpus if d not in set(relevant)][:400]
    doc_ids = relevant + others
    train_qids = sorted(data.qrels["train"])[:300]
    old_model, new_model = _truncated(minilm), copy.deepcopy(minilm)
    for model in (old_model, new_model):
        model.max_seq_length = 128
    docs = [data.corpus[d].full_text() for d in doc_ids]
    fit_texts = docs + [data.queries[q].text for q in train_qids]
    test_texts = [data.queries[q].text for q in test_qids]
    old_fit, new_fit = _encode(old_model, fit_texts), _encode(new_model, fit_texts)
    old_q, new_q = _encode(old_model, test_texts), _encode(new_model, test_texts)
    old_docs, new_docs = old_fit[: len(docs)], new_fit[: len(docs)]
    settings = MigrateSettings()
    choice = choose_bridge(new_fit, old_fit, settings)
    measured = {}
    for kind in ("procrustes", "affine"):
        best = choice.best(kind)
        bridge = fit_procrustes(new_fit, old_fit) if kind == "procrustes" else fit_affine(
            new_fit, old_fit, best.rank, best.ridge or 0.0)  # fmt: skip
        measured[kind] = bridge_retention(
            bridge, qrels, test_qids, new_q, old_docs, new_docs, doc_ids, old_queries=old_q
        )
    with capsys.disabled():
        print(f"\nchosen on dev: {choice.bridge.describe()}")
        for kind, r in measured.items():
            print(f"{kind}: bridged {r.bridged:.4f} full {r.full:.4f} old {r.old:.4f} retention {r.retention:.3f}")
    for r in measured.values():
        assert r.full > r.old  # the new model is the better one
        assert r.bridged > r.old * 0.8 and 0.5 < r.retention <= 1.05
