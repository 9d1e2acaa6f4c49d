"""How training tells its progress, without knowing who listens.

The core (`train.py`) reports to a `TrainingReporter`; the CLI passes its rich
bar (`progress.EpochReporter`), a notebook or script gets `PlainReporter`'s
one line per epoch, or passes its own object with these methods.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any, Protocol, TextIO


class TrainingReporter(Protocol):
    """What `train_model` tells while it trains (epochs are 0-based)."""

    def note(self, message: str) -> None: ...
    def train_begin(self, epochs: int, steps: int | None) -> None: ...
    def epoch_begin(self, epoch: int) -> None: ...
    def batch_end(self, step: int, logs: dict[str, Any]) -> None: ...
    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> None: ...
    def train_end(self) -> None: ...


def metric_order(names: Iterable[str]) -> list[str]:
    """The loss first, each metric followed by its validation value: what a cut
    line keeps is what matters most (Keras sorts them by name)."""
    names = list(names)
    train = [n for n in names if not (n.startswith("val_") and n[4:] in names)]
    train.sort(key=lambda n: n != "loss")
    ordered = [m for n in train for m in (n, f"val_{n}") if m in names]
    return ordered + [n for n in names if n not in ordered]


def metric_items(logs: dict[str, Any]) -> list[str]:
    return [f"{name}: {float(logs[name]):.4f}" for name in metric_order(logs)]


def format_metrics(logs: dict[str, Any]) -> str:
    """`loss: 0.1234 - val_loss: 0.2345 - accuracy: 0.9876 - val_accuracy: ...`."""
    return " - ".join(metric_items(logs))


def epoch_line(epoch: int, epochs: int, seconds: float, logs: dict[str, Any]) -> str:
    """One finished epoch as a plain line: `epoch 2/5 - 1.3s - loss: ...`."""
    return f"epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {format_metrics(logs)}"


class PlainReporter:
    """A line per epoch (and the notes) on a stream; nothing when quiet."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream
        self.quiet = quiet
        self.epochs = 0
        self.started = 0.0

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream or sys.stdout, flush=True)

    def note(self, message: str) -> None:
        self._print(message)

    def train_begin(self, epochs: int, steps: int | None) -> None:
        self.epochs = epochs

    def epoch_begin(self, epoch: int) -> None:
        self.started = time.perf_counter()

    def batch_end(self, step: int, logs: dict[str, Any]) -> None:
        pass

    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._print(epoch_line(epoch, self.epochs, time.perf_counter() - self.started, logs))

    def train_end(self) -> None:
        pass


def keras_callback(reporter: TrainingReporter, epochs: int, steps: int | None) -> Any:
    """A keras.callbacks.Callback forwarding to the reporter (Keras imported lazily).

    `steps` is kgraph's estimate of the batches per epoch; Keras's own count
    (`params["steps"]`, known for a tf.data dataset of known size) wins.
    """
    from kgraph_cli.tf import import_keras

    keras = import_keras()

    class _Forward(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            reporter.train_begin(epochs, (self.params or {}).get("steps") or steps)

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            reporter.epoch_begin(epoch)

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            reporter.batch_end(batch, logs or {})

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            reporter.epoch_end(epoch, logs or {})

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            reporter.train_end()

    return _Forward()


class TuneReporter(Protocol):
    """What `kgraph tune` tells while it searches; trials are
    `tune.results.TrialRecord`s, the result a `TuneResult`."""

    def note(self, message: str) -> None: ...
    def search_begin(
        self, study: str, objective: str, direction: str, budget: int, earlier: list[Any]
    ) -> None: ...
    def trial_begin(self, number: int, params: dict[str, Any]) -> TrainingReporter: ...
    def trial_end(self, trial: Any, best: Any) -> None: ...
    def search_end(self, result: Any) -> None: ...


def params_text(params: dict[str, Any]) -> str:
    """`layers.hidden1.units=64, train.compile.optimizer.learning_rate=0.0012`."""
    from kgraph_cli.spec.tune import flow

    return ", ".join(
        f"{path}={value:.4g}" if isinstance(value, float) else f"{path}={flow(value)}"
        for path, value in params.items()
    )


def search_line(study: str, objective: str, direction: str, budget: int, earlier: list[Any]) -> str:
    """A search's first line: `study digits: maximize val_accuracy, 12 trials`
    (and `, 4 finished before` when it resumes)."""
    done = sum(t.state in ("complete", "pruned") for t in earlier)
    resumed = f", {done} finished before" if earlier else ""
    return f"study {study}: {direction} {objective}, {budget} trials{resumed}"


def trial_line(trial: Any, objective: str) -> str:
    """One finished trial as a plain line: `trial 3 complete - 5.2s - val_loss 0.0812 - ...`."""
    parts = [f"trial {trial.number} {trial.state}"]
    if trial.seconds is not None:
        parts.append(f"{trial.seconds:.1f}s")
    if trial.value is not None:
        parts.append(f"{objective} {trial.value:.4f}")
    parts.append(params_text(trial.params))
    if trial.message:
        parts.append(trial.message)
    return " - ".join(parts)


class PlainTuneReporter:
    """A line per finished trial (and the notes) on a stream; nothing when quiet."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False):
        self.lines = PlainReporter(stream, quiet)
        self.objective = ""

    def note(self, message: str) -> None:
        self.lines.note(message)

    def search_begin(
        self, study: str, objective: str, direction: str, budget: int, earlier: list[Any]
    ) -> None:
        self.objective = objective
        self.note(search_line(study, objective, direction, budget, earlier))

    def trial_begin(self, number: int, params: dict[str, Any]) -> TrainingReporter:
        return PlainReporter(quiet=True)

    def trial_end(self, trial: Any, best: Any) -> None:
        self.note(trial_line(trial, self.objective))

    def search_end(self, result: Any) -> None:
        pass
