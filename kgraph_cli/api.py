"""kgraph's Python API: what every command does, for notebooks and scripts.

    from kgraph_cli import api

    api.validate("specs/mnist.yaml").ok                  # every problem, as data
    model = api.build("specs/mnist.yaml")                # a keras.Model
    run = api.train("specs/digits.yaml", out="runs/d")   # a TrainResult
    api.evaluate("runs/d").metrics                       # {"accuracy": 0.98..., "loss": ...}

Each function takes paths and plain values and returns a typed result (the
dataclasses below); problems are raised as `KgraphError`s (`SpecError` holds
the diagnostics; `UsageError` is a wrong argument). Nothing here prints,
except the `PlainReporter` that `train` reports its epochs to by default.
The CLI is a thin layer over these functions.

TensorFlow is imported by the functions that build models, not by importing
this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgraph_cli.check import CheckResult
from kgraph_cli.errors import UsageError
from kgraph_cli.reporting import (
    PlainReporter,
    PlainTuneReporter,
    TrainingReporter,
    TuneReporter,
)
from kgraph_cli.rundir import SPEC_SUFFIXES

if TYPE_CHECKING:
    from kgraph_cli.export import SaveResult
    from kgraph_cli.importer import FileImport
    from kgraph_cli.infer import Evaluation, Predictions
    from kgraph_cli.persist import ModelInfo, Target
    from kgraph_cli.plot import PlotOptions, PlotResult
    from kgraph_cli.spec.validate import ValidSpec
    from kgraph_cli.summary import ModelSummary
    from kgraph_cli.train import TrainResult
    from kgraph_cli.tune import TuneResult

PathLike = str | Path
Names = list[str] | tuple[str, ...]

__all__ = [
    "CheckResult",
    "PlainReporter",
    "PlainTuneReporter",
    "TrainingReporter",
    "TuneReporter",
    "build",
    "evaluate",
    "import_model",
    "inspect",
    "load",
    "load_spec",
    "plot",
    "predict",
    "save",
    "schema",
    "summarize",
    "train",
    "tune",
    "validate",
]


def validate(
    spec: PathLike,
    overrides: Names = (),
    plugins: Names = (),
    build: bool = True,
    space: Names = (),
) -> CheckResult:
    """Every problem of a spec file, as diagnostics (never raises for the spec's
    own problems); `build=False` checks structure only, without TensorFlow.
    The search space (the spec's `tune:` and the --tune entries `space`) is
    checked at its corners."""
    from kgraph_cli.check import check_spec_file

    return check_spec_file(Path(spec), list(overrides), list(plugins), build, list(space))


def load_spec(spec: PathLike, overrides: Names = (), plugins: Names = ()) -> ValidSpec:
    """A validated spec (raises SpecError with every diagnostic otherwise)."""
    from kgraph_cli.spec.validate import validate_spec

    return validate_spec(Path(spec), list(overrides), list(plugins))


def build(
    spec: PathLike, model: str | None = None, overrides: Names = (), plugins: Names = ()
) -> Any:
    """The keras.Model a spec describes (its default model, or `model`),
    untrained, but with the pretrained weights its `application:` nodes name."""
    from kgraph_cli.build import ModelBuilder

    valid = load_spec(spec, overrides, plugins)
    return ModelBuilder(valid, pretrained=True).build(valid.spec.model_name(model))


def load(
    target: PathLike,
    model: str | None = None,
    overrides: Names = (),
    plugins: Names = (),
    pretrained: bool = False,
    data_dir: PathLike | None = None,
    strategy: str | None = None,
) -> Target:
    """A spec (built, untrained; with the pretrained weights of its
    `application:` nodes if `pretrained`, ImageNet's looked for in `data_dir`
    first), a run directory or a .keras/.h5 file (trained); made in the scope
    of a tf.distribute `strategy` (mirrored, tpu) if one is given."""
    from kgraph_cli.persist import load_target

    where = Path(data_dir) if data_dir is not None else None
    return load_target(
        Path(target), model, list(overrides), list(plugins), pretrained, where, strategy
    )


def summarize(
    target: PathLike | Target,
    model: str | None = None,
    expand: bool = False,
    overrides: Names = (),
    plugins: Names = (),
) -> ModelSummary:
    """A model's layers, shapes, connections and parameter counts; `target` is
    a path, or what `load` returned."""
    from kgraph_cli.summary import summarize_model

    loaded = _loaded(target, model, overrides, plugins)
    return summarize_model(loaded.model, expand=expand)


def _loaded(
    target: PathLike | Target,
    model: str | None,
    overrides: Names,
    plugins: Names,
    data_dir: PathLike | None = None,
    pretrained: bool = False,
    strategy: str | None = None,
) -> Target:
    if isinstance(target, str | Path):
        return load(target, model, overrides, plugins, pretrained, data_dir, strategy)
    return target


def train(
    target: PathLike,
    model: str | None = None,
    out: PathLike | None = None,
    resume: bool = False,
    force: bool = False,
    epochs: int | None = None,
    batch_size: int | None = None,
    data_dir: PathLike | None = None,
    overrides: Names = (),
    plugins: Names = (),
    reporter: TrainingReporter | None = None,
    strategy: str | None = None,
    precision: str | None = None,
    tensorboard: bool = False,
) -> TrainResult:
    """Train a spec's model, or continue training a saved model (a run directory
    or .keras file, with its optimizer state, on the data its spec names), and
    write the run directory. `epochs`, `batch_size` and `precision` override the
    spec's `train:` (and are recorded in the run's spec.yaml); `strategy`
    replaces `train.distribute.strategy` for this run; `tensorboard` logs to
    RUN_DIR/tensorboard (unless the spec has a TensorBoard callback)."""
    from kgraph_cli.train import TrainOptions, train_model

    target = Path(target)
    overrides = [*overrides, *train_overrides(epochs, batch_size, precision)]
    start = None
    data = Path(data_dir) if data_dir is not None else None
    if target.suffix in SPEC_SUFFIXES and target.is_file():
        valid = load_spec(target, overrides, plugins)
        name = valid.spec.model_name(model)
    else:  # continue training a saved model, with its optimizer state
        loaded = load(target, model, overrides, plugins)
        if loaded.valid is None:
            raise UsageError(
                f"'{target}' has no spec (none embedded, no spec.yaml beside "
                "it): kgraph cannot know its training data",
                "save models with `kgraph save` or `kgraph train`, which embed the spec",
            )
        valid, name, start = loaded.valid, loaded.valid.spec.default, loaded.model
        data = data or loaded.data_dir
    options = TrainOptions(
        Path(out) if out is not None else None, resume, force, data, strategy, tensorboard
    )
    return train_model(valid, name, options, reporter or PlainReporter(), start)


def train_overrides(
    epochs: int | None, batch_size: int | None, precision: str | None = None
) -> list[str]:
    """`epochs`, `batch_size` and `precision` as the --set overrides of `train:`
    they are."""
    values = (("fit.epochs", epochs), ("fit.batch_size", batch_size), ("precision", precision))
    return [f"train.{key}={value}" for key, value in values if value is not None]


def tune(
    spec: PathLike,
    space: Names = (),
    out: PathLike | None = None,
    force: bool = False,
    trials: int | None = None,
    timeout: float | None = None,
    objective: str | None = None,
    direction: str | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
    seed: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    model: str | None = None,
    data_dir: PathLike | None = None,
    tensorboard: bool = False,
    overrides: Names = (),
    plugins: Names = (),
    reporter: TuneReporter | None = None,
) -> TuneResult:
    """Search the spec's `tune:` space and the `space` entries (--tune
    KEY.PATH=EXPRESSION) with Optuna: each trial trains a run directory in
    OUT/trials/NNNN; OUT (default tunes/SPEC_STEM) gets the study (SQLite,
    unless `storage` names a database), best.yaml, trials.csv, tune.json and
    the pictures. The same call continues an interrupted search; `force`
    starts over. The other arguments replace the `tune:` section's settings."""
    from kgraph_cli.tune import TuneOptions, run_tune, tune_settings

    valid = load_spec(spec, overrides, plugins)
    settings = tune_settings(
        valid.spec.data,
        list(space),
        valid.spec.file,
        trials=trials,
        timeout=timeout,
        objective=objective,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
    )
    options = TuneOptions(
        Path(out) if out is not None else None,
        force,
        model,
        Path(data_dir) if data_dir is not None else None,
        storage,
        study,
        tensorboard,
        tuple(overrides),
        tuple(plugins),
    )
    return run_tune(valid, settings, options, reporter or PlainTuneReporter())


def evaluate(
    target: PathLike | Target,
    data: str | None = None,
    data_dir: PathLike | None = None,
    batch_size: int | None = None,
    model: str | None = None,
    overrides: Names = (),
    plugins: Names = (),
    strategy: str | None = None,
) -> Evaluation:
    """Loss and metrics on a split of the spec's data (train, validation, test;
    default test) or a .npz/.csv file. A spec is evaluated untrained
    (`Evaluation.trained` says which). `strategy`: mirrored or tpu, with the
    spec's train.distribute settings."""
    from kgraph_cli.infer import evaluate_target

    loaded = _loaded(target, model, overrides, plugins, data_dir, True, strategy)
    where = Path(data_dir) if data_dir is not None else loaded.data_dir
    return evaluate_target(loaded, data, where, batch_size)


def predict(
    target: PathLike | Target,
    output: PathLike | None = None,
    data: str | None = None,
    data_dir: PathLike | None = None,
    batch_size: int | None = None,
    force: bool = False,
    model: str | None = None,
    overrides: Names = (),
    plugins: Names = (),
    images: Sequence[PathLike] = (),
    top: int | None = None,
    node: str | None = None,
    strategy: str | None = None,
) -> Predictions:
    """Write a model's outputs for a split or file to .npy, .npz or .csv.

    `images` (files, or folders of image files): the model's input is those
    images, resized to it, with the spec's input transforms; the result's
    `ranking` holds the `top` (default 5) classes of each class score output,
    and `output` becomes optional. `node`: the activations of that node (a
    layer, by name) instead of the model's outputs. `strategy`: as evaluate's."""
    from kgraph_cli.infer import check_predict_request, predict_target

    out = Path(output) if output is not None else None
    files = [Path(image) for image in images]
    check_predict_request(out, data, files, top, node)  # before building or loading
    loaded = _loaded(target, model, overrides, plugins, data_dir, True, strategy)
    where = Path(data_dir) if data_dir is not None else loaded.data_dir
    return predict_target(loaded, data, where, out, force, batch_size, files, top, node)


def save(
    spec: PathLike,
    output: PathLike,
    model: str | None = None,
    weights: PathLike | None = None,
    format: str | None = None,
    force: bool = False,
    overrides: Names = (),
    plugins: Names = (),
) -> SaveResult:
    """Build a spec's model (with the weights of a trained model, run directory
    or .weights.h5 file) and write it as .keras, .h5, weights, SavedModel,
    TFLite or ONNX (`format`, or from the output's name)."""
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.export import format_for, save_model
    from kgraph_cli.persist import load_weights_from
    from kgraph_cli.spec.assemble import resolved_spec_text

    output = Path(output)
    chosen = format_for(output, format)
    valid = load_spec(spec, overrides, plugins)
    # Pretrained application weights, unless --weights replaces them all.
    builder = ModelBuilder(valid, pretrained=weights is None)
    keras_model = builder.build(valid.spec.model_name(model))
    if weights is not None:
        load_weights_from(keras_model, Path(weights))
    return save_model(keras_model, output, chosen, resolved_spec_text(valid.spec), force)


def inspect(
    model_file: PathLike, safe_mode: bool = True, check: bool = False, plugins: Names = ()
) -> ModelInfo:
    """What a saved model is: inputs, outputs, layers, training state, embedded
    spec; `check` runs a forward pass on random inputs."""
    from kgraph_cli.persist import inspect_model

    return inspect_model(Path(model_file), safe_mode=safe_mode, check=check, plugins=list(plugins))


def import_model(
    model_file: PathLike,
    output: PathLike,
    weights: bool | PathLike = False,
    force: bool = False,
    plugins: Names = (),
) -> FileImport:
    """Write the spec of a Keras model file (and, with `weights`, its weights:
    True for SPEC.weights.h5 or a path), after checking that both rebuild it."""
    from kgraph_cli.importer import default_weights_path, import_file

    output = Path(output)
    if weights is True:
        weights_path: Path | None = default_weights_path(output)
    else:
        weights_path = Path(weights) if weights else None
    return import_file(Path(model_file), output, weights_path, force, list(plugins))


def plot(
    target: PathLike,
    output: PathLike | None = None,
    format: str | None = None,
    model: str | None = None,
    options: PlotOptions | None = None,
    force: bool = False,
    overrides: Names = (),
    plugins: Names = (),
) -> PlotResult:
    """Draw a model's graph (.png .svg .pdf .dot .mmd, or `format="tree"`), or a
    run directory's training curves; without `output`, text formats are
    returned in the result."""
    from kgraph_cli.plot import PlotOptions, PlotRequest, plot_target

    request = PlotRequest(
        Path(target),
        Path(output) if output is not None else None,
        format,
        model,
        list(overrides),
        list(plugins),
        force,
        options or PlotOptions(),
    )
    return plot_target(request)


def schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of the spec format."""
    from kgraph_cli.spec.schema import spec_json_schema

    return spec_json_schema()
