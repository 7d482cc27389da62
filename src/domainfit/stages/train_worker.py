"""Entry point of one training process started by ``torchrun`` or ``accelerate launch``.

Usage (built by `domainfit.stages.train_launch`, not typed by hand)::

    torchrun --standalone --nproc_per_node 2 -m domainfit.stages.train_worker --spec run.json

Input: a JSON spec file (see `write_spec`) with the data folder, the workspace,
the resolved ``[train]``, ``[text]`` and ``[chunking]`` sections and the run flags,
so every worker prepares and chunks texts exactly as the launching command would. Every rank joins the process
group and calls `run_train`; rank 0 alone writes the workspace artifacts and,
at the end, the spec's ``result`` file: ``{"exit_code": 0, "result": {...}}``
on success or ``{"exit_code": 1|2, "error": "..."}`` on failure, which the
launching command reads back. The process exits with the same code.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from domainfit.core.errors import DomainfitError, InputError, UsageError
from domainfit.core.files import atomic_write_json
from domainfit.core.progress import set_quiet
from domainfit.core.workspace import Workspace
from domainfit.data.config import ChunkingConfig
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.train import distributed
from domainfit.train.config import TrainConfig

SPEC_VERSION = 1


def write_spec(
    path: Path,
    *,
    data: Path,
    workspace: Path,
    cfg: TrainConfig,
    result: Path,
    resume: bool = False,
    force: bool = False,
    reranker: str | None = None,
    quiet: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
    text: TextConfig = DEFAULT_TEXT,
    chunking: ChunkingConfig | None = None,
) -> None:
    """Write the JSON spec a worker reads: what to train, where, with which settings and flags."""
    atomic_write_json(
        path,
        {
            "format_version": SPEC_VERSION,
            "data": str(data),
            "workspace": str(workspace),
            "train": cfg.model_dump(),
            "result": str(result),
            "resume": resume,
            "force": force,
            "reranker": reranker,
            "quiet": quiet,
            "max_line_bytes": max_line_bytes,
            "text": text.model_dump(mode="json"),
            "chunking": chunking.model_dump(mode="json") if chunking is not None else None,
        },
    )


def _report(spec: dict[str, Any], payload: dict[str, Any]) -> None:
    """Write the outcome for the launching command (rank 0 only)."""
    if distributed.is_main_process():
        atomic_write_json(Path(spec["result"]), payload)


def run(spec: dict[str, Any]) -> int:
    """Train as one rank of the launched group; return the exit code (0, 1 tool failure, 2 bad input)."""
    from domainfit.stages.train import run_train

    set_quiet(bool(spec.get("quiet")) or not distributed.is_main_process())
    distributed.init_process_group()
    try:
        cfg = TrainConfig.model_validate(spec["train"])
        text = TextConfig.model_validate(spec.get("text") or {})
        chunking = ChunkingConfig.model_validate(spec["chunking"]) if spec.get("chunking") else None
        result = run_train(
            Path(spec["data"]),
            Workspace(spec["workspace"]),
            cfg,
            resume=bool(spec.get("resume")),
            force=bool(spec.get("force")),
            reranker=spec.get("reranker"),
            max_line_bytes=int(spec.get("max_line_bytes") or MAX_LINE_BYTES),
            chunking=chunking,
            text=text,
        )
    except (InputError, UsageError) as exc:
        _report(spec, {"exit_code": 2, "error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DomainfitError as exc:
        _report(spec, {"exit_code": 1, "error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _report(spec, {"exit_code": 0, "result": asdict(result)})
    distributed.barrier()  # every rank finishes together, after rank 0 has written
    distributed.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``--spec FILE`` and train; return the process exit code."""
    parser = argparse.ArgumentParser(prog="domainfit.stages.train_worker", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True, help="JSON spec written by domainfit.stages.train_launch")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    return run(spec)


if __name__ == "__main__":
    sys.exit(main())
