"""`evaluate` and `predict`: a model on one split of its data, on a data file,
or (predict) on image files with their top classes; `--node`: the activations
of one node instead of the model's outputs."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgraph_cli.data.pipeline import ModelIO, PreparedData, Split, make_dataset, prepare_data
from kgraph_cli.errors import Location, UsageError
from kgraph_cli.fileio import atomic_path, check_writable
from kgraph_cli.keras_graph import (
    call_outputs,
    calls_in,
    model_operations,
    output_names,
    producer,
    producer_names,
    shape_text,
)
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
from kgraph_cli.suggest import did_you_mean, listed
from kgraph_cli.top_classes import Ranking, rank_outputs

SPLITS = ("train", "validation", "test")
FILE_KINDS = {".npz": "npz", ".csv": "csv", ".tsv": "csv"}
DATA_OPTION = "--data"
NODE_OPTION = "--node"
DEFAULT_TOP = 5
WRITABLE = (".npy", ".npz", ".csv")


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
    """What `predict` did: the file written (if any), the shape of each output's
    array (or of each activation of `node`), and for --image the top classes."""

    model: str
    data: str
    samples: int
    output: Path | None
    shapes: dict[str, tuple[int, ...]]
    # --node: the node whose activations these are (None: the model's outputs)
    node: str | None = None
    # --image: the files, in order, and the top classes of each class score output
    images: list[Path] = field(default_factory=list)
    ranking: Ranking | None = None
    top: int | None = None

    @property
    def notes(self) -> list[str]:
        return self.ranking.notes if self.ranking else []

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "model": self.model,
            "data": self.data,
            "samples": self.samples,
            "output": str(self.output) if self.output is not None else None,
            "outputs": {name: list(shape) for name, shape in self.shapes.items()},
            "node": self.node,
        }
        if self.images:
            ranked = self.ranking.outputs if self.ranking else {}
            result["top"] = self.top
            result["classes"] = {name: out.to_json() for name, out in ranked.items()}
            result["images"] = [
                {
                    "path": str(path),
                    "outputs": {
                        name: {
                            "top": [c.to_json() for c in out.top[i]],
                            "softmax": out.softmax,
                        }
                        for name, out in ranked.items()
                    },
                }
                for i, path in enumerate(self.images)
            ]
            result["notes"] = self.notes
        return result


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
    output: Path | None,
    force: bool,
    batch_size: int | None,
    images: list[Path] | None = None,
    top: int | None = None,
    node: str | None = None,
) -> Predictions:
    """The model's outputs (or `node`'s activations) on a split, a data file or
    image files, written to `output`; for images, also the top `top` classes of
    each class score output."""
    kind = check_predict_request(output, data, images, top, node)
    if output is not None:
        check_writable(output, force)
    model, names = (target.model, producer_names(target.model.outputs))
    if node is not None:
        model, names = node_model(target.model, node)
    if kind == ".npy" and len(names) > 1:  # say so before reading any data
        raise _one_array(names, f"node '{node}'" if node else "the model")
    train = _train_spec(target)
    batch = batch_size or train.fit.batch_size
    files: list[Path] = []
    if images:
        split, files = _image_split(target, train, images, data_dir, node is None and not output)
        description = f"{len(files):,} image(s)"
    else:
        split, description = select_data(target, data, data_dir, need_targets=False)
        split = Split(split.inputs, {})
    raw = model.predict(make_dataset(split, batch, False, None), verbose=0)
    arrays = dict(zip(names, raw if isinstance(raw, (list, tuple)) else [raw], strict=True))
    if isinstance(raw, dict):
        arrays = dict(raw)
    if kind == ".npy" and len(arrays) > 1:
        raise _one_array(list(arrays), "the model")
    ranking = None
    if images and node is None:
        k = top or DEFAULT_TOP
        ranking = rank_outputs(
            target.model, arrays, k, target.class_names, target.class_origins, data_dir
        )
        if not ranking.outputs and output is None:
            raise UsageError(
                "the model has no class score output to rank: " + "; ".join(ranking.notes),
                "pass -o FILE (.npy, .npz or .csv) to write its outputs",
            )
    if output is not None:
        _write_predictions(output, arrays, kind)
    shapes = {name: tuple(array.shape) for name, array in arrays.items()}
    return Predictions(
        target.model_name,
        description,
        len(split),
        output,
        shapes,
        node,
        files,
        ranking,
        (top or DEFAULT_TOP) if images else None,
    )


def _image_split(
    target: Target, train: TrainSpec, images: list[Path], data_dir: Path | None, rank: bool
) -> tuple[Split, list[Path]]:
    """The model's inputs for the --image paths, and their files; `rank`: say
    before reading them that a model has no class scores to print."""
    from kgraph_cli.image_predict import image_files, image_input, image_inputs

    image_input(target.model, train)  # a model that takes no images: say so first
    if rank:
        _check_rankable(target.model)
    files = image_files(images)
    inputs = image_inputs(target.model, train, files, lambda: _training_stats(target, data_dir))
    return Split(inputs, {}), files


def check_predict_request(
    output: Path | None,
    data: str | None,
    images: list[Path] | None,
    top: int | None,
    node: str | None,
) -> str:
    """The output's kind (its extension; "" for none); a UsageError for options
    that do not go together, before anything is read."""
    if images and data is not None:
        raise UsageError(
            f"--image and {DATA_OPTION} are two kinds of input: pass one of them",
            "--image FILE|DIR for image files, --data SPLIT|FILE for the spec's data or a file",
        )
    if top is not None and not images:
        raise UsageError(
            "--top ranks the classes of --image predictions",
            "add --image FILE|DIR, or leave --top out to write the outputs with -o",
        )
    if top is not None and top < 1:
        raise UsageError(f"--top must be 1 or more, got {top}")
    if output is None:
        if node is not None:
            raise UsageError(
                f"{NODE_OPTION} writes the node's activations: pass -o FILE",
                "-o FILE.npy (one array), .npz (one per output of the node) or .csv",
            )
        if not images:
            raise UsageError(
                "predict needs -o FILE to write the outputs to",
                "-o FILE.npy, FILE.npz or FILE.csv; or --image FILE|DIR to print "
                "the top classes of images",
            )
        return ""
    kind = output.suffix.lower()
    if kind not in WRITABLE:
        raise UsageError(
            f"cannot write predictions as '{kind or output.name}'",
            "use -o FILE.npy, FILE.npz or FILE.csv",
        )
    return kind


def _one_array(names: list[str], what: str) -> UsageError:
    return UsageError(
        f"{what} has {len(names)} outputs ({', '.join(names)}); .npy holds one array",
        "use -o FILE.npz (one array per output) or .csv",
    )


def _check_rankable(model: Any) -> None:
    """Before reading images: a model with no (samples, classes) output has no
    top classes to print."""
    names = producer_names(model.outputs)
    if not any(len(t.shape) == 2 for t in model.outputs):
        listed_shapes = ", ".join(
            f"{name} {shape_text(t.shape)}" for name, t in zip(names, model.outputs, strict=True)
        )
        raise UsageError(
            f"the model has no class score output (samples, classes) to rank: {listed_shapes}",
            "pass -o FILE (.npy, .npz or .csv) to write its outputs",
        )


def node_model(model: Any, node: str) -> tuple[Any, list[str]]:
    """A model from `model`'s inputs to the activations of one of its nodes (a
    layer, by name; a nested model is one), and the names of those arrays:
    `node`, or `node.NAME`/`node.N` for each output of a node with several."""
    from kgraph_cli.tf import import_keras

    operations = {op.name: op for op in model_operations(model)}
    for tensor in model.inputs:  # a Sequential's layers leave its input out
        operations.setdefault(producer(tensor).name, producer(tensor))
    if node not in operations:
        suggestion = did_you_mean(node, operations)
        shown = f"nodes: {listed(operations)}"
        raise UsageError(
            f"{NODE_OPTION}: model '{model.name}' has no node '{node}'",
            f"{suggestion} ({shown})" if suggestion.startswith("did you mean") else shown,
        )
    called = calls_in(model, operations[node])
    if len(called) != 1:
        raise UsageError(
            f"{NODE_OPTION}: '{node}' is a layer called {len(called)} times in model "
            f"'{model.name}' (shared): its activations differ from call to call",
            "name a node that uses one of its calls, or make the call an output of a model",
        )
    tensors = call_outputs(called[0])
    keras = import_keras()
    sub = keras.Model(model.inputs, tensors[0] if len(tensors) == 1 else tensors)
    if len(tensors) == 1:
        return sub, [node]
    labels = output_names(tensors) or [str(i) for i in range(len(tensors))]
    return sub, [f"{node}.{label}" for label in labels]


def _training_stats(target: Target, data_dir: Path | None) -> Any:
    """The training split's statistics of the spec's `standardize` transforms."""
    train = _train_spec(target)
    io_ = ModelIO.of(target.model, train)
    return prepare_data(train, io_, _spec_dir(target), data_dir, _spec_file(target)).stats


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
