"""Process-group helpers for training launched by ``torchrun`` or ``accelerate launch``.

The launchers describe the run through environment variables (``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``); a process started any other way is a world of one,
and every helper here is then a no-op. Only the main process (rank 0) writes
domainfit's artifacts; the other ranks train and return.
"""

from __future__ import annotations

import os
from typing import Any


def world_size() -> int:
    """Return the number of training processes (1 when not launched distributed)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))


def rank() -> int:
    """Return this process's global rank (0 when not launched distributed)."""
    return int(os.environ.get("RANK", "0") or 0)


def is_main_process() -> bool:
    """Return True on the process that writes artifacts (rank 0)."""
    return rank() == 0


def _cuda() -> bool:
    """Return True when a CUDA device is usable."""
    import torch

    return bool(torch.cuda.is_available())


def init_process_group() -> None:
    """Join the process group the launcher set up: NCCL on GPUs, gloo on CPUs; no-op in a world of one."""
    import torch.distributed as dist

    if world_size() == 1 or not dist.is_available() or dist.is_initialized():
        return
    if _cuda():
        import torch

        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl")
    else:
        dist.init_process_group(backend="gloo")


def barrier() -> None:
    """Wait until every rank gets here (no-op without an initialised process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def destroy_process_group() -> None:
    """Leave the process group, if one was joined."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_args() -> dict[str, Any]:
    """Return the device keywords of the training arguments.

    One process trains on the CPU (the CPU-friendly default). Under a launcher
    the ranks use one GPU each when CUDA is available, else the CPU with the
    gloo backend for DDP.
    """
    if world_size() == 1:
        return {"use_cpu": True}
    if _cuda():
        return {"use_cpu": False}
    return {"use_cpu": True, "ddp_backend": "gloo"}
