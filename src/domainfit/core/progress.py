"""Progress bars (rich) that every long step uses, silenced by ``--quiet``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    global _QUIET
    _QUIET = quiet


def is_quiet() -> bool:
    """Return True when progress output is silenced."""
    return _QUIET


def stderr_console() -> Console:
    """Return a console on stderr that honours ``NO_COLOR``."""
    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")), file=sys.stderr)


class RateColumn(ProgressColumn):
    """The rate of a task in units per second (``12.3 docs/s``), blank until rich has measured it."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        """Render the rate."""
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} {self.unit}/s")


@contextlib.contextmanager
def progress_bar(description: str, total: int, unit: str | None = None) -> Iterator[Callable[[int], None]]:
    """Show a progress bar for ``total`` units; yields ``advance(n)``.

    Silent when quiet is set. The bar goes to stderr so ``--json`` output on
    stdout stays clean. ``unit`` (e.g. ``"docs"``) adds a rate column (``docs/s``).
    """
    if _QUIET or total <= 0:
        yield lambda n: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        *((RateColumn(unit),) if unit else ()),
    )
    with Progress(*columns, console=stderr_console(), transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def step_progress(advance: Callable[[int], None]) -> Any:
    """Return a transformers ``TrainerCallback`` that advances a `progress_bar` by one per optimiser step.

    A resumed run first advances by the steps already done.
    """
    from transformers import TrainerCallback

    class StepProgress(TrainerCallback):
        """Advances domainfit's progress bar as the trainer steps."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step:
                advance(int(state.global_step))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            advance(1)

    return StepProgress()
