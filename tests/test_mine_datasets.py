"""Training pairs, synthetic-query validation, the leakage check and trainer-ready datasets."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import build_mini_dataset
from domainfit.core.errors import InputError
from domainfit.data.splits import normalise_text
from domainfit.synth.datasets import (
    NearDuplicateIndex,
    TrainingPair,
    cap_synthetic,
    check_training_leakage,
    labelled_pairs,
    read_synthetic_queries,
    save_subsets,
    trainer_columns,
    write_trainer_dataset,
)


def write_synth(path: Path, records: list[dict]) -> Path:
    """Write synthetic queries in the synth stage's output format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    defaults = {"source": "title", "positive_text": None, "negatives": [], "weight": 1.0}
    path.write_text("".join(json.dumps({**defaults, **r}) + "\n" for r in records), encoding="utf-8")
    return path


def test_labelled_pairs_come_from_the_train_split_with_positive_grades():
    ds = build_mini_dataset()
    ds.qrels["train"]["q001"] = {"d001": 2, "d002": 0, "d003": 1}
    pairs = labelled_pairs(ds, "train")
    assert [(p.query_id, p.doc_id) for p in pairs][:2] == [("q001", "d001"), ("q001", "d003")]
    assert {p.query_id for p in pairs} == set(ds.qrels["train"])
    assert all(p.origin == "labelled" and p.line == 0 for p in pairs)
    assert labelled_pairs(ds, "missing") == []


def test_read_synthetic_queries(tmp_path):
    corpus = build_mini_dataset().corpus
    path = write_synth(
        tmp_path / "q.jsonl",
        [
            {"_id": "s1", "text": "how do I get my invoice", "doc_id": "d005"},
            {"_id": "s2", "text": "clicked query", "doc_id": "d006", "source": "clicks", "negatives": ["d007", "d008"]},
            {"_id": "s3", "text": "ignored", "doc_id": "d006", "weight": 0},
            {
                "_id": "s4",
                "text": "rewrite",
                "doc_id": "d007",
                "source": "llm",
                "positive_text": "a passage",
                "weight": 2,
            },
        ],
    )
    pairs = read_synthetic_queries(path, corpus)
    assert [p.query_id for p in pairs] == ["s1", "s2", "s4"]
    assert pairs[1].click_negatives == ("d007", "d008") and pairs[1].source == "clicks" and pairs[1].line == 2
    assert pairs[2].positive(corpus) == "a passage" and pairs[2].weight == 2.0
    assert pairs[0].positive(corpus) == corpus["d005"].full_text()


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"_id": "s9", "text": "q", "doc_id": "nope"}, "doc_id", "unknown document 'nope'"),
        ({"_id": "s9", "text": "q", "doc_id": "d001", "negatives": ["nope"]}, "negatives", "unknown document"),
        ({"_id": "s9", "text": "q", "doc_id": "d001", "negatives": "d002"}, "negatives", "list of document ids"),
        ({"_id": "s9", "text": "q", "doc_id": "d001", "weight": -1}, "weight", "finite number >= 0"),
        ({"_id": "s9", "text": "", "doc_id": "d001"}, "text", "is empty"),
        ({"_id": "s1", "text": "q", "doc_id": "d001"}, "_id", "duplicate id 's1' (first on line 1)"),
    ],
)
def test_bad_synthetic_queries_name_file_line_and_field(tmp_path, record, field, message):
    path = write_synth(tmp_path / "q.jsonl", [{"_id": "s1", "text": "fine", "doc_id": "d001"}, record])
    with pytest.raises(InputError) as info:
        read_synthetic_queries(path, build_mini_dataset().corpus)
    assert info.value.line == 2 and info.value.field == field and message in info.value.message
    assert str(info.value).startswith(f"{path}:2: {field}: ")


def _leakage_inputs(tmp_path, synth_records):
    ds = build_mini_dataset()
    ds.root = tmp_path / "beir"
    path = write_synth(tmp_path / "ws" / "synth" / "queries.jsonl", synth_records)
    pairs = labelled_pairs(ds, "train") + read_synthetic_queries(path, ds.corpus)
    return ds, pairs, path


def test_leakage_check_catches_a_planted_test_query(tmp_path):
    # q013 "vpc peering routes" is a test query
    ds, pairs, path = _leakage_inputs(
        tmp_path,
        [
            {"_id": "s1", "text": "invoice as pdf", "doc_id": "d005"},
            {"_id": "s2", "text": "VPC peering routes?", "doc_id": "d013"},
        ],
    )
    with pytest.raises(InputError) as info:
        check_training_leakage(pairs, ds, train_split="train", synth_path=path)
    assert info.value.path == path and info.value.line == 2
    assert "training query 's2'" in str(info.value) and "the same as test query 'q013'" in str(info.value)


def test_leakage_check_catches_a_near_duplicate_of_a_test_query(tmp_path):
    # q014 "load balancer health check" is a test query; 4 of the 5 tokens are shared (Jaccard 0.8)
    ds, pairs, path = _leakage_inputs(
        tmp_path, [{"_id": "s7", "text": "Load-balancer health CHECK failing", "doc_id": "d014"}]
    )
    with pytest.raises(InputError, match=r"near-duplicate \(token Jaccard 0\.80\) of test query 'q014'") as info:
        check_training_leakage(pairs, ds, train_split="train", synth_path=path)
    assert info.value.line == 1 and "s7" in str(info.value)


def test_leakage_check_passes_clean_queries_and_honours_the_threshold(tmp_path):
    ds, pairs, path = _leakage_inputs(
        tmp_path, [{"_id": "s1", "text": "presigned url expiry time limit", "doc_id": "d011"}]
    )
    kept, report = check_training_leakage(pairs, ds, train_split="train", synth_path=path)  # Jaccard 0.6
    assert len(kept) == len(pairs) and report.dropped == [] and report.held_out_queries == 12
    with pytest.raises(InputError):
        check_training_leakage(pairs, ds, train_split="train", synth_path=path, threshold=0.6)


def test_labelled_near_duplicates_are_dropped_or_fail_and_copies_always_fail(tmp_path):
    ds = build_mini_dataset()
    ds.root = tmp_path
    ds.queries["q001"].text = "dns ttl propagation delay"  # near-duplicate of test query q015 (Jaccard 0.75 -> 3/4)
    ds.queries["q002"].text = "firewall port 443 open"  # near-duplicate of test query q016 (3/4)
    pairs = labelled_pairs(ds, "train")
    kept, report = check_training_leakage(pairs, ds, train_split="train", synth_path=tmp_path / "s", threshold=0.75)
    assert {p.query_id for p in kept} == set(ds.qrels["train"]) - {"q001", "q002"}
    assert [(d["query_id"], d["held_out_id"], d["held_out_split"]) for d in report.dropped] == [
        ("q001", "q015", "test"),
        ("q002", "q016", "test"),
    ]
    with pytest.raises(InputError, match="training query 'q001'"):
        check_training_leakage(
            pairs, ds, train_split="train", synth_path=tmp_path / "s", threshold=0.75, labelled_near_duplicates="fail"
        )
    ds.qrels["dev"]["q003"] = {"d003": 1}  # the same query id judged in train and dev
    with pytest.raises(InputError, match=r"training query 'q003'.*the same as dev query 'q003'") as info:
        check_training_leakage(labelled_pairs(ds, "train"), ds, train_split="train", synth_path=tmp_path / "s")
    assert str(info.value.path).endswith("qrels/train.tsv")


def test_near_duplicate_index_agrees_with_brute_force():
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(14)]
    held = {f"h{i}": ("test", " ".join(rng.sample(vocab, rng.randint(1, 7)))) for i in range(150)}
    for threshold in (0.5, 0.8, 1.0):
        index = NearDuplicateIndex(held, threshold)
        for _ in range(300):
            text = " ".join(rng.sample(vocab, rng.randint(1, 7)))
            tokens = set(normalise_text(text).split())
            best = max(
                (len(tokens & set(t.split())) / len(tokens | set(t.split())) for _, t in held.values()), default=0.0
            )
            found = index.match(text)
            if best >= threshold:
                assert found is not None and found.jaccard == pytest.approx(best)
            else:
                assert found is None


def test_trainer_dataset_columns_and_subsets(tmp_path):
    from datasets import load_from_disk

    rows = [(f"q{i}", f"p{i}", f"n{i}a", f"n{i}b") for i in range(2500)]
    assert write_trainer_dataset(iter(rows), 2, tmp_path / "all", rows_per_batch=1000) == 2500
    dataset = load_from_disk(str(tmp_path / "all"))
    assert dataset.column_names == trainer_columns(2) == ["anchor", "positive", "negative_1", "negative_2"]
    assert dataset[2499] == {"anchor": "q2499", "positive": "p2499", "negative_1": "n2499a", "negative_2": "n2499b"}
    assert not list(tmp_path.glob(".*.arrow"))  # the scratch file is gone
    counts = save_subsets(tmp_path / "all", {"hard": [7, 3], "easy": [0]}, tmp_path / "stages")
    assert counts == {"hard": 2, "easy": 1}
    hard = load_from_disk(str(tmp_path / "stages" / "hard"))
    assert hard["anchor"] == ["q7", "q3"] and hard.column_names == dataset.column_names
    with pytest.raises(ValueError, match="expected 4"):
        write_trainer_dataset(iter([("a", "b")]), 2, tmp_path / "bad")


def test_multiple_negatives_ranking_loss_accepts_a_batch(tmp_path, minilm):
    """What the sentence-transformers trainer does with a batch: tokenise every column, call the loss."""
    import torch
    from datasets import load_from_disk
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    ds = build_mini_dataset()
    docs = list(ds.corpus.values())
    rows = [
        (ds.queries[q].text, ds.corpus[next(iter(d))].full_text(), docs[-1].full_text(), docs[-2].full_text())
        for q, d in ds.qrels["train"].items()
    ]
    write_trainer_dataset(iter(rows), 2, tmp_path / "all")
    dataset = load_from_disk(str(tmp_path / "all"))
    loss = MultipleNegativesRankingLoss(minilm)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, report_to=[], use_cpu=True
    )
    trainer = SentenceTransformerTrainer(model=minilm, args=args, train_dataset=dataset, loss=loss)
    features, labels = trainer.collect_features(next(iter(trainer.get_train_dataloader())))
    assert len(features) == 4 and features[0]["input_ids"].shape[0] == 4  # anchor, positive, 2 negatives
    with torch.no_grad():
        value = loss(features, labels)
    assert torch.isfinite(value) and value.item() > 0


def test_cap_synthetic_keeps_labelled_pairs_and_a_seeded_share_of_synthetic_ones():
    labelled = [TrainingPair(f"l{i}", f"label {i}", f"d{i}", "labelled", "qrels") for i in range(30)]
    synthetic = [TrainingPair(f"s{i}", f"synth {i}", f"d{i}", "synthetic", "title", line=i + 1) for i in range(100)]
    pairs = labelled[:10] + synthetic + labelled[10:]
    kept, dropped = cap_synthetic(pairs, 0.25, seed=3)
    kept_synthetic = [p for p in kept if p.origin == "synthetic"]
    assert [p for p in kept if p.origin == "labelled"] == labelled  # every labelled pair, in order
    assert len(kept_synthetic) == 10 and dropped == 90  # 30 labelled -> at most 10 synthetic (25%)
    assert [p.line for p in kept_synthetic] == sorted(p.line for p in kept_synthetic)  # original order
    assert cap_synthetic(pairs, 0.25, seed=3)[0] == kept  # seeded
    assert cap_synthetic(pairs, 0.25, seed=4)[0] != kept
    assert cap_synthetic(pairs, None, seed=3) == (pairs, 0)
    assert cap_synthetic(synthetic, 0.25, seed=3) == (synthetic, 0)  # no labelled pairs: nothing to protect
    assert cap_synthetic(pairs, 0.9, seed=3) == (pairs, 0)  # the cap is above what there is
