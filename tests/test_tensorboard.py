"""TensorBoard: the `TensorBoard` callback of a spec and `kgraph train
--tensorboard` write event files that read back with the epochs' losses; a
missing `tensorboard` package is a clear error before anything is written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import invoke

pytestmark = pytest.mark.tf

SPEC = """\
kgraph: 1
name: tb
inputs:
  x: [4]
layers:
  h: {type: Dense, units: 3, activation: relu, from: x}
  y: {type: Dense, units: 1, from: h}
outputs: [y]
train:
  data:
    source: {generated: 64}
  compile: {optimizer: adam, loss: mse}
  fit: {batch_size: 16, epochs: 3, validation: 0.25, seed: 0}
"""
CALLBACK = "  callbacks: [{type: TensorBoard, log_dir: logs}]\n"


def scalars(log_dir: Path) -> dict[str, dict[str, list[int]]]:
    """{split folder: {tag: [steps]}} of the event files under `log_dir`."""
    import tensorflow as tf

    found: dict[str, dict[str, list[int]]] = {}
    for events in sorted(log_dir.rglob("events.out.tfevents.*")):
        tags = found.setdefault(events.parent.name, {})
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return found


def test_the_tensorboard_callback_of_a_spec_logs_every_epoch(write_spec, tmp_path: Path):
    spec = write_spec(SPEC + CALLBACK)
    run = tmp_path / "run"
    invoke(["train", spec, "--out", run, "--quiet"])
    logged = scalars(run / "logs")
    assert set(logged) == {"train", "validation"}
    assert logged["train"]["epoch_loss"] == [0, 1, 2]
    assert logged["validation"]["epoch_loss"] == [0, 1, 2]
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 3


def test_tensorboard_flag_logs_in_the_run_directory(write_spec, tmp_path: Path):
    spec = write_spec(SPEC)
    run = tmp_path / "run"
    invoke(["train", spec, "--out", run, "--quiet", "--tensorboard"])
    assert scalars(run / "tensorboard")["train"]["epoch_loss"] == [0, 1, 2]
    assert json.loads((run / "run.json").read_text())["callback_files"] == ["tensorboard"]
    # kgraph knows the folder as its own: --force replaces the run without a question.
    invoke(["train", spec, "--out", run, "--quiet", "--force", "--epochs", "1"])
    assert not (run / "tensorboard").exists()
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 1


def test_the_spec_callback_wins_over_the_flag(write_spec, tmp_path: Path):
    spec = write_spec(SPEC + CALLBACK)
    run = tmp_path / "run"
    invoke(["train", spec, "--out", run, "--quiet", "--tensorboard", "--epochs", "1"])
    assert (run / "logs" / "train").is_dir() and not (run / "tensorboard").exists()


@pytest.mark.parametrize(
    ("callback", "flags", "where"),
    [
        (CALLBACK, [], "the TensorBoard callback (train.callbacks[0])"),
        ("", ["--tensorboard"], "--tensorboard"),
    ],
)
def test_a_missing_tensorboard_package_is_a_clear_error(
    write_spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, callback, flags, where
):
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name == "tensorboard" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    spec = write_spec(SPEC + callback)
    run = tmp_path / "run"
    result = invoke(["train", spec, "--out", run, *flags], exit_code=1)
    assert f"{where} needs the tensorboard package, which is not installed" in result.output
    assert "pip install tensorboard" in result.output
    assert not run.exists()  # nothing was written
