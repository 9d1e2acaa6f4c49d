"""Training progress for people: a rich bar per epoch with the running metrics
on a terminal, one plain line per epoch otherwise (CI logs), nothing when quiet.

The bar lays itself out for the width it gets: the epoch, the step count and
the time (remaining while the epoch runs, taken once it is done) always show;
the bar shrinks next, and the metrics are cut last-first to what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.progress import Progress, Task
from rich.progress_bar import ProgressBar
from rich.table import Column, Table
from rich.text import Text

from kgraph_cli.reporting import epoch_line, metric_items

# The bar's width when there is room, and the least it shrinks to before the
# metrics are cut.
BAR_WIDTH = 40
MIN_BAR_WIDTH = 10
# Below this many columns for the metrics, showing a cut metric is noise.
MIN_METRICS_WIDTH = 8
ELLIPSIS = "…"


def fit_metrics(items: list[str], width: int) -> str:
    """As many whole metrics as fit in `width` columns, then `…` for the rest;
    the first one cut short when not even it fits; "" when nothing sensible does."""
    full = " - ".join(items)
    if len(full) <= width:
        return full
    if width < MIN_METRICS_WIDTH:
        return ""
    kept = ""
    for item in items:
        candidate = f"{kept} - {item}" if kept else item
        if len(candidate) + len(f" {ELLIPSIS}") > width:
            break
        kept = candidate
    if kept:
        return f"{kept} {ELLIPSIS}"
    return items[0][: width - 1] + ELLIPSIS


def _clock_text(seconds: float | None) -> str:
    """`0:01:05` as rich writes durations; `-:--:--` when unknown."""
    if seconds is None:
        return "-:--:--"
    return str(timedelta(seconds=max(0, int(seconds))))


class EpochLine:
    """One epoch's line, laid out for the width rich gives it."""

    def __init__(self, task: Task):
        self.task = task

    def parts(self, width: int) -> tuple[str, int, str, str, str]:
        """(epoch text, bar width (0: no bar), steps, time, metrics) for `width`."""
        task = self.task
        fields = task.fields
        epoch = f"epoch {fields['epoch']}/{fields['epochs']}"
        total = None if task.total is None else int(task.total)
        done = int(task.completed)
        if total is None:
            steps = f"{done}/?"
        else:
            steps = f"{done}/{total}".rjust(2 * len(str(total)) + 1)
        if task.finished:
            when = _clock_text(task.finished_time)
        else:
            when = f"eta {_clock_text(task.time_remaining)}"
        items = metric_items(fields["metrics"])
        full = " - ".join(items)
        # Columns are separated by one space: epoch, bar, steps, time, metrics.
        room = width - (len(epoch) + len(steps) + len(when) + 2)
        if room >= BAR_WIDTH + 1 + len(full) + 1:
            return epoch, BAR_WIDTH, steps, when, full
        if room - len(full) - 2 >= MIN_BAR_WIDTH:
            return epoch, room - len(full) - 2, steps, when, full
        bar = max(0, min(MIN_BAR_WIDTH, room - 1))
        metrics = fit_metrics(items, room - bar - 2 if bar else room - 1)
        # What the cut metrics leave unused goes back to the bar.
        spare = room - len(metrics) - 2 if metrics else room - 1
        return epoch, max(0, min(BAR_WIDTH, spare)), steps, when, metrics

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        epoch, bar, steps, when, metrics = self.parts(options.max_width)
        cells: list[tuple[RenderableType, int]] = [(Text(epoch, style="bold"), len(epoch))]
        if bar:
            task = self.task
            cells.append((ProgressBar(total=task.total, completed=task.completed, width=bar), bar))
        cells += [(Text(steps), len(steps)), (Text(when), len(when))]
        if metrics:
            cells.append((Text(metrics), len(metrics)))
        # Exact widths: the line never asks for more than it has, so rich never
        # squeezes (and cuts) the epoch or step columns.
        table = Table.grid(
            *(Column(width=w, no_wrap=True) for _, w in cells), padding=(0, 1), expand=False
        )
        table.add_row(*(cell for cell, _ in cells))
        yield table


class _EpochProgress(Progress):
    """A Progress whose tasks render as width-aware EpochLines."""

    def get_renderables(self) -> Iterable[RenderableType]:
        for task in self.tasks:
            yield EpochLine(task)


class EpochReporter:
    """The CLI's TrainingReporter: renders training events for the console."""

    def __init__(
        self,
        console: Console,
        quiet: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        # Injected so that tests can render a known time remaining.
        self.clock = clock
        self.progress: Progress | None = None
        self.task: Any = None
        self.epochs = 0
        self.steps: int | None = None
        self.started = 0.0

    def train_begin(self, epochs: int, steps: int | None) -> None:
        self.epochs = epochs
        self.steps = steps
        if self.live:
            self.progress = _EpochProgress(
                console=self.console, transient=False, refresh_per_second=4, get_time=self.clock
            )
            self.progress.start()

    def epoch_begin(self, epoch: int) -> None:
        self.started = self.clock()
        if self.progress is not None:
            self.task = self.progress.add_task(
                "", total=self.steps, epoch=epoch + 1, epochs=self.epochs, metrics={}
            )

    def batch_end(self, step: int, logs: dict[str, Any]) -> None:
        """`step`: the index of the last batch run. With steps_per_execution > 1,
        Keras reports the last index of the chunk, which passes the end of the
        epoch when the chunk is cut short: never show more steps than there are."""
        if self.progress is not None and self.task is not None:
            done = step + 1 if self.steps is None else min(step + 1, self.steps)
            self.progress.update(self.task, completed=done, metrics=dict(logs))

    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        seconds = self.clock() - self.started
        if self.progress is not None and self.task is not None:
            task = self.progress.tasks[-1]  # this epoch's: one task per epoch, in order
            # An unknown total becomes the steps actually run, so the bar ends full.
            total = self.steps if self.steps is not None else int(task.completed)
            self.progress.update(self.task, total=total, completed=total, metrics=dict(logs))
        elif not self.quiet:
            self.console.print(epoch_line(epoch, self.epochs, seconds, logs), highlight=False)

    def train_end(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False)
