"""The planner's training-step probe times batches formed the way training forms them (length-grouped or not)."""

from __future__ import annotations

import random
from dataclasses import asdict

import pytest

from domainfit.budget.probe import Probe, measure_probe, step_estimate
from domainfit.config import Config
from domainfit.core.models import load_bi_encoder
from domainfit.train.speed import grouped_batches

BATCH, WINDOW = 8, 64


def _mixed_triples(n: int = 96, seed: int = 0) -> list[tuple[str, str, str]]:
    """Triples of a few words to past the window (the texts of one triple alike in length), every text distinct."""
    rng = random.Random(seed)
    words = ["cache", "token", "shard", "quota", "replica", "rotate", "billing", "invoice", "ledger", "mount", "volume"]

    def text(i: int, kind: str, size: int) -> str:
        return f"{kind} {i} " + " ".join(rng.choice(words) for _ in range(size))

    sizes = [rng.choice([2, 6, 20, 60]) for _ in range(n)]
    return [(text(i, "query", k), text(i, "doc", k), text(i, "other", k)) for i, k in enumerate(sizes)]


def _expected_padded(tokenizer, triples, batches) -> float:
    """Mean padded tokens of the full batches, per column the batch size times its longest text cut at WINDOW."""
    counts = [[min(WINDOW, len(ids)) for ids in tokenizer([t[c] for t in triples])["input_ids"]] for c in range(3)]
    full = [b for b in batches if len(b) == BATCH]
    return sum(len(b) * max(col[i] for i in b) for b in full for col in counts) / len(full)


def test_grouped_probe_pads_as_the_trainers_batches_and_less_than_shuffled() -> None:
    triples = _mixed_triples()  # fewer than BATCH x GROUP: the probe's sample is every triple, in order
    model = load_bi_encoder()  # trained in place by the probe: a copy of its own
    grouped = step_estimate(model, triples, BATCH, WINDOW, 2, grouping="length", seed=13)
    lengths = [sum(len(x) for x in t) for t in triples]
    batches = grouped_batches(lengths, triples, BATCH, 13)
    assert grouped.padded_tokens == pytest.approx(_expected_padded(model.tokenizer, triples, batches))
    assert grouped.grouping == "length" and grouped.sampled == len(triples) and grouped.timed_steps == 1
    assert grouped.seconds == pytest.approx(grouped.seconds_per_token * grouped.padded_tokens) and grouped.seconds > 0
    shuffled = step_estimate(model, triples, BATCH, WINDOW, 2, grouping="none", seed=13)
    order = list(range(len(triples)))
    random.Random(13).shuffle(order)
    plain = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
    assert shuffled.padded_tokens == pytest.approx(_expected_padded(model.tokenizer, triples, plain))
    assert grouped.padded_tokens < 0.7 * shuffled.padded_tokens  # mixed lengths: grouping pads much less


def test_the_probe_records_its_grouping_and_padded_tokens() -> None:
    triples = _mixed_triples(40)
    probe = measure_probe("sentence-transformers/all-MiniLM-L6-v2", [t[1] for t in triples],
                          [t[0] for t in triples], triples, batch_size=16, window=WINDOW, train_window=WINDOW,
                          train_batch_size=BATCH, batch_grouping="length", steps=2)  # fmt: skip
    assert probe.batch_grouping == "length" and probe.step_padded_tokens is not None
    assert probe.step_padded_tokens == pytest.approx(
        _expected_padded(load_bi_encoder().tokenizer, triples, grouped_batches(
            [sum(len(x) for x in t) for t in triples], triples, BATCH, 13)))  # fmt: skip
    assert "length-grouped batches" in probe.basis and f"{probe.step_padded_tokens:.0f} padded tokens" in probe.basis
    assert Probe(**probe.to_json()) == probe


def _old_probe_record() -> dict[str, object]:
    """A probe as plan.json kept it before the probe grouped batches (no grouping, no padded tokens)."""
    return {
        "seconds_per_token": 1e-4, "seconds_per_query": 0.01, "seconds_per_token_long": 2e-4, "short_length": 40.0,
        "long_length": 120.0, "seconds_per_step": 2.5, "seconds_per_bm25_document": 1e-4,
        "seconds_per_bm25_query": 1e-3, "bm25_documents": 30, "batch_size": 32, "window": 512, "train_window": 32,
        "model_load_seconds": 1.0, "basis": "timed 3 training steps (batch 4, 32 tokens) on this machine",
    }  # fmt: skip


def test_an_old_probe_record_loads_as_shuffled_and_is_reused_only_for_ungrouped_training(tmp_path) -> None:
    from domainfit.core.workspace import Workspace
    from domainfit.stages.plan import Plan, _earlier_probe, read_plan, write_plan

    old = Probe(**_old_probe_record())  # type: ignore[arg-type]
    assert old.batch_grouping == "none" and old.step_padded_tokens is None and old.seconds_per_step == 2.5
    ws = Workspace(tmp_path / "ws")
    workload = {"base_model": "sentence-transformers/all-MiniLM-L6-v2", "train_batch_size": 4}
    write_plan(ws, Plan(None, 0.0, 10.0, True, [], [], {}, workload, _old_probe_record(), "start"))
    assert read_plan(ws) is not None
    ungrouped = Config.model_validate({"train": {"batch_size": 4, "batch_grouping": "none"}})
    assert _earlier_probe(ws, ungrouped, 512, 32) == old  # the old probe timed shuffled batches: still valid
    assert asdict(old)["batch_grouping"] == "none"
    grouped = Config.model_validate({"train": {"batch_size": 4, "batch_grouping": "length"}})
    assert _earlier_probe(ws, grouped, 512, 32) is None  # grouped training: probe again
