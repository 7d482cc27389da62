"""Fine-tuning with the sentence-transformers trainer on a tiny real dataset (CPU, a few steps)."""

import json

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from conftest import TINY_TRAIN as TINY
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig
from domainfit.train.data import Example, examples_from_qrels, to_dataset
from domainfit.train.losses import REGISTRY, build_loss


def test_train_saves_a_loadable_model_and_history(tmp_path, mini_beir, minilm):
    ws = Workspace(tmp_path / "ws")
    cfg = TrainConfig(max_steps=4, query_prompt="query: ", document_prompt="passage: ", **TINY)
    result = run_train(mini_beir, ws, cfg)
    assert result.steps == 4 and result.train_examples == 8
    assert result.training_source == "qrels/train.tsv"
    assert result.base_dev_ndcg10 is not None and result.best_dev_ndcg10 is not None
    assert result.best_step in (2, 4) and result.estimated_seconds > 0
    folder = ws.root / "train" / "model"
    assert (folder / "model.safetensors").is_file()
    loaded = SentenceTransformer(str(folder), device="cpu")  # plain sentence-transformers, no domainfit
    assert loaded.prompts["query"] == "query: " and loaded.prompts["document"] == "passage: "
    before = minilm.encode(["refund policy"], normalize_embeddings=True)
    after = loaded.encode(["refund policy"], normalize_embeddings=True, prompt="")
    assert not np.allclose(before, after, atol=1e-4)  # the weights moved
    history = json.loads((ws.root / "train" / "history.json").read_text())
    assert history["train_loss"] and [p["step"] for p in history["dev_ndcg@10"]] == [0, 2, 4]
    again = run_train(mini_beir, ws, cfg)
    assert again.up_to_date


def test_resume_continues_from_the_last_checkpoint(tmp_path, mini_beir):
    ws = Workspace(tmp_path / "ws")
    first = run_train(mini_beir, ws, TrainConfig(max_steps=2, **TINY))
    assert first.steps == 2 and (ws.root / "train-checkpoints" / "checkpoint-2").is_dir()
    resumed = run_train(mini_beir, ws, TrainConfig(max_steps=4, **TINY), resume=True)
    assert resumed.resumed_from.endswith("checkpoint-2") and resumed.steps == 4


def test_every_loss_builds_and_matryoshka_wraps(minilm):
    for name in REGISTRY:
        loss, spec = build_loss(minilm, TrainConfig(loss=name))
        assert spec.name == name and loss is not None
    loss, _ = build_loss(minilm, TrainConfig(loss="mnrl", matryoshka_dims=[64, 384, 128]))
    assert type(loss).__name__ == "MatryoshkaLoss" and list(loss.matryoshka_dims) == [384, 128, 64]
    assert TrainConfig(temperature=0.05).temperature == 0.05
    mnrl, _ = build_loss(minilm, TrainConfig(loss="mnrl", temperature=0.1))
    assert mnrl.scale == pytest.approx(10.0)
    with pytest.raises(ValueError, match="exceed"):
        build_loss(minilm, TrainConfig(matryoshka_dims=[768]))


def test_dataset_layouts(mini_beir):
    examples = [Example("q1", "p1", ["n1", "n2"], 0.8), Example("q2", "p2", ["n3", "n4"])]
    ranking = to_dataset(examples, "ranking", max_negatives=2)
    assert ranking.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    pairs = to_dataset(examples, "pair-label")
    assert sorted(pairs["label"]) == [0, 0, 1, 1]
    scored = to_dataset(examples, "pair-score")
    assert sorted(scored["label"]) == [0.0, 0.0, 0.8, 1.0]
    margin = to_dataset(examples, "margin", teacher=lambda q, d: [1.0 if t.startswith("p") else 0.25 for t in d])
    assert margin.column_names == ["query", "positive", "negative", "label"] and set(margin["label"]) == {0.75}
    plain = examples_from_qrels(load_beir(mini_beir), "train")
    assert len(plain) == 8 and all(not e.negatives for e in plain)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["cached-mnrl", "triplet", "contrastive", "cosine", "margin-mse"])
def test_each_loss_trains_a_step(tmp_path, mini_beir, loss):
    pairs = tmp_path / "pairs.jsonl"
    data = load_beir(mini_beir)
    rows = []
    for qid, docs in data.qrels["train"].items():
        did = next(iter(docs))
        rows.append(
            {
                "query": data.queries[qid].text,
                "positive": data.corpus[did].full_text(),
                "negative": data.corpus["x001"].full_text(),
                "score": 0.9,
            }
        )
    pairs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = TrainConfig(loss=loss, max_steps=1, dataset=str(pairs), mini_batch_size=2, **TINY)
    result = run_train(mini_beir, Workspace(tmp_path / "ws"), cfg)
    assert result.steps == 1


def test_merge_interpolates_and_is_chosen_on_dev(tmp_path, mini_beir, minilm):
    import torch

    from domainfit.train.merge import choose_merge, interpolate

    ws = Workspace(tmp_path / "ws")
    pairs = tmp_path / "general.jsonl"
    pairs.write_text('{"query": "capital of france", "positive": "Paris is the capital of France."}\n')
    cfg = TrainConfig(max_steps=2, merge=True, general_pairs=str(pairs), general_share=0.2, **TINY)
    result = run_train(mini_beir, ws, cfg)
    assert result.general_examples == 2  # 8 domain pairs -> 20% general
    assert result.merge_weight in (0.25, 0.5, 0.75, 1.0) and len(result.merge_dev_scores) == 4
    merged = SentenceTransformer(str(ws.root / "train" / "merged"), device="cpu")
    tuned = SentenceTransformer(str(ws.root / "train" / "model"), device="cpu")
    half = interpolate(minilm, tuned, 0.5)
    name, weight = next((n, w) for n, w in tuned.state_dict().items() if w.is_floating_point())
    expected = 0.5 * weight + 0.5 * minilm.state_dict()[name]
    assert torch.allclose(half.state_dict()[name], expected)
    assert torch.allclose(interpolate(minilm, tuned, 1.0).state_dict()[name], weight)
    assert merged.prompts == tuned.prompts
    _, choice = choose_merge(minilm, tuned, lambda m: 1.0)  # all equal: the smallest weight wins
    assert choice.weight == 0.25


def test_curriculum_trains_easy_to_hard_in_order(tmp_path, mini_beir):
    import datasets

    from domainfit.train.data import curriculum_examples, sequential_batches

    ws = Workspace(tmp_path / "ws")
    ws.ensure()  # a workspace domainfit made, into which the test writes mine's curriculum by hand
    folder = ws.root / "mine" / "curriculum"
    stages = []
    for level in ("easy", "medium", "hard"):
        rows = {
            "anchor": [f"{level} query {i}" for i in range(4)],
            "positive": [f"{level} passage {i}" for i in range(4)],
            "negative_1": [f"{level} wrong passage {i}" for i in range(4)],
        }
        datasets.Dataset.from_dict(rows).save_to_disk(str(folder / level))
        stages.append({"name": level, "examples": 4})
    (folder / "stages.json").write_text(json.dumps({"format_version": 1, "stages": stages}))
    examples = curriculum_examples(folder)
    assert [e.anchor.split()[0] for e in examples] == ["easy"] * 4 + ["medium"] * 4 + ["hard"] * 4
    batches = list(sequential_batches(list(range(12)), batch_size=4, drop_last=False))
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    result = run_train(mini_beir, ws, TrainConfig(max_steps=2, curriculum=True, **TINY))
    assert result.training_source.endswith("(easy to hard)") and result.steps == 2
