"""`kgraph tune` end to end: trials as run directories, best.yaml trained
again, seeds, resume after Ctrl-C, two processes on one study, pruning, the
grid sampler, budgets, storage, what --force may replace, and the errors.

Small models on generated data: a trial trains in about a second."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, invoke

pytestmark = pytest.mark.tf

SPEC = """\
kgraph: 1
inputs:
  x: {shape: [8]}
layers:
  h: {type: Dense, units: 8, activation: relu, from: x}
  out: {type: Dense, units: 3, from: h}
outputs: [out]
train:
  data:
    source: {generated: 96}
  compile:
    optimizer: {type: Adam, learning_rate: 0.01}
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
    metrics: [accuracy]
  fit: {batch_size: 16, epochs: 2, validation: 0.25, seed: 0}
"""
SPACE = """\
tune:
  objective: val_accuracy
  trials: 4
  pruner: none
  space:
    layers.h.units: choice(4, 8, 16)
    train.compile.optimizer.learning_rate: float(0.001, 0.1, log)
    train.compile.optimizer.type: choice(Adam, SGD)
    train.compile.optimizer.momentum:
      values: float(0.0, 0.9)
      when: train.compile.optimizer.type=SGD
"""


def tune(args: list[Any], exit_code: int = 0) -> dict[str, Any]:
    """`kgraph tune ARGS --json`, its JSON document."""
    result = invoke(["tune", *args, "--json"], exit_code)
    return json.loads(result.stdout)


def hparams_of(log_dir: Path) -> dict[str, Any]:
    """The values a trial wrote for TensorBoard's HParams dashboard."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    for events in log_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(
                        value.metadata.plugin_data.content
                    )
                    if data.HasField("session_start_info"):
                        found = data.session_start_info.hparams
                        return {key: _hparam(found[key]) for key in found}
    return {}


def _hparam(value: Any) -> Any:
    return getattr(value, value.WhichOneof("kind"))  # numbers come back as floats: 8.0 == 8


def params_of(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [t["params"] for t in sorted(summary["trials"], key=lambda t: t["number"])]


def test_trials_are_run_directories_and_best_yaml_trains_the_best_again(write_spec, tmp_path: Path):
    spec = write_spec(SPEC + SPACE)
    out = tmp_path / "tune"
    summary = tune([spec, "--out", out, "--tensorboard"])
    assert summary["objective"] == "val_accuracy" and summary["direction"] == "maximize"
    assert summary["counts"] == {"complete": 4} and summary["stopped"] == "4 trials"
    for trial in summary["trials"]:
        run = Path(trial["run_dir"])
        assert run == out / "trials" / f"{trial['number']:04d}"
        assert (run / "metrics.json").is_file() and (run / "model.keras").is_file()
        assert list((run / "tensorboard" / "train").glob("events.out.tfevents.*"))
        assert hparams_of(run / "tensorboard") == trial["params"]
        history = json.loads((run / "history.json").read_text())
        assert trial["value"] == max(history["val_accuracy"])  # the best epoch's
        assert trial["epochs"] == 2
        # The conditional value is searched only where its condition holds.
        sgd = trial["params"]["train.compile.optimizer.type"] == "SGD"
        assert ("train.compile.optimizer.momentum" in trial["params"]) == sgd
    best = summary["best"]
    assert best["value"] == max(t["value"] for t in summary["trials"])
    for name in ("best.yaml", "trials.csv", "tune.json", "history.png", "importances.png"):
        assert (out / name).is_file(), name
    assert set(summary["importances"]) == {
        "layers.h.units",
        "train.compile.optimizer.learning_rate",
        "train.compile.optimizer.type",
        "train.compile.optimizer.momentum",
    }
    import yaml

    best_spec = yaml.safe_load((out / "best.yaml").read_text())
    assert "tune" not in best_spec
    assert best_spec["layers"]["h"]["units"] == best["params"]["layers.h.units"]
    rerun = tmp_path / "again"
    invoke(["train", out / "best.yaml", "--out", rerun, "-q"])
    trained = json.loads((rerun / "history.json").read_text())
    assert trained == json.loads((Path(best["run_dir"]) / "history.json").read_text())
    # A trial is a run directory like any other: evaluate and plot take it.
    evaluated = json.loads(invoke(["evaluate", best["run_dir"], "--json"]).stdout)
    assert evaluated["trained"] is True
    invoke(["plot", best["run_dir"], "-o", tmp_path / "curves.png"])
    assert (tmp_path / "curves.png").stat().st_size > 0
    csv_lines = (out / "trials.csv").read_text().splitlines()
    assert csv_lines[0].startswith("number,state,value,seconds,epochs,layers.h.units,")
    assert len(csv_lines) == 5


def test_the_same_seed_gives_the_same_trials_and_a_resumed_search_continues_them(
    write_spec, tmp_path: Path
):
    spec = write_spec(SPEC + SPACE)
    whole = tune([spec, "--out", tmp_path / "whole", "--trials", 5])
    tune([spec, "--out", tmp_path / "parts", "--trials", 2])
    resumed = tune([spec, "--out", tmp_path / "parts", "--trials", 5])
    assert params_of(resumed) == params_of(whole)
    assert [t["value"] for t in resumed["trials"]] == [t["value"] for t in whole["trials"]]
    other = tune([spec, "--out", tmp_path / "other", "--trials", 2, "--seed", 7])
    assert params_of(other) != params_of(whole)[:2]


def test_ctrl_c_keeps_the_finished_trials_and_the_same_command_runs_the_interrupted_values(
    write_spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import kgraph_cli.train as train_module

    spec = write_spec(SPEC + SPACE)
    original = train_module.keras_callback
    epochs_seen: list[int] = []

    def interrupting(reporter: Any, epochs: int, steps: int | None) -> Any:
        callback = original(reporter, epochs, steps)
        forward = callback.on_epoch_end

        def on_epoch_end(epoch: int, logs: Any = None) -> None:
            forward(epoch, logs)
            epochs_seen.append(epoch)
            if len(epochs_seen) == 3:  # trial 1's first epoch
                raise KeyboardInterrupt

        callback.on_epoch_end = on_epoch_end
        return callback

    monkeypatch.setattr(train_module, "keras_callback", interrupting)
    out = tmp_path / "tune"
    result = invoke(["tune", spec, "--out", out], exit_code=130)
    assert "search interrupted" in result.stderr and "same command" in result.stderr
    first = json.loads((out / "tune.json").read_text())
    assert [(t["number"], t["state"]) for t in first["trials"]] == [(0, "complete"), (1, "failed")]
    assert first["trials"][1]["message"] == "interrupted (Ctrl-C)"
    monkeypatch.setattr(train_module, "keras_callback", original)
    resumed = tune([spec, "--out", out])
    states = [(t["number"], t["state"]) for t in resumed["trials"]]
    assert states == [(0, "complete"), (1, "failed"), (2, "complete"), (3, "complete")] + [
        (4, "complete")
    ]
    by_number = {t["number"]: t for t in resumed["trials"]}
    assert by_number[2]["params"] == by_number[1]["params"]  # the interrupted values, first
    assert by_number[0] == first["trials"][0]  # a finished trial is never run again
    uninterrupted = tune([spec, "--out", tmp_path / "whole"])
    finished = [t["params"] for t in resumed["trials"] if t["state"] == "complete"]
    assert finished == params_of(uninterrupted)


def test_two_processes_share_one_sqlite_study_without_losing_or_repeating_a_trial(
    write_spec, tmp_path: Path
):
    # Trials of a few seconds: the later process to start (TensorFlow's import,
    # the corner checks) still finds trials to run on a loaded machine.
    spec = write_spec((SPEC + SPACE).replace("epochs: 2", "epochs: 20"))
    out = tmp_path / "tune"
    kgraph = str(Path(sys.executable).parent / "kgraph")
    command = [kgraph, "tune", str(spec), "--out", str(out)]
    command += ["--trials", "10", "--sampler", "random", "--json", "-q"]
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr.decode()
    summary = json.loads((out / "tune.json").read_text())
    trials = summary["trials"]
    numbers = [t["number"] for t in trials]
    assert numbers == list(range(len(trials)))  # no number twice, none missing
    complete = [t for t in trials if t["state"] == "complete"]
    # Each process checks the budget before it asks for a trial: at most one
    # more than the budget when both ask at the same instant.
    assert 10 <= len(complete) <= 11 and len(complete) == len(trials)
    for trial in complete:
        assert (Path(trial["run_dir"]) / "metrics.json").is_file()
    assert sorted(p.name for p in (out / "trials").iterdir()) == [f"{n:04d}" for n in numbers]
    rates = [t["params"]["train.compile.optimizer.learning_rate"] for t in complete]
    assert len(set(rates)) == len(rates)  # no values drawn twice
    # Both processes ran trials (each reports the whole study at its end).
    assert len({t["worker"] for t in complete}) == 2
    assert all(json.loads(stdout)["counts"] for stdout, _ in outputs)


# Generated labels are noise: the training loss is what a learning rate lowers.
PRUNED_SPACE = """\
tune:
  objective: loss
  trials: 8
  sampler: random
  pruner: median
  seed: 3
  space:
    train.compile.optimizer.learning_rate: choice(0.05, 0.0000001)
    layers.h.units: choice(8, 16)
"""


def test_the_median_pruner_stops_trials_behind_the_others(write_spec, tmp_path: Path):
    spec = write_spec(SPEC.replace("epochs: 2", "epochs: 4") + PRUNED_SPACE)
    summary = tune([spec, "--out", tmp_path / "tune"])
    assert summary["objective"] == "loss" and summary["direction"] == "minimize"
    pruned = [t for t in summary["trials"] if t["state"] == "pruned"]
    complete = [t for t in summary["trials"] if t["state"] == "complete"]
    assert pruned and len(pruned) + len(complete) == 8
    for trial in pruned:
        assert trial["epochs"] < 4 and trial["message"] == f"pruned after epoch {trial['epochs']}"
        assert trial["params"]["train.compile.optimizer.learning_rate"] == 1e-7
        # A pruned trial's run directory is finished like any other.
        assert (Path(trial["run_dir"]) / "metrics.json").is_file()
    assert all(t["epochs"] == 4 for t in complete)


def test_hyperband_prunes_at_its_rungs_and_cmaes_searches_numbers(write_spec, tmp_path: Path):
    spec = write_spec(SPEC.replace("epochs: 2", "epochs: 4") + PRUNED_SPACE)
    summary = tune([spec, "--out", tmp_path / "hb", "--pruner", "hyperband", "--trials", 10])
    pruned = [t for t in summary["trials"] if t["state"] == "pruned"]
    assert pruned and all(t["epochs"] < 4 for t in pruned)
    numbers = SPEC + (
        "tune:\n  space:\n"
        "    train.compile.optimizer.learning_rate: float(0.001, 0.1, log)\n"
        "    layers.h.units: int(4, 32)\n"
    )
    spec = write_spec(numbers, "numbers.yaml")
    args = ["--sampler", "cmaes", "--trials", 4, "--objective", "val_accuracy"]
    summary = tune([spec, "--out", tmp_path / "cma", *args, "--direction", "minimize"])
    assert summary["direction"] == "minimize" and summary["counts"] == {"complete": 4}
    best = min(t["value"] for t in summary["trials"])
    assert summary["best"]["value"] == best
    for trial in summary["trials"]:
        assert 0.001 <= trial["params"]["train.compile.optimizer.learning_rate"] <= 0.1
        assert 4 <= trial["params"]["layers.h.units"] <= 32


GRID = """\
kgraph: 1
inputs:
  x: {shape: [8]}
layers:
  a: {type: Dense, units: 4, from: x}
  b: {type: Dense, units: 4, from: x}
  sum: {type: Add, from: [a, b]}
  out: {type: Dense, units: 3, from: sum}
outputs: [out]
train:
  data:
    source: {generated: 64}
  compile:
    optimizer: adam
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  fit: {batch_size: 16, epochs: 1, validation: 0.25, seed: 0}
tune:
  sampler: grid
  trials: 10
  space:
    layers.a.units: choice(4, 8)
    layers.b.units: choice(4, 8)
"""


def test_the_grid_runs_each_value_once_and_a_failing_trial_does_not_stop_the_search(
    write_spec, tmp_path: Path
):
    spec = write_spec(GRID)
    database = tmp_path / "elsewhere" / "studies.db"
    database.parent.mkdir()
    out = tmp_path / "tune"
    summary = tune([spec, "--out", out, "--storage", f"sqlite:///{database}", "--study", "g"])
    assert summary["stopped"] == "every value of the grid"
    assert summary["study"] == "g" and database.is_file() and not (out / "study.db").exists()
    seen = sorted(
        (t["params"]["layers.a.units"], t["params"]["layers.b.units"]) for t in summary["trials"]
    )
    assert seen == [(4, 4), (4, 8), (8, 4), (8, 8)]
    for trial in summary["trials"]:
        mixed = trial["params"]["layers.a.units"] != trial["params"]["layers.b.units"]
        # Add cannot sum 4 and 8 units: those two trials fail, with the reason.
        assert trial["state"] == ("failed" if mixed else "complete")
        assert ("layers.sum" in trial["message"]) == mixed


def test_the_grid_needs_a_finite_space(write_spec, tmp_path: Path):
    spec = write_spec(GRID.replace("choice(4, 8)\n    layers.b", "int(4, 8)\n    layers.b"))
    flag = ["--tune", "train.fit.validation=float(0.2, 0.3)"]
    errors = tune([spec, "--out", tmp_path / "tune", *flag], exit_code=1)
    assert [(e["code"], e["file"], e["line"]) for e in errors] == [("search-space", "--tune", 1)]
    assert "no finite grid" in errors[0]["message"]
    assert not (tmp_path / "tune").exists()


def test_a_timeout_stops_starting_trials(write_spec, tmp_path: Path):
    spec = write_spec(SPEC + SPACE)
    summary = tune([spec, "--out", tmp_path / "tune", "--trials", 50, "--timeout", "0.1"])
    assert summary["stopped"] == "the 0.1 s timeout" and len(summary["trials"]) == 1


def test_an_objective_the_trials_do_not_log_is_located(write_spec, tmp_path: Path):
    spec = write_spec(SPEC + SPACE.replace("objective: val_accuracy", "objective: val_acuracy"))
    errors = tune([spec, "--out", tmp_path / "tune"], exit_code=1)
    assert [(e["code"], e["path"], e["line"]) for e in errors] == [
        ("unknown-metric", "tune.objective", 17)
    ]
    assert "did you mean 'val_accuracy'" in errors[0]["hint"]


def test_nothing_to_search_and_a_bad_flag_are_usage_errors(write_spec, tmp_path: Path):
    spec = write_spec(SPEC)
    result = invoke(["tune", spec, "--out", tmp_path / "t"], exit_code=2)
    assert "nothing to search" in result.stderr and "--tune" in result.stderr
    result = invoke(
        ["tune", spec, "--tune", "layers.h.units=choice(4, 8)", "--sampler", "anneal"],
        exit_code=2,
    )
    assert "--sampler must be one of tpe, random, grid, cmaes" in result.stderr
    result = invoke(["tune", spec, "--tune", "layers.h.units=choice(4, 8)", "-n", 10**6], 2)
    assert "--trials must be from 1 to 100,000, got 1,000,000" in result.stderr
    space = ["--tune", "layers.h.units=choice(4, 8)", "--out", tmp_path / "t"]
    result = invoke(["tune", spec, *space, "--storage", "nosuch://db"], exit_code=2)
    assert "cannot open the storage nosuch://db" in result.stderr
    assert not (tmp_path / "t").exists()  # nothing left behind


def test_a_tune_entry_on_the_command_line_is_located_in_its_argument(write_spec, tmp_path: Path):
    spec = write_spec(SPEC)
    result = invoke(
        ["tune", spec, "--out", tmp_path / "t", "--tune", "layers.h.units=choise(4, 8)"],
        exit_code=1,
    )
    assert "--tune:1:16: error[search-space]" in result.stderr
    assert "did you mean 'choice'?" in result.stderr
    result = invoke(["validate", spec, "--tune", "layers.h.units=int(-1, 4)"], exit_code=1)
    assert "--tune:1:16: error[layer-args]" in result.stderr
    assert "with layers.h.units=-1 (tune)" in result.stderr


def test_a_changed_spec_does_not_continue_another_search(write_spec, tmp_path: Path):
    spec = write_spec(SPEC + SPACE)
    out = tmp_path / "tune"
    tune([spec, "--out", out, "--trials", 1])
    spec.write_text((SPEC + SPACE).replace("epochs: 2", "epochs: 1"))
    result = invoke(["tune", spec, "--out", out, "--trials", 1], exit_code=2)
    assert "searched another spec, space or objective" in result.stderr
    summary = tune([spec, "--out", out, "--trials", 1, "--force"])
    assert [t["epochs"] for t in summary["trials"]] == [1]


def test_force_replaces_only_a_tune_directory_kgraph_wrote(write_spec, tmp_path: Path):
    spec = write_spec(SPEC + SPACE)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for force in ([], ["--force"]):
        result = invoke(["tune", spec, "--out", mine, "--trials", 1, *force], exit_code=2)
        assert "notes.txt" in result.stderr or "not a tune directory" in result.stderr
        assert (mine / "notes.txt").read_text() == "keep me"
    out = tmp_path / "tune"
    tune([spec, "--out", out, "--trials", 1])
    (out / "trials" / "0000" / "mine.csv").write_text("a,b")
    result = invoke(["tune", spec, "--out", out, "--trials", 1, "--force"], exit_code=2)
    assert "mine.csv" in result.stderr
    assert (out / "trials" / "0000" / "mine.csv").is_file()


def test_without_optuna_the_error_says_what_to_install(
    write_spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "optuna", None)
    spec = write_spec(SPEC + SPACE)
    result = invoke(["tune", spec, "--out", tmp_path / "tune"], exit_code=1)
    assert "kgraph tune needs Optuna" in result.stderr
    assert "pip install 'kgraph[tune]'" in result.stderr
    assert not (tmp_path / "tune").exists()


def test_the_shipped_digits_search_validates():
    result = invoke(["validate", REPO / "specs" / "digits_tune.yaml"])
    assert "ok" in result.stdout


def test_best_yaml_finds_the_data_files_of_a_spec_elsewhere(write_spec, tmp_path: Path):
    import numpy as np

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)).astype("float32"), rng.integers(0, 3, 64)
    np.savez(project / "data" / "samples.npz", x=x, y=y)
    source = "    source: {npz: data/samples.npz}\n    inputs: {x: x}\n    targets: {out: y}\n"
    text = SPEC.replace("    source: {generated: 96}\n", source)
    spec = write_spec(text + SPACE, "project/spec.yaml")
    out = tmp_path / "elsewhere" / "tune"
    tune([spec, "--out", out, "--trials", 1])
    import yaml

    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["train"]["data"]["source"]["npz"] == str(project / "data" / "samples.npz")
    invoke(["train", out / "best.yaml", "--out", tmp_path / "again", "-q"])


def test_a_trial_whose_process_was_killed_runs_again(
    write_spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import signal
    import time

    import kgraph_cli.tune.study as study_module

    spec = write_spec((SPEC + SPACE).replace("epochs: 2", "epochs: 30"))
    out = tmp_path / "tune"
    kgraph = str(Path(sys.executable).parent / "kgraph")
    worker = subprocess.Popen(
        [kgraph, "tune", str(spec), "--out", str(out), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (out / "trials" / "0000" / "history.json").is_file():  # an epoch into trial 0
        assert worker.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    # The next process finds the dead trial's heartbeat stale (after the grace
    # period, shortened here) and runs its values again.
    monkeypatch.setattr(study_module, "GRACE_SECONDS", 1)
    time.sleep(2)
    summary = tune([spec, "--out", out, "--trials", 2])
    states = {t["number"]: t["state"] for t in summary["trials"]}
    assert states[0] == "failed" and list(states.values()).count("complete") == 2
    retried = [t for t in summary["trials"] if t["number"] > 0]
    assert retried[0]["params"] == summary["trials"][0]["params"]
