"""`kgraph tune`'s loop: ask the study for values, train a trial with them
(a normal run directory in TUNE_DIR/trials/NNNN), report each epoch to the
pruner, tell the study the score; until the budget (trials finished by every
process of the study, time) is spent.

Each trial is one `study.optimize(n_trials=1)`, so Optuna keeps a heartbeat
for it: a trial whose process died is marked failed by the next process, and
its values run again (RetryHeartbeatStaleTrialCallback). A trial stopped with Ctrl-C
is marked failed and interrupted; the same command runs its values first.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgraph_cli.errors import KgraphError, SpecError, UsageError
from kgraph_cli.fileio import check_folder_output
from kgraph_cli.reporting import TuneReporter
from kgraph_cli.rundir import RUN_DIRECTORY
from kgraph_cli.spec.tune import Param, TuneSpec, flow, holds
from kgraph_cli.spec.validate import ValidSpec
from kgraph_cli.tune.corners import check_space
from kgraph_cli.tune.results import (
    SUMMARY_FILE,
    TRIALS_DIR,
    TUNE_DIRECTORY,
    TrialRecord,
    TuneResult,
    trial_dir,
    write_marker,
    write_results,
)
from kgraph_cli.tune.study import (
    INTERRUPTED,
    RETRY_OF,
    StudyPlan,
    categorical,
    check_sampler,
    counts,
    default_storage,
    fingerprint,
    import_optuna,
    open_study,
    spec_value,
    state_name,
)

# Trials failing one after another (a spec that cannot train at all) stop the search.
MAX_FAILURES_IN_A_ROW = 3


class TuneInterrupted(KgraphError):
    """Ctrl-C during a search: finished trials are kept in the study."""

    exit_code = 130
    code = "interrupted"


@dataclass(frozen=True)
class TuneOptions:
    out: Path | None = None  # the tune directory (default tunes/SPEC_STEM)
    force: bool = False  # start over: replace the tune directory and its study
    model: str | None = None
    data_dir: Path | None = None
    storage: str | None = None  # an SQLAlchemy URL (default: TUNE_DIR/study.db)
    study: str | None = None  # the study's name (default: the spec file's stem)
    tensorboard: bool = False
    overrides: tuple[str, ...] = ()
    plugins: tuple[str, ...] = ()
    build_check: bool = True  # build the models at the corners of the space first


@dataclass
class _Search:
    """One process's part in a study."""

    spec: Path
    tune: TuneSpec
    options: TuneOptions
    reporter: TuneReporter
    tune_dir: Path
    plan: StudyPlan
    study: Any = None
    started: float = field(default_factory=time.monotonic)
    failures_in_a_row: int = 0
    last_error: KgraphError | None = None

    # -- the budget ---------------------------------------------------
    def why_stop(self) -> str:
        """Why no further trial starts ('' while the budget lasts)."""
        # A trial whose process died is failed (and queued again) first: it
        # does not hold a place in the budget.
        import_optuna().storages.fail_stale_trials(self.study)
        found = counts(self.study)
        if found["complete"] + found["pruned"] + found["running"] >= self.tune.trials:
            return f"{self.tune.trials} trials"
        timeout = self.tune.timeout
        if timeout is not None and time.monotonic() - self.started >= timeout:
            return f"the {timeout:g} s timeout"
        return ""

    def grid_used_up(self) -> bool:
        """Every point of the grid has had its trial (a failed point's too:
        it would fail again), and no interrupted trial's values wait to run."""
        from kgraph_cli.tune.sampler import places_taken

        grid = self.study.sampler.grid
        if grid is None:
            return False
        trials = self.study.get_trials(deepcopy=False)
        waiting = any(state_name(t.state) == "waiting" for t in trials)
        return not waiting and places_taken(trials) >= len(grid)

    # -- one trial ----------------------------------------------------
    def objective(self, trial: Any) -> float:
        optuna = import_optuna()
        from kgraph_cli.tune.sampler import GridUsedUp

        try:
            params = suggest(trial, self.tune.space)
        except GridUsedUp:  # two processes started the last points at once
            message = "every point of the grid was taken by the study's other trials"
            trial.set_user_attr("message", message)
            raise _TrialFailed(message) from None
        trial.set_user_attr("params", params)
        run_dir = trial_dir(self.tune_dir, trial.number)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        pruning = PruningCallback(trial, self.plan.objective, self.plan.direction)
        training = self.reporter.trial_begin(trial.number, params)
        try:
            result = self.train(params, run_dir, pruning, training)
        except KeyboardInterrupt:
            trial.set_user_attr(INTERRUPTED, True)
            raise
        except KgraphError as exc:  # these values do not build or train: the next ones may
            self.last_error = exc
            trial.set_user_attr("message", failure_text(exc))
            raise _TrialFailed(failure_text(exc)) from exc
        finally:
            _clear_keras()
        trial.set_user_attr("seconds", result.seconds)
        trial.set_user_attr("epochs", result.epochs)
        if self.options.tensorboard:
            write_hparams(run_dir, params, trial.number)
        if pruning.missing is not None:
            raise _missing_objective(self.tune, self.plan.objective, pruning.missing)
        value = pruning.best()
        if value is None or math.isnan(value):
            message = f"{self.plan.objective} is not a number (the loss diverged?)"
            trial.set_user_attr("message", message)
            raise _TrialFailed(message)
        trial.set_user_attr("value", value)
        if pruning.pruned_at is not None:
            trial.set_user_attr("pruned_at", pruning.pruned_at)
            raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at + 1}")
        return value

    def train(self, params: dict[str, Any], run_dir: Path, pruning: Any, reporter: Any) -> Any:
        from kgraph_cli.spec.validate import validate_spec
        from kgraph_cli.train import TrainingInterrupted, TrainOptions, train_model

        overrides = [*self.options.overrides, *(f"{p}={flow(v)}" for p, v in params.items())]
        try:
            valid = validate_spec(self.spec, overrides, list(self.options.plugins))
            model = valid.spec.model_name(self.options.model)
            options = TrainOptions(
                run_dir,
                data_dir=self.options.data_dir,
                tensorboard=self.options.tensorboard,
                callbacks=(pruning.keras_callback(),),
            )
            return train_model(valid, model, options, reporter)
        except TrainingInterrupted:
            raise KeyboardInterrupt from None

    # -- the loop -----------------------------------------------------
    def run(self) -> str:
        optuna = import_optuna()
        self.started = time.monotonic()
        self.retry_interrupted()
        while not (stopped := self.why_stop()):
            if self.grid_used_up():
                stopped = "every value of the grid"
                break
            trials = self.study.get_trials(deepcopy=False)
            before = {t.number for t in trials if state_name(t.state) != "waiting"}
            try:
                self.study.optimize(self.objective, n_trials=1, catch=(_TrialFailed,))
            except KeyboardInterrupt:
                raise TuneInterrupted(
                    "search interrupted; its finished trials are kept in the study",
                    "run the same command to continue: the interrupted trial runs again first",
                ) from None
            new = [t for t in self.study.get_trials(deepcopy=False) if t.number not in before]
            for trial in new:
                if trial.state == optuna.trial.TrialState.FAIL:
                    self.failures_in_a_row += 1
                elif trial.state != optuna.trial.TrialState.RUNNING:
                    self.failures_in_a_row = 0
                self.reporter.trial_end(record_of(trial), best_of(self.study))
            if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                raise self.last_error or KgraphError(
                    f"{MAX_FAILURES_IN_A_ROW} trials failed in a row",
                    "see each trial's message in trials.csv; kgraph train on the spec "
                    "with those values shows the problem",
                )
        return stopped

    def retry_interrupted(self) -> None:
        """The values of the trials Ctrl-C stopped run first (once each)."""
        trials = self.study.get_trials(deepcopy=False)
        retried = {t.user_attrs.get(RETRY_OF) for t in trials}
        for trial in trials:
            if trial.user_attrs.get(INTERRUPTED) and trial.number not in retried:
                self.study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})

    def result(self, stopped: str) -> TuneResult:
        trials = [record_of(t) for t in self.study.get_trials(deepcopy=False)]
        return TuneResult(
            self.tune_dir,
            str(self.spec),
            self.plan.name,
            self.plan.storage,
            self.plan.objective,
            self.plan.direction,
            trials,
            best_of(self.study),
            stopped,
            importances(self.study),
        )


def failure_text(error: KgraphError) -> str:
    """Why a trial failed, in one line: a spec problem with where it is."""
    if isinstance(error, SpecError):
        shown = [
            f"{d.path}: {d.message}" if d.path else d.message
            for d in error.diagnostics
            if d.is_error
        ]
        return "; ".join(shown[:3]) + (f" (and {len(shown) - 3} more)" if len(shown) > 3 else "")
    return str(error)


class _TrialFailed(KgraphError):
    """A trial whose values did not build or train, or gave no score (NaN)."""


def suggest(trial: Any, space: tuple[Param, ...]) -> dict[str, Any]:
    """The trial's value of each param whose condition holds, in the space's order."""
    chosen: dict[str, Any] = {}
    for param in space:
        if not holds(param, chosen):
            continue
        if param.kind in ("choice", "bool"):
            stored = trial.suggest_categorical(
                param.path, [categorical(param, c) for c in param.corners()]
            )
            chosen[param.path] = spec_value(param, stored)
        elif param.kind == "int":
            chosen[param.path] = trial.suggest_int(
                param.path,
                int(param.low),
                int(param.high),
                step=int(param.step or 1),
                log=param.log,
            )
        else:
            chosen[param.path] = trial.suggest_float(
                param.path, param.low, param.high, step=param.step, log=param.log
            )
    return chosen


class PruningCallback:
    """Reports the objective after each epoch to the trial and stops training
    (not raising: the run directory is finished like any other) when the
    pruner says so; remembers the best value."""

    def __init__(self, trial: Any, objective: str, direction: str):
        self.trial = trial
        self.objective = objective
        self.direction = direction
        self.values: list[float] = []
        self.pruned_at: int | None = None
        self.missing: list[str] | None = None  # the logs' keys, when the objective is not one

    def best(self) -> float | None:
        values = [v for v in self.values if not math.isnan(v)]
        if not values:
            return None
        return min(values) if self.direction == "minimize" else max(values)

    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> bool:
        """Whether training stops after `epoch`."""
        if self.objective not in logs:
            self.missing = sorted(logs)
            return True
        value = float(logs[self.objective])
        self.values.append(value)
        self.trial.report(value, epoch)
        if math.isnan(value):
            return True
        if self.trial.should_prune():
            self.pruned_at = epoch
            return True
        return False

    def keras_callback(self) -> Any:
        from kgraph_cli.tf import import_keras

        keras = import_keras()
        pruning = self

        class _Prune(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if pruning.epoch_end(epoch, logs or {}):
                    self.model.stop_training = True

        return _Prune()


def _missing_objective(tune: TuneSpec, objective: str, keys: list[str]) -> KgraphError:
    from kgraph_cli.errors import Diagnostic
    from kgraph_cli.suggest import did_you_mean

    hint = did_you_mean(objective, keys, f"the epochs log {', '.join(keys)}")
    message = f"the objective '{objective}' is not a metric of the trials"
    where = tune.locs.get("objective")
    if where is None:  # given with --objective
        return UsageError(message, hint)
    return SpecError([Diagnostic("unknown-metric", message, where, "tune.objective", hint)])


def record_of(trial: Any) -> TrialRecord:
    attrs = trial.user_attrs
    state = state_name(trial.state)
    value = trial.value if trial.value is not None else attrs.get("value")
    message = attrs.get("message", "")
    if state == "pruned" and "pruned_at" in attrs:
        message = f"pruned after epoch {attrs['pruned_at'] + 1}"
    if attrs.get(INTERRUPTED):
        message = "interrupted (Ctrl-C)"
    return TrialRecord(
        trial.number,
        state,
        attrs.get("params", dict(trial.params)),
        value,
        attrs.get("seconds"),
        attrs.get("epochs"),
        attrs.get("run_dir"),
        message,
        attrs.get("worker", ""),
    )


def best_of(study: Any) -> TrialRecord | None:
    return record_of(study.best_trial) if counts(study)["complete"] else None


def importances(study: Any) -> dict[str, float]:
    """PED-ANOVA importances of the params (empty below 4 complete trials)."""
    optuna = import_optuna()
    if counts(study)["complete"] < 4:
        return {}
    try:
        with warnings.catch_warnings():  # "few trials in a regime": the numbers say so
            warnings.simplefilter("ignore")
            evaluator = optuna.importance.PedAnovaImportanceEvaluator()
            found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}
    return {name: round(float(value), 6) for name, value in found.items()}


def write_hparams(run_dir: Path, params: dict[str, Any], number: int) -> None:
    """The trial's values for TensorBoard's HParams dashboard, beside its
    scalars (`tensorboard --logdir TUNE_DIR/trials` compares the trials)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    from kgraph_cli.train import TENSORBOARD_DIR

    values = {
        path: value if isinstance(value, bool | int | float | str) else flow(value)
        for path, value in params.items()
    }
    with tf.summary.create_file_writer(str(run_dir / TENSORBOARD_DIR)).as_default():
        hp.hparams(values, trial_id=f"trial {number}")


def _clear_keras() -> None:
    """Free the trial's models: the next trial starts from an empty Keras session."""
    from kgraph_cli.tf import import_keras

    import_keras().backend.clear_session()


def run_tune(
    valid: ValidSpec, tune: TuneSpec, options: TuneOptions, reporter: TuneReporter
) -> TuneResult:
    """Search `tune`'s space over a spec (validated with `options.overrides`
    and `options.plugins`), in the tune directory."""
    from kgraph_cli.spec.train import checked_train, missing_data
    from kgraph_cli.train import check_tensorboard

    import_optuna()  # before anything is checked or written
    if not tune.space:
        raise UsageError(
            "nothing to search: the spec has no tune.space and no --tune was given",
            "e.g. --tune 'layers.hidden1.units=choice(32, 64, 128)' (README: Tuning)",
        )
    spec = Path(valid.spec.file)
    overrides, plugins = list(options.overrides), list(options.plugins)
    model = valid.spec.model_name(options.model)
    train = checked_train(valid.spec, model)
    if train.data is None:
        raise SpecError([missing_data(train, valid.spec.file)])
    check_tensorboard(train, options.tensorboard)
    problems = check_space(spec, overrides, plugins, tune, build=options.build_check)
    if problems:
        raise SpecError(problems)
    grid = check_sampler(tune)  # a grid without one, CMA-ES without cmaes: said now
    from kgraph_cli.spec.assemble import resolved_spec_text

    objective = tune.objective_name(validation=train.fit.validation is not None)
    direction = tune.direction_of(objective)
    tune_dir = options.out or Path("tunes") / spec.stem
    _check_tune_dir(tune_dir, options.force)
    storage = options.storage or default_storage(tune_dir)
    epochs = train.fit.epochs + (train.fine_tune.epochs if train.fine_tune else 0)
    plan = StudyPlan(
        options.study or spec.stem,
        storage,
        objective,
        direction,
        fingerprint(resolved_spec_text(valid.spec), model, tune, objective, direction),
    )
    new = not tune_dir.exists()
    tune_dir.mkdir(parents=True, exist_ok=True)
    search = _Search(spec, tune, options, reporter, tune_dir, plan)
    try:
        search.study = open_study(plan, tune, epochs, grid)
    except KgraphError:
        if new:  # a storage that does not open leaves nothing behind
            shutil.rmtree(tune_dir, ignore_errors=True)
        raise
    write_marker(tune_dir, plan.name, storage)
    earlier = [record_of(t) for t in search.study.get_trials(deepcopy=False)]
    reporter.search_begin(plan.name, objective, direction, tune.trials, earlier)
    stopped = "interrupted"  # unless the search ends by itself
    try:
        stopped = search.run()
    finally:  # what the finished trials found is written, however the search ends
        result = search.result(stopped)
        write_results(result, [p.path for p in tune.space], pictures=True)
        reporter.search_end(result)
    return result


def _check_tune_dir(tune_dir: Path, force: bool) -> None:
    """A new folder, one of kgraph's to continue, or (--force) one to start over in."""
    if force:
        check_folder_output(tune_dir, True, TUNE_DIRECTORY)
        trials = tune_dir / TRIALS_DIR
        for entry in sorted(trials.iterdir()) if trials.is_dir() else []:
            # Each trial folder is a run directory holding only what kgraph wrote.
            if not entry.name.isdigit():
                raise UsageError(
                    f"'{entry}' is not a trial of kgraph tune",
                    "--force replaces only what kgraph wrote: move it away or choose another --out",
                )
            check_folder_output(entry, True, RUN_DIRECTORY)
        if tune_dir.is_dir():
            shutil.rmtree(tune_dir)
        return
    if tune_dir.exists() and not (tune_dir / SUMMARY_FILE).is_file():
        # Only an empty folder passes: one with files is not kgraph's to search in.
        check_folder_output(tune_dir, True, TUNE_DIRECTORY)
