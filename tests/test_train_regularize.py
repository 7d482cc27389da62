"""Against forgetting: the bundled general set and the MSE pull towards the base model (CPU, a few steps)."""

import json
from pathlib import Path

import pytest
import tomllib
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from domainfit.core.workspace import Workspace
from domainfit.data.general_set import BUNDLED, bundled_pairs_path, general_dataset
from domainfit.data.pairs import read_pairs
from domainfit.evaluation.forgetting import base_similarity, neighbour_overlap
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig
from domainfit.train.regularize import build_regularizer, pairs_per_step

# no dev evaluation: both runs take exactly the same domain steps (2 epochs of 8 examples, batch 4)
TINY = {
    "batch_size": 4,
    "max_seq_length": 32,
    "save_steps": 4,
    "learning_rate": 5e-4,
    "early_stopping_patience": None,
    "eval_split": "none",
    "epochs": 2,
}


def test_bundled_general_pairs_are_packaged_and_load_as_beir():
    path = bundled_pairs_path()
    pairs = read_pairs(path)
    assert len(pairs) >= 200 and len({p.query for p in pairs}) == len(pairs)
    topics = {json.loads(line)["topic"] for line in path.read_text().splitlines()}
    assert len(topics) >= 10
    assert "Apache-2.0" in (path.parent / "README.md").read_text()
    data = general_dataset(BUNDLED)
    assert len(data.queries) == len(pairs) and set(data.qrels) == {"test"}
    assert all(len(docs) == 1 for docs in data.qrels["test"].values())
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]["domainfit"]
    assert "data/general/*.jsonl" in package_data


def test_regularizer_is_zero_at_the_base_and_grows_with_drift(minilm):
    import copy

    model = copy.deepcopy(minilm)
    pairs = [(p.query, p.positive) for p in read_pairs(bundled_pairs_path())]
    reg = build_regularizer(
        model, MultipleNegativesRankingLoss(model), pairs, steps=3, batch_size=4, share=0.5, weight=2.0, seed=1,
        source=BUNDLED,
    )  # fmt: skip
    assert pairs_per_step(4, 0.5) == reg.per_step == 4 and reg.pairs == 12  # only what 3 steps use is encoded
    assert reg.loss.targets.shape == (12, 2, 384)
    model.train()
    assert reg.loss.penalty().item() == pytest.approx(0.0, abs=1e-6)  # dropout is off for the pull
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "layer.5" in name and weight.dim() == 2:
                weight.add_(0.02 * torch.randn_like(weight))
    drifted = reg.loss.penalty()
    assert drifted.item() > 0.01 and drifted.requires_grad
    assert reg.describe()["pairs_per_step"] == 4


def test_regularised_model_stays_closer_to_the_base(tmp_path, mini_beir, minilm):
    texts = [d.text for d in general_dataset(BUNDLED).corpus.values()][-60:]  # the pull uses 16 of 300 pairs
    plain_ws, reg_ws = Workspace(tmp_path / "plain"), Workspace(tmp_path / "reg")
    plain = run_train(mini_beir, plain_ws, TrainConfig(**TINY))
    reg = run_train(mini_beir, reg_ws, TrainConfig(regularize="mse", regularize_share=0.5, **TINY))
    assert plain.steps == reg.steps == 4
    assert plain.against_forgetting["regularize"] is None
    assert reg.against_forgetting["regularize"]["source"] == BUNDLED
    assert reg.against_forgetting["regularize"]["pairs"] == 16  # 4 pairs in each of 4 steps
    models = {}
    for name, ws in (("plain", plain_ws), ("reg", reg_ws)):
        models[name] = SentenceTransformer(str(ws.root / "train" / "model"), device="cpu")
        models[name].max_seq_length = 32
    base = minilm
    cos = {name: base_similarity(base, m, texts) for name, m in models.items()}
    overlap = {name: neighbour_overlap(base, m, texts, k=5)[0] for name, m in models.items()}
    assert cos["plain"] < 0.999  # fine-tuning moved the general embeddings ...
    assert cos["reg"] > cos["plain"]  # ... and the pull towards the base kept them closer
    assert overlap["reg"] >= overlap["plain"]
    print(f"general cosine to base: {cos}; neighbour overlap@5: {overlap}")
