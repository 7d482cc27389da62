"""The ``synth`` stage end to end: output contract, leakage, evaluation documents, clicks, re-runs, config, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.config import load_config
from domainfit.core.errors import InputError, UsageError
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir
from domainfit.stages.synth import run_synth
from domainfit.synth.config import SynthConfig
from domainfit.synth.datasets import check_training_leakage, labelled_pairs, read_synthetic_queries

runner = CliRunner()
CONTRACT = {"_id", "text", "doc_id", "source", "positive_text", "negatives", "weight"}


def read_queries(ws):
    lines = (ws.root / "synth" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def held_out_positives(root):
    dataset = load_beir(root)
    return {d for split in ("dev", "test") for docs in dataset.qrels[split].values() for d in docs}


def test_output_contract_summary_and_manifest(tmp_path, mini_beir):
    ws = Workspace(tmp_path / "ws")
    result = run_synth(mini_beir, ws, SynthConfig())
    records = read_queries(ws)
    assert records and len(records) == result.n_kept
    corpus = load_beir(mini_beir).corpus
    for n, record in enumerate(records, start=1):
        assert set(record) == CONTRACT
        assert record["_id"] == f"s{n:06d}"
        assert isinstance(record["text"], str) and record["text"].strip()
        assert record["doc_id"] in corpus
        assert record["source"] in ("title", "heading", "cloze", "salient")
        assert record["positive_text"] is None or isinstance(record["positive_text"], str)
        assert record["negatives"] == [] and record["weight"] == 1.0
    summary = json.loads((ws.root / "synth" / "summary.json").read_text())
    assert summary["n_kept"] == len(records) and summary["format_version"] == 1
    assert set(summary["sources"]) == {"title", "heading", "cloze", "salient"}
    kept = {s: v["kept"] for s, v in summary["sources"].items()}
    assert sum(kept.values()) == len(records)
    for stats in summary["sources"].values():
        assert stats["generated"] == stats["kept"] + sum(stats["removed"].values())
    assert summary["config"]["generators"] == ["title", "heading", "cloze", "salient"]
    assert summary["seeds"]["seed"] == 13 and summary["llm"] is None and summary["click_share"] is None
    manifest = json.loads((ws.root / "synth" / "manifest.json").read_text())
    assert manifest["stage"] == "synth" and len(manifest["inputs"]["data_sha256"]) == 64
    assert set(manifest["outputs"]) == {"queries.jsonl", "summary.json", "config.json"}
    # the mine stage reads the file as written
    assert len(read_synthetic_queries(ws.root / "synth" / "queries.jsonl", corpus)) == len(records)


def test_rerun_with_unchanged_inputs_is_a_no_op(tmp_path, mini_beir):
    ws = Workspace(tmp_path / "ws")
    run_synth(mini_beir, ws, SynthConfig())
    path = ws.root / "synth" / "queries.jsonl"
    stamp = path.stat().st_mtime_ns
    again = run_synth(mini_beir, ws, SynthConfig())
    assert again.up_to_date and path.stat().st_mtime_ns == stamp
    changed = run_synth(mini_beir, ws, SynthConfig(generators=["title"]))
    assert not changed.up_to_date and {r["source"] for r in read_queries(ws)} == {"title"}


def test_deterministic_under_a_seed(tmp_path, mini_beir):
    first = Workspace(tmp_path / "a")
    second = Workspace(tmp_path / "b")
    run_synth(mini_beir, first, SynthConfig(seed=3))
    run_synth(mini_beir, second, SynthConfig(seed=3))
    assert read_queries(first) == read_queries(second)


def test_evaluation_documents_are_not_generation_sources(tmp_path, mini_beir):
    eval_docs = held_out_positives(mini_beir)
    ws = Workspace(tmp_path / "ws")
    result = run_synth(mini_beir, ws, SynthConfig(roundtrip="none"))
    assert not {r["doc_id"] for r in read_queries(ws)} & eval_docs
    assert result.excluded_eval_documents == len(eval_docs) == 12 and result.n_source_documents == 18


def test_planted_test_queries_and_near_duplicates_are_dropped_and_counted(tmp_path, mini_beir):
    # with evaluation documents allowed as sources, their titles are exactly the held-out queries
    ws = Workspace(tmp_path / "ws")
    clicks = tmp_path / "clicks.jsonl"
    clicks.write_text(
        json.dumps({"query": "the load balancer health check", "shown": ["d001", "d002"], "clicked": ["d002"]}) + "\n"
    )
    config = SynthConfig(
        generators=["title"], exclude_eval_documents=False, roundtrip="none", clicks={"path": str(clicks)}
    )
    result = run_synth(mini_beir, ws, config)
    dataset = load_beir(mini_beir)
    held = {dataset.queries[q].text for s in ("dev", "test") for q in dataset.qrels[s]}
    assert result.sources["title"]["removed"]["leakage"] == len(held) == 12
    assert result.sources["clicks"]["removed"]["leakage"] == 1  # Jaccard 0.8 with "load balancer health check"
    assert result.leakage == {"held_out_queries": 12, "dropped": 13}
    kept = {r["text"].lower() for r in read_queries(ws)}
    assert not kept & held and "the load balancer health check" not in kept
    # the mine stage's own leakage check finds nothing left to complain about
    pairs = read_synthetic_queries(ws.root / "synth" / "queries.jsonl", dataset.corpus)
    check_training_leakage(
        labelled_pairs(dataset, "train") + pairs, dataset, train_split="train", synth_path=tmp_path / "q"
    )


def test_click_pairs_flow_through_filters_with_their_share_reported(tmp_path, mini_beir):
    log = [
        {"query": "password reset mail", "shown": ["d001", "d003", "d002"], "clicked": ["d002"], "session": "a"},
        {"query": "password reset mail", "shown": ["d001", "d002"], "clicked": ["d002"], "session": "b"},
        {"query": "peering route tables", "shown": ["d013"], "clicked": ["d013"]},  # an evaluation document
    ]
    clicks = tmp_path / "clicks.jsonl"
    clicks.write_text("".join(json.dumps(r) + "\n" for r in log))
    ws = Workspace(tmp_path / "ws")
    result = run_synth(mini_beir, ws, SynthConfig(generators=["title"], clicks={"path": str(clicks)}))
    click_records = [r for r in read_queries(ws) if r["source"] == "clicks"]
    assert click_records == [
        {
            "_id": "s000001",
            "text": "password reset mail",
            "doc_id": "d002",
            "source": "clicks",
            "positive_text": None,
            "negatives": ["d001", "d003"],
            "weight": 2.0,
        }
    ]
    assert result.sources["clicks"]["removed"]["eval_document"] == 1
    assert result.clicks["kept_pairs"] == 2 and result.clicks["impressions"] == 3
    share = result.click_share
    assert share["click_pairs"] == 1 and share["of_synthetic"] == pytest.approx(1 / result.n_kept, abs=1e-4)
    assert share["labelled_pairs"] == 8
    assert share["of_training_pairs"] == pytest.approx(1 / (result.n_kept + 8), abs=1e-4)


def test_bad_click_log_is_an_input_error_and_writes_nothing(tmp_path, mini_beir):
    clicks = tmp_path / "clicks.jsonl"
    clicks.write_text('{"query": "x", "shown": ["d001"], "clicked": []}\n{"query": "y", "shown": ["nope"]}\n')
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(InputError, match=r"clicks.jsonl:2: shown: unknown document 'nope'"):
        run_synth(mini_beir, ws, SynthConfig(clicks={"path": str(clicks)}))
    assert not (ws.root / "synth").exists()


def test_config_section_in_domainfit_toml(tmp_path):
    path = tmp_path / "domainfit.toml"
    path.write_text('[synth]\ngenerators = ["salient"]\nroundtrip = "either"\n\n[synth.llm]\nmodel = "local"\n')
    cfg = load_config(path)
    assert cfg.synth.generators == ["salient"] and cfg.synth.roundtrip == "either" and cfg.synth.llm.model == "local"
    assert cfg.synth.sources() == ["salient"]  # no base_url: no LLM
    path.write_text("[synth]\ngenerators = []\n\n[synth.clicks]\nmin_clickz = 2\n")
    with pytest.raises(InputError, match=r"domainfit.toml:5: synth.clicks.min_clickz: unknown key"):
        load_config(path)
    path.write_text('[synth]\ngenerators = ["title", "magic"]\n')
    with pytest.raises(InputError, match=r"synth.generators.1"):
        load_config(path)


def test_synth_needs_a_source(tmp_path, mini_beir):
    with pytest.raises(UsageError, match="nothing to generate"):
        run_synth(mini_beir, Workspace(tmp_path / "ws"), SynthConfig(generators=[]))
    assert SynthConfig(generators=[], llm={"base_url": "http://127.0.0.1:1/v1"}).sources() == ["llm"]
    clicks = SynthConfig(generators=["cloze", "title"], llm={"base_url": "http://x/v1"}, clicks={"path": "c.jsonl"})
    assert clicks.sources() == ["clicks", "llm", "cloze", "title"]
    none = runner.invoke(app, ["synth", str(mini_beir), "--workspace", str(tmp_path / "ws"), "--generators", "none"])
    assert none.exit_code == 2 and "nothing to generate" in none.output


def test_cli_prints_the_summary_table_and_json(tmp_path, mini_beir):
    ws = tmp_path / "ws"
    args = ["synth", str(mini_beir), "--workspace", str(ws), "--generators", "title,salient"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for column in ("source", "generated", "leakage", "near-dup", "round trip", "kept", "title", "salient"):
        assert column in result.stdout
    assert "wrote" in result.stdout
    again = runner.invoke(app, [*args, "--json"])
    data = json.loads(again.stdout)
    assert data["up_to_date"] is True and set(data["sources"]) == {"title", "salient"}


def test_cli_bad_input_exits_2(tmp_path, mini_beir):
    ws = str(tmp_path / "ws")
    missing = runner.invoke(app, ["synth", str(mini_beir), "--workspace", ws, "--clicks", str(tmp_path / "no.jsonl")])
    assert missing.exit_code == 2 and "click log not found" in missing.output
    bad = runner.invoke(app, ["synth", str(mini_beir), "--workspace", ws, "--generators", "title,nope"])
    assert bad.exit_code == 2 and "synth.generators" in bad.output
    url = runner.invoke(app, ["synth", str(mini_beir), "--workspace", ws, "--llm-base-url", "ftp://x"])
    assert url.exit_code == 2 and "--llm-base-url" in url.output
    neither = runner.invoke(app, ["synth", "--workspace", ws])
    assert neither.exit_code == 2


def test_cli_demo_corpus(tmp_path):
    result = runner.invoke(app, ["synth", "--demo", "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "ws" / "synth" / "summary.json").read_text())
    assert summary["n_source_documents"] < summary["n_documents"] == 2209
    assert summary["n_kept"] > 3000
    assert all(summary["sources"][s]["kept"] > 0 for s in ("title", "cloze", "salient"))
    assert "Synthetic queries" in result.stdout
