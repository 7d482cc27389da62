"""Separate query and document encoders (a sentence-transformers Router), trained a few steps on CPU."""

import numpy as np
from sentence_transformers import SentenceTransformer

from conftest import TINY_TRAIN as TINY
from domainfit.core.workspace import Workspace
from domainfit.retrieval.dense import DenseRetriever, is_routed
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig
from domainfit.train.router import router_mapping, separate_encoders


def test_separate_encoders_start_as_the_base(minilm):
    model = separate_encoders(minilm)
    assert is_routed(model) and not is_routed(minilm)
    assert set(model[0].sub_modules) == {"query", "document"} and model.max_seq_length == minilm.max_seq_length
    text = ["reset password link"]
    base = minilm.encode(text)
    assert np.allclose(model.encode_query(text), base, atol=1e-5)
    assert np.allclose(model.encode_document(text), base, atol=1e-5)
    assert separate_encoders(model) is model
    assert router_mapping(["anchor", "positive", "negative_1"]) == {
        "anchor": "query",
        "positive": "document",
        "negative_1": "document",
    }
    assert router_mapping(["sentence1", "sentence2", "label"]) == {"sentence1": "query", "sentence2": "document"}


def test_training_separate_encoders_saves_a_routed_model(tmp_path, mini_beir, minilm):
    ws = Workspace(tmp_path / "ws")
    cfg = TrainConfig(max_steps=2, separate_encoders=True, merge=True, query_prompt="query: ", **TINY)
    result = run_train(mini_beir, ws, cfg)
    assert result.steps == 2 and result.separate_encoders and result.base_dev_ndcg10 is not None
    assert result.merge_weight in (0.25, 0.5, 0.75, 1.0)
    loaded = SentenceTransformer(str(ws.root / "train" / "model"), device="cpu")  # plain sentence-transformers
    assert is_routed(loaded) and loaded.prompts["query"] == "query: "
    text = ["refund policy for annual plans"]
    query = loaded.encode_query(text, prompt="")
    document = loaded.encode_document(text, prompt="")
    assert not np.allclose(query, document, atol=1e-4)  # the two routes were trained apart
    assert not np.allclose(document, minilm.encode(text), atol=1e-4)
    merged = SentenceTransformer(str(ws.root / "train" / "merged"), device="cpu")
    assert is_routed(merged)
    # domainfit's retrieval sends queries and documents to their routes (and keeps their cache entries apart)
    dense = DenseRetriever(loaded, cache_dir=tmp_path / "cache", max_seq_length=32)
    q = dense.encode_queries(["refund policy for annual plans"])
    d = dense.encode_documents(["refund policy for annual plans"])
    assert np.allclose(q, loaded.encode_query(text, normalize_embeddings=True), atol=1e-5)
    assert np.allclose(d, loaded.encode_document(text, normalize_embeddings=True), atol=1e-5)
    assert not np.allclose(q, d, atol=1e-4)


def test_eval_and_report_show_forgetting_per_variant(tmp_path, mini_beir):
    from domainfit.evaluation.config import EvalConfig
    from domainfit.stages.eval import run_eval
    from domainfit.stages.registry import build_report

    ws = Workspace(tmp_path / "ws")
    cfg = TrainConfig(max_steps=2, separate_encoders=True, merge=True, **TINY)
    run_train(mini_beir, ws, cfg)
    result = run_eval(mini_beir, ws, EvalConfig(max_seq_length=32, max_general_texts=40))  # bundled general set
    names = [s.name for s in result.systems]
    assert "dense:fine-tuned" in names and "dense:merged" in names
    forgetting = result.forgetting
    assert set(forgetting["variants"]) == {"fine-tuned", "merged"}
    for measures in forgetting["variants"].values():
        assert 0.0 <= measures["neighbour_overlap"] <= 1.0 and -1.0 <= measures["cosine_to_base"] <= 1.0 + 1e-6
    assert forgetting["train_options"]["separate_encoders"] and forgetting["train_options"]["merge"]
    html, markdown = build_report(ws)
    page = html.read_text()
    assert "merged (weight interpolation with the base)" in page and "separate query and document encoders" in page
    assert "| merged |" in markdown.read_text()
