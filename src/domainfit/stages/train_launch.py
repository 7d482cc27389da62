"""Run the ``train`` stage on several processes (one per GPU, or several on a CPU) with DDP.

``torchrun`` or ``accelerate launch`` starts N copies of `domainfit.stages.train_worker`;
each trains on its share of every batch and, with ``mnrl``/``cached-mnrl`` and
``gather_across_devices``, scores its queries against the in-batch documents of
every process. Rank 0 writes the workspace artifacts exactly as a single-process
run does and adds ``world_size`` to ``result.json``.

Input: the same data folder, workspace and config as `run_train`, plus the
launcher name and the number of processes. Output: the `TrainResult` rank 0
recorded. The launchers' own output (progress, logs) is streamed to stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from domainfit.core.errors import DomainfitError, UsageError
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir
from domainfit.data.config import ChunkingConfig
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.stages.train import TrainResult
from domainfit.stages.train_worker import write_spec
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.train.config import TrainConfig

LAUNCHERS = ("torchrun", "accelerate")
WORKER_MODULE = "domainfit.stages.train_worker"
_INSTALL_HINT = {
    "torchrun": "it comes with PyTorch; check that torch is installed in this environment",
    "accelerate": "install it with `pip install accelerate`, or use --launcher torchrun",
}


def check_launch_options(launcher: str | None, processes: int | None) -> None:
    """Reject a bad launcher/process-count combination with a one-line `UsageError`.

    ``--processes`` needs ``--launcher``; the launcher must be one of `LAUNCHERS`;
    the process count must be at least 1.
    """
    if launcher is None:
        if processes is not None:
            raise UsageError(f"--processes needs --launcher ({' or '.join(LAUNCHERS)})")
        return
    if launcher not in LAUNCHERS:
        raise UsageError(f"unknown launcher {launcher!r}; use {' or '.join(LAUNCHERS)}")
    if processes is not None and processes < 1:
        raise UsageError(f"--processes must be at least 1, got {processes}")


def default_processes() -> int:
    """Return one process per visible CUDA device, or 1 without CUDA."""
    import torch

    return max(1, int(torch.cuda.device_count()) if torch.cuda.is_available() else 1)


def find_launcher(launcher: str) -> str:
    """Return the launcher executable: next to this Python first, then on PATH; `UsageError` when missing."""
    check_launch_options(launcher, None)
    sibling = Path(sys.executable).parent / launcher
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    found = shutil.which(launcher)
    if found is None:
        raise UsageError(
            f"launcher {launcher!r} not found next to {sys.executable} or on PATH; {_INSTALL_HINT[launcher]}"
        )
    return found


def launcher_command(launcher: str, processes: int, spec: Path, *, executable: str | None = None) -> list[str]:
    """Build the command line that starts ``processes`` workers reading ``spec``.

    ``torchrun --standalone`` and ``accelerate launch --main_process_port 0``
    pick a free local port, so concurrent runs on one machine do not collide.
    Accelerate's multi-process path is its ``--multi_gpu`` launcher (torch's
    elastic launcher underneath); on a machine without CUDA the workers still
    train on the CPU over gloo.
    """
    check_launch_options(launcher, processes)
    exe = executable or launcher
    worker = ["-m", WORKER_MODULE, "--spec", str(spec)]
    if launcher == "torchrun":
        return [exe, "--standalone", "--nnodes", "1", "--nproc_per_node", str(processes), *worker]
    cmd = [exe, "launch", "--num_processes", str(processes), "--num_machines", "1"]
    cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
    if processes > 1:
        cmd.append("--multi_gpu")
    return [*cmd, *worker]


def _stream(proc: subprocess.Popen[bytes], sink: IO[str]) -> None:
    """Copy the child's combined output to ``sink`` as it arrives (progress bars included)."""
    assert proc.stdout is not None
    while chunk := proc.stdout.read1(8192):  # type: ignore[attr-defined]
        sink.write(chunk.decode("utf-8", errors="replace"))
        sink.flush()


def run_command(cmd: list[str], *, sink: IO[str] | None = None, env: dict[str, str] | None = None) -> int:
    """Run ``cmd`` with the parent's environment (plus ``env``), stream its output to ``sink``; return its exit code."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env)
    try:
        _stream(proc, sink or sys.stderr)
        return proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise


def run_distributed(
    data: Path,
    workspace: Workspace,
    cfg: TrainConfig,
    *,
    launcher: str,
    processes: int | None = None,
    resume: bool = False,
    force: bool = False,
    reranker: str | None = None,
    quiet: bool = False,
    sink: IO[str] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    text: TextConfig = DEFAULT_TEXT,
    chunking: ChunkingConfig | None = None,
) -> TrainResult:
    """Train under ``launcher`` with ``processes`` workers and return rank 0's `TrainResult`.

    The ``[text]`` and ``[chunking]`` settings travel to every worker in its spec.
    Bad options or a missing launcher raise `UsageError`; a bad data folder
    raises `InputError` before anything starts; a failed worker raises the same
    error class it raised (exit 2 for input, 1 otherwise).
    """
    check_launch_options(launcher, processes)
    count = processes if processes is not None else default_processes()
    exe = find_launcher(launcher)
    root = Path(data).expanduser().resolve()
    workspace.attach_data(root)  # a workspace inside, above or equal to the data is refused
    # bad input fails here, with its file and line, not inside N processes
    load_beir(root, max_line_bytes=max_line_bytes, text=text)
    with workspace.lock():  # a busy workspace fails here too (rank 0 takes the lock for the run)
        pass
    with tempfile.TemporaryDirectory(prefix="domainfit-launch-") as tmp:
        spec, outcome = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        write_spec(
            spec,
            data=root,
            workspace=workspace.root,
            cfg=cfg,
            result=outcome,
            resume=resume,
            force=force,
            reranker=reranker,
            quiet=quiet,
            max_line_bytes=max_line_bytes,
            text=text,
            chunking=chunking,
        )
        code = run_command(launcher_command(launcher, count, spec, executable=exe), sink=sink)
        report = json.loads(outcome.read_text(encoding="utf-8")) if outcome.is_file() else None
    if report is None:
        raise DomainfitError(f"{launcher} exited with code {code} before training finished; see its output above")
    if report.get("exit_code", 1) == 2:
        raise UsageError(str(report.get("error")))
    if report.get("exit_code") != 0 or code != 0:
        raise DomainfitError(str(report.get("error") or f"{launcher} exited with code {code}"))
    return TrainResult(**report["result"])
