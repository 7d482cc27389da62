"""Chunking beyond bench: synth, mine, train and eval on the generated long-document corpus.

Every document of the corpus is longer than the 64-token window used here, and the
fact each query asks about sits deep inside it. With ``[chunking]`` on, synth makes
queries from single chunks (their positive is the chunk), mine trains on the best
chunk of a long document instead of its truncated beginning, and eval reports the
chunked rows next to the unchunked ones.
"""

from __future__ import annotations

import json

import pytest

from domainfit.config import BenchConfig
from domainfit.core.models import DEFAULT_MODEL, resolve_model
from domainfit.core.workspace import Workspace
from domainfit.data.beir import BeirDataset, write_beir
from domainfit.data.chunking import token_lengths
from domainfit.data.config import ChunkingConfig
from domainfit.data.longdocs import build_long_corpus
from domainfit.evaluation.config import EvalConfig
from domainfit.mine.config import MineConfig
from domainfit.stages.bench import run_bench
from domainfit.stages.eval import run_eval
from domainfit.stages.mine import run_mine
from domainfit.stages.synth import run_synth
from domainfit.synth.config import SynthConfig

SEQ = 64  # tokens the model reads here: every generated document is longer
CHUNKING = ChunkingConfig(method="recursive", overlap=0, sweep=False)
MINE = {"max_seq_length": SEQ, "negatives": 2, "range_min": 0, "range_max": 20, "sources": ["dense", "bm25"]}


@pytest.fixture(scope="module")
def long_data(tmp_path_factory):
    """Ten long documents: four train queries, two dev, four test."""
    built = build_long_corpus(n_docs=10, sections=4, sentences_per_section=6, seed=3)
    judged = built.qrels["test"]
    ids = sorted(judged)
    qrels = {
        "train": {q: judged[q] for q in ids[:4]},
        "dev": {q: judged[q] for q in ids[4:6]},
        "test": {q: judged[q] for q in ids[6:]},
    }
    data = BeirDataset(corpus=built.corpus, queries=built.queries, qrels=qrels)
    return write_beir(data, tmp_path_factory.mktemp("long") / "data"), data


@pytest.fixture(scope="module")
def tokenizer():
    """The MiniLM tokenizer (no model weights needed)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(resolve_model(DEFAULT_MODEL).path))


@pytest.fixture(scope="module")
def mined(long_data, tmp_path_factory):
    """synth then mine with chunking on, in one workspace."""
    root, _ = long_data
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    synth = run_synth(root, ws, SynthConfig(max_seq_length=SEQ), chunking=CHUNKING)
    mine = run_mine(root, ws, MineConfig(**MINE), chunking=CHUNKING)
    return ws, synth, mine


def _needle(data: BeirDataset, doc_id: str) -> str:
    """Return the sentence of a document that its query asks about."""
    doc = data.corpus[doc_id]
    at = doc.metadata["needle_char"]
    return doc.text[at : doc.text.index(".", at) + 1]


def test_synth_positives_are_chunks_from_deep_inside_long_documents(mined, long_data, tokenizer):
    ws, result, _ = mined
    _, data = long_data
    records = [json.loads(line) for line in (ws.root / "synth" / "queries.jsonl").read_text().splitlines()]
    train_docs = {d for docs in data.qrels["train"].values() for d in docs}
    assert records and {r["doc_id"] for r in records} <= train_docs  # parent ids; held-out documents never used
    chunked = [r for r in records if "chunk" in r]
    assert {r["source"] for r in chunked} >= {"cloze", "salient", "heading"}
    window = result.chunking["chunker"]["window"]
    deep = [r for r in chunked if r["chunk"]["token_start"] >= window]
    assert deep, "some queries come from chunks past the first window"
    for record in chunked:
        chunk = record["chunk"]
        assert chunk["id"].startswith(record["doc_id"] + "#")
        if record["source"] == "salient":  # the positive is the chunk itself (after its title/heading prefix)
            assert data.corpus[record["doc_id"]].text[chunk["start"] : chunk["end"]] in record["positive_text"]
    # no positive is a whole long document any more: every one fits the window
    positives = [r["positive_text"] for r in records if r["positive_text"] is not None]
    assert max(token_lengths(tokenizer, positives)) <= SEQ
    summary = result.chunking
    assert summary["resolved_method"] == "recursive" and summary["long_documents"] == 10
    assert summary["chunk_positives"]["kept"]["cloze"] > 0 and summary["kept_past_window"] == len(deep)
    assert json.loads((ws.root / "synth" / "manifest.json").read_text())["inputs"]["chunking"]["method"] == "recursive"


def test_synth_without_chunking_is_unchanged(long_data, tmp_path):
    root, _ = long_data
    result = run_synth(root, Workspace(tmp_path / "ws"), SynthConfig())
    records = (tmp_path / "ws" / "synth" / "queries.jsonl").read_text()
    assert result.chunking is None and '"chunk"' not in records
    assert "chunking" not in json.loads((tmp_path / "ws" / "synth" / "manifest.json").read_text())["inputs"]


def test_mine_positives_and_negatives_are_best_chunks_that_fit(mined, long_data, tokenizer):
    from datasets import load_from_disk

    ws, _, result = mined
    _, data = long_data
    summary = result.chunking
    assert summary["positives_replaced"]["labelled"] == 4 and summary["long_documents"] == 10
    assert summary["negatives_replaced"] == sum(summary["negatives_replaced_by_source"].values()) > 0
    assert summary["settings"] == CHUNKING.model_dump()
    assert json.loads((ws.root / "mine" / "manifest.json").read_text())["inputs"]["chunking"] == CHUNKING.model_dump()
    rows = load_from_disk(str(ws.root / "mine" / "dataset"))
    for column in ("positive", "negative_1", "negative_2"):
        assert max(token_lengths(tokenizer, rows[column])) <= SEQ, column
    lines = [json.loads(line) for line in (ws.root / "mine" / "negatives.jsonl").read_text().splitlines()]
    labelled = [r for r in lines if r["origin"] == "labelled"]
    assert len(labelled) == 4 and all(r["positive_chunk"].startswith(r["positive_id"] + "#") for r in labelled)
    assert all(x["chunk"].startswith(x["doc_id"] + "#") for r in lines for x in r["negatives"])
    # the best chunk under the base model is the one holding the answer, far past the window
    found = sum(_needle(data, r["positive_id"]) in r["positive_text"] for r in labelled)
    assert found >= 3, [r["positive_text"] for r in labelled]
    assert summary["positives_replaced_in_dataset"] == sum(r["positive_chunk"] is not None for r in lines)


def test_eval_and_bench_report_chunked_rows_and_chunked_hybrids(long_data, tmp_path):
    root, _ = long_data
    ws = Workspace(tmp_path / "ws")
    # the "fine-tuned" model is the base under its folder path: enough to check the chunked rows are reported
    cfg = EvalConfig(model=str(resolve_model(DEFAULT_MODEL).path), general="none", max_seq_length=SEQ, examples=0)
    result = run_eval(root, ws, cfg, chunking=CHUNKING)
    scores = {s.name: s.metrics["ndcg@10"] for s in result.systems}
    for name in ("dense-chunked", "hybrid-rrf-chunked", "hybrid-convex-chunked"):
        assert f"{name}:base" in scores and f"{name}:fine-tuned" in scores
    assert {"dense-chunked", "hybrid-convex-chunked"} <= set(result.lift) and "dense-chunked" in result.significance
    assert scores["dense-chunked:base"] > scores["dense:base"]  # the answers lie past the 64-token window
    assert "`*-chunked` rows" in (ws.root / "eval" / "summary.md").read_text()
    assert json.loads((ws.root / "eval" / "manifest.json").read_text())["inputs"]["chunking"]["sweep"] is False
    assert run_eval(root, ws, cfg, chunking=CHUNKING).up_to_date
    assert not run_eval(root, ws, cfg, chunking=None).chunking  # inputs changed: re-run, no chunked rows

    bench_cfg = BenchConfig(split="test", max_seq_length=SEQ)
    bench = run_bench(root, ws, bench_cfg, chunking=CHUNKING)
    names = {s.name for s in bench.systems}
    assert {"dense-chunked", "hybrid-rrf-chunked", "hybrid-convex-chunked"} <= names
    tuning = bench.hybrid_tuning["all-MiniLM-L6-v2 (chunked)"]
    # two dev queries (< 3) are too few to tune on: the four train queries tune the weight (few-shot), noted
    assert tuning["split"] == "train" and "alpha" in tuning
    assert any("few-shot" in note for note in bench.notes)
    convex = next(s for s in bench.systems if s.name == "hybrid-convex-chunked")
    assert convex.config["dense"] == "dense-chunked" and convex.config["alpha"] == tuning["alpha"]


def test_train_on_mined_chunks_then_eval_chunked(mined, long_data):
    from domainfit.stages.train import run_train
    from domainfit.train.config import TrainConfig

    ws, _, _ = mined
    root, _ = long_data
    cfg = TrainConfig(max_steps=2, batch_size=4, max_seq_length=SEQ, save_steps=2, eval_steps=2,
                      early_stopping_patience=None)  # fmt: skip
    trained = run_train(root, ws, cfg)
    assert "mine" in trained.training_source  # trained on mine's chunk positives
    result = run_eval(root, ws, EvalConfig(general="none", max_seq_length=SEQ, examples=0), chunking=CHUNKING)
    names = {s.name for s in result.systems}
    assert {"dense-chunked:base", "dense-chunked:fine-tuned", "hybrid-convex-chunked:fine-tuned"} <= names
    assert "dense-chunked" in result.lift


def test_train_from_qrels_alone_uses_best_chunks(long_data, tmp_path, tokenizer):
    from domainfit.data.beir import load_beir
    from domainfit.stages.train import _examples
    from domainfit.train.config import TrainConfig

    root, _ = long_data
    ws = Workspace(tmp_path / "ws")
    examples, source = _examples(load_beir(root), ws, TrainConfig(max_seq_length=SEQ), CHUNKING)
    assert source == "qrels/train.tsv (4 long documents as their best chunk)" and len(examples) == 4
    assert max(token_lengths(tokenizer, [e.positive for e in examples])) <= SEQ
    plain, label = _examples(load_beir(root), ws, TrainConfig(max_seq_length=SEQ))
    assert label == "qrels/train.tsv" and min(token_lengths(tokenizer, [e.positive for e in plain])) > SEQ


@pytest.mark.parametrize("command", ["synth", "mine", "train", "eval"])
def test_every_stage_takes_the_chunking_option(command, tmp_path):
    from typer.testing import CliRunner

    from domainfit.cli import app

    assert "--chunking" in CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
    result = CliRunner().invoke(app, [command, str(tmp_path), "--chunking", "sideways"])
    assert result.exit_code == 2 and "chunking.method" in result.output  # validated as [chunking] method
