"""Training: compile, fit and evaluate a model on its spec's data, with
callbacks, seeds, Ctrl-C and --resume; where the run directory goes (new,
resumed, or replaced with --force). What the run directory holds is written
by rundir.RunDirectory.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgraph_cli.distribute import Runtime
from kgraph_cli.errors import (
    KgraphError,
    MissingDependencyError,
    SpecError,
    UsageError,
    short_message,
)
from kgraph_cli.export import save_model
from kgraph_cli.fileio import check_folder_output, run_folder
from kgraph_cli.finetune import unfreeze, with_learning_rate
from kgraph_cli.keras_graph import producer_names, start_fit_at_epoch
from kgraph_cli.reporting import TrainingReporter, keras_callback
from kgraph_cli.rundir import (
    BACKUP_DIR,
    RUN_DIRECTORY,
    SPEC_FILE,
    RunDirectory,
    RunInfo,
)
from kgraph_cli.spec.assemble import resolved_spec_text
from kgraph_cli.spec.train import ObjectSpec, TrainSpec, checked_train, missing_data
from kgraph_cli.spec.validate import ValidSpec
from kgraph_cli.suggest import listed
from kgraph_cli.tf import debug_enabled, import_keras, op_determinism_enabled, set_op_determinism

if TYPE_CHECKING:
    from kgraph_cli.data.pipeline import PreparedData

# Callback arguments that name files: relative paths land in the run directory.
_PATH_ARGUMENTS = ("filepath", "filename", "log_dir", "backup_dir")
_FILE_ARGUMENTS = ("filepath", "filename")
# Where --tensorboard logs, in the run directory (unless the spec has a TensorBoard).
TENSORBOARD_DIR = "tensorboard"


class TrainingInterrupted(KgraphError):
    """Ctrl-C during training; what --resume needs was kept in `run_dir`."""

    exit_code = 130
    code = "interrupted"

    def __init__(self, message: str, run_dir: Path):
        super().__init__(message, f"continue with: kgraph train ... --out {run_dir} --resume")
        self.run_dir = run_dir


class PeerLost(TrainingInterrupted):
    """A multi-worker run lost a peer (it crashed, was killed or preempted): this
    worker stops too, keeping the run, which every worker restarted with the
    same command resumes. Exit code 75 (EX_TEMPFAIL): worth retrying."""

    exit_code = 75
    code = "peer-lost"

    def __init__(self, message: str, run_dir: Path):
        super().__init__(message, run_dir)
        self.hint = (
            "restart every worker with the same command (Kubernetes and the training "
            "operators do): the run resumes from its last completed epoch"
        )


class TrainingError(KgraphError):
    """Keras or TensorFlow refused to train (after kgraph's own checks passed)."""

    code = "training"


def _is_tensorflow_error(exc: Exception) -> bool:
    import tensorflow as tf

    return isinstance(exc, tf.errors.OpError)


def _is_xla_failure(exc: Exception) -> bool:
    """What a step raises when XLA cannot compile one of its operations."""
    return _is_tensorflow_error(exc) and "when trying to compile graph" in str(exc.message)


def _xla_refusal(exc: Any) -> str:
    """The operation XLA refused, from TensorFlow's 'Detected unsupported
    operations when trying to compile graph ...: PyFunc (No registered ...'."""
    found = re.search(r"on XLA_\w+: (\w+)", str(exc.message))
    return f"unsupported operation {found.group(1)}" if found else "an unsupported operation"


def without_xla(model: Any) -> None:
    """Make the model's train, test and predict steps again, without XLA."""
    model.jit_compile = False
    model.train_function = model.test_function = model.predict_function = None


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _is_peer_loss(exc: Exception) -> bool:
    """What a collective step raises when another worker is gone."""
    import tensorflow as tf

    errors = tf.errors
    lost = (errors.UnavailableError, errors.AbortedError, errors.DeadlineExceededError)
    return isinstance(exc, lost)


@dataclass
class TrainOptions:
    out: Path | None = None
    resume: bool = False
    force: bool = False
    data_dir: Path | None = None
    strategy: str | None = None  # --strategy: replaces train.distribute's
    tensorboard: bool = False  # --tensorboard: TensorBoard logs in RUN_DIR/tensorboard
    # Further Keras callbacks of the caller (a `kgraph tune` trial's pruning).
    callbacks: tuple[Any, ...] = ()


@dataclass
class TrainResult:
    run_dir: Path
    model: str
    epochs: int
    history: dict[str, list[float]]
    metrics: dict[str, dict[str, float]]
    samples_per_second: float
    seconds: float
    data: str
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "model": self.model,
            "epochs": self.epochs,
            "seconds": round(self.seconds, 3),
            "samples_per_second": round(self.samples_per_second, 1),
            "data": self.data,
            "metrics": self.metrics,
            "history": self.history,
            "files": self.files,
        }


def seed_everything(seed: int | None) -> None:
    """Same seed, same history on the same machine; no seed, no deterministic
    ops (left over from an earlier seeded run in this process)."""
    keras = import_keras()
    set_op_determinism(seed is not None)
    if seed is not None:
        keras.utils.set_random_seed(seed)


def compile_model(
    model: Any,
    train: TrainSpec,
    steps_per_execution: int = 1,
    learning_rate: float | None = None,
    jit_compile: bool | str = "auto",
) -> None:
    """model.compile() as `train.compile` says (at `learning_rate`: fine-tuning);
    `jit_compile` where the spec says nothing (default: Keras's choice)."""
    keras = import_keras()
    spec = train.compile
    outputs = producer_names(model.outputs)
    optimizer = keras.optimizers.get(spec.optimizer.to_config()) if spec.optimizer else "rmsprop"
    if learning_rate is not None:
        optimizer = with_learning_rate(optimizer, learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=_per_output(spec.loss, keras.losses.get, outputs),
        loss_weights=spec.loss_weights,
        metrics=_metrics(spec.metrics, outputs, keras),
        steps_per_execution=steps_per_execution,
        jit_compile=spec.jit_compile if spec.jit_compile is not None else jit_compile,
    )


def _per_output(value: Any, get: Any, outputs: list[str]) -> Any:
    if value is None:
        return None
    if isinstance(value, ObjectSpec):
        return get(value.to_config())
    if isinstance(value, list):
        return [get(v.to_config()) if v else None for v in value]
    return {name: get(v.to_config()) for name, v in value.items() if v}


def _metrics(value: Any, outputs: list[str], keras: Any) -> Any:
    if not value:
        return None

    def make(metric: ObjectSpec) -> Any:
        # A bare name stays a string: compile() picks e.g. sparse_categorical_accuracy
        # for "accuracy" from the loss and the output's shape.
        return metric.type if not metric.args else keras.metrics.get(metric.to_config())

    if isinstance(value, dict):
        return {name: [make(m) for m in items] for name, items in value.items()}
    if len(outputs) == 1:
        return [make(m) for m in value]
    # One list for a multi-output model: the same metrics on every output.
    return {name: [make(m) for m in value] for name in outputs}


def default_steps_per_execution(steps_per_epoch: int) -> int:
    """Several batches per call into TensorFlow: on CPU most of a small model's
    step is Python overhead, so this is the main speed-up over Keras's default
    of 1 (see benchmarks/). About 20 progress updates per epoch remain."""
    return max(1, min(64, steps_per_epoch // 20))


def default_jit_compile(model: Any, train: TrainSpec, distributed: bool) -> bool | str:
    """XLA where the spec says nothing: on for a model with recurrent layers,
    which it trains 1.4-1.8x faster on a CPU (benchmarks/README.md), while
    MLPs and convolutions train slower once its compile time is paid; else
    Keras's choice ("auto": off on CPU-only machines and under tf.distribute).
    Not with fit.seed (Keras does not compile deterministic ops with XLA) nor
    under a strategy."""
    if train.fit.seed is not None or distributed or not _has_recurrent_layer(model):
        return "auto"
    return True


def _has_recurrent_layer(model: Any) -> bool:
    keras = import_keras()
    recurrent = (keras.layers.RNN, keras.layers.Bidirectional)
    pending = list(model.layers)
    while pending:
        layer = pending.pop()
        if isinstance(layer, recurrent):
            return True
        if isinstance(layer, keras.Model):
            pending.extend(layer.layers)
    return False


def _callback_args(spec: ObjectSpec) -> dict[str, Any]:
    return dict(spec.to_config()["config"]) if spec.args else {}


def callback_files(train: TrainSpec, tensorboard: bool = False) -> list[str]:
    """The run-directory entries the callbacks write (the first part of each
    relative path argument), so that --force knows they are kgraph's."""
    entries = [TENSORBOARD_DIR] if _tensorboard_flag(train, tensorboard) else []
    for spec in train.callbacks:
        args = _callback_args(spec)
        for name in _PATH_ARGUMENTS:
            value = args.get(name)
            if isinstance(value, str) and not os.path.isabs(value) and Path(value).parts:
                entries.append(Path(value).parts[0])
    return sorted(set(entries))


def check_tensorboard(train: TrainSpec, tensorboard: bool = False) -> None:
    """The `tensorboard` package, which the TensorBoard callback writes through,
    must be installed (TensorFlow 2.21 no longer brings it)."""
    import importlib.util

    asked = _tensorboard_callbacks(train)
    if not (asked or tensorboard) or importlib.util.find_spec("tensorboard") is not None:
        return
    where = f"the TensorBoard callback ({asked[0].path})" if asked else "--tensorboard"
    raise MissingDependencyError(
        f"{where} needs the tensorboard package, which is not installed",
        "pip install tensorboard (kgraph's cpu, gpu and tf extras include it)",
    )


def _tensorboard_flag(train: TrainSpec, tensorboard: bool) -> bool:
    """--tensorboard adds a TensorBoard callback unless the spec has one."""
    return tensorboard and not _tensorboard_callbacks(train)


def _tensorboard_callbacks(train: TrainSpec) -> list[ObjectSpec]:
    return [spec for spec in train.callbacks if spec.type == "TensorBoard"]


def make_callbacks(train: TrainSpec, run_dir: Path, tensorboard: bool = False) -> list[Any]:
    """The spec's callbacks, their relative paths in `run_dir`; with `tensorboard`
    (--tensorboard), a TensorBoard logging to RUN_DIR/tensorboard."""
    keras = import_keras()
    callbacks = []
    if _tensorboard_flag(train, tensorboard):
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / TENSORBOARD_DIR)))
    for spec in train.callbacks:
        args = _callback_args(spec)
        for name in _PATH_ARGUMENTS:
            if isinstance(args.get(name), str) and not os.path.isabs(args[name]):
                args[name] = str(run_dir / args[name])
                # Keras makes the folders it logs or backs up into, not a file's folder.
                if name in _FILE_ARGUMENTS:
                    Path(args[name]).parent.mkdir(parents=True, exist_ok=True)
        try:
            callbacks.append(getattr(keras.callbacks, spec.type)(**args))
        except Exception as exc:  # bad values of known arguments
            raise SpecError.at(
                "callback", f"{spec.type} cannot be created: {exc}", spec.loc, spec.path
            ) from exc
    return callbacks


def plan_run_dir(
    options: TrainOptions, model_name: str, spec_text: str, check: bool = True
) -> Path:
    """The run directory to write (checked, nothing written yet): a new one, the
    interrupted run that --resume continues, or one --force may replace.
    `check` False: a multi-worker run's other workers, which write nothing there."""
    if options.out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path("runs") / f"{model_name}-{stamp}"
    else:
        run_dir = options.out
    if not check:
        return run_dir
    if options.resume:
        if not (run_dir / BACKUP_DIR).is_dir():
            raise UsageError(
                f"'{run_dir}' has no interrupted run to resume",
                "--resume continues a run stopped with Ctrl-C: pass its --out directory",
            )
        saved = run_dir / SPEC_FILE
        if saved.is_file() and saved.read_text() != spec_text:
            changed = changed_keys(saved.read_text(), spec_text)
            raise UsageError(
                f"the spec differs from the one the run in '{run_dir}' started with"
                + (f": {listed(changed)} changed" if changed else ""),
                f"resume with the same spec, --set, --epochs and --batch-size (the run's spec "
                f"is {saved}), or start a new run with another --out",
            )
        return run_dir
    check_folder_output(
        run_dir,
        options.force,
        RUN_DIRECTORY,
        "pass --force to replace it, --resume to continue an interrupted run, or another --out",
    )
    return run_dir


def changed_keys(before: str, after: str) -> list[str]:
    """The dotted key paths whose values differ between two YAML documents."""
    import yaml

    changed: list[str] = []
    pending: list[tuple[str, Any, Any]] = [("", yaml.safe_load(before), yaml.safe_load(after))]
    while pending:
        path, old, new = pending.pop()
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted({*old, *new}, key=str, reverse=True):
                pending.append((f"{path}.{key}" if path else str(key), old.get(key), new.get(key)))
        elif old != new:
            changed.append(path or "the whole spec")
    return changed


def train_model(
    valid: ValidSpec,
    model_name: str,
    options: TrainOptions,
    reporter: TrainingReporter,
    start: Any = None,
) -> TrainResult:
    """Train the model on its spec's data and write the run directory.

    `start`: a saved model to continue training, with its weights and, when it
    was compiled, its optimizer state (default: a fresh model from the spec).
    A new run directory is written in place, so that a run killed at any
    instant can be resumed; one that replaces a run (--force) is written in a
    folder beside it and swapped in when it ends (or is interrupted), so that
    the old run survives any failure (fileio.run_folder).
    """
    from kgraph_cli.adapt import adapt_layers
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.data.pipeline import ModelIO, prepare_data

    train = checked_train(valid.spec, model_name)
    if train.data is None:  # say so before TensorFlow builds anything
        raise SpecError([missing_data(train, valid.spec.file)])
    check_tensorboard(train, options.tensorboard)
    distribute = train.distribute
    if options.strategy is not None:
        distribute = replace(distribute, strategy=options.strategy)
    runtime = Runtime.plan(distribute)
    spec_text = resolved_spec_text(valid.spec)
    if runtime.task is not None:
        options, train = _multi_worker_options(options, train, model_name, reporter)
    # Only the chief checks (and later writes) the run directory.
    run_dir = plan_run_dir(options, model_name, spec_text, check=runtime.is_chief)
    if start is not None and runtime.distributed:
        raise UsageError(
            f"a saved model cannot continue training under the {runtime.name} strategy: its "
            "variables were made outside the strategy",
            "train the spec with the strategy (an interrupted run continues with --resume)",
        )
    runtime.start()
    if runtime.distributed:
        reporter.note(runtime.describe())
    if train.precision == "mixed_float16" and not _has_gpu():
        reporter.note(
            "warning: mixed_float16 is slower than float32 on a CPU (it pays off on GPUs "
            "with tensor cores); mixed_bfloat16 suits recent CPUs"
        )
    seed_everything(train.fit.seed)
    with runtime.scope():  # the model, its optimizer and its metrics
        if start is None:
            model = ModelBuilder(valid, pretrained=True, data_dir=options.data_dir).build(
                model_name
            )
        else:
            model = start
        spec_dir = Path(valid.spec.file).parent
        data = prepare_data(
            train, ModelIO.of(model, train), spec_dir, options.data_dir, valid.spec.file
        )
        if start is None:  # a trained model has adapted already
            adapt_layers(model, valid.spec.models[model_name], data.train.inputs, reporter)
        run = _Run(
            valid, model_name, train, model, data, spec_text, options, reporter, run_dir, runtime
        )
        if not runtime.is_chief:  # the chief writes the run; a worker's copy is thrown away
            reporter.note(
                f"the chief writes the run directory {run_dir}; this worker's files go to a "
                "temporary folder, removed at the end"
            )
            work = Path(tempfile.mkdtemp(prefix=f"kgraph-worker-{runtime.task.index}-"))
            try:
                return run.fit(work, fresh_compile=start is None)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        if options.resume:
            return run.fit(run_dir, fresh_compile=start is None)
        with run_folder(run_dir, keep_on=(TrainingInterrupted,)) as work:
            return run.fit(work, fresh_compile=start is None)


def _multi_worker_options(
    options: TrainOptions, train: TrainSpec, model_name: str, reporter: TrainingReporter
) -> tuple[TrainOptions, TrainSpec]:
    """A multi-worker run names its run directory, which every worker restarted
    with the same command resumes (like keras.callbacks.BackupAndRestore), and
    shuffles alike on every worker (a seed)."""
    if options.out is None:
        raise UsageError(
            "a multi_worker run needs --out",
            "every worker names the same run directory, so that a restarted worker (the "
            f"same command) finds the run to resume, e.g. --out runs/{model_name}",
        )
    if (options.out / BACKUP_DIR).is_dir() and not options.resume:
        reporter.note(f"resuming the interrupted run in {options.out}")
        options = replace(options, resume=True, force=False)
    if train.fit.seed is None:
        reporter.note("fit.seed 0: the workers of a multi_worker run shuffle alike")
        train = replace(train, fit=replace(train.fit, seed=0))
    return options, train


@dataclass
class _Run:
    """One training run: compile, fit, final metrics, and the run directory's files."""

    valid: ValidSpec
    model_name: str
    train: TrainSpec
    model: Any
    data: PreparedData
    spec_text: str
    options: TrainOptions
    reporter: TrainingReporter
    run_dir: Path  # where the run ends up (`work` until it is swapped in)
    runtime: Runtime

    def fit(self, work: Path, fresh_compile: bool) -> TrainResult:
        from kgraph_cli.data.pipeline import make_dataset

        model, data, train, reporter = self.model, self.data, self.train, self.reporter
        reporter.note(
            f"data: {data.description}; training on {len(data.train):,} samples"
            + (f", validating on {len(data.validation):,}" if data.validation else "")
        )
        fit = train.fit
        steps = -(-len(data.train) // fit.batch_size)
        steps_per_execution = self._steps_per_execution(steps)
        jit_compile = default_jit_compile(model, train, self.runtime.distributed)
        if fresh_compile or not getattr(model, "compiled", False):
            compile_model(model, train, steps_per_execution, jit_compile=jit_compile)
            self._say_why_not_xla()
            if train.compile.jit_compile is None and jit_compile is True:
                reporter.note(
                    "XLA on (jit_compile): it trains recurrent layers faster; "
                    "train.compile.jit_compile: false turns it off"
                )
        cache = train.data.cache if train.data else True
        shard = self.runtime.shard
        train_ds = shard(make_dataset(data.train, fit.batch_size, fit.shuffle, fit.seed, cache))
        val_ds = (
            shard(make_dataset(data.validation, fit.batch_size, False, None))
            if data.validation
            else None
        )
        run = RunDirectory(work)
        # What a resumed run continues from: its own folder, or on the other
        # workers of a multi-worker run the chief's (a shared filesystem).
        written = RunDirectory(self.run_dir) if self.options.resume else run
        run.begin()
        run.write_spec(self.spec_text)
        run.write_info(
            RunInfo(
                str(self.valid.spec.file),
                self.model_name,
                self.options.data_dir,
                callback_files(train, self.options.tensorboard),
                data.classes,
            )
        )
        recorder = _HistoryRecorder(run, written.recorded_history())
        fine_tune = train.fine_tune
        epochs = fit.epochs + (fine_tune.epochs if fine_tune else 0)
        callbacks = [
            *make_callbacks(train, work, self.options.tensorboard),
            # The history before the backup: a run killed between the two
            # redoes that epoch, and the history keeps it once.
            recorder.callback(),
            # Kept between the phases (it records the epoch count): run.finish()
            # removes it once the run is complete.
            _backup_callback(run, written),
            keras_callback(reporter, epochs, steps),
            *self.options.callbacks,
        ]
        started = time.perf_counter()
        self._fit(model, train_ds, val_ds, callbacks, recorder, 0, fit.epochs)
        if fine_tune is not None:
            reporter.note(
                f"fine-tuning: {unfreeze(model, fine_tune)}; learning rate "
                f"{fine_tune.learning_rate:g}, epochs {fit.epochs + 1} to {epochs}"
            )
            compile_model(model, train, steps_per_execution, fine_tune.learning_rate, jit_compile)
            self._fit(model, train_ds, val_ds, callbacks, recorder, fit.epochs, epochs)
        seconds = time.perf_counter() - started
        epochs_run = len(recorder.new_epochs)
        # The history's training figures are running averages over each epoch;
        # the final ones are measured with the final weights, like validation's.
        metrics = {"train": _named(model.evaluate(train_ds, verbose=0, return_dict=True))}
        if data.validation is not None:
            metrics["validation"] = _last(recorder.history, validation=True)
        if data.test is not None:
            test_ds = shard(make_dataset(data.test, fit.batch_size, False, None))
            metrics["test"] = _named(model.evaluate(test_ds, verbose=0, return_dict=True))
        save_model(model, run.model_file, "keras", self.spec_text, force=True)
        run.write_metrics(metrics)
        run.write_curves(recorder.history, self.model_name)
        run.finish()
        return TrainResult(
            self.run_dir,
            self.model_name,
            len(recorder.history.get("loss", [])),
            recorder.history,
            metrics,
            len(data.train) * epochs_run / seconds if seconds else 0.0,
            seconds,
            data.description,
            RunDirectory(self.run_dir).files(),
        )

    def _say_why_not_xla(self) -> None:
        """`jit_compile: true` that Keras turned off, and why."""
        if self.train.compile.jit_compile and not self.model.jit_compile:
            why = (
                "train.fit.seed makes TensorFlow's ops deterministic, which Keras does not "
                "compile with XLA (remove the seed to use XLA)"
                if op_determinism_enabled()
                else "a layer of the model does not support XLA"
            )
            self.reporter.note(f"jit_compile: true is off: {why}")

    def _steps_per_execution(self, steps: int) -> int:
        """The spec's, or automatic; 1 under a tf.distribute strategy, where
        Keras 3.15 cannot run several steps per call (its multi-step function
        fails to trace with distributed iterators)."""
        asked = self.train.fit.steps_per_execution
        if not self.runtime.distributed:
            return asked or default_steps_per_execution(steps)
        if asked and asked > 1:
            self.reporter.note(
                f"steps_per_execution {asked} ignored: the {self.runtime.name} strategy runs "
                "one step per call"
            )
        return 1

    def _fit(
        self,
        model: Any,
        train_ds: Any,
        val_ds: Any,
        callbacks: list[Any],
        recorder: Any,
        initial_epoch: int,
        epochs: int,
    ) -> None:
        """model.fit, with Ctrl-C and Keras's refusals turned into kgraph errors."""
        reporter = self.reporter

        def fit() -> None:
            model.fit(
                train_ds,
                initial_epoch=initial_epoch,
                epochs=epochs,
                validation_data=val_ds,
                callbacks=callbacks,
                class_weight=self.train.fit.class_weight,
                verbose=0,
            )

        try:
            try:
                fit()
            except Exception as exc:
                if not (model.jit_compile and _is_xla_failure(exc)):
                    raise
                # XLA refused an operation before the first step ran: train
                # without it (nothing was updated; the callbacks begin again).
                reporter.note(
                    f"XLA cannot compile this model ({_xla_refusal(exc)}): training "
                    "without jit_compile"
                )
                without_xla(model)
                fit()
        except KeyboardInterrupt:
            reporter.train_end()
            raise TrainingInterrupted(
                f"training interrupted; {len(recorder.history.get('loss', []))} epoch(s) "
                f"completed and kept in {self.run_dir}",
                self.run_dir,
            ) from None
        except (ValueError, TypeError) as exc:
            reporter.train_end()
            if debug_enabled():
                raise
            raise TrainingError(
                f"training failed: {short_message(exc, 400)}",
                hint="a mismatch between the data and the model or its loss that kgraph's "
                "checks missed; --debug shows the traceback",
            ) from exc
        except Exception as exc:
            reporter.train_end()
            if self.runtime.task is not None and _is_peer_loss(exc):
                raise PeerLost(
                    f"{self.runtime.task.describe()}: a peer stopped; "
                    f"{len(recorder.history.get('loss', []))} epoch(s) completed and kept in "
                    f"{self.run_dir}",
                    self.run_dir,
                ) from None
            if debug_enabled() or not _is_tensorflow_error(exc):
                raise
            raise TrainingError(
                f"training failed: {short_message(exc.message, 400)}",
                hint="--debug shows the traceback",
            ) from exc


def _last(history: dict[str, list[float]], validation: bool) -> dict[str, float]:
    return {
        (k[4:] if validation else k): v[-1]
        for k, v in history.items()
        if v and k.startswith("val_") == validation and k != "learning_rate"
    }


def _named(results: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in results.items()}


def _backup_callback(run: RunDirectory, written: RunDirectory) -> Any:
    """What --resume continues from: keras.callbacks.BackupAndRestore's
    restore and epoch count, with the backup written by
    RunDirectory.write_backup, so that a process killed at any instant (even
    while the weights are written) leaves a whole backup to resume from.
    Restored from `written`, the run's own folder or the chief's."""
    keras = import_keras()

    class _Backup(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            state = written.backup_state()
            if state is None:
                return
            epoch, weights = state
            model = self.model
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)  # its state is backed up too
            try:
                model.load_weights(weights)
            except Exception as exc:  # h5py and Keras raise many kinds for a bad file
                raise KgraphError(
                    f"cannot resume from '{weights}': {short_message(exc)}",
                    "the backup does not fit this model; start the run again with --force",
                ) from exc
            start_fit_at_epoch(model, epoch)

        def on_epoch_end(self, epoch, logs=None):
            run.write_backup(epoch + 1, lambda path: self.model.save_weights(path))

    return _Backup()


class _HistoryRecorder:
    """Keeps history.json/csv current after every epoch (and across --resume)."""

    def __init__(self, run: RunDirectory, history: dict[str, list[float]]):
        """`history`: what the run recorded before it was resumed."""
        self.run = run
        self.history = history
        self.new_epochs: list[int] = []

    def callback(self) -> Any:
        keras = import_keras()
        recorder = self

        class _Record(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                recorder.record(epoch, logs or {})

        return _Record()

    def record(self, epoch: int, logs: dict[str, Any]) -> None:
        for name, value in logs.items():
            values = self.history.setdefault(name, [])
            del values[epoch:]  # a resumed run redoes nothing twice
            values.append(float(value))
        self.new_epochs.append(epoch)
        self.run.write_history(self.history)
