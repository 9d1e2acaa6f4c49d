"""The training progress bar keeps its epoch, step count and time at any width.

EpochReporter is driven directly with a fake clock (no TensorFlow), and its
lines are rendered at fixed console widths; one TensorFlow test runs a real
fit with steps_per_execution > 1 through keras_callback.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console

from kgraph_cli.progress import EpochReporter, fit_metrics
from kgraph_cli.reporting import format_metrics, metric_order

WIDTHS = [60, 80, 120, 200]
TRAIN_LOGS = {"loss": 0.123456, "accuracy": 0.987654}
EPOCH_LOGS = {**TRAIN_LOGS, "val_loss": 0.19, "val_accuracy": 0.95}


class FakeClock:
    """A clock the test moves by hand, so times remaining are known."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def terminal(width: int, record: bool = False) -> Console:
    return Console(
        file=io.StringIO(), width=width, force_terminal=True, color_system=None, record=record
    )


def frame(reporter: EpochReporter, width: int) -> list[str]:
    """The lines the live display shows now, rendered at `width` columns."""
    assert reporter.progress is not None
    console = terminal(width, record=True)
    console.print(reporter.progress.get_renderable())
    return console.export_text().splitlines()


def reporter_mid_run(width: int) -> tuple[EpochReporter, FakeClock]:
    """Epoch 1 of 3 done (41 steps; the last chunk of steps_per_execution=4
    reports batch index 43), epoch 2 at step 20 of 41 after 2 s."""
    clock = FakeClock()
    reporter = EpochReporter(terminal(width), clock=clock)
    reporter.train_begin(3, 41)
    reporter.epoch_begin(0)
    for end_step in range(3, 44, 4):  # 3, 7, ..., 43: Keras's end_step per chunk
        clock.now += 0.25
        reporter.batch_end(end_step, TRAIN_LOGS)
    reporter.epoch_end(0, EPOCH_LOGS)
    reporter.epoch_begin(1)
    clock.now += 1.0
    reporter.batch_end(9, TRAIN_LOGS)
    clock.now += 1.0
    reporter.batch_end(19, TRAIN_LOGS)
    return reporter, clock


@pytest.mark.parametrize("width", WIDTHS)
def test_epoch_steps_and_time_survive_every_width(width: int) -> None:
    reporter, _ = reporter_mid_run(width)
    try:
        done, running = frame(reporter, width)
    finally:
        reporter.train_end()
    for line in (done, running):
        assert len(line) <= width, line
    assert done.startswith("epoch 1/3 ")
    assert running.startswith("epoch 2/3 ")
    assert re.search(r" 41/41 \d:\d\d:\d\d ", done), done  # elapsed once done
    # 20 of 41 steps in 1 s since the first update: 21 steps at 10 per s remain.
    assert re.search(r" 20/41 eta 0:00:0[23]( |$)", running), running
    assert "loss: 0.1235" in done and "loss: 0.1235" in running
    assert "42/41" not in done and "44/41" not in done


@pytest.mark.parametrize("width", [60, 80])
def test_narrow_lines_cut_metrics_not_the_steps(width: int) -> None:
    reporter, _ = reporter_mid_run(width)
    try:
        done, _ = frame(reporter, width)
    finally:
        reporter.train_end()
    assert done.endswith(" …"), done  # some metrics left out...
    assert "val_accuracy: 0.9500" not in done
    assert " 41/41 " in done  # ...and the count kept
    # The losses are cut last: at 80 columns both still show.
    assert ("loss: 0.1235 - val_loss: 0.1900" in done) == (width >= 80), done


@pytest.mark.parametrize("width", [120, 200])
def test_wide_lines_show_every_metric(width: int) -> None:
    reporter, _ = reporter_mid_run(width)
    try:
        done, _ = frame(reporter, width)
    finally:
        reporter.train_end()
    assert done.endswith(format_metrics(EPOCH_LOGS)), done
    assert "━" in done


def test_the_final_output_holds_every_epoch_once() -> None:
    clock = FakeClock()
    console = terminal(80, record=True)
    reporter = EpochReporter(console, clock=clock)
    reporter.train_begin(3, 5)
    for epoch in range(3):
        reporter.epoch_begin(epoch)
        for end_step in (1, 3, 5):  # steps_per_execution=2 over 5 batches overshoots
            clock.now += 0.5
            reporter.batch_end(end_step, TRAIN_LOGS)
        reporter.epoch_end(epoch, EPOCH_LOGS)
    reporter.train_end()
    text = console.export_text()
    last = text[text.rindex("epoch 1/3 ") :].splitlines()  # the live display's last frame
    assert [line.split()[:2] for line in last] == [["epoch", f"{e}/3"] for e in (1, 2, 3)]
    for line in last:
        assert " 5/5 0:00:01 " in line, line
    assert "6/5" not in text


def test_unknown_step_count_ends_with_the_steps_run() -> None:
    reporter = EpochReporter(terminal(80), clock=FakeClock())
    reporter.train_begin(1, None)
    reporter.epoch_begin(0)
    reporter.batch_end(6, TRAIN_LOGS)
    running = frame(reporter, 80)[0]
    assert " 7/? eta -:--:-- " in running, running
    reporter.epoch_end(0, TRAIN_LOGS)
    done = frame(reporter, 80)[0]
    reporter.train_end()
    assert " 7/7 " in done, done


def test_plain_console_prints_one_line_per_epoch() -> None:
    console = Console(file=io.StringIO(), width=200, force_terminal=False, record=True)
    reporter = EpochReporter(console, clock=FakeClock())
    reporter.train_begin(2, 10)
    reporter.epoch_begin(0)
    reporter.batch_end(20, TRAIN_LOGS)
    reporter.epoch_end(0, EPOCH_LOGS)
    reporter.train_end()
    assert reporter.progress is None
    assert console.export_text() == f"epoch 1/2 - 0.0s - {format_metrics(EPOCH_LOGS)}\n"


def test_metrics_pair_each_value_with_its_validation_value_loss_first() -> None:
    names = ["accuracy", "loss", "out_mae", "val_accuracy", "val_loss", "val_out_mae"]
    assert metric_order(names) == [
        "loss", "val_loss", "accuracy", "val_accuracy", "out_mae", "val_out_mae"
    ]  # fmt: skip
    assert format_metrics({"accuracy": 0.5, "loss": 1}) == "loss: 1.0000 - accuracy: 0.5000"


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (200, "loss: 0.1235 - accuracy: 0.9877"),
        (31, "loss: 0.1235 - accuracy: 0.9877"),
        (30, "loss: 0.1235 …"),
        (13, "loss: 0.1235…"),
        (10, "loss: 0.1…"),
        (7, ""),
    ],
)
def test_fit_metrics_keeps_whole_metrics_first(width: int, expected: str) -> None:
    items = format_metrics(TRAIN_LOGS).split(" - ")
    assert fit_metrics(items, width) == expected
    assert len(fit_metrics(items, width)) <= width


@pytest.mark.tf
def test_keras_steps_per_execution_never_overshoots() -> None:
    """A real fit: 41 batches in chunks of 4 (Keras reports end index 43), and a
    wrong estimate of the steps (40) that Keras's own count replaces."""
    import numpy as np

    from kgraph_cli.reporting import keras_callback
    from kgraph_cli.tf import import_keras

    keras = import_keras()
    seen: list[tuple[float, float | None]] = []

    class Watching(EpochReporter):
        def batch_end(self, step: int, logs: dict[str, Any]) -> None:
            super().batch_end(step, logs)
            assert self.progress is not None
            task = self.progress.tasks[-1]
            seen.append((task.completed, task.total))

    reporter = Watching(terminal(80))
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=4)
    x = np.zeros((82, 3), "float32")
    model.fit(
        x, x[:, :1], batch_size=2, epochs=2, verbose=0, callbacks=[keras_callback(reporter, 2, 40)]
    )
    assert seen and all(total == 41 for _, total in seen)
    assert max(done for done, _ in seen) == 41
    assert all(done <= 41 for done, _ in seen)


def _trial(number: int, value: float, state: str = "complete", **params: Any) -> Any:
    from kgraph_cli.tune.results import TrialRecord

    return TrialRecord(number, state, params or {"units": 8, "kernel": [3, 3]}, value, 1.5, 2)


def test_the_tune_table_shows_each_trial_the_running_one_and_the_best() -> None:
    from kgraph_cli.progress import TuneTable

    console = terminal(160, record=True)
    table = TuneTable(console)
    table.search_begin("digits", "val_accuracy", "maximize", 3, [_trial(0, 0.91)])
    epochs = table.trial_begin(1, {"units": 16, "kernel": [5, 5]})
    epochs.train_begin(4, None)
    epochs.epoch_begin(0)
    epochs.epoch_end(0, {"val_accuracy": 0.5})
    running = console.export_text(clear=False)
    assert "running, epoch 1/4: val_accuracy 0.5000" in running
    assert "kernel=[5, 5]" in running  # values with brackets are not taken for markup
    best = _trial(1, 0.97, units=16)
    table.trial_end(best, best)
    table.trial_end(_trial(2, 0.40, "pruned"), best)
    table.search_end(None)
    text = console.export_text()
    assert "study digits: 2/3 trials, best val_accuracy 0.9700 (trial 1)" in text
    assert "study digits: maximize val_accuracy, 3 trials, 1 finished before" in text
    for row in ("0.9100", "0.9700", "0.4000", "pruned"):
        assert row in text


def test_without_a_terminal_the_tune_table_prints_a_line_per_trial() -> None:
    from kgraph_cli.progress import TuneTable

    out = io.StringIO()
    table = TuneTable(Console(file=out, width=200, force_terminal=False, color_system=None))
    table.search_begin("digits", "val_loss", "minimize", 2, [])
    table.trial_begin(0, {"units": 8})
    table.trial_end(_trial(0, 0.25, units=8), None)
    table.search_end(None)
    assert out.getvalue().splitlines() == [
        "study digits: minimize val_loss, 2 trials",
        "trial 0 complete - 1.5s - val_loss 0.2500 - units=8",
    ]
