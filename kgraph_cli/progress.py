"""Training progress for people: a rich bar per epoch with the running metrics
on a terminal, one plain line per epoch otherwise (CI logs), nothing when quiet."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def format_metrics(logs: dict[str, Any]) -> str:
    return " - ".join(f"{name}: {float(value):.4f}" for name, value in logs.items())


class EpochReporter:
    """Receives training events; renders them according to the console."""

    def __init__(self, console: Console, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self.progress: Progress | None = None
        self.task: Any = None
        self.epochs = 0
        self.started = 0.0

    def train_begin(self, epochs: int, steps: int | None) -> None:
        self.epochs = epochs
        self.steps = steps
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=self.console,
                transient=False,
            )
            self.progress.start()

    def epoch_begin(self, epoch: int) -> None:
        self.started = time.perf_counter()
        if self.progress is not None:
            self.task = self.progress.add_task(
                "", total=self.steps, epoch=epoch + 1, epochs=self.epochs, metrics=""
            )

    def batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=step + 1, metrics=format_metrics(logs))

    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        seconds = time.perf_counter() - self.started
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=self.steps, metrics=format_metrics(logs))
        elif not self.quiet:
            self.console.print(
                f"epoch {epoch + 1}/{self.epochs} - {seconds:.1f}s - {format_metrics(logs)}",
                highlight=False,
            )

    def train_end(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False)


def keras_callback(reporter: EpochReporter, epochs: int, steps: int | None) -> Any:
    """A keras.callbacks.Callback forwarding to the reporter (Keras imported lazily)."""
    import keras

    class _Forward(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            reporter.train_begin(epochs, steps)

        def on_epoch_begin(self, epoch, logs=None):
            reporter.epoch_begin(epoch)

        def on_train_batch_end(self, batch, logs=None):
            reporter.batch_end(batch, logs or {})

        def on_epoch_end(self, epoch, logs=None):
            reporter.epoch_end(epoch, logs or {})

        def on_train_end(self, logs=None):
            reporter.train_end()

    return _Forward()
