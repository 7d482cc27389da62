"""The ``mine`` stage end to end: artifacts, curriculum order, no-op re-runs, leakage, config and CLI."""

from __future__ import annotations

import json
import typing

import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.config import load_config
from domainfit.core.errors import InputError
from domainfit.core.workspace import Workspace
from domainfit.mine.config import MineConfig, Source
from domainfit.mine.negatives import SOURCES
from domainfit.stages.mine import run_mine

runner = CliRunner()
SMALL = {"range_min": 1, "range_max": 25, "negatives": 3}


def write_synth(ws, records):
    Workspace(ws).ensure()  # a workspace domainfit made, into which the test writes synth's output by hand
    path = ws / "synth" / "queries.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    defaults = {"source": "title", "positive_text": None, "negatives": [], "weight": 1.0}
    path.write_text("".join(json.dumps({**defaults, **r}) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture()
def mined(tmp_path, mini_beir, minilm):
    ws = tmp_path / "ws"
    write_synth(
        ws,
        [
            {"_id": "s000001", "text": "where are invoices", "doc_id": "d005"},
            {"_id": "s000002", "text": "card update", "doc_id": "d006", "source": "clicks", "negatives": ["d007"]},
            {
                "_id": "s000003",
                "text": "sso metadata",
                "doc_id": "d004",
                "source": "llm",
                "positive_text": "Upload XML.",
            },
        ],
    )
    result = run_mine(mini_beir, Workspace(ws), MineConfig(**SMALL), bi_encoder=minilm)
    return ws, result


def test_mine_writes_datasets_curriculum_negatives_summary_and_manifest(mined, mini_beir):
    from datasets import load_from_disk

    from domainfit.data.beir import load_beir

    ws, result = mined
    out = ws / "mine"
    corpus = load_beir(mini_beir).corpus
    dataset = load_from_disk(str(out / "dataset"))
    assert dataset.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    assert len(dataset) == result.n_examples == 8 + 3 and result.dropped_pairs == 0
    assert result.n_pairs == {"labelled": 8, "synthetic": 3}
    assert result.examples_by_query_source == {"clicks": 1, "llm": 1, "qrels": 8, "title": 1}
    records = [json.loads(line) for line in (out / "negatives.jsonl").read_text().splitlines()]
    assert [r["row"] for r in records] == list(range(len(dataset)))
    for record, row in zip(records, dataset, strict=True):
        assert row["anchor"] == record["query"]
        expected_positive = record["positive_text"] or corpus[record["positive_id"]].full_text()
        assert row["positive"] == expected_positive
        negative_ids = [n["doc_id"] for n in record["negatives"]]
        assert [row[f"negative_{i}"] for i in (1, 2, 3)] == [corpus[d].full_text() for d in negative_ids]
        assert record["positive_id"] not in negative_ids
    clicked = next(r for r in records if r["query_id"] == "s000002")
    assert clicked["negatives"][0] == {**clicked["negatives"][0], "doc_id": "d007", "source": "clicks"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["format_version"] == 1 and summary["n_examples"] == 11
    assert set(summary["sources"]) == {"clicks", "dense", "bm25", "random"}
    assert sum(summary["negatives_per_source"].values()) == 11 * 3
    assert set(summary["filters"]) >= {"labelled_skipped", "duplicate", "margin_absolute", "margin_relative"}
    assert summary["filters"]["labelled_skipped"] > 0
    assert summary["config"]["range_max"] == 25 and summary["seeds"]["seed"] == 13
    assert summary["seconds"]["total"] > 0 and summary["leakage"]["held_out_queries"] == 12
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "mine" and manifest["inputs"]["synthetic_sha256"]
    assert {"summary.json", "negatives.jsonl", "dataset/dataset_info.json", "curriculum/hard/state.json"} <= set(
        manifest["outputs"]
    )
    assert not [p for p in (ws).iterdir() if p.name.startswith(".mine")]  # no temporary folder left


def test_curriculum_stages_are_ordered_easy_to_hard(mined):
    from datasets import load_from_disk

    ws, result = mined
    out = ws / "mine"
    records = [json.loads(line) for line in (out / "negatives.jsonl").read_text().splitlines()]
    dataset = load_from_disk(str(out / "dataset"))
    previous_max = -float("inf")
    seen = 0
    for stage in ("easy", "medium", "hard"):
        part = load_from_disk(str(out / "curriculum" / stage))
        assert part.column_names == dataset.column_names
        mine = [r for r in records if r["stage"] == stage]
        by_row = sorted(mine, key=lambda r: (r["difficulty"], r["row"]))
        assert part["anchor"] == [r["query"] for r in by_row]  # easiest first within the stage
        difficulties = [r["difficulty"] for r in by_row]
        assert difficulties[0] >= previous_max  # every example at least as hard as the stage before
        previous_max = difficulties[-1]
        seen += len(part)
    assert seen == len(dataset)
    stages = json.loads((out / "curriculum" / "stages.json").read_text())["stages"]
    assert [s["name"] for s in stages] == ["easy", "medium", "hard"] == [s["name"] for s in result.curriculum]
    # difficulty is what the negatives.jsonl scores say it is
    for record in records:
        mean = sum(n["score"] for n in record["negatives"]) / len(record["negatives"])
        assert record["difficulty"] == pytest.approx(mean - record["positive_score"], abs=1e-5)


def test_cross_encoder_check_through_the_stage(tmp_path, mini_beir, minilm, tiny_cross_encoder):
    # the tiny cross-encoder has an untrained head (near-constant scores), so its margin is switched off here;
    # the margin itself is tested with a stand-in in test_mine_negatives.py
    config = MineConfig(
        **SMALL, sources=["dense", "random"], cross_encoder=str(tiny_cross_encoder), ce_relative_margin=None
    )
    result = run_mine(mini_beir, Workspace(tmp_path / "ws"), config, bi_encoder=minilm)
    assert result.filters["cross_encoder_scored"] >= result.n_examples * 4  # the positive and 3 negatives at least
    records = [json.loads(line) for line in (tmp_path / "ws" / "mine" / "negatives.jsonl").read_text().splitlines()]
    assert all(isinstance(r["positive_ce_score"], float) for r in records)
    assert all(isinstance(n["ce_score"], float) for r in records for n in r["negatives"])
    assert result.models["cross_encoder"] == str(tiny_cross_encoder)


def test_rerun_is_a_noop_and_changes_rerun(mined, mini_beir, minilm):
    ws, _ = mined
    stamp = (ws / "mine" / "summary.json").stat().st_mtime_ns
    again = run_mine(mini_beir, Workspace(ws), MineConfig(**SMALL), bi_encoder=minilm)
    assert again.up_to_date and (ws / "mine" / "summary.json").stat().st_mtime_ns == stamp
    write_synth(ws, [{"_id": "s000001", "text": "where are invoices kept", "doc_id": "d005"}])
    changed = run_mine(mini_beir, Workspace(ws), MineConfig(**SMALL), bi_encoder=minilm)
    assert not changed.up_to_date and changed.n_pairs["synthetic"] == 1
    other = run_mine(mini_beir, Workspace(ws), MineConfig(**{**SMALL, "seed": 5}), bi_encoder=minilm)
    assert not other.up_to_date and other.seeds["seed"] == 5


def test_leaking_synthetic_query_fails_and_writes_nothing(tmp_path, mini_beir, minilm):
    ws = tmp_path / "ws"
    synth = write_synth(
        ws,
        [
            {"_id": "s1", "text": "fine query", "doc_id": "d001"},
            {"_id": "s2", "text": "DNS TTL propagation", "doc_id": "d015"},
        ],
    )
    with pytest.raises(InputError) as info:
        run_mine(mini_beir, Workspace(ws), MineConfig(**SMALL), bi_encoder=minilm)
    assert str(info.value).startswith(f"{synth}:2: text: training query 's2'")
    assert not (ws / "mine").exists()
    # the CLI turns it into exit code 2 with the same one-line message
    result = runner.invoke(app, ["mine", str(mini_beir), "--workspace", str(ws), "--quiet"])
    assert result.exit_code == 2 and "training query 's2'" in result.output and "test query 'q015'" in result.output


def test_no_training_data_is_an_input_error(tmp_path, mini_beir):
    with pytest.raises(InputError, match=r"no qrels/nope\.tsv .* nothing to train on"):
        run_mine(mini_beir, Workspace(tmp_path / "ws"), MineConfig(train_split="nope"))


def test_mine_config_validation_and_toml(tmp_path):
    assert set(typing.get_args(Source)) == set(SOURCES)
    assert MineConfig().mining_settings().quotas() == {"clicks": 1, "dense": 1, "bm25": 1, "random": 1}
    # a pair without click data hands the clicks share to the other sources
    assert MineConfig().mining_settings().quotas(absent=["clicks"]) == {"clicks": 0, "dense": 2, "bm25": 1, "random": 1}
    settings = MineConfig(sources=["bm25", "dense"], negatives=3).mining_settings()
    assert settings.quotas() == {"dense": 2, "bm25": 1}
    with pytest.raises(ValueError, match="range_min"):
        MineConfig(range_min=50, range_max=50)
    with pytest.raises(ValueError, match="sum to negatives"):
        MineConfig(negatives=3, per_source={"dense": 1})
    with pytest.raises(ValueError, match="not enabled"):
        MineConfig(sources=["dense"], negatives=1, per_source={"bm25": 1})
    with pytest.raises(ValueError, match="folder names"):
        MineConfig(stages=["easy", "../x"])
    toml = tmp_path / "domainfit.toml"
    toml.write_text('[mine]\nnegatives = 2\nsources = ["dense", "random"]\nrange_min = 0\n')
    cfg = load_config(toml, {"mine": {"negatives": 3}})
    assert cfg.mine.negatives == 3 and cfg.mine.sources == ["dense", "random"] and cfg.mine.range_min == 0
    toml.write_text("[mine]\nnegatives = 2\nmargin = 0.1\n")
    with pytest.raises(InputError, match=r"domainfit\.toml:3: mine\.margin: unknown key"):
        load_config(toml)


def test_cli_mine_prints_tables_and_json(tmp_path, mini_beir):
    ws = tmp_path / "ws"
    args = ["mine", str(mini_beir), "--workspace", str(ws), "--negatives", "2", "--sources", "dense,random"]
    result = runner.invoke(app, [*args, "--quiet"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Hard negatives: 8 examples x 2 negatives" in result.output
    assert "Curriculum" in result.output and "time:" in result.output and "dense" in result.output
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)
    assert data["up_to_date"] and data["n_examples"] == 8 and set(data["sources"]) == {"dense", "random"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sources", "dense,magic"], "mine.sources.1"),
        (["--sources", ","], "--sources needs at least one"),
        (["--negatives", "0"], "mine.negatives"),
    ],
)
def test_cli_mine_bad_options_exit_2(tmp_path, mini_beir, extra, message):
    result = runner.invoke(app, ["mine", str(mini_beir), "--workspace", str(tmp_path / "ws"), "--quiet", *extra])
    assert result.exit_code == 2 and message in result.output


def test_cli_mine_needs_data_or_demo(tmp_path):
    result = runner.invoke(app, ["mine", "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "give either a DATA folder or --demo" in result.output


@pytest.mark.slow
def test_cli_mine_on_the_demo_corpus(tmp_path):
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["mine", "--demo", "--workspace", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n_examples"] > 1400 and data["dropped_pairs"] < 50
    assert len(data["leakage"]["dropped"]) == 4  # labelled train queries that nearly copy dev/test ones
