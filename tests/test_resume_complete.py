"""``train --resume`` starts from the newest complete checkpoint: one cut off while it was saved is skipped,
and the resumed run still ends with the uninterrupted run's weights."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import build_mini_dataset
from domainfit.core.errors import DomainfitWarning
from domainfit.core.progress import set_quiet
from domainfit.core.workspace import Workspace
from domainfit.data.beir import write_beir
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig
from test_train_resume import SETTINGS, _config_file, _weights

CHECKPOINTS = "train-checkpoints"


def _train_and_kill(data: Path, ws: Path, config: Path) -> None:
    """Start ``domainfit train`` and SIGKILL it once its first checkpoint is saved and marked complete."""
    cli = str(Path(sys.executable).parent / "domainfit")
    cmd = [cli, "train", str(data), "--workspace", str(ws), "--config", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    folder = ws / CHECKPOINTS / "checkpoint-2"
    deadline = time.monotonic() + 600
    try:
        while not (folder / "trainer_state.json").is_file():
            assert proc.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 10 minutes"
            time.sleep(0.02)
        marked = time.monotonic() + 5  # the completion marker follows the trainer state at once
        while not (folder / "domainfit-checkpoint.json").is_file() and time.monotonic() < marked:
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The data, an uninterrupted run (checkpoints 2, 4, 6 kept) and a run killed after its first checkpoint."""
    set_quiet(True)
    root = tmp_path_factory.mktemp("resume")
    data = write_beir(build_mini_dataset(), root / "data")
    whole = run_train(data, Workspace(root / "whole"), TrainConfig(**SETTINGS))
    assert whole.steps == 6 and all((root / "whole" / CHECKPOINTS / f"checkpoint-{s}").is_dir() for s in (2, 4, 6))
    killed = root / "killed"
    _train_and_kill(data, killed, _config_file(root / "domainfit.toml"))
    for extra in (killed / CHECKPOINTS).glob("checkpoint-*"):  # keep the scenario exact: only checkpoint-2
        if extra.name != "checkpoint-2":
            shutil.rmtree(extra)
    return {"data": data, "whole": root / "whole", "whole_result": whole, "killed": killed}


def _cut_short(path: Path, keep: float = 0.5) -> None:
    """Truncate a file to a share of its length, as a process killed while writing it leaves it."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(int(size * keep))


def _later_checkpoints_cut_off(ws: Path, whole: Path) -> str:
    """checkpoint-4 has every file (trainer state and marker too) but model.safetensors is cut short;
    checkpoint-6 was killed while saving the optimizer: half of optimizer.pt, no scheduler, RNG or trainer state."""
    four, six = ws / CHECKPOINTS / "checkpoint-4", ws / CHECKPOINTS / "checkpoint-6"
    shutil.copytree(whole / CHECKPOINTS / "checkpoint-4", four)
    _cut_short(four / "model.safetensors", keep=0.9)
    shutil.copytree(whole / CHECKPOINTS / "checkpoint-6", six)
    for name in ("scheduler.pt", "rng_state.pth", "trainer_state.json", "domainfit-checkpoint.json"):
        (six / name).unlink(missing_ok=True)
    _cut_short(six / "optimizer.pt")
    return "checkpoint-2"


def _only_checkpoint_cut_short(ws: Path, whole: Path) -> str:
    """The one checkpoint of the killed run has half a trainer_state.json: nothing to resume, start afresh."""
    _cut_short(ws / CHECKPOINTS / "checkpoint-2" / "trainer_state.json")
    return ""


@pytest.mark.parametrize("damage", [_later_checkpoints_cut_off, _only_checkpoint_cut_short])
def test_resume_skips_a_cut_off_checkpoint_and_matches_an_uninterrupted_run(runs, tmp_path, damage):
    ws = tmp_path / "ws"
    shutil.copytree(runs["killed"], ws)
    expected = damage(ws, runs["whole"])
    with pytest.warns(DomainfitWarning, match=r"skipped incomplete checkpoint") as caught:
        resumed = run_train(runs["data"], Workspace(ws), TrainConfig(**SETTINGS), resume=True)
    if expected:
        assert resumed.resumed_from is not None and Path(resumed.resumed_from).name == expected
        message = str(caught[0].message)
        assert "checkpoint-6: optimizer.pt" in message and "checkpoint-4: model.safetensors is" in message
    else:
        assert resumed.resumed_from is None
    whole = runs["whole_result"]
    assert resumed.steps == whole.steps and resumed.best_step == whole.best_step

    a = _weights(runs["whole"] / "train" / "model")
    b = _weights(ws / "train" / "model")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=f"{name} differs after resume")

    from domainfit.train.checkpoints import checkpoint_problem

    for step in (2, 4, 6):  # the cut-off checkpoint was saved again, whole
        assert checkpoint_problem(ws / CHECKPOINTS / f"checkpoint-{step}", require_marker=True) is None


# ----------------------------------------------------------------------------- the completeness check


def _tiny_checkpoint(folder: Path, step: int, best: str | None = None, marker: bool = True) -> Path:
    """A small checkpoint folder with every file the trainer writes (tiny tensors)."""
    from domainfit.train.checkpoints import write_marker

    path = folder / f"checkpoint-{step}"
    (path / "1_Pooling").mkdir(parents=True)
    save_file({"w": torch.arange(64, dtype=torch.float32), "b": torch.zeros(3)}, str(path / "model.safetensors"))
    torch.save({"state": {0: {"exp_avg": torch.ones(64)}}, "param_groups": []}, path / "optimizer.pt")
    torch.save({"last_epoch": step}, path / "scheduler.pt")
    torch.save({"python": [1, 2, 3], "cpu": torch.ones(8)}, path / "rng_state.pth")
    (path / "config.json").write_text(json.dumps({"hidden_size": 64}))
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    (path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    state = {"global_step": step, "best_model_checkpoint": str(folder / best) if best else None}
    (path / "trainer_state.json").write_text(json.dumps(state))
    if marker:
        write_marker(path, step)
    return path


def test_a_checkpoint_with_every_file_whole_is_complete(tmp_path):
    from domainfit.train.checkpoints import MARKER, checkpoint_problem

    path = _tiny_checkpoint(tmp_path, 2)
    assert checkpoint_problem(path, require_marker=True) is None
    recorded = json.loads((path / MARKER).read_text())
    assert (
        recorded["step"] == 2 and recorded["files"]["model.safetensors"] == (path / "model.safetensors").stat().st_size
    )
    assert "1_Pooling/config.json" in recorded["files"]
    old = _tiny_checkpoint(tmp_path / "old", 2, marker=False)  # written before domainfit marked checkpoints
    assert checkpoint_problem(old) is None
    assert "no domainfit-checkpoint.json" in checkpoint_problem(old, require_marker=True)


def _damage(path: Path, how: str) -> None:
    if how.startswith("rm "):
        (path / how[3:]).unlink()
    elif how.startswith("cut "):
        _cut_short(path / how[4:])
    elif how.startswith("empty "):
        (path / how[6:]).write_bytes(b"")
    elif how == "wrong step":
        (path / "trainer_state.json").write_text(json.dumps({"global_step": 5}))


DAMAGE = {
    "rm trainer_state.json": "trainer_state.json is missing",
    "rm optimizer.pt": "optimizer.pt is missing",
    "rm scheduler.pt": "scheduler.pt is missing",
    "rm rng_state.pth": "RNG state",
    "rm model.safetensors": "weights are missing",
    "cut model.safetensors": "model.safetensors",
    "cut optimizer.pt": "optimizer.pt is cut off",
    "cut rng_state.pth": "rng_state.pth is cut off",
    "cut trainer_state.json": "trainer_state.json is cut off",
    "cut 1_Pooling/config.json": "1_Pooling/config.json is cut off",
    "empty scheduler.pt": "scheduler.pt is empty",
    "wrong step": "not the state of step 2",
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_cut_off_checkpoint_is_incomplete_by_its_files(tmp_path, how):
    """Without the marker (an older workspace) the files themselves tell a cut-off checkpoint."""
    from domainfit.train.checkpoints import checkpoint_problem

    path = _tiny_checkpoint(tmp_path, 2, marker=False)
    _damage(path, how)
    problem = checkpoint_problem(path)
    assert problem is not None and DAMAGE[how] in problem, problem


@pytest.mark.parametrize("how", ["cut vocab.txt", "rm vocab.txt", "cut model.safetensors", "rm config.json"])
def test_the_marker_catches_any_file_cut_short_or_missing(tmp_path, how):
    from domainfit.train.checkpoints import checkpoint_problem

    path = _tiny_checkpoint(tmp_path, 2)
    _damage(path, how)
    problem = checkpoint_problem(path, require_marker=True)
    name = how.split(" ", 1)[1]
    assert problem is not None and problem.startswith(name), problem


def test_the_newest_complete_checkpoint_is_chosen_and_the_cut_off_ones_are_named(tmp_path):
    from domainfit.train.checkpoints import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path / "none") == (None, [])
    _tiny_checkpoint(tmp_path, 2)
    _tiny_checkpoint(tmp_path, 4)
    _cut_short(_tiny_checkpoint(tmp_path, 6) / "optimizer.pt")
    unmarked = _tiny_checkpoint(tmp_path, 8, marker=False)  # killed after the trainer state, before the marker
    (tmp_path / "checkpoint-10").mkdir()  # killed as the folder was made
    last, skipped = last_complete_checkpoint(tmp_path)
    assert last == tmp_path / "checkpoint-4"
    assert [p.name for p, _ in skipped] == ["checkpoint-10", "checkpoint-8", "checkpoint-6"]
    assert "optimizer.pt" in skipped[2][1] and unmarked == skipped[1][0]


def test_a_checkpoint_whose_best_checkpoint_is_cut_off_is_not_resumed_from(tmp_path):
    """The trainer loads the best checkpoint at the end: it must be complete too."""
    from domainfit.train.checkpoints import last_complete_checkpoint

    _tiny_checkpoint(tmp_path, 2)
    _cut_short(_tiny_checkpoint(tmp_path, 4) / "model.safetensors")
    _tiny_checkpoint(tmp_path, 6, best="checkpoint-4")
    last, skipped = last_complete_checkpoint(tmp_path)
    assert last == tmp_path / "checkpoint-2"
    assert [p.name for p, _ in skipped] == ["checkpoint-6", "checkpoint-4"]
    assert "best checkpoint checkpoint-4 is incomplete" in skipped[0][1]
    _tiny_checkpoint(tmp_path, 8, best="checkpoint-8")  # its own best
    assert last_complete_checkpoint(tmp_path)[0] == tmp_path / "checkpoint-8"
