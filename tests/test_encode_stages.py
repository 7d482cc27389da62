"""The fast CPU encode path beyond bench: eval, mine and compress encode through their own ``encode`` setting.

Real exports of the packaged MiniLM (OpenVINO), a real static-embedding model
(nothing to export: it falls back to torch), real stages on the mini dataset.
"""

from __future__ import annotations

import pytest

from domainfit.core.workspace import Workspace
from domainfit.evaluation.config import EvalConfig
from domainfit.retrieval.config import EncodeConfig
from domainfit.stages.eval import run_eval


@pytest.fixture(scope="module")
def static_folder(tmp_path_factory):
    """A static-embedding model saved to a folder (the packaged tokenlearn table): it has no transformer to export."""
    from domainfit.train.static import static_model

    folder = tmp_path_factory.mktemp("static") / "model"
    static_model("sentence-transformers/all-MiniLM-L6-v2", "tokenlearn").save(str(folder))
    return folder


def _dense(result, name):
    return next(s for s in result.systems if s.name == name)


def test_eval_encodes_with_openvino_like_torch_and_a_failed_export_falls_back_with_the_reason(
    tmp_path, mini_beir, static_folder
):
    settings = {"model": str(static_folder), "general": "none", "examples": 0, "max_seq_length": 64}
    fast = run_eval(
        mini_beir, Workspace(tmp_path / "fast"), EvalConfig(**settings, encode=EncodeConfig(backend="openvino"))
    )
    plain = run_eval(mini_beir, Workspace(tmp_path / "plain"), EvalConfig(**settings))
    base, torch_base = _dense(fast, "dense:base"), _dense(plain, "dense:base")
    assert base.config["encode"]["chosen"] == "openvino" and "encode" not in torch_base.config
    assert abs(base.metrics["ndcg@10"] - torch_base.metrics["ndcg@10"]) <= 0.01 * torch_base.metrics["ndcg@10"]
    assert list((tmp_path / "fast" / "cache" / "encoders").glob("*/openvino/model.xml"))  # in domainfit's cache
    static = _dense(fast, "dense:fine-tuned").config["encode"]  # the static model: nothing to export
    assert static["chosen"] == "torch"
    failed = next(t for t in static["trials"] if t["backend"] == "openvino")
    assert failed["status"] == "failed" and "StaticEmbedding" in failed["reason"]
    assert _dense(fast, "dense:fine-tuned").metrics == _dense(plain, "dense:fine-tuned").metrics  # torch: the same


def test_mine_and_compress_take_an_encode_setting_and_refuse_unknown_backends():
    from pydantic import ValidationError

    from domainfit.compress.config import CompressConfig
    from domainfit.mine.config import MineConfig

    assert MineConfig(encode={"backend": "auto"}).encode.backend == "auto"
    assert CompressConfig(encode={"backend": "onnx"}).encode.backend == "onnx"
    assert EvalConfig().encode.backend == "torch"  # torch unless asked
    with pytest.raises(ValidationError, match="backend"):
        MineConfig(encode={"backend": "cuda"})


def test_compress_encodes_through_the_chosen_backend(tmp_path, mini_beir):
    from domainfit.compress.embed import encode_corpus, open_retriever
    from domainfit.data.beir import load_beir

    dataset = load_beir(mini_beir)
    cache = tmp_path / "cache" / "embeddings"
    fast = open_retriever("sentence-transformers/all-MiniLM-L6-v2", cache, max_seq_length=64,
                          encode=EncodeConfig(backend="openvino", check_texts=8))  # fmt: skip
    plain = open_retriever("sentence-transformers/all-MiniLM-L6-v2", cache, max_seq_length=64)
    vectors, reference = encode_corpus(dataset, fast).vectors, encode_corpus(dataset, plain).vectors
    assert fast.backend_choice is not None and fast.backend_choice.chosen == "openvino"
    assert fast.fingerprint != plain.fingerprint  # cached apart from torch's vectors
    assert float((vectors * reference).sum(axis=1).min()) >= 0.99


def test_index_rebuilds_under_the_runtime_eval_encodes_with(tmp_path, mini_beir):
    """Changing ``[eval.encode]`` makes the index stale: the new runtime's vectors go into their own version."""
    from domainfit.index.config import IndexConfig
    from domainfit.index.lance import LanceBackend
    from domainfit.stages.index import run_index

    workspace = Workspace(tmp_path / "ws")
    base = {"max_seq_length": 64, "batch_size": 8}
    plain = run_index(mini_beir, workspace, IndexConfig(), EvalConfig(**base))
    again = run_index(mini_beir, workspace, IndexConfig(), EvalConfig(**base))
    assert again.pointer == plain.pointer  # nothing changed: up to date, production unmoved
    fast_cfg = EvalConfig(**base, encode=EncodeConfig(backend="openvino", check_texts=8))
    fast = run_index(mini_beir, workspace, IndexConfig(), fast_cfg)
    assert fast.version != plain.version and fast.pointer["version"] == fast.version
    assert fast.sync["embedded"] == fast.documents  # every document embedded again, by OpenVINO
    assert set(fast.versions) >= {plain.version, fast.version}  # the torch version is kept for a rollback
    store = LanceBackend(workspace.stage_dir("index") / "lancedb", plain.corpus, read_only=True)
    try:
        rows = store.table.to_arrow().select(["id", f"vec_{plain.version}", f"vec_{fast.version}"]).to_pylist()
    finally:
        store.close()
    old = {r["id"]: r[f"vec_{plain.version}"] for r in rows}
    new = {r["id"]: r[f"vec_{fast.version}"] for r in rows}
    ids = sorted(old)
    assert ids == sorted(new)
    cosine = [float(sum(a * b for a, b in zip(old[i], new[i], strict=True))) for i in ids]
    assert min(cosine) >= 0.99  # close to torch's
    assert any(old[i] != new[i] for i in ids)  # yet another runtime's own vectors, not torch's copied
