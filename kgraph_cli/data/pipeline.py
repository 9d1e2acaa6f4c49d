"""Source data -> the arrays a model trains on: splits, feeds, transforms and
checks against the model (the dtypes a feed takes, shape, label range, NaN,
values beyond the model's dtype), then tf.data.

Every mismatch is a located diagnostic raised before training starts, never a
numpy error or warning. One cohesive path (a feed's fields, its transforms, its
checks against the model, the batches), which is why it stays one module of
about 700 lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgraph_cli.errors import Location, Reporter, SpecError
from kgraph_cli.keras_graph import calls, producer
from kgraph_cli.spec.train import (
    DataSpec,
    FeedSpec,
    ObjectSpec,
    SplitSpec,
    TrainSpec,
    missing_data,
)
from kgraph_cli.suggest import did_you_mean, listed

Arrays = dict[str, np.ndarray]
# the split a fraction or split name holds out -> the spec key that says so
_SPLIT_KEYS = {"test": "train.data.test", "validation": "train.fit.validation"}
# (feed target, transform index) -> the training split's (mean, std), for `standardize`
Stats = dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]


@dataclass
class Split:
    """One split fed to the model: arrays by model input and output name."""

    inputs: Arrays
    targets: Arrays

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values()))) if self.inputs else 0


@dataclass
class PreparedData:
    train: Split
    validation: Split | None = None
    test: Split | None = None
    description: str = ""
    notes: list[str] = field(default_factory=list)
    # output name -> the name of each class index, where the training source
    # knows them (an `images:` folder's class sub-folders), for run.json
    classes: dict[str, list[str]] = field(default_factory=dict)
    # the training split's mean and std of each `standardize` transform
    stats: Stats = field(default_factory=dict)


@dataclass
class ModelIO:
    """What the data must match: the built model's inputs and outputs."""

    inputs: dict[str, tuple[tuple[int | None, ...], str]]  # name -> (shape without batch, dtype)
    outputs: dict[str, tuple[int | None, ...]]
    # output name -> the loss's class name, to check labels (None: unknown)
    losses: dict[str, str | None]
    # input name -> largest valid integer + 1, when it feeds an Embedding
    vocab_sizes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, model: Any, train: TrainSpec) -> ModelIO:
        inputs = {producer(t).name: (tuple(t.shape[1:]), str(t.dtype)) for t in model.inputs}
        outputs = {producer(t).name: tuple(t.shape[1:]) for t in model.outputs}
        return cls(inputs, outputs, _losses_by_output(train, list(outputs)), _vocab_sizes(model))


def prepare_data(
    train: TrainSpec, io: ModelIO, spec_dir: Path, data_dir: Path | None, file: str
) -> PreparedData:
    """Read the source and build train/validation/test splits, all checked."""
    data = train.data
    if data is None:
        raise SpecError([missing_data(train, file)])
    source, fields = _source_split(data.source, io, spec_dir, data_dir, "training")
    fields = dict(fields)
    if data.shuffle:
        order = np.random.default_rng(train.fit.seed or 0).permutation(_length(fields))
        fields = {k: v[order] for k, v in fields.items()}
    if data.take is not None:
        fields = {k: v[: data.take] for k, v in fields.items()}
    prepared = PreparedData(Split({}, {}), description=source.description)
    prepared.classes = _target_classes(data, source.classes)
    test_fields = None
    if data.test is not None:
        fields, test_fields = _split_off(
            data.test, fields, source.splits, io, spec_dir, data_dir, "test"
        )
    elif "test" in source.splits and data.source.options.get("split", "train") != "test":
        test_fields = source.splits["test"]
    validation_fields = None
    if train.fit.validation is not None:
        fields, validation_fields = _split_off(
            train.fit.validation, fields, source.splits, io, spec_dir, data_dir, "validation"
        )
    feeder = _Feeder(data, io, fields)
    prepared.train = feeder.split(fields, "train")
    if validation_fields is not None:
        prepared.validation = feeder.split(validation_fields, "validation")
    if test_fields is not None:
        prepared.test = feeder.split(test_fields, "test")
    if feeder.diagnostics:
        raise SpecError(feeder.diagnostics)
    prepared.stats = feeder.stats
    return prepared


def feed_inputs(data: DataSpec, io: ModelIO, fields: Arrays, what: str, stats: Stats) -> Arrays:
    """Model inputs from fields that are not a split of the source (the images of
    `predict --image`): each input's feed, transforms and checks as in training,
    `standardize` with the training split's `stats` (PreparedData.stats). Every
    problem is a located diagnostic (SpecError)."""
    inputs_only = DataSpec(data.source, data.inputs, {}, data.loc)
    feeder = _Feeder(inputs_only, io, fields)
    feeder.stats = dict(stats)
    split = feeder.split(fields, what)
    if feeder.diagnostics:
        raise SpecError(feeder.diagnostics)
    return split.inputs


def _target_classes(data: DataSpec, classes: dict[str, list[str]]) -> dict[str, list[str]]:
    """The source's class names of the fields that feed outputs, by output name."""
    return {
        feed.target: list(classes[feed.fields[0]])
        for feed in data.targets.values()
        if not feed.stacked and feed.fields and feed.fields[0] in classes
    }


def _read(source_spec: Any, io: ModelIO, spec_dir: Path, data_dir: Path | None) -> Any:
    if source_spec.kind == "generated":
        from kgraph_cli.data.generated import generate

        return generate(source_spec, io)
    from kgraph_cli.data.sources import read_source

    return read_source(source_spec, spec_dir, data_dir)


def _source_split(
    source_spec: Any,
    io: ModelIO,
    spec_dir: Path,
    data_dir: Path | None,
    what: str,
) -> tuple[Any, Arrays]:
    """A source and the split of it that `split:` names (default train)."""
    source = _read(source_spec, io, spec_dir, data_dir)
    wanted = str(source_spec.options.get("split", "train"))
    if wanted not in source.splits:
        raise SpecError.at(
            "data",
            f"the {what} source has no split '{wanted}'",
            source_spec.loc,
            f"{source_spec.path}.split",
            did_you_mean(wanted, source.splits, f"splits: {listed(source.splits)}"),
        )
    return source, source.splits[wanted]


def _split_off(
    split: SplitSpec,
    fields: Arrays,
    splits: dict[str, Arrays],
    io: ModelIO,
    spec_dir: Path,
    data_dir: Path | None,
    what: str,
) -> tuple[Arrays, Arrays]:
    """(what stays for training, the held-out split)."""
    if split.fraction is not None:
        n = _length(fields)
        held = int(round(n * split.fraction))
        if held < 1 or held >= n:
            raise SpecError.at(
                "data",
                f"a {what} fraction of {split.fraction} leaves {n - held} training "
                f"and {held} {what} samples out of {n}",
                split.loc,
                _SPLIT_KEYS[what],
                f"use a fraction that keeps samples on both sides (between {1 / n:.2g} "
                f"and {1 - 1 / n:.2g} for {n} samples)"
                if n > 1
                else f"{n} sample cannot be split: the source needs more samples",
            )
        # Like Keras's validation_split: the last samples, before any shuffling.
        return (
            {k: v[: n - held] for k, v in fields.items()},
            {k: v[n - held :] for k, v in fields.items()},
        )
    if split.split is not None:
        if split.split not in splits:
            raise SpecError.at(
                "data",
                f"the source has no split '{split.split}' for {what}",
                split.loc,
                _SPLIT_KEYS[what],
                did_you_mean(split.split, splits, f"splits: {listed(splits)}"),
            )
        return fields, splits[split.split]
    assert split.source is not None
    return fields, _source_split(split.source, io, spec_dir, data_dir, what)[1]


class _Feeder(Reporter):
    """Turns source fields into model inputs/targets, checking each against the model."""

    def __init__(self, data: DataSpec, io: ModelIO, train_fields: Arrays):
        super().__init__()
        self.data = data
        self.io = io
        self.train_fields = train_fields
        # Feeds with a problem, as (path, target): reported for the first split
        # only, as the other splits would mostly repeat it.
        self.failed: set[tuple[str, str]] = set()
        # standardize statistics come from the training split only
        self.stats: Stats = {}

    def fail(
        self,
        feed: FeedSpec,
        message: str,
        hint: str = "",
        loc: Location | None = None,
        code: str = "data",
    ) -> None:
        self.error(code, message, loc or feed.loc, feed.path, hint)
        self.failed.add((feed.path, feed.target))

    def split(self, fields: Arrays, name: str) -> Split:
        result = Split({}, {})
        for feed in self.data.inputs.values():
            array = self.feed(feed, fields, name)
            if array is not None:
                result.inputs[feed.target] = self.check_input(feed, array, name)
        for feed in self.data.targets.values():
            array = self.feed(feed, fields, name)
            if array is not None:
                result.targets[feed.target] = self.check_target(feed, array, name)
        lengths = {len(a) for a in [*result.inputs.values(), *result.targets.values()]}
        if len(lengths) > 1 and not self.diagnostics:
            feed = next(iter(self.data.inputs.values()))
            self.fail(
                feed,
                f"the {name} fields have different lengths {sorted(lengths)}",
                "every input and target needs one row per sample",
            )
        return result

    def feed(self, feed: FeedSpec, fields: Arrays, split: str) -> np.ndarray | None:
        if (feed.path, feed.target) in self.failed:
            return None  # reported for an earlier split
        missing = [f for f in feed.fields if f not in fields]
        if missing:
            self.fail(
                feed,
                f"the source has no field '{missing[0]}' (in its {split} split)",
                did_you_mean(missing[0], fields, f"fields: {listed(fields)}"),
                loc=feed.field_loc(missing[0]),
            )
            return None
        arrays = {}
        for name in feed.fields:
            array = self.field(feed, name, np.asarray(fields[name]))
            if array is None:
                return None
            arrays[name] = array
        if feed.stacked:
            shapes = {name: array.shape[1:] for name, array in arrays.items()}
            if len(set(shapes.values())) > 1:
                shown = ", ".join(f"{name} {_shape((None, *s))}" for name, s in shapes.items())
                self.fail(
                    feed,
                    f"the columns of '{feed.target}' have different shapes: {shown}",
                    "`columns` stacks fields of one value per sample (CSV columns); feed "
                    "fields of other shapes to inputs of their own",
                )
                return None
            array = np.stack(list(arrays.values()), axis=-1)
        else:
            array = arrays[feed.fields[0]]
        # Overflows (values beyond float32...) become infinite, which the checks report.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for index, transform in enumerate(feed.transforms):
                try:
                    array = self.apply(feed, index, transform.name, transform.value, array)
                except ValueError as exc:
                    self.fail(
                        feed,
                        f"{transform.name}: {exc}",
                        loc=transform.loc,
                        hint=_transform_hint(transform.name),
                    )
                    return None
        return array

    def field(self, feed: FeedSpec, name: str, array: np.ndarray) -> np.ndarray | None:
        """One field of the source as a feed takes it: numbers (bool, integer or
        float), or text for a `dtype: string` input; anything else is a located
        diagnostic at the field (no numpy warning or error later)."""
        text = self.takes_text(feed)
        if array.dtype.kind == "O":
            array = _from_objects(array)
        kind = array.dtype.kind
        if kind in _REAL or kind == "U" and text:
            return array  # check_input says so when a text input gets numbers
        if kind == "S" and text:
            try:
                return np.char.decode(array, "utf-8")
            except UnicodeDecodeError as exc:
                problem = (f"holds bytes that are not UTF-8 text ({exc.reason})", _TEXT_HINT)
        else:
            problem = _unusable(name, array, text, self.data.inputs.get(feed.target) is feed)
        self.fail(feed, f"field '{name}' {problem[0]}", problem[1], loc=feed.field_loc(name))
        return None

    def apply(
        self, feed: FeedSpec, index: int, name: str, value: Any, array: np.ndarray
    ) -> np.ndarray:
        if name == "reshape":
            try:
                return array.reshape((len(array), *value))
            except ValueError:
                raise ValueError(
                    f"cannot reshape samples of shape {_shape(array.shape[1:])} to {_shape(value)}"
                ) from None
        if name == "cast":
            if value == "string":
                return array.astype(str)
            cast, problem = _cast(array, _numpy_dtype(value))
            if problem:
                raise ValueError(f"the data {problem}")
            return cast
        if name == "scale":
            return array.astype(np.float32) * np.float32(value)
        if name == "divide":
            return array.astype(np.float32) / np.float32(value)
        if name == "offset":
            return array.astype(np.float32) + np.float32(value)
        if name == "one_hot":
            labels = array.reshape(len(array), -1)
            if labels.shape[1] != 1 or not _integral(labels):
                raise ValueError(
                    f"needs one integer label per sample, got samples of shape "
                    f"{_shape(array.shape[1:])}"
                )
            labels = labels[:, 0].astype(np.int64)
            if len(labels) and (labels.min() < 0 or labels.max() >= value):
                raise ValueError(
                    f"labels range over {labels.min()}..{labels.max()}, outside 0..{value - 1}"
                )
            return np.eye(value, dtype=np.float32)[labels]
        if name == "standardize":
            key = (feed.target, index)
            if key not in self.stats:
                mean = array.astype(np.float64).mean(axis=0)
                std = array.astype(np.float64).std(axis=0)
                self.stats[key] = (mean, np.where(std == 0, 1.0, std))
            mean, std = self.stats[key]
            return ((array - mean) / std).astype(np.float32)
        raise ValueError(f"unknown transform {name}")

    def takes_text(self, feed: FeedSpec) -> bool:
        """A `dtype: string` input (for TextVectorization, StringLookup...)."""
        return feed.target in self.io.inputs and self.io.inputs[feed.target][1] == "string"

    def check_input(self, feed: FeedSpec, array: np.ndarray, split: str) -> np.ndarray:
        shape, dtype = self.io.inputs[feed.target]
        self.check_shape(feed, array, shape, f"input '{feed.target}'", split)
        if dtype == "string":
            if array.dtype.kind != "U":
                self.fail(
                    feed,
                    f"input '{feed.target}' takes text but the {split} data is {array.dtype}",
                    "feed a field of strings, or change the input's dtype",
                )
                return array
            return array.astype(object)  # what tf.string takes from numpy
        self.check_finite(feed, array, split)
        vocab = self.io.vocab_sizes.get(feed.target)
        # Ids: integer inputs, and float inputs that feed an Embedding (the guide's
        # ticket router declares its word ids float32; Keras casts them).
        if dtype.startswith(("int", "uint")) or vocab is not None:
            if not _integral(array):
                self.fail(
                    feed,
                    f"input '{feed.target}' takes integer ids but the {split} data has "
                    "non-integer values",
                    "feed integer ids, or change the input's dtype",
                )
                return array
            if vocab is not None and array.size and (array.min() < 0 or array.max() >= vocab):
                self.fail(
                    feed,
                    f"input '{feed.target}' feeds an Embedding of {vocab} rows but "
                    f"the {split} data has ids {array.min()}..{array.max()}",
                    f"ids must be in 0..{vocab - 1}: raise input_dim or limit the "
                    "vocabulary (num_words)",
                )
        return self.cast(feed, array, _numpy_dtype(dtype), f"input '{feed.target}'", split)

    def check_target(self, feed: FeedSpec, array: np.ndarray, split: str) -> np.ndarray:
        out_shape = self.io.outputs[feed.target]
        loss = self.io.losses.get(feed.target) or ""
        self.check_finite(feed, array, split)
        if "sparse" in loss.lower():
            labels = array.reshape(len(array), -1)
            classes = out_shape[-1] if out_shape else None
            if labels.shape[1] != 1 or not _integral(labels):
                self.fail(
                    feed,
                    f"{loss} needs one integer class per sample; the {split} targets "
                    f"have samples of shape {_shape(array.shape[1:])}",
                    "use integer labels, or a non-sparse loss for one-hot targets",
                )
            elif classes and labels.size and (labels.min() < 0 or labels.max() >= classes):
                self.fail(
                    feed,
                    f"output '{feed.target}' has {classes} classes but the {split} "
                    f"labels range over {labels.min()}..{labels.max()}",
                    f"labels must be in 0..{classes - 1}",
                    code="label-range",
                )
            return self.cast(feed, array, np.int32, f"the labels of '{feed.target}'", split)
        expected = tuple(out_shape)
        got = tuple(array.shape[1:])
        what = f"output '{feed.target}'"
        if got == () and expected == (1,):
            return self.cast(feed, array.reshape(-1, 1), np.float32, what, split)
        if not _shape_matches(got, expected):
            hint = "check the loss and the target's transforms"
            if got in ((), (1,)) and len(expected) == 1 and expected[0] and expected[0] > 1:
                hint = (
                    f"integer labels for {expected[0]} classes: add {{one_hot: {expected[0]}}} "
                    "or use a sparse_categorical loss"
                )
            self.fail(
                feed,
                f"output '{feed.target}' gives {_shape((None, *expected))} but the "
                f"{split} targets are {_shape((None, *got))}",
                hint,
            )
        return self.cast(feed, array, np.float32, what, split)

    def cast(self, feed: FeedSpec, array: np.ndarray, dtype: Any, what: str, split: str) -> Any:
        """The array as the model takes it; values that do not fit the dtype
        (beyond float32's range, ids beyond int32's) are a diagnostic."""
        if (feed.path, feed.target) in self.failed:
            return array  # already reported: the values may be anything
        if array.dtype.kind not in _REAL:  # text made by {cast: string}
            self.fail(
                feed,
                f"{what} takes {np.dtype(dtype)} but its transforms make the {split} data "
                f"{array.dtype}",
                "only inputs of `dtype: string` take text: remove the {cast: string}",
            )
            return array
        result, problem = _cast(array, dtype)
        if problem:
            self.fail(
                feed,
                f"{what} takes {np.dtype(dtype)} but the {split} data {problem}",
                "scale the data with a transform (e.g. {divide: 1000}), or change the dtype",
            )
        return result

    def check_shape(
        self, feed: FeedSpec, array: np.ndarray, shape: tuple, what: str, split: str
    ) -> None:
        got = tuple(array.shape[1:])
        if _shape_matches(got, shape):
            return
        dims = ", ".join(str(d) for d in shape)
        hint = f"add a transform, e.g. {{reshape: [{dims}]}}"
        self.fail(
            feed,
            f"{what} expects {_shape((None, *shape))} but the {split} data is "
            f"{_shape((None, *got))}",
            hint if None not in shape else "",
        )

    def check_finite(self, feed: FeedSpec, array: np.ndarray, split: str) -> None:
        if array.dtype.kind != "f":
            return
        bad = ~np.isfinite(array)
        if bad.any():
            first = int(np.argwhere(bad.reshape(len(array), -1).any(axis=1))[0][0])
            where = f"sample {first}"
            if feed.stacked and array.ndim == 2 and array.shape[1] == len(feed.fields):
                where += f", column '{feed.fields[int(np.argmax(bad[first]))]}'"
            elif len(feed.fields) == 1:
                where += f" of field '{feed.fields[0]}'"
            self.fail(
                feed,
                f"the {split} data for '{feed.target}' has {int(bad.sum()):,} NaN "
                f"or infinite value(s), the first in {where}",
                "clean the data (missing CSV cells become NaN, and numbers beyond "
                "float32's range of about 3.4e38 infinite)",
            )


def make_dataset(
    split: Split,
    batch_size: int,
    shuffle: bool,
    seed: int | None,
    cache: bool = True,
    shuffle_buffer: int | None = None,
) -> Any:
    """A batched, prefetched tf.data pipeline over a split; the shuffle buffer
    holds the whole split unless `shuffle_buffer` says otherwise."""
    import tensorflow as tf

    inputs = _single_or_dict(split.inputs)
    targets = _single_or_dict(split.targets)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets) if split.targets else inputs)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        buffer = len(split) if shuffle_buffer is None else min(len(split), shuffle_buffer)
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _length(fields: Arrays) -> int:
    return len(next(iter(fields.values()))) if fields else 0


def _single_or_dict(arrays: Arrays) -> Any:
    return next(iter(arrays.values())) if len(arrays) == 1 else dict(arrays)


def _losses_by_output(train: TrainSpec, outputs: list[str]) -> dict[str, str | None]:
    loss = train.compile.loss
    if isinstance(loss, ObjectSpec):
        return dict.fromkeys(outputs, loss.type)
    if isinstance(loss, list):
        return {
            name: (item.type if item else None) for name, item in zip(outputs, loss, strict=False)
        }
    if isinstance(loss, dict):
        return {name: (loss[name].type if loss.get(name) else None) for name in outputs}
    return dict.fromkeys(outputs)


def _vocab_sizes(model: Any) -> dict[str, int]:
    """Inputs that feed an Embedding directly, with its number of rows."""
    sizes: dict[str, int] = {}
    for layer in model.layers:
        if type(layer).__name__ != "Embedding":
            continue
        for node in calls(layer):
            for tensor in node.input_tensors:
                source = producer(tensor)
                if type(source).__name__ == "InputLayer":
                    sizes[source.name] = min(
                        layer.input_dim, sizes.get(source.name, layer.input_dim)
                    )
    return sizes


def _shape_matches(got: tuple, expected: tuple) -> bool:
    return len(got) == len(expected) and all(
        e is None or g == e for g, e in zip(got, expected, strict=True)
    )


def _shape(shape: Any) -> str:
    dims = ["None" if d is None else str(d) for d in shape]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def _integral(array: np.ndarray) -> bool:
    if array.dtype.kind in "iub":
        return True
    return (
        array.dtype.kind == "f"
        and bool(np.all(np.isfinite(array)))
        and bool(np.all(np.equal(np.mod(array, 1), 0)))
    )


def _numpy_dtype(dtype: str) -> Any:
    return np.float32 if dtype == "bfloat16" else np.dtype(dtype)


# What feeds take: bool, signed and unsigned integer and float arrays (and text,
# "U", for `dtype: string` inputs).
_REAL = "biuf"
_ACCEPTED = "kgraph feeds bool, integer and float arrays, and text to `dtype: string` inputs"
_TEXT_HINT = "inputs of `dtype: string` take text: strings, or UTF-8 bytes"


def _from_objects(array: np.ndarray) -> np.ndarray:
    """An object array (an npz's pickled one) as numbers or text when its items
    are numbers, strings, or sequences of numbers of one length; else unchanged."""
    try:
        converted = np.array(array.tolist())
    except (ValueError, TypeError, OverflowError):  # ragged, or not array-like
        return array
    return converted if converted.dtype.kind in _REAL + "U" else array


def _unusable(name: str, array: np.ndarray, text: bool, is_input: bool) -> tuple[str, str]:
    """(what field `name` holds, what to do) for a dtype no feed takes."""
    dtype, kind = array.dtype, array.dtype.kind
    if kind in "US":
        return "holds text, not numbers", (
            "encode text and categories as numbers in the file (or use maxlen for imdb/reuters)"
            + ("; an input of `dtype: string` takes text" if is_input else "")
        )
    if kind == "c":
        return f"holds complex numbers ({dtype})", (
            "store the real and imaginary parts as two fields (numpy.real, numpy.imag); "
            + _ACCEPTED
        )
    if kind in "Mm":
        what = "dates and times" if kind == "M" else "time spans"
        return f"holds {what} ({dtype}), not numbers", (
            f"convert them to numbers in the file, e.g. {name}.astype('int64') (units since "
            f"1970 for datetime64); {_ACCEPTED}"
        )
    if kind == "V" and dtype.names:
        first = dtype.names[0]
        return (
            f"holds records with fields {', '.join(dtype.names)} (a structured array), not numbers",
            f"save each record field as an array of its own (numpy.savez(path, "
            f"{first}={name}['{first}'], ...)) and stack them with `columns:`; {_ACCEPTED}",
        )
    if kind == "V":
        return f"holds raw bytes ({dtype}), not numbers", f"save numbers; {_ACCEPTED}"
    per_sample = max(1, array.size // max(1, len(array)))
    for index, item in enumerate(array.flat):
        if isinstance(item, list | tuple | np.ndarray):
            return "holds variable-length sequences", (
                "pad them to one length in the file (keras.utils.pad_sequences), or use "
                "maxlen for imdb/reuters"
            )
        if not isinstance(item, int | float | str | np.generic):
            shown = "None" if item is None else f"a {type(item).__name__}"
            return (
                f"holds Python objects, not {'text' if text else 'numbers'} "
                f"(sample {index // per_sample} is {shown})",
                _TEXT_HINT if text else f"save numbers; {_ACCEPTED}",
            )
    return "holds values of mixed types (an object array)", f"save numbers; {_ACCEPTED}"


def _cast(array: np.ndarray, dtype: Any) -> tuple[np.ndarray, str]:
    """(array as dtype, '' or what of it does not fit the dtype), without numpy's
    warnings: integers must be in the dtype's range, floats stay finite."""
    target = np.dtype(dtype)
    if target.kind in "iu" and array.dtype.kind in "iuf" and array.size:
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            return array, f"has NaN or infinite values, which {target} cannot hold"
        info = np.iinfo(target)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            return array, f"has values {low}..{high}, outside {target}'s {info.min}..{info.max}"
    with np.errstate(over="ignore", invalid="ignore"):
        result = array.astype(target, copy=False)
    if target.kind == "f" and array.dtype.kind in "iuf" and array.size:
        overflow = ~np.isfinite(result) & np.isfinite(array)
        if overflow.any():
            largest = np.abs(array[overflow]).max()
            return result, (
                f"has values beyond {target}'s range (up to {largest:.3g}; {target} "
                f"reaches about {np.finfo(target).max:.2g})"
            )
    return result, ""


def _transform_hint(name: str) -> str:
    return {
        "reshape": "the new shape must hold the same number of values per sample",
        "cast": "cast to a dtype that holds the values, or scale them first",
        "one_hot": "one_hot takes integer class labels below its number of classes",
    }.get(name, "check the transform's value")
