"""``[data] max_line_mib`` caps one JSONL record in every stage command and in ``domainfit run``.

A record over the configured cap is refused with one line (the file, its line
and the limit) and exit code 2; a record over the default 8 MiB but under a
raised cap is accepted by every stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TINY_TRAIN, build_mini_dataset
from domainfit.cli import app
from domainfit.core.types import Document
from domainfit.core.workspace import Workspace
from domainfit.data.beir import write_beir

runner = CliRunner(env={"NO_COLOR": "1"})

#: The line of the oversized record in corpus.jsonl (after the 30 documents of the mini dataset).
BIG_LINE = 31


def beir_with_big_record(root: Path, mib: int) -> Path:
    """The mini BEIR folder plus one document whose record is ``mib`` MiB (a large metadata field)."""
    dataset = build_mini_dataset()
    assert len(dataset.corpus) == BIG_LINE - 1
    dataset.corpus["big"] = Document(
        id="big", title="Audit log", text="An archived export of the audit log.", metadata={"blob": "a" * (mib << 20)}
    )
    return write_beir(dataset, root)


def config_file(path: Path, max_line_mib: int) -> Path:
    """A domainfit.toml with the line cap and settings small enough for every stage on the mini data."""
    train = "\n".join(f"{key} = {json.dumps(value)}" for key, value in TINY_TRAIN.items() if value is not None)
    path.write_text(
        f"[data]\nmax_line_mib = {max_line_mib}\n"
        f"[train]\nmax_steps = 2\n{train}\n"
        "[mine]\nrange_min = 1\nrange_max = 30\nnegatives = 1\n"
        "[recipe]\nsearch = false\n"
        "[compress]\ndims = [384, 64]\npq = []\nivf_pq = []\noversample = [2]\n"
        "latency_queries = 3\nlatency_repeats = 1\n"
        "[cost]\nembed_docs_per_second = 100.0\n"
        '[calibrate]\nconfigurations = ["full/float32"]\n'
    )
    return path


def invoke(*argv: str) -> object:
    return runner.invoke(app, [*argv, "--quiet"])


#: Every command that reads the BEIR folder, with the options it needs to get that far.
COMMANDS = {
    "bench": ["bench"],
    "synth": ["synth"],
    "mine": ["mine"],
    "train": ["train"],
    "train --launcher": ["train", "--launcher", "torchrun", "--processes", "1"],
    "eval": ["eval", "--model", "all-MiniLM-L6-v2"],
    "decide": ["decide", "--when", "before"],
    "compress": ["compress"],
    "cost": ["cost"],
    "calibrate": ["calibrate"],
    "run": ["run"],
}


@pytest.fixture(scope="module")
def two_mib(tmp_path_factory) -> Path:
    return beir_with_big_record(tmp_path_factory.mktemp("big") / "data", 2)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_record_over_the_configured_cap_is_refused_by_every_command(name, two_mib, tmp_path):
    config = config_file(tmp_path / "domainfit.toml", 1)
    ws = tmp_path / "ws"
    if name == "decide":  # `decide --when before` reads bench's metrics first
        Workspace(ws).ensure()
        (ws / "bench").mkdir()
        bm25 = {"kind": "bm25", "name": "bm25", "config": {}, "metrics": {"ndcg@10": 0.5, "recall@100": 0.9}}
        (ws / "bench" / "metrics.json").write_text(json.dumps({"systems": [bm25]}))
    command, *options = COMMANDS[name]
    result = runner.invoke(app, [command, str(two_mib), "--workspace", str(ws), "--config", str(config), *options])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"corpus.jsonl:{BIG_LINE}:" in lines[0] and "record is 2.0 MiB, over the 1 MiB limit" in lines[0], lines[0]
    for stage in ("bench", "synth", "mine", "train", "eval", "decide", "compress", "cost", "calibrate"):
        assert (stage == "bench" and name == "decide") or not (ws / stage).exists(), stage
    assert not (ws / "train-checkpoints").exists()


@pytest.fixture(scope="module")
def nine_mib(tmp_path_factory) -> Path:
    return beir_with_big_record(tmp_path_factory.mktemp("big") / "data", 9)


def test_a_record_over_the_default_cap_is_refused_without_the_setting(nine_mib, tmp_path):
    result = runner.invoke(app, ["train", str(nine_mib), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "record is 9.0 MiB, over the 8 MiB limit" in result.stderr, result.output


def test_a_raised_cap_is_honoured_by_every_stage_command(nine_mib, tmp_path, minilm):
    config = config_file(tmp_path / "domainfit.toml", 16)
    common = [str(nine_mib), "--workspace", str(tmp_path / "ws"), "--config", str(config)]
    steps = [
        ["bench"],
        ["decide", "--when", "before"],
        ["synth"],
        ["mine"],
        ["train"],
        ["eval"],
        ["decide", "--when", "after"],
        ["compress"],
        ["cost"],
        ["calibrate"],
    ]
    for command, *options in steps:
        result = invoke(command, *common, *options)
        assert result.exit_code == 0, f"{command}: {result.output}"
    assert json.loads((tmp_path / "ws" / "train" / "result.json").read_text())["steps"] == 2


def test_a_raised_cap_is_honoured_by_run(nine_mib, tmp_path, minilm):
    config = config_file(tmp_path / "domainfit.toml", 16)
    ws = str(tmp_path / "ws")
    result = invoke("run", str(nine_mib), "--workspace", ws, "--config", str(config), "--train-anyway")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ws" / "eval" / "metrics.json").is_file()
