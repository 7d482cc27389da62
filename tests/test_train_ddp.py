"""Training on several processes: launcher command lines, option errors, and a 2-process DDP run on the CPU."""

from __future__ import annotations

import io
import json
import sys

import pytest
from sentence_transformers import SentenceTransformer
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.core.errors import UsageError
from domainfit.core.workspace import Workspace
from domainfit.stages.train_launch import (
    WORKER_MODULE,
    check_launch_options,
    find_launcher,
    launcher_command,
    run_command,
    run_distributed,
)
from domainfit.stages.train_worker import run as run_worker
from domainfit.stages.train_worker import write_spec
from domainfit.train import distributed
from domainfit.train.config import TrainConfig
from domainfit.train.losses import build_loss

runner = CliRunner(env={"NO_COLOR": "1"})

TINY_TOML = """
[train]
max_steps = 3
batch_size = 4
max_seq_length = 32
eval_steps = 2
save_steps = 2
eval_max_corpus = 30
learning_rate = 5e-4
"""


def test_torchrun_command_line(tmp_path):
    spec = tmp_path / "spec.json"
    cmd = launcher_command("torchrun", 2, spec, executable="/venv/bin/torchrun")
    assert cmd == [
        "/venv/bin/torchrun",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "-m",
        WORKER_MODULE,
        "--spec",
        str(spec),
    ]


def test_accelerate_command_line(tmp_path):
    spec = tmp_path / "spec.json"
    cmd = launcher_command("accelerate", 4, spec)
    assert cmd[:2] == ["accelerate", "launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "4" and "--multi_gpu" in cmd
    assert cmd[cmd.index("--main_process_port") + 1] == "0"  # a free port
    assert cmd[-4:] == ["-m", WORKER_MODULE, "--spec", str(spec)]
    single = launcher_command("accelerate", 1, spec)
    assert "--multi_gpu" not in single  # accelerate refuses --multi_gpu with one process


@pytest.mark.parametrize(
    ("launcher", "processes", "message"),
    [
        (None, 2, "--processes needs --launcher"),
        ("torchrun", 0, "--processes must be at least 1"),
        ("mpirun", 2, "unknown launcher 'mpirun'"),
    ],
)
def test_bad_launch_options(launcher, processes, message):
    with pytest.raises(UsageError, match=message):
        check_launch_options(launcher, processes)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--processes", "2"], "--processes needs --launcher"),
        (["--launcher", "torchrun", "--processes", "0"], "--processes must be at least 1"),
        (["--launcher", "slurm"], "unknown launcher 'slurm'"),
    ],
)
def test_cli_rejects_bad_launch_options(tmp_path, mini_beir, argv, message):
    result = runner.invoke(app, ["train", str(mini_beir), "--workspace", str(tmp_path / "ws"), *argv])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "ws").exists()


def test_missing_launcher_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError, match=r"'accelerate' not found .*pip install accelerate"):
        find_launcher("accelerate")


def test_bad_data_fails_before_launching(tmp_path):
    from domainfit.core.errors import InputError

    with pytest.raises(InputError):
        run_distributed(tmp_path / "missing", Workspace(tmp_path / "ws"), TrainConfig(), launcher="torchrun")


def test_run_command_streams_output_and_returns_the_exit_code():
    sink = io.StringIO()
    code = run_command([sys.executable, "-c", "import sys; print('hello'); sys.exit(3)"], sink=sink)
    assert code == 3 and sink.getvalue().strip() == "hello"


def test_worker_reports_bad_input_to_the_launcher(tmp_path):
    spec, outcome = tmp_path / "spec.json", tmp_path / "result.json"
    write_spec(spec, data=tmp_path / "missing", workspace=tmp_path / "ws", cfg=TrainConfig(), result=outcome)
    assert run_worker(json.loads(spec.read_text())) == 2
    report = json.loads(outcome.read_text())
    assert report["exit_code"] == 2 and "missing" in report["error"]


def test_the_text_and_chunking_settings_travel_to_every_worker(tmp_path, monkeypatch):
    """A launched worker prepares and chunks texts as the launching command does, not with the defaults."""
    from domainfit.data.config import ChunkingConfig
    from domainfit.stages import train as train_stage
    from domainfit.stages.train import TrainResult
    from domainfit.text.config import TextConfig

    text = TextConfig(normalize=False, language_slices="off")
    chunking = ChunkingConfig(method="recursive", size=64, overlap=8)
    seen = {}

    def fake_run_train(data, workspace, cfg, **kwargs):
        seen.update(kwargs)
        return TrainResult("m", "qrels/train.tsv", 1, "pairs", 1, 0.0, 0.0, None, None, None, None)

    monkeypatch.setattr(train_stage, "run_train", fake_run_train)
    spec, outcome = tmp_path / "spec.json", tmp_path / "result.json"
    write_spec(spec, data=tmp_path, workspace=tmp_path / "ws", cfg=TrainConfig(), result=outcome, text=text,
               chunking=chunking)  # fmt: skip
    assert run_worker(json.loads(spec.read_text())) == 0, outcome.read_text()
    assert seen["text"] == text and seen["chunking"] == chunking
    write_spec(spec, data=tmp_path, workspace=tmp_path / "ws", cfg=TrainConfig(), result=outcome)
    assert run_worker(json.loads(spec.read_text())) == 0
    assert seen["text"] == TextConfig() and seen["chunking"] is None


def test_single_process_defaults_and_gather_flag(minilm, monkeypatch):
    assert distributed.world_size() == 1 and distributed.is_main_process()
    assert distributed.device_args() == {"use_cpu": True}
    loss, _ = build_loss(minilm, TrainConfig(loss="mnrl"))
    assert loss.gather_across_devices is False  # a world of one: nothing to gather (and no warning every step)
    monkeypatch.setenv("WORLD_SIZE", "2")
    loss, _ = build_loss(minilm, TrainConfig(loss="mnrl"))
    assert loss.gather_across_devices is True
    loss, _ = build_loss(minilm, TrainConfig(loss="cached-mnrl", gather_across_devices=False))
    assert loss.gather_across_devices is False


@pytest.mark.slow
def test_torchrun_trains_on_two_cpu_processes(tmp_path, mini_beir):
    config = tmp_path / "domainfit.toml"
    config.write_text(TINY_TOML)
    ws = tmp_path / "ws"
    argv = ["train", str(mini_beir), "-w", str(ws), "-c", str(config), "--launcher", "torchrun", "--processes", "2"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "on 2 processes" in result.stdout and "model:" in result.stdout
    recorded = json.loads((ws / "train" / "result.json").read_text())
    assert recorded["world_size"] == 2 and recorded["steps"] == 3
    assert recorded["base_dev_ndcg10"] is not None and recorded["best_dev_ndcg10"] is not None
    manifest = json.loads((ws / "train" / "manifest.json").read_text())
    assert manifest["inputs"]["world_size"] == 2
    model = SentenceTransformer(str(ws / "train" / "model"), device="cpu")  # plain sentence-transformers
    assert model.encode(["refund policy"]).shape == (1, 384)
    assert not list(ws.glob("train/.*.tmp")) and not list(ws.glob(".train.*"))  # no leftovers of a second writer
    again = runner.invoke(app, [*argv, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["up_to_date"] is True
