"""SIGKILL `bench`, `synth`, `mine` and `train` at random points: nothing is half-written, and the re-run's
artifacts equal an uninterrupted run's.

For each stage one uninterrupted run of the installed `domainfit` script is the
reference; its duration T bounds the kill delays (seeded, spread over [0, T] so
that early, middle and late kills all occur). After each kill every stage folder
present must hold a manifest whose listed outputs exist with their hashes (no
half-written artifact); the re-run (train: with ``--resume``) must then produce
the reference's metrics, datasets or weights (train: within the resume test's
``atol=1e-6``), and leave no ``.*.tmp`` or ``.*.old.*`` entry anywhere in the
workspace. Odd trials of bench, synth and mine kill a ``--force`` re-run over a
complete workspace, where the old artifacts must survive intact.

The default run kills bench and synth 3 times each; ``-m slow`` kills all four
stages 10 times each.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TINY_TRAIN, build_mini_dataset
from domainfit.cli import app
from domainfit.data.beir import write_beir

runner = CliRunner(env={"NO_COLOR": "1"})
SCRIPT = Path(sys.executable).with_name("domainfit")
ENV = {**os.environ, "NO_COLOR": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

#: Training as the resume test runs it, over 2 epochs: 4 steps, checkpoints at steps 2 and 4.
TRAIN = {**TINY_TRAIN, "epochs": 2.0, "save_total_limit": 10}

#: Fields that hold times or paths of one particular run.
VOLATILE = frozenset({"seconds", "estimated_seconds", "output_dir", "up_to_date", "model_path", "resumed_from"})

#: Top-level workspace entries that are not stage folders (no manifest).
NOT_STAGES = frozenset({"cache", "train-checkpoints", ".lock", ".domainfit-workspace"})


# ---------------------------------------------------------------- artifacts


def stable(value):
    """``value`` with the run-specific fields (times, paths) dropped, at any depth."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def rows(folder: Path) -> list[dict]:
    from datasets import load_from_disk

    return load_from_disk(str(folder)).to_list()


def bench_artifacts(ws: Path) -> dict:
    out = ws / "bench"
    runs = {p.name: p.read_bytes() for p in sorted((out / "runs").glob("*.trec"))}
    return {
        "metrics": stable(read_json(out / "metrics.json")),
        "per_query": read_json(out / "per_query.json"),
        "runs": runs,
    }


def synth_artifacts(ws: Path) -> dict:
    out = ws / "synth"
    return {"queries": (out / "queries.jsonl").read_bytes(), "summary": stable(read_json(out / "summary.json"))}


def mine_artifacts(ws: Path) -> dict:
    out = ws / "mine"
    return {
        "negatives": (out / "negatives.jsonl").read_bytes(),
        "dataset": rows(out / "dataset"),
        "curriculum": {p.name: rows(p) for p in sorted((out / "curriculum").iterdir()) if p.is_dir()},
        "stages": read_json(out / "curriculum" / "stages.json"),
        "summary": stable(read_json(out / "summary.json")),
    }


def train_artifacts(ws: Path) -> dict:
    from safetensors.torch import load_file

    out = ws / "train"
    result = stable(read_json(out / "result.json"))
    best = result.pop("best_dev_ndcg10")
    return {"result": result, "best_dev_ndcg10": best, "weights": load_file(str(out / "model" / "model.safetensors"))}


def same_train(a: dict, b: dict) -> str | None:
    import torch

    if a["result"] != b["result"]:
        return f"result.json differs: {a['result']} != {b['result']}"
    if (a["best_dev_ndcg10"] is None) != (b["best_dev_ndcg10"] is None) or (
        a["best_dev_ndcg10"] is not None and abs(a["best_dev_ndcg10"] - b["best_dev_ndcg10"]) > 1e-6
    ):
        return f"best_dev_ndcg10 {a['best_dev_ndcg10']} != {b['best_dev_ndcg10']}"
    if a["weights"].keys() != b["weights"].keys():
        return "the saved model has other tensors"
    for name, tensor in a["weights"].items():
        try:
            torch.testing.assert_close(tensor, b["weights"][name], rtol=0, atol=1e-6)
        except AssertionError as exc:
            return f"{name}: {str(exc).splitlines()[0]}"
    return None


def same(a: dict, b: dict) -> str | None:
    for key in a:
        if a[key] != b[key]:
            return f"{key} differs from the uninterrupted run"
    return None


@dataclass
class Stage:
    """How to run one stage and read what it produced."""

    name: str
    required: tuple[str, ...]  # files a complete stage folder always holds
    artifacts: Callable[[Path], dict]
    compare: Callable[[dict, dict], str | None] = same
    rerun_options: tuple[str, ...] = ()
    over_previous: bool = True  # odd trials kill a --force run over a complete workspace
    #: Besides the staged folder: (what, files whose appearance starts the random delay, longest delay in seconds).
    moments: tuple[tuple[str, str, float], ...] = ()


STAGES = {
    "bench": Stage("bench", ("metrics.json", "per_query.json", "config.json", "summary.md"), bench_artifacts),
    "synth": Stage("synth", ("queries.jsonl", "summary.json", "config.json"), synth_artifacts),
    "mine": Stage("mine", ("negatives.jsonl", "summary.json", "dataset/state.json"), mine_artifacts),
    "train": Stage(
        "train",
        ("result.json", "history.json", "model/model.safetensors"),
        train_artifacts,
        same_train,
        rerun_options=("--resume",),
        over_previous=False,
        moments=(
            ("saving the first checkpoint", "train-checkpoints/checkpoint-2", 1.0),
            ("the steps after the first checkpoint", "train-checkpoints/checkpoint-2/trainer_state.json", 1.0),
        ),
    ),
}


# ---------------------------------------------------------------- checks


def half_written(ws: Path) -> list[str]:
    """Stage folders without a manifest, or whose manifest lists an output that is missing or differs."""
    problems: list[str] = []
    if not ws.is_dir():
        return problems
    for entry in sorted(ws.iterdir()):
        if entry.name in NOT_STAGES or entry.name.startswith("."):
            continue
        manifest = entry / "manifest.json"
        if not manifest.is_file():
            problems.append(f"{entry.name}/ has no manifest.json")
            continue
        try:
            content = read_json(manifest)
        except ValueError as exc:
            problems.append(f"{entry.name}/manifest.json is not JSON ({exc})")
            continue
        for name, listed in content.get("outputs", {}).items():
            file = entry / name
            if not file.is_file():
                problems.append(f"{entry.name}/{name} is listed in the manifest but missing")
            elif hashlib.sha256(file.read_bytes()).hexdigest() != listed["sha256"]:
                problems.append(f"{entry.name}/{name} does not match its manifest hash")
        stage = STAGES.get(entry.name)
        for name in stage.required if stage else ():
            if not (entry / name).is_file():
                problems.append(f"{entry.name}/{name} is missing")
    return problems


def state(ws: Path) -> list[str]:
    """What a killed run left: top-level entries (and checkpoints), for the test's log."""
    if not ws.is_dir():
        return []
    found = sorted(p.name for p in ws.iterdir() if p.name not in (".lock", ".domainfit-workspace"))
    checkpoints = ws / "train-checkpoints"
    if checkpoints.is_dir():
        found += sorted(f"train-checkpoints/{p.name}" for p in checkpoints.iterdir())
    return found


def leftovers(ws: Path) -> list[str]:
    """Temporary files and swapped-out folders anywhere in the workspace."""
    return sorted(
        str(p.relative_to(ws))
        for p in ws.rglob(".*")
        if p.name.endswith(".tmp") or ".tmp." in p.name or ".old." in p.name
    )


# ---------------------------------------------------------------- running


def command(stage: str, data: Path, ws: Path, config: Path, *extra: str) -> list[str]:
    return [stage, str(data), "--workspace", str(ws), "--config", str(config), "--quiet", *extra]


def staging(ws: Path, stage: str) -> bool:
    """True once the stage has started to write its staged folder (``.<stage>.*.tmp``)."""
    try:
        return any(n.startswith(f".{stage}.") and n.endswith(".tmp") for n in os.listdir(ws))
    except FileNotFoundError:
        return False


def run_script(
    args: list[str], log: Path, kill_after: float | None = None, kill_when: Callable[[], bool] | None = None
) -> tuple[int | None, float]:
    """Run the installed script; SIGKILL its process group ``kill_after`` seconds (after ``kill_when()`` is true).

    Returns (exit code, or None when it was killed; seconds it ran).
    """
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(SCRIPT), *args], stdout=out, stderr=subprocess.STDOUT, env=ENV, start_new_session=True
        )
        try:
            while kill_when is not None and proc.poll() is None and not kill_when():
                time.sleep(0.001)
            code = proc.wait(timeout=kill_after if kill_after is not None else 1800)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    return code, time.monotonic() - started


@dataclass
class Reference:
    ws: Path
    seconds: float
    artifacts: dict


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The mini BEIR folder, a domainfit.toml with tiny training, and a lazy cache of reference runs."""
    root = tmp_path_factory.mktemp("kill")
    data = write_beir(build_mini_dataset(), root / "data")
    config = root / "domainfit.toml"
    config.write_text("[train]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TRAIN.items() if v is not None))
    references: dict[str, Reference] = {}

    def reference(name: str) -> Reference:
        if name not in references:
            ws = root / f"reference-{name}"
            code, seconds = run_script(command(name, data, ws, config), root / f"reference-{name}.log")
            assert code == 0, (root / f"reference-{name}.log").read_text()
            references[name] = Reference(ws, seconds, STAGES[name].artifacts(ws))
        return references[name]

    return root, data, config, reference


def kill_trials(name: str, trials: int, seed: int, setup) -> None:
    """Kill ``trials`` runs of one stage at seeded random points, re-run each, compare with the reference."""
    root, data, config, reference = setup
    stage = STAGES[name]
    ref = reference(name)
    rng = random.Random(f"{seed}:{name}")
    problems: list[str] = []
    killed = 0
    before = {p: p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}
    for trial in range(trials):
        ws = root / f"{name}-{seed}-{trial}"
        over = stage.over_previous and trial % 2 == 1
        if over:
            shutil.copytree(ref.ws, ws)
        args = command(name, data, ws, config, *(["--force"] if over else []))
        log = root / f"{name}-{seed}-{trial}.log"
        if trial % 3 == 2:  # at a moment that matters (writing the artifacts, a checkpoint), after a random delay
            what, path, longest = (("writing", "", 0.02), *stage.moments)[(trial // 3) % (1 + len(stage.moments))]
            delay = longest * rng.random()
            begun = (lambda ws=ws: staging(ws, name)) if not path else (lambda ws=ws, path=path: (ws / path).exists())
            code, _ = run_script(args, log, kill_after=delay, kill_when=begun)
            when = f"{delay:.3f}s into {what}"
        else:  # anywhere in the run: one delay in each slice of [0, T]
            delay = ref.seconds * (trial + rng.random()) / trials
            code, _ = run_script(args, log, kill_after=delay)
            when = f"{delay:.2f}s"
        killed += code is None
        where = f"trial {trial} ({'--force over a complete run' if over else 'fresh'}, kill at {when})"
        if code not in (None, 0):
            problems.append(f"{where}: the run exited {code}: {log.read_text()[-500:]}")
        problems += [f"{where}: after the kill: {p}" for p in half_written(ws)]
        print(f"{name} {where}: {'killed' if code is None else f'exit {code}'}, left {state(ws)}")

        rerun = runner.invoke(app, command(name, data, ws, config, *stage.rerun_options))
        if rerun.exit_code != 0:
            problems.append(f"{where}: the re-run exited {rerun.exit_code}: {rerun.output[-800:]}")
        else:
            problems += [f"{where}: after the re-run: {p}" for p in half_written(ws)]
            if (ws / "train" / "result.json").is_file():
                print(f"  re-run resumed from {read_json(ws / 'train' / 'result.json')['resumed_from']}")
            try:
                difference = stage.compare(ref.artifacts, stage.artifacts(ws))
            except (OSError, ValueError, KeyError) as exc:
                difference = f"cannot read the re-run's artifacts: {exc!r}"
            if difference:
                problems.append(f"{where}: {difference}")
        if leftovers(ws):
            problems.append(f"{where}: left behind after the re-run: {leftovers(ws)}")
        shutil.rmtree(ws, ignore_errors=True)
    if {p: p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()} != before:
        problems.append("the data folder changed")
    assert not problems, f"{name}: {len(problems)} problem(s) in {trials} trials ({killed} killed):\n" + "\n".join(
        problems
    )


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("name", ["bench", "synth"])
def test_killed_stage_reruns_to_the_uninterrupted_result(name, setup):
    kill_trials(name, trials=3, seed=1, setup=setup)


@pytest.mark.slow
@pytest.mark.timeout(7200)
@pytest.mark.parametrize("name", ["bench", "synth", "mine", "train"])
def test_killed_stage_reruns_to_the_uninterrupted_result_many(name, setup):
    kill_trials(name, trials=10, seed=2, setup=setup)
