"""Fast CPU encoding: real exports of the packaged MiniLM, checked against torch float32, with fallbacks.

The float32 ONNX export (the slow part) is made once per session; every
backend built later reuses it from the same cache folder.
"""

from __future__ import annotations

import numpy as np
import pytest

from domainfit.core.models import model_fingerprint
from domainfit.data.beir import load_beir
from domainfit.retrieval.backends import choose_backend
from domainfit.retrieval.backends.choose import FAST_BACKENDS, build_backend, sample_texts
from domainfit.retrieval.backends.export import export_onnx, weights_fingerprint
from domainfit.retrieval.config import EncodeConfig
from domainfit.retrieval.dense import DenseRetriever

TEXTS = [
    "reset a password",
    "How do I rotate the API keys of a service account without downtime?",
    "The billing export runs nightly and writes one CSV per invoice to the bucket you name. " * 6,
    "x",
    "Storage quotas are per project; request more from the console.",
    "Network policies default to deny; open ports per namespace.",
]


@pytest.fixture(scope="session")
def export_root(tmp_path_factory, minilm):
    """A cache folder holding the model's float32 ONNX export, made once for the session."""
    root = tmp_path_factory.mktemp("exports")
    export_onnx(minilm, root / weights_fingerprint(minilm) / "onnx")
    return root


def _torch(model, texts):
    return model.encode(texts, normalize_embeddings=True, batch_size=4)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_a_float32_fast_path_encodes_like_torch_and_leaves_the_torch_model_alone(minilm, export_root, backend):
    fast = build_backend(minilm, backend, export_root / weights_fingerprint(minilm))
    reference = _torch(minilm, TEXTS)
    vectors = fast.encode(TEXTS, normalize_embeddings=True, batch_size=4)
    single = fast.encode(TEXTS[:1], normalize_embeddings=True, batch_size=1)  # batch of one, shortest text
    assert np.sum(vectors * reference, axis=1).min() > 0.9999
    assert float(single[0] @ reference[0]) > 0.9999
    assert type(minilm[0].auto_model).__name__ == "BertModel"  # the torch model still runs torch
    assert model_fingerprint(fast) != model_fingerprint(minilm)  # cached vectors are kept apart


def test_a_named_backend_is_checked_exported_once_and_chosen(minilm, export_root):
    cfg = EncodeConfig(backend="onnx", check_texts=6)
    choice = choose_backend(minilm, TEXTS, cfg, export_root)
    onnx = export_root / weights_fingerprint(minilm) / "onnx" / "model.onnx"
    stamp = onnx.stat().st_mtime_ns
    assert choice.chosen == "onnx" and choice.model is not minilm
    trial = next(t for t in choice.trials if t.backend == "onnx")
    assert trial.status == "chosen" and trial.min_cosine >= 0.99
    again = choose_backend(minilm, TEXTS, cfg, export_root)
    assert again.chosen == "onnx" and onnx.stat().st_mtime_ns == stamp  # the export is reused, not redone


def test_a_path_below_the_cosine_floor_is_rejected_and_torch_encodes(minilm, export_root):
    cfg = EncodeConfig(backend="onnx-int8", check_texts=6, min_cosine=0.99999)
    choice = choose_backend(minilm, TEXTS, cfg, export_root)
    trial = next(t for t in choice.trials if t.backend == "onnx-int8")
    assert trial.status == "rejected" and "cosine" in trial.reason and trial.min_cosine < 0.99999
    assert choice.chosen == "torch" and choice.model is minilm


def test_a_model_with_nothing_to_export_falls_back_to_torch_with_the_reason(minilm, tmp_path):
    from domainfit.train.router import separate_encoders

    routed = separate_encoders(minilm)
    choice = choose_backend(routed, TEXTS, EncodeConfig(backend="auto", check_texts=4), tmp_path)
    assert choice.chosen == "torch" and choice.model is routed
    failed = [t for t in choice.trials if t.backend in FAST_BACKENDS]
    assert [t.backend for t in failed] == list(FAST_BACKENDS)
    assert all(t.status == "failed" for t in failed)
    assert "Router" in failed[0].reason
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_auto_takes_the_fastest_path_that_passes(minilm, export_root):
    choice = choose_backend(minilm, TEXTS, EncodeConfig(backend="auto", check_texts=6), export_root)
    trials = {t.backend: t for t in choice.trials}
    assert set(trials) == {*FAST_BACKENDS, "torch"}
    passed = [t for t in choice.trials if t.status in ("passed", "chosen") and t.min_cosine >= 0.99]
    best = max(passed, key=lambda t: t.texts_per_second)
    assert choice.chosen == best.backend and trials[choice.chosen].status == "chosen"
    assert all(t.min_cosine < 0.99 for t in choice.trials if t.status == "rejected")


def test_the_check_sample_is_seeded_and_keeps_the_longest_text():
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(200)]
    picked = sample_texts(texts, 16, seed=3)
    assert picked == sample_texts(texts, 16, seed=3) and len(picked) == 16
    assert max(texts, key=len) in picked


def test_dense_retrieval_encodes_through_the_chosen_backend(minilm, export_root, mini_beir, tmp_path):
    dataset = load_beir(mini_beir)
    plain = DenseRetriever(minilm, cache_dir=tmp_path / "emb")
    fast = DenseRetriever(
        minilm, cache_dir=tmp_path / "emb", encode=EncodeConfig(backend="onnx", check_texts=8), export_dir=export_root
    )
    queries = {qid: q.text for qid, q in dataset.queries.items()}
    plain.index(dataset.corpus)
    fast.index(dataset.corpus)
    assert fast.backend_choice is not None and fast.backend_choice.chosen == "onnx"
    assert fast.fingerprint != plain.fingerprint
    assert fast.get_config_dict()["encode"]["chosen"] == "onnx"
    top = {qid: max(hits, key=hits.get) for qid, hits in plain.search(queries, 5).items()}
    assert {qid: max(hits, key=hits.get) for qid, hits in fast.search(queries, 5).items()} == top


def test_the_bench_stage_encodes_with_bench_encode_and_records_the_choice(mini_beir, tmp_path):
    from domainfit.config import BenchConfig
    from domainfit.core.workspace import Workspace
    from domainfit.stages.bench import run_bench

    workspace = Workspace(tmp_path / "w")
    encode = EncodeConfig(backend="onnx", check_texts=8)
    result = run_bench(mini_beir, workspace, BenchConfig(max_seq_length=32, hybrid=False, encode=encode))
    plain = run_bench(mini_beir, Workspace(tmp_path / "plain"), BenchConfig(max_seq_length=32, hybrid=False))
    dense = next(s for s in result.systems if s.name == "dense")
    torch_dense = next(s for s in plain.systems if s.name == "dense")
    assert dense.config["encode"]["chosen"] == "onnx" and "encode" not in torch_dense.config
    assert abs(dense.metrics["ndcg@10"] - torch_dense.metrics["ndcg@10"]) < 0.01
    assert list((workspace.cache_dir / "encoders").glob("*/onnx/model.onnx"))  # exported into domainfit's cache
