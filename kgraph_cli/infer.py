"""`evaluate` and `predict`: a model on one split of its data, or on a data file."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgraph_cli.data.pipeline import ModelIO, PreparedData, Split, make_dataset, prepare_data
from kgraph_cli.errors import Location, UsageError
from kgraph_cli.fileio import atomic_path, check_writable
from kgraph_cli.keras_graph import producer_names
from kgraph_cli.persist import Target
from kgraph_cli.spec.loader import YamlMap
from kgraph_cli.spec.train import (
    CompileSpec,
    DataSpec,
    FeedSpec,
    FitSpec,
    SourceSpec,
    TrainSpec,
    checked_train,
)

SPLITS = ("train", "validation", "test")
FILE_KINDS = {".npz": "npz", ".csv": "csv", ".tsv": "csv"}
DATA_OPTION = "--data"


@dataclass
class Evaluation:
    model: str
    data: str
    samples: int
    metrics: dict[str, float]
    trained: bool = True  # False: a model built from a spec, with fresh weights

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": self.data,
            "samples": self.samples,
            "metrics": self.metrics,
            "trained": self.trained,
        }


@dataclass
class Predictions:
    """What `predict` wrote: the file, and the shape of each output's array."""

    model: str
    data: str
    samples: int
    output: Path
    shapes: dict[str, tuple[int, ...]]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": self.data,
            "samples": self.samples,
            "output": str(self.output),
            "outputs": {name: list(shape) for name, shape in self.shapes.items()},
        }


def select_data(
    target: Target, data: str | None, data_dir: Path | None, need_targets: bool
) -> tuple[Split, str]:
    """The split to use: a split of the spec's data (default: test), or a file."""
    train = _train_spec(target)
    io_ = ModelIO.of(target.model, train)
    if data is not None and data not in SPLITS:
        return _file_split(Path(data), train, io_, target, need_targets, data_dir)
    if train.data is None:
        raise UsageError(
            "the model comes with no data section to take a split from",
            "pass --data FILE (.npz with fields named after the model's inputs "
            "and outputs, or .csv)",
        )
    prepared = prepare_data(train, io_, _spec_dir(target), data_dir, _spec_file(target))
    name = data or next((s for s in ("test", "validation") if getattr(prepared, s)), None)
    split = getattr(prepared, name) if name else None
    if split is None:
        raise UsageError(
            f"the spec's data has no {name or 'test or validation'} split",
            "choose --data train, or add `test:` to train.data",
        )
    return split, f"{name} split of {prepared.description}"


def evaluate_target(
    target: Target, data: str | None, data_dir: Path | None, batch_size: int | None
) -> Evaluation:
    from kgraph_cli.train import compile_model

    split, description = select_data(target, data, data_dir, need_targets=True)
    if not target.trained or not getattr(target.model, "compiled", False):
        compile_model(target.model, _train_spec(target))
    fit_batch = batch_size or _train_spec(target).fit.batch_size
    results = target.model.evaluate(
        make_dataset(split, fit_batch, False, None), verbose=0, return_dict=True
    )
    metrics = {k: float(v) for k, v in results.items()}
    return Evaluation(target.model_name, description, len(split), metrics, target.trained)


def predict_target(
    target: Target,
    data: str | None,
    data_dir: Path | None,
    output: Path,
    force: bool,
    batch_size: int | None,
) -> Predictions:
    kind = output.suffix.lower()
    if kind not in (".npy", ".npz", ".csv"):
        raise UsageError(
            f"cannot write predictions as '{kind or output.name}'",
            "use -o FILE.npy, FILE.npz or FILE.csv",
        )
    check_writable(output, force)
    if kind == ".npy" and len(target.model.outputs) > 1:  # say so before reading any data
        names = producer_names(target.model.outputs)
        raise UsageError(
            f"the model has {len(names)} outputs ({', '.join(names)}); .npy holds one array",
            "use -o FILE.npz (one array per output) or .csv",
        )
    split, description = select_data(target, data, data_dir, need_targets=False)
    split = Split(split.inputs, {})
    batch = batch_size or _train_spec(target).fit.batch_size
    raw = target.model.predict(make_dataset(split, batch, False, None), verbose=0)
    names = producer_names(target.model.outputs)
    arrays = dict(zip(names, raw if isinstance(raw, (list, tuple)) else [raw], strict=True))
    if isinstance(raw, dict):
        arrays = dict(raw)
    if kind == ".npy" and len(arrays) > 1:
        raise UsageError(
            f"the model has {len(arrays)} outputs ({', '.join(arrays)}); .npy holds one array",
            "use -o FILE.npz (one array per output) or .csv",
        )
    _write_predictions(output, arrays, kind)
    shapes = {name: tuple(array.shape) for name, array in arrays.items()}
    return Predictions(target.model_name, description, len(split), output, shapes)


def _write_predictions(path: Path, arrays: dict[str, np.ndarray], kind: str) -> None:
    with atomic_path(path, kind) as tmp:
        if kind == ".npy":
            np.save(tmp, next(iter(arrays.values())))
        elif kind == ".npz":
            np.savez(tmp, **arrays)
        else:
            tmp.write_text(_predictions_csv(arrays))


def _predictions_csv(arrays: dict[str, np.ndarray]) -> str:
    columns: list[str] = []
    blocks = []
    for name, array in arrays.items():
        flat = array.reshape(len(array), -1)
        columns += [name] if flat.shape[1] == 1 else [f"{name}_{i}" for i in range(flat.shape[1])]
        blocks.append(flat)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in np.concatenate(blocks, axis=1):
        writer.writerow([repr(float(v)) for v in row])
    return out.getvalue()


def _train_spec(target: Target) -> TrainSpec:
    if target.valid is None:  # a bare model file: Keras's defaults
        return TrainSpec(CompileSpec(), FitSpec())
    return checked_train(target.valid.spec, target.model_name)


def _spec_dir(target: Target) -> Path:
    return target.spec_dir or Path.cwd()


def _spec_file(target: Target) -> str:
    return target.valid.spec.file if target.valid else DATA_OPTION


def _file_split(
    path: Path,
    train: TrainSpec,
    io_: ModelIO,
    target: Target,
    need_targets: bool,
    data_dir: Path | None,
) -> tuple[Split, str]:
    """A data file given with --data: the spec's feeds if any, else fields by name."""
    kind = FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(
            f"cannot read --data '{path}'",
            "use a split name (train, validation, test) or a .npz/.csv file",
        )
    if not path.is_file():
        raise UsageError(f"--data file '{path}' does not exist")
    loc = Location(DATA_OPTION)
    options = YamlMap(loc=loc)
    options.put(kind, str(path.resolve()), loc, loc)
    source = SourceSpec(kind, options, loc, DATA_OPTION)
    if train.data is not None:
        inputs, targets = train.data.inputs, train.data.targets
    else:
        inputs = {n: FeedSpec(n, [n], False, [], loc, DATA_OPTION) for n in io_.inputs}
        targets = {n: FeedSpec(n, [n], False, [], loc, DATA_OPTION) for n in io_.outputs}
    if not need_targets:
        targets = {}
    data = DataSpec(source, inputs, targets, loc)
    spec = TrainSpec(train.compile, FitSpec(), train.callbacks, data, loc)
    prepared: PreparedData = prepare_data(spec, io_, Path.cwd(), data_dir, DATA_OPTION)
    return prepared.train, str(path)
