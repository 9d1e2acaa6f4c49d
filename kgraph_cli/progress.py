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

from kgraph_cli.reporting import epoch_line, metric_items, search_line

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


# The live table of `kgraph tune` shows the last trials (and the best, always).
LIVE_TRIAL_ROWS = 15


class _TrialEpochs:
    """A trial's TrainingReporter: its current epoch goes to the live table."""

    def __init__(self, table: TuneTable):
        self.table = table
        self.epochs = 0

    def note(self, message: str) -> None:
        pass

    def train_begin(self, epochs: int, steps: int | None) -> None:
        self.epochs = epochs

    def epoch_begin(self, epoch: int) -> None:
        self.table.running_state(f"epoch {epoch + 1}/{self.epochs}")

    def batch_end(self, step: int, logs: dict[str, Any]) -> None:
        pass

    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        value = logs.get(self.table.objective)
        if value is not None:
            self.table.running_state(
                f"epoch {epoch + 1}/{self.epochs}: {self.table.objective} {float(value):.4f}"
            )

    def train_end(self) -> None:
        pass


class TuneTable:
    """The CLI's TuneReporter: a live table of the trials on a terminal (number,
    values, objective, state, time), a plain line per trial otherwise."""

    def __init__(self, console: Console, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.live_on = console.is_terminal and not quiet
        self.live: Any = None
        self.trials: dict[int, Any] = {}
        self.running: tuple[int, dict[str, Any], str, float] | None = None
        self.best: Any = None
        self.objective = ""
        self.budget = 0
        self.study = ""

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False)

    def search_begin(
        self, study: str, objective: str, direction: str, budget: int, earlier: list[Any]
    ) -> None:
        self.study, self.objective, self.budget = study, objective, budget
        self.trials = {t.number: t for t in earlier}
        self.note(search_line(study, objective, direction, budget, earlier))
        if self.live_on:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=2)
            self.live.start()

    def trial_begin(self, number: int, params: dict[str, Any]) -> _TrialEpochs:
        self.running = (number, params, "starting", time.perf_counter())
        self._refresh()
        return _TrialEpochs(self)

    def running_state(self, state: str) -> None:
        if self.running is not None:
            number, params, _, started = self.running
            self.running = (number, params, state, started)
            self._refresh()

    def trial_end(self, trial: Any, best: Any) -> None:
        from kgraph_cli.reporting import trial_line

        self.running = None
        self.trials[trial.number] = trial
        self.best = best
        if self.live is None and not self.quiet:
            self.console.print(trial_line(trial, self.objective), highlight=False)
        self._refresh()

    def search_end(self, result: Any) -> None:
        if self.live is not None:
            self.running = None
            self.live.update(self._table(), refresh=True)
            self.live.stop()
            self.live = None

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._table(), refresh=True)

    def _table(self) -> Table:
        from rich.markup import escape

        from kgraph_cli.reporting import params_text

        done = sum(t.state in ("complete", "pruned") for t in self.trials.values())
        best = self.best
        title = f"study {escape(self.study)}: {done}/{self.budget} trials"
        if best is not None:
            title += f", best {self.objective} {best.value:.4f} (trial {best.number})"
        table = Table(title=title, title_justify="left", expand=False)
        for name, justify in (("#", "right"), ("values", "left"), (self.objective, "right")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        table.add_column("state")
        table.add_column("time", justify="right")
        shown = sorted(self.trials.values(), key=lambda t: t.number)[-LIVE_TRIAL_ROWS:]
        for trial in shown:
            style = "bold green" if best is not None and trial.number == best.number else None
            table.add_row(
                str(trial.number),
                escape(params_text(trial.params)),
                f"{trial.value:.4f}" if trial.value is not None else "",
                escape(trial.state + (f": {trial.message}" if trial.message else "")),
                _clock_text(trial.seconds) if trial.seconds is not None else "",
                style=style,
            )
        if self.running is not None:
            number, params, state, started = self.running
            table.add_row(
                str(number),
                escape(params_text(params)),
                "",
                f"running, {state}",
                _clock_text(time.perf_counter() - started),
                style="yellow",
            )
        return table
