"""Levels of effort: the query-side adapter, frozen lower layers, prompt candidates, the decide rule, the table."""

import json

import numpy as np
import pytest

from domainfit.core.models import load_bi_encoder
from domainfit.evaluation.level_row import level_row, read_rows
from domainfit.evaluation.levels import LevelEstimate, expected_lifts, recommend_level
from domainfit.render.levels import levels_table
from domainfit.retrieval.dense import DenseRetriever
from domainfit.retrieval.query_adapter import is_adapter_folder, load_query_adapter, save_query_adapter
from domainfit.train.adapter import fit_on_dev, fit_query_adapter, save_adapter
from domainfit.train.levels import freeze_below_top, layer_count
from domainfit.train.prompts import BUILTIN_PROMPTS, prompt_candidates


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _rotated_pairs(n: int = 256, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Queries whose positives are the queries turned by a fixed rotation: only a learnt map finds them."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    queries = _unit(rng.normal(size=(n, d)))
    return queries, _unit(queries @ rotation.T)


def _top1(queries: np.ndarray, docs: np.ndarray) -> float:
    return float(np.mean(np.argmax(queries @ docs.T, axis=1) == np.arange(len(queries))))


@pytest.mark.parametrize("kind", ["linear", "lowrank", "mlp"])
def test_adapter_starts_as_identity_learns_the_map_and_reloads_the_same(tmp_path, kind):
    queries, positives = _rotated_pairs()
    start = fit_query_adapter(queries, positives, None, kind=kind, epochs=1, learning_rate=1e-12)
    assert np.allclose(start.as_numpy()(queries), queries, atol=1e-5)  # identity at start (a no-op step)
    fit = fit_query_adapter(queries, positives, None, kind=kind, epochs=60, learning_rate=1e-2, batch_size=64)
    before, after = _top1(queries, positives), _top1(fit.as_numpy()(queries), positives)
    assert before < 0.5 < after, (before, after)
    save_adapter(tmp_path / "a", fit, "sentence-transformers/all-MiniLM-L6-v2")
    loaded = load_query_adapter(tmp_path / "a")
    assert np.allclose(loaded(queries), fit.as_numpy()(queries), atol=1e-6)
    assert np.allclose(np.linalg.norm(loaded(queries), axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="expects"):
        loaded(queries[:, :8])


def test_adapter_keeps_the_best_dev_epoch_and_stops_early():
    queries, positives = _rotated_pairs()
    scores = iter([0.5, 0.6, 0.4, 0.4, 0.4])
    fit = fit_query_adapter(queries, positives, None, epochs=50, dev_score=lambda _m: next(scores), patience=3)
    assert fit.best_epoch == 1 and fit.epochs_run == 4
    assert [h["epoch"] for h in fit.dev_history] == [0, 1, 2, 3, 4]


def test_a_positive_shared_by_two_queries_of_a_batch_is_not_their_negative():
    documents = _unit(np.random.default_rng(2).normal(size=(8, 16)))
    positives = np.repeat(documents, 8, axis=0)  # eight queries per document, each query near its document
    queries = _unit(positives + 0.01 * np.random.default_rng(3).normal(size=positives.shape))
    keys = [str(i // 8) for i in range(64)]
    settings = {"epochs": 1, "batch_size": 64, "learning_rate": 1e-12}
    plain = fit_query_adapter(queries, positives, None, **settings)
    masked = fit_query_adapter(queries, positives, None, positive_keys=keys, **settings)
    # unmasked, the seven copies of each query's positive count as wrong answers: the loss is about log 8
    assert plain.loss_history[0]["loss"] > 1.5 > 0.1 > masked.loss_history[0]["loss"]


def test_hard_negatives_are_kept_only_when_they_help_on_dev():
    queries, positives = _rotated_pairs()
    negatives = _unit(np.random.default_rng(1).normal(size=(len(queries), 2, queries.shape[1])).reshape(-1, 16))
    negatives = negatives.reshape(len(queries), 2, 16)

    def dev(query_map):
        return _top1(query_map(queries[:64]), positives[:64])

    fit, trials = fit_on_dev(queries, positives, negatives, dev, epochs=10, learning_rate=1e-2, batch_size=64)
    assert [t["hard_negatives"] for t in trials] == [0, 2]
    assert fit.best_dev == max(t["best_dev_ndcg@10"] for t in trials) > trials[0]["best_dev_ndcg@10"] - 1e-9
    assert fit.hard_negatives in (0, 2) and fit.dev_history[0]["ndcg@10"] < fit.best_dev


def test_a_damaged_adapter_is_refused_with_the_file_named(tmp_path):
    folder = tmp_path / "a"
    save_query_adapter(folder, "linear", {"linear.weight": np.eye(4), "linear.bias": np.zeros(4)}, "m")
    assert is_adapter_folder(folder) and not is_adapter_folder(tmp_path)
    record = json.loads((folder / "query_adapter.json").read_text())
    (folder / "query_adapter.json").write_text(json.dumps({**record, "format_version": 99}))
    with pytest.raises(ValueError, match=r"query_adapter\.json: format_version 99"):
        load_query_adapter(folder)
    (folder / "query_adapter.json").write_text("{")
    with pytest.raises(ValueError, match="not a readable query adapter"):
        load_query_adapter(folder)
    with pytest.raises(ValueError, match="unknown adapter kind"):
        save_query_adapter(tmp_path / "b", "quadratic", {"w": np.eye(2)}, "m")
    assert not (tmp_path / "b").exists()


def test_an_adapter_folder_maps_queries_only_and_shares_the_base_documents(tmp_path, minilm):
    dim = minilm.get_sentence_embedding_dimension()
    swap = np.eye(dim, dtype=np.float32)[::-1].copy()  # reverses the coordinates: an obvious, checkable map
    save_query_adapter(tmp_path / "a", "linear", {"linear.weight": swap, "linear.bias": np.zeros(dim)},
                       "sentence-transformers/all-MiniLM-L6-v2")  # fmt: skip
    base = DenseRetriever("sentence-transformers/all-MiniLM-L6-v2", cache_dir=tmp_path / "cache")
    adapted = DenseRetriever(str(tmp_path / "a"), cache_dir=tmp_path / "cache")
    assert adapted.fingerprint == base.fingerprint  # same document vectors: nothing to re-embed
    texts = ["refund policy for annual plans", "reset a password"]
    assert np.allclose(adapted.encode_documents(texts), base.encode_documents(texts), atol=1e-6)
    assert np.allclose(adapted.encode_queries(texts), base.encode_queries(texts)[:, ::-1], atol=1e-6)
    assert adapted.get_config_dict()["query_adapter"] == str(tmp_path / "a")


def test_top_layers_freezes_everything_below_and_a_step_moves_only_the_top():
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = load_bi_encoder(max_seq_length=32)
    frozen = freeze_below_top(model, 2)
    assert frozen.layers == layer_count(model) == 6 and frozen.trained_layers == 2
    assert 0 < frozen.trainable_parameters < frozen.parameters / 4
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = MultipleNegativesRankingLoss(model)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    batch = [["refund policy", "reset password"], ["Refunds within 30 days.", "Passwords reset by email."]]
    model.train()
    loss([model.preprocess(col) for col in batch], torch.zeros(0)).backward()
    optimiser.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(".layer.4." in n or ".layer.5." in n for n in moved), sorted(moved)[:3]
    with pytest.raises(ValueError, match="between 1 and 6"):
        freeze_below_top(load_bi_encoder(), 7)


def test_prompt_candidates_put_the_users_first_and_always_try_no_prompt():
    found = prompt_candidates([("Q: ", "D: "), ("", "")], ("query: ", "passage: "))
    assert found[0] == ("Q: ", "D: ") and found[1] == ("", "")
    assert len(found) == len(set(found)) and set(BUILTIN_PROMPTS) <= set(found)


def _estimate(level: str, minutes: float, lift: float, basis: str = "prior") -> LevelEstimate:
    return LevelEstimate(level, minutes * 60, 0.0, lift, basis, 0)


def test_the_rule_recommends_the_cheapest_level_whose_lift_is_enough():
    rows = [
        _estimate("prompts", 1, 0.0),
        _estimate("adapter", 2, 0.02),
        _estimate("static", 3, -0.05),
        _estimate("top-layers", 6, 0.04),
        _estimate("full", 10, 0.05),
    ]
    chosen, reason = recommend_level(rows, 0.03)
    assert chosen is not None and chosen.level == "top-layers" and "top-layers" in reason and "prior" in reason
    assert recommend_level(rows, 0.0)[0].level == "prompts"  # no lift needed: the cheapest of all
    assert recommend_level(rows, 0.05)[0].level == "full"
    none, why = recommend_level(rows, 0.2)
    assert none is None and "largest expected is full" in why
    slow_full = [*rows[:4], LevelEstimate("full", 60.0, 0.0, 0.05, "prior", 0)]  # cheaper than top-layers now
    assert recommend_level(slow_full, 0.03)[0].level == "full"
    reindex = [LevelEstimate("top-layers", 60, 600, 0.04, "prior", 1000), _estimate("adapter", 5, 0.04)]
    assert recommend_level(reindex, 0.03)[0].level == "adapter"  # re-indexing counts in the cost


def test_expected_lifts_say_prior_until_measured():
    priors = expected_lifts(0.05, 0.4, instruction_trained=False)
    assert all(basis == "prior" for _, basis in priors.values())
    assert priors["full"][0] == 0.05 and priors["top-layers"][0] == pytest.approx(0.02)
    assert priors["prompts"][0] == 0.0  # a model never trained with instructions: nothing expected
    assert expected_lifts(0.05, 0.4, instruction_trained=True)["prompts"][0] > 0
    assert priors["static"][0] < 0  # loses to the base model before its training closes the gap
    measured = expected_lifts(0.05, 0.4, instruction_trained=False, measured={"adapter": 0.031})
    assert measured["adapter"] == (0.031, "measured") and measured["full"][1] == "prior"


def _metrics(base: float, tuned: float) -> dict:
    return {
        "model": "m",
        "n_queries": 10,
        "n_documents": 500,
        "systems": [
            {"name": "dense:base", "metrics": {"ndcg@10": base}},
            {"name": "dense:fine-tuned", "metrics": {"ndcg@10": tuned}},
        ],
        "significance": {"dense": {"comparisons": [{"metric": "ndcg@10", "p_value": 0.01}]}},
        "forgetting": {"labelled": {"drop": 0.01}, "neighbour_overlap": {"mean": 0.8}},
    }


def test_level_rows_price_re_indexing_and_the_table_lists_every_level(tmp_path):
    speed = {"base": 50.0, "level": 5000.0}
    adapter = level_row(_metrics(0.4, 0.43), {"level": "adapter", "seconds": 12.0}, speed=speed,
                        model_bytes=600_000, base_bytes=90_000_000, data_sha256="x")  # fmt: skip
    static = level_row(_metrics(0.4, 0.35), {"level": "static", "seconds": 30.0}, speed=speed,
                       model_bytes=70_000_000, base_bytes=90_000_000, data_sha256="x")  # fmt: skip
    assert adapter["documents_reembedded"] == 0 and adapter["reindex_seconds"] == 0.0
    assert adapter["documents_per_second"] == 50.0  # documents stay on the base model
    assert static["documents_reembedded"] == 500 and static["reindex_seconds"] == 0.1 and static["speedup"] == 100
    assert adapter["lift"] == pytest.approx(0.03) and adapter["p_value"] == 0.01
    for row in (static, adapter, {**adapter, "level": "full", "data_sha256": "other data"}):
        (tmp_path / f"level-{row['level']}.json").write_text(json.dumps(row))
    rows = read_rows(tmp_path, "x")
    assert [r["level"] for r in rows] == ["adapter", "static"]  # level order; other data left out
    table = levels_table(rows)
    assert "| 1q adapter | 0.4300 | +0.0300 | 0.01 | 12 s |" in table and "0 docs" in table
    assert "| 4 static | 0.3500 | -0.0500 |" in table and "500 docs" in table
