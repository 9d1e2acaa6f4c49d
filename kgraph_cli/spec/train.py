"""The `train:` section: typed objects and every check that needs no TensorFlow
and no data (optimizer, losses, metrics, callbacks, data mapping), reported as
located diagnostics before anything is loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kgraph_cli.errors import Diagnostic, Location
from kgraph_cli.layers import keras_objects
from kgraph_cli.spec.loader import YamlList, YamlMap, value_location
from kgraph_cli.spec.model import DTYPES, ModelSpec
from kgraph_cli.spec.overrides import OVERRIDE_FILE
from kgraph_cli.spec.parse import unknown_keys
from kgraph_cli.spec.values import describe, keras_config
from kgraph_cli.suggest import did_you_mean, listed

TRAIN_KEYS = {
    "data": "where the training data comes from and how it feeds the model",
    "compile": "optimizer, loss(es), loss weights and metrics",
    "fit": "batch size, epochs, validation, shuffling, class weights, seed",
    "callbacks": "Keras callbacks by name, with their arguments",
}
COMPILE_KEYS = {
    "optimizer": "an optimizer name, or {type: Adam, learning_rate: ...}",
    "loss": "one loss, a list (one per output) or a mapping by output name",
    "loss_weights": "a list (one per output) or a mapping by output name",
    "metrics": "a list of metrics, or a mapping of output name to a list",
    "jit_compile": "compile the training step with XLA (true/false; default: Keras's choice)",
}
FIT_KEYS = {
    "batch_size": "samples per gradient step (default 32)",
    "epochs": "passes over the training data (default 1)",
    "validation": "a fraction of the training data (0.2), a split of the source (test), "
    "or {source: ...}",
    "shuffle": "shuffle the training data each epoch (default true)",
    "class_weight": "mapping of class index to weight",
    "steps_per_execution": "batches run per call into TensorFlow (default: automatic)",
    "seed": "seed for weights, shuffling and dropout: the same seed gives the same history",
}
DATA_KEYS = {
    "source": "the data: {dataset: mnist}, {npz: file.npz}, {csv: file.csv}, ...",
    "inputs": "model input name -> source field (or {field: x, transforms: [...]})",
    "targets": "model output name -> source field (or {field: y, transforms: [...]})",
    "take": "use only the first N training samples",
    "test": "held-out data for `evaluate`: a fraction, a split of the source, or {source: ...}",
    "cache": "keep the prepared data in memory between epochs (default true)",
    "shuffle": "shuffle the samples once (seeded by fit.seed) before taking test and "
    "validation fractions, for sources sorted by class or writer (default false)",
}
FEED_KEYS = {
    "field": "the source field (array, npz key, CSV column...)",
    "columns": "several CSV columns stacked into one input",
    "transforms": "a list of transforms applied in order",
}
# kind -> the source's options (its own key first) with what they mean.
SOURCE_KINDS: dict[str, dict[str, str]] = {
    "dataset": {
        "dataset": "a keras.datasets name",
        "num_words": "imdb/reuters: keep the N most frequent words",
        "maxlen": "imdb/reuters: pad or cut sequences to this length",
        "skip_top": "imdb/reuters: skip the N most frequent words",
        "label_mode": "cifar100: fine or coarse",
        "split": "which split feeds training (default train)",
    },
    "npz": {
        "npz": "path of a .npz file (keys are fields; x_train/x_test are splits)",
        "split": "which split feeds training (default train)",
    },
    "npy": {"npy": "mapping of field name to a .npy file"},
    "csv": {
        "csv": "path of a CSV or TSV file with a header row",
        "delimiter": "column separator (default: ',' or tab for .tsv)",
    },
    "images": {
        "images": "a directory with one sub-directory of images per class",
        "image_size": "[height, width] images are resized to (default [256, 256])",
        "color_mode": "rgb, grayscale or rgba (default rgb)",
    },
    "tfrecord": {
        "tfrecord": "a TFRecord file (or list of files) of tf.train.Example records",
        "features": "field name -> {shape: [...], dtype: ...} of each feature",
        "compression": "GZIP or ZLIB when the files are compressed",
    },
    "generated": {
        "generated": "number of random samples matching the model's inputs and outputs",
        "seed": "random seed (default 0)",
        "sequence_length": "length used for variable-length (null) dimensions (default 16)",
        "test_samples": "number of generated test samples (default: a quarter)",
    },
}
# keras.datasets names, and `digits`, which ships with kgraph (1,797 8x8 images).
DATASETS = (
    "mnist",
    "fashion_mnist",
    "cifar10",
    "cifar100",
    "imdb",
    "reuters",
    "boston_housing",
    "digits",
)
TRANSFORMS = {
    "reshape": "new shape without the batch dimension, e.g. [784]",
    "cast": "a dtype, e.g. float32",
    "scale": "multiply by a number, e.g. 0.00392156862745098",
    "divide": "divide by a number, e.g. 255",
    "offset": "add a number",
    "one_hot": "number of classes: integer labels -> one-hot vectors",
    "standardize": "true: subtract the training mean, divide by the training std",
}


@dataclass
class ObjectSpec:
    """A Keras object named in the spec: `rmsprop` or `{type: Adam, ...args}`."""

    type: str
    args: YamlMap
    loc: Location
    path: str

    def to_config(self) -> Any:
        """What keras.*.get() takes: the name, or {class_name, config}."""
        if not self.args:
            return self.type
        return {"class_name": self.type, "config": keras_config(self.args)}


@dataclass
class SourceSpec:
    kind: str
    options: YamlMap
    loc: Location
    path: str


@dataclass
class TransformSpec:
    name: str
    value: Any
    loc: Location


@dataclass
class FeedSpec:
    """How one model input or output is fed from the source."""

    target: str
    fields: list[str]
    stacked: bool  # several CSV columns stacked into one array
    transforms: list[TransformSpec]
    loc: Location
    path: str
    # Where each field name is written (an overridden one: at its --set argument).
    field_locs: dict[str, Location] = field(default_factory=dict)

    def field_loc(self, name: str) -> Location:
        return self.field_locs.get(name, self.loc)


@dataclass
class SplitSpec:
    """Validation or test data: a fraction, a named split, or another source."""

    fraction: float | None = None
    split: str | None = None
    source: SourceSpec | None = None
    loc: Location | None = None


@dataclass
class DataSpec:
    source: SourceSpec
    inputs: dict[str, FeedSpec]
    targets: dict[str, FeedSpec]
    loc: Location
    take: int | None = None
    test: SplitSpec | None = None
    cache: bool = True
    shuffle: bool = False


@dataclass
class CompileSpec:
    optimizer: ObjectSpec | None = None
    loss: ObjectSpec | list[ObjectSpec] | dict[str, ObjectSpec] | None = None
    loss_weights: list[float] | dict[str, float] | None = None
    metrics: list[ObjectSpec] | dict[str, list[ObjectSpec]] | None = None
    jit_compile: bool | None = None


@dataclass
class FitSpec:
    batch_size: int = 32
    epochs: int = 1
    validation: SplitSpec | None = None
    shuffle: bool = True
    class_weight: dict[int, float] | None = None
    steps_per_execution: int | None = None
    seed: int | None = None


@dataclass
class TrainSpec:
    compile: CompileSpec
    fit: FitSpec
    callbacks: list[ObjectSpec] = field(default_factory=list)
    data: DataSpec | None = None
    loc: Location | None = None
    # Whether the spec file has a `train:` section (not only one that --set,
    # --epochs or --batch-size made up).
    in_file: bool = False


def missing_data(train: TrainSpec, file: str) -> Diagnostic:
    """The error for training a spec that says nothing about its data: at the
    spec file when it has no `train:` section (the one --epochs made is not the
    user's), else at its `train:` section."""
    if not train.in_file:
        return Diagnostic(
            "missing",
            "the spec has no `train:` section, so kgraph does not know what data to train on",
            Location(file),
            "train",
            "add a top-level `train:` section with `data:` under it, e.g. "
            "`train: {data: {source: {dataset: mnist}}}` (`{generated: 512}` for a smoke "
            "run); --epochs and --batch-size only override values in it",
        )
    return Diagnostic(
        "missing",
        "the spec's `train:` section has no `data:`",
        train.loc or Location(file),
        "train.data",
        "add `data:` under `train:`, e.g. `data: {source: {dataset: mnist}}`, or "
        "`data: {source: {generated: 512}}` for a smoke run",
    )


def parse_train(section: Any, model: ModelSpec, file: str) -> tuple[TrainSpec, list[Diagnostic]]:
    """Check a `train:` section against the model it trains."""
    parser = _TrainParser(model, file)
    return parser.parse(section), parser.problems


def checked_train(spec: Any, model_name: str) -> TrainSpec:
    """The `train:` section of a loaded spec, for one of its models; SpecError if
    it has errors (a spec without one gives Keras's defaults)."""
    from kgraph_cli.errors import SpecError

    train, problems = parse_train(spec.train, spec.models[model_name], spec.file)
    if any(p.is_error for p in problems):
        raise SpecError(problems)
    return train


def output_names(model: ModelSpec) -> list[str]:
    return [o.name for o in model.outputs]


class _TrainParser:
    def __init__(self, model: ModelSpec, file: str):
        self.model = model
        self.file = file
        self.problems: list[Diagnostic] = []
        self.outputs = output_names(model)

    def error(self, code: str, message: str, loc: Location, path: str, hint: str = "") -> None:
        self.problems.append(Diagnostic(code, message, loc, path, hint))

    def where(self, parent: Any, key: Any) -> Location:
        return value_location(parent, key, Location(self.file))

    def expect_map(
        self, parent: Any, key: Any, path: str, keys: dict[str, str] | None, what: str
    ) -> YamlMap | None:
        value = parent[key]
        if not isinstance(value, YamlMap):
            self.error(
                "type",
                f"{what} must be a mapping, got {describe(value)}",
                self.where(parent, key),
                path,
            )
            return None
        if keys is not None:
            self.problems += unknown_keys(value, keys, path, what)
        return value

    def number(
        self,
        parent: Any,
        key: Any,
        path: str,
        kind: type,
        minimum: float | None = None,
        exclusive: bool = False,
    ) -> Any:
        value = parent[key]
        ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(
            value, bool
        )
        if ok and minimum is not None:
            ok = value > minimum if exclusive else value >= minimum
        if not ok:
            bound = "" if minimum is None else f" {'>' if exclusive else '>='} {minimum:g}"
            noun = "a number" if kind is float else "an integer"
            self.error(
                "type",
                f"{path.rsplit('.', 1)[-1]} must be {noun}{bound}, got {describe(value)}",
                self.where(parent, key),
                path,
            )
            return None
        return value

    def boolean(self, parent: Any, key: Any, path: str) -> bool | None:
        value = parent[key]
        if isinstance(value, bool):
            return value
        self.error(
            "type",
            f"{path.rsplit('.', 1)[-1]} must be true or false, got {describe(value)}",
            self.where(parent, key),
            path,
        )
        return None

    # -- sections -------------------------------------------------------
    def parse(self, section: Any) -> TrainSpec:
        spec = TrainSpec(CompileSpec(), FitSpec(), loc=getattr(section, "loc", None))
        if section is None:
            return spec
        spec.in_file = spec.loc is None or spec.loc.file != OVERRIDE_FILE
        if not isinstance(section, YamlMap):
            self.error(
                "type",
                f"train must be a mapping, got {describe(section)}",
                Location(self.file),
                "train",
            )
            return spec
        self.problems += unknown_keys(section, TRAIN_KEYS, "train", "train")
        if "compile" in section and (
            body := self.expect_map(
                section, "compile", "train.compile", COMPILE_KEYS, "train.compile"
            )
        ):
            spec.compile = self.parse_compile(body)
        if "fit" in section and (
            body := self.expect_map(section, "fit", "train.fit", FIT_KEYS, "train.fit")
        ):
            spec.fit = self.parse_fit(body)
        if "callbacks" in section:
            spec.callbacks = self.parse_callbacks(section)
        if "data" in section and (
            body := self.expect_map(section, "data", "train.data", DATA_KEYS, "train.data")
        ):
            spec.data = self.parse_data(body)
        return spec

    def parse_compile(self, body: YamlMap) -> CompileSpec:
        spec = CompileSpec()
        path = "train.compile"
        if "optimizer" in body:
            spec.optimizer = self.keras_object(body, "optimizer", f"{path}.optimizer", "optimizers")
        if "loss" in body:
            spec.loss = self.per_output(body, "loss", f"{path}.loss", self.loss_object)
        if "loss_weights" in body:
            spec.loss_weights = self.per_output(
                body,
                "loss_weights",
                f"{path}.loss_weights",
                lambda parent, key, p: self.number(parent, key, p, float, 0.0),
            )
        if "metrics" in body:
            spec.metrics = self.parse_metrics(body, f"{path}.metrics")
        if "jit_compile" in body:
            spec.jit_compile = self.boolean(body, "jit_compile", f"{path}.jit_compile")
        return spec

    def loss_object(self, parent: Any, key: Any, path: str) -> ObjectSpec | None:
        return self.keras_object(parent, key, path, "losses")

    def per_output(self, body: YamlMap, key: str, path: str, item: Any) -> Any:
        """One value for all outputs, a list with one per output, or a mapping by name."""
        value = body[key]
        n = len(self.outputs)
        if isinstance(value, YamlList):  # also for one output, as Keras accepts loss=[...]
            if len(value) != n:
                self.error(
                    "outputs",
                    f"{key} has {len(value)} entr{'y' if len(value) == 1 else 'ies'} but model "
                    f"'{self.model.name}' has {n} output(s) ({', '.join(self.outputs)})",
                    self.where(body, key),
                    path,
                    "give one per output, in order, or a mapping by output name",
                )
            return [item(value, i, f"{path}[{i}]") for i in range(len(value))]
        if isinstance(value, YamlMap) and (key != "loss" or "type" not in value):
            result = {}
            for name in value:
                if name not in self.outputs:
                    self.error(
                        "outputs",
                        f"{key} names output '{name}', which model "
                        f"'{self.model.name}' does not have",
                        value.key_loc(name),
                        f"{path}.{name}",
                        did_you_mean(name, self.outputs, f"outputs: {listed(self.outputs)}"),
                    )
                    continue
                result[name] = item(value, name, f"{path}.{name}")
            return result
        if key == "loss_weights":
            self.error(
                "type",
                "loss_weights must be a list or a mapping by output name",
                self.where(body, key),
                path,
            )
            return None
        return item(body, key, path)

    def parse_metrics(self, body: YamlMap, path: str) -> Any:
        value = body["metrics"]
        if isinstance(value, YamlMap):
            result: dict[str, list[ObjectSpec]] = {}
            for name in value:
                if name not in self.outputs:
                    self.error(
                        "outputs",
                        f"metrics names output '{name}', which model "
                        f"'{self.model.name}' does not have",
                        value.key_loc(name),
                        f"{path}.{name}",
                        did_you_mean(name, self.outputs),
                    )
                    continue
                result[name] = self.metric_list(value, name, f"{path}.{name}")
            return result
        return self.metric_list(body, "metrics", path)

    def metric_list(self, parent: Any, key: Any, path: str) -> list[ObjectSpec]:
        value = parent[key]
        if not isinstance(value, YamlList):
            value_list = YamlList([value], loc=self.where(parent, key))
            value_list.item_locs.append(self.where(parent, key))
            value = value_list
        found = [self.keras_object(value, i, f"{path}[{i}]", "metrics") for i in range(len(value))]
        return [m for m in found if m is not None]

    def keras_object(self, parent: Any, key: Any, path: str, kind: str) -> ObjectSpec | None:
        """`name` or `{type: Name, ...args}`, checked against the Keras catalog."""
        value = parent[key]
        loc = self.where(parent, key)
        if isinstance(value, str):
            name, args = value, YamlMap(loc=loc)
        elif isinstance(value, YamlMap) and isinstance(value.get("type"), str):
            name = value["type"]
            loc = value.value_loc("type")
            args = YamlMap(loc=value.loc)
            for arg in value:
                if arg != "type":
                    args.copy_entry(value, arg)
        else:
            self.error(
                "type",
                f"expected a name or {{type: ..., ...}}, got {describe(value)}",
                loc,
                path,
                f"e.g. {_EXAMPLES[kind]}",
            )
            return None
        catalog = keras_objects(kind)
        info = catalog.classes.get(name)
        if info is None and not args and name in catalog.names:
            return ObjectSpec(name, args, loc, path)
        if info is None:
            singular = "loss" if kind == "losses" else kind[:-1]  # not "losse"
            self.error(
                f"unknown-{singular}",
                f"unknown {singular} '{name}'",
                loc,
                path,
                # with arguments only a class will do ({type: RMSprop, ...}, not rmsprop)
                did_you_mean(
                    name, [*catalog.classes] if args else [*catalog.classes, *catalog.names]
                ),
            )
            return None
        for arg in args:
            if arg not in info.params or arg == "name":
                self.error(
                    "unknown-arg",
                    f"{name} has no argument '{arg}'",
                    args.key_loc(arg),
                    f"{path}.{arg}",
                    did_you_mean(arg, info.params - {"name"}),
                )
        for arg in sorted(info.required - set(args)):
            self.error(
                "missing-arg", f"{name} needs the argument '{arg}'", loc, path, f"add `{arg}: ...`"
            )
        if kind == "optimizers" and isinstance(args.get("learning_rate"), YamlMap):
            self.keras_object(args, "learning_rate", f"{path}.learning_rate", "schedules")
        return ObjectSpec(name, args, loc, path)

    def parse_fit(self, body: YamlMap) -> FitSpec:
        spec = FitSpec()
        path = "train.fit"
        for key, minimum in (("batch_size", 1), ("epochs", 1), ("steps_per_execution", 1)):
            if key in body and (value := self.number(body, key, f"{path}.{key}", int, minimum)):
                setattr(spec, key, value)
        if "seed" in body:
            spec.seed = self.number(body, "seed", f"{path}.seed", int, 0)
        if (
            "shuffle" in body
            and (value := self.boolean(body, "shuffle", f"{path}.shuffle")) is not None
        ):
            spec.shuffle = value
        if "validation" in body:
            spec.validation = self.split(body, "validation", f"{path}.validation")
        if "class_weight" in body and (
            weights := self.expect_map(
                body, "class_weight", f"{path}.class_weight", None, "class_weight"
            )
        ):
            spec.class_weight = {}
            for label in weights:
                if not label.lstrip("-").isdigit():
                    self.error(
                        "type",
                        f"class_weight keys are class indices, got '{label}'",
                        weights.key_loc(label),
                        f"{path}.class_weight.{label}",
                    )
                    continue
                weight = self.number(weights, label, f"{path}.class_weight.{label}", float, 0.0)
                if weight is not None:
                    spec.class_weight[int(label)] = float(weight)
        return spec

    def parse_callbacks(self, section: YamlMap) -> list[ObjectSpec]:
        value = section["callbacks"]
        if not isinstance(value, YamlList):
            self.error(
                "type",
                f"callbacks must be a list, got {describe(value)}",
                self.where(section, "callbacks"),
                "train.callbacks",
                "e.g. [{type: EarlyStopping, patience: 3}]",
            )
            return []
        found = [
            self.keras_object(value, i, f"train.callbacks[{i}]", "callbacks")
            for i in range(len(value))
        ]
        return [c for c in found if c is not None]

    # -- data -----------------------------------------------------------
    def parse_data(self, body: YamlMap) -> DataSpec | None:
        path = "train.data"
        if "source" not in body:
            self.error(
                "missing",
                "train.data has no `source`",
                body.loc,
                f"{path}.source",
                "e.g. `source: {dataset: mnist}` or `source: {npz: data.npz}`",
            )
            return None
        source = self.source(body, "source", f"{path}.source")
        if source is None:
            return None
        data = DataSpec(source, {}, {}, body.loc)
        generated = source.kind == "generated"
        model_inputs = (
            list(self.model.inputs)
            if self.model.graph is None
            else [r.node for r in self.model.view_inputs or []]
        )
        data.inputs = self.feeds(body, "inputs", model_inputs, "input", generated)
        data.targets = self.feeds(body, "targets", self.outputs, "output", generated)
        if "take" in body:
            data.take = self.number(body, "take", f"{path}.take", int, 1)
        if "test" in body:
            data.test = self.split(body, "test", f"{path}.test")
        for flag in ("cache", "shuffle"):
            if flag in body and (value := self.boolean(body, flag, f"{path}.{flag}")) is not None:
                setattr(data, flag, value)
        return data

    def source(self, parent: Any, key: Any, path: str) -> SourceSpec | None:
        body = self.expect_map(parent, key, path, None, "a data source")
        if body is None:
            return None
        kinds = [k for k in SOURCE_KINDS if k in body]
        if len(kinds) != 1:
            message = (
                "a data source names one kind"
                if not kinds
                else f"a data source names one kind, not {' and '.join(kinds)}"
            )
            self.error(
                "source",
                message,
                body.loc,
                path,
                f"one of: {', '.join(SOURCE_KINDS)}; e.g. {{dataset: mnist}}",
            )
            return None
        kind = kinds[0]
        for option in body:
            if option not in SOURCE_KINDS[kind]:
                self.error(
                    "unknown-key",
                    f"unknown option '{option}' for a {kind} source",
                    body.key_loc(option),
                    f"{path}.{option}",
                    did_you_mean(option, SOURCE_KINDS[kind]),
                )
        if kind == "dataset" and body["dataset"] not in DATASETS:
            self.error(
                "unknown-dataset",
                f"unknown dataset '{body['dataset']}'",
                body.value_loc("dataset"),
                f"{path}.dataset",
                did_you_mean(str(body["dataset"]), DATASETS),
            )
        if kind == "generated":
            self.number(body, "generated", f"{path}.generated", int, 1)
        if kind == "tfrecord":
            self.tfrecord_features(body, path)
        return SourceSpec(kind, body, body.loc, path)

    def tfrecord_features(self, body: YamlMap, path: str) -> None:
        if "features" not in body:
            self.error(
                "missing",
                "a tfrecord source needs `features`",
                body.loc,
                f"{path}.features",
                "e.g. features: {x: {shape: [784], dtype: float32}, y: {shape: [], dtype: int64}}",
            )
            return
        features = self.expect_map(body, "features", f"{path}.features", None, "features")
        for name in features or {}:
            feature = self.expect_map(
                features,
                name,
                f"{path}.features.{name}",
                {"shape": "", "dtype": ""},
                f"feature '{name}'",
            )
            if feature is None:
                continue
            dtype = feature.get("dtype", "float32")
            if dtype not in ("float32", "int64", "string"):
                self.error(
                    "dtype",
                    f"TFRecord features are float32, int64 or string, got '{dtype}'",
                    feature.value_loc("dtype"),
                    f"{path}.features.{name}.dtype",
                    "cast afterwards with a transform: {cast: int32}",
                )

    def split(self, parent: Any, key: Any, path: str) -> SplitSpec | None:
        value = parent[key]
        loc = self.where(parent, key)
        if isinstance(value, float) or isinstance(value, int) and not isinstance(value, bool):
            if not 0 < value < 1:
                self.error(
                    "type",
                    f"a {key} fraction must be between 0 and 1, got {value}",
                    loc,
                    path,
                    "e.g. 0.2 for a fifth of the training data",
                )
                return None
            return SplitSpec(fraction=float(value), loc=loc)
        if isinstance(value, str):
            return SplitSpec(split=value, loc=loc)
        if isinstance(value, YamlMap) and "source" in value:
            for extra in value:
                if extra != "source":
                    self.error(
                        "unknown-key",
                        f"unknown key '{extra}' in {key}",
                        value.key_loc(extra),
                        f"{path}.{extra}",
                    )
            source = self.source(value, "source", f"{path}.source")
            return SplitSpec(source=source, loc=loc) if source else None
        self.error(
            "type",
            f"{key} must be a fraction, a split name or {{source: ...}}, got {describe(value)}",
            loc,
            path,
            "e.g. 0.2, test, or {source: {npz: val.npz}}",
        )
        return None

    def feeds(
        self, body: YamlMap, key: str, names: list[str], what: str, generated: bool
    ) -> dict[str, FeedSpec]:
        path = f"train.data.{key}"
        if key not in body:
            # Defaults: generated data feeds everything by name; a one-input,
            # one-output model reads fields x and y (as keras.datasets names them).
            if generated:
                return {n: FeedSpec(n, [n], False, [], body.loc, path) for n in names}
            default = "x" if key == "inputs" else "y"
            if len(names) == 1:
                return {names[0]: FeedSpec(names[0], [default], False, [], body.loc, path)}
            self.error(
                "missing",
                f"train.data needs `{key}`: model '{self.model.name}' has "
                f"{len(names)} {what}s ({', '.join(names)})",
                body.loc,
                path,
                f"map each {what} to a field of the source, e.g. "
                f"`{key}: {{{names[0] if names else 'name'}: field}}`",
            )
            return {}
        section = self.expect_map(body, key, path, None, f"train.data.{key}")
        if section is None:
            return {}
        feeds = {}
        for name in section:
            fpath = f"{path}.{name}"
            if name not in names:
                self.error(
                    "outputs" if key == "targets" else "undefined-ref",
                    f"model '{self.model.name}' has no {what} '{name}'",
                    section.key_loc(name),
                    fpath,
                    did_you_mean(name, names, f"{what}s: {listed(names)}"),
                )
                continue
            feed = self.feed(section, name, fpath)
            if feed is not None:
                feeds[name] = feed
        if key == "inputs":
            for name in names:
                if name not in section:
                    self.error(
                        "missing",
                        f"model input '{name}' is not fed",
                        section.loc,
                        path,
                        f"add `{name}: <field>`",
                    )
        return feeds

    def feed(self, section: YamlMap, name: str, path: str) -> FeedSpec | None:
        value = section[name]
        loc = section.value_loc(name)
        if isinstance(value, str):
            return FeedSpec(name, [value], False, [], loc, path)
        body = self.expect_map(section, name, path, FEED_KEYS, f"the feed of '{name}'")
        if body is None:
            return None
        if ("field" in body) == ("columns" in body):
            self.error(
                "source",
                f"the feed of '{name}' needs `field` or `columns` (one of them)",
                body.loc,
                path,
                "e.g. {field: x} or {columns: [a, b, c]}",
            )
            return None
        if "field" in body:
            if not isinstance(body["field"], str):
                self.error("type", "field must be a name", body.value_loc("field"), f"{path}.field")
                return None
            fields, stacked = [body["field"]], False
            field_locs = {body["field"]: body.value_loc("field")}
        else:
            columns = body["columns"]
            if not isinstance(columns, YamlList) or not all(isinstance(c, str) for c in columns):
                self.error(
                    "type",
                    "columns must be a list of column names",
                    body.value_loc("columns"),
                    f"{path}.columns",
                )
                return None
            fields, stacked = list(columns), True
            field_locs = {c: columns.item_loc(i) for i, c in enumerate(columns)}
        transforms = self.transforms(body, f"{path}.transforms") if "transforms" in body else []
        return FeedSpec(name, fields, stacked, transforms, loc, path, field_locs)

    def transforms(self, body: YamlMap, path: str) -> list[TransformSpec]:
        value = body["transforms"]
        if not isinstance(value, YamlList):
            self.error(
                "type",
                "transforms must be a list such as [{reshape: [784]}, {divide: 255}]",
                body.value_loc("transforms"),
                path,
            )
            return []
        result = []
        for i, item in enumerate(value):
            loc = value.item_loc(i)
            if not isinstance(item, YamlMap) or len(item) != 1:
                self.error(
                    "type",
                    "each transform is a one-key mapping such as {divide: 255}",
                    loc,
                    f"{path}[{i}]",
                    f"transforms: {', '.join(TRANSFORMS)}",
                )
                continue
            ((name, arg),) = item.items()
            if name not in TRANSFORMS:
                self.error(
                    "unknown-transform",
                    f"unknown transform '{name}'",
                    item.key_loc(name),
                    f"{path}[{i}]",
                    did_you_mean(name, TRANSFORMS),
                )
                continue
            if not _transform_arg_ok(name, arg):
                self.error(
                    "type",
                    f"{name}: expected {TRANSFORMS[name]}, got {describe(arg)}",
                    item.value_loc(name),
                    f"{path}[{i}].{name}",
                )
                continue
            result.append(TransformSpec(name, keras_config(arg), item.key_loc(name)))
        return result


_EXAMPLES = {
    "optimizers": "rmsprop or {type: Adam, learning_rate: 0.001}",
    "losses": "sparse_categorical_crossentropy or "
    "{type: SparseCategoricalCrossentropy, from_logits: true}",
    "metrics": "accuracy or {type: AUC}",
    "callbacks": "{type: EarlyStopping, patience: 3}",
    "schedules": "{type: ExponentialDecay, initial_learning_rate: 0.01, decay_steps: 1000, "
    "decay_rate: 0.9}",
}


def _transform_arg_ok(name: str, arg: Any) -> bool:
    number = isinstance(arg, (int, float)) and not isinstance(arg, bool)
    if name == "reshape":
        return isinstance(arg, list) and all(
            isinstance(d, int) and not isinstance(d, bool) and (d > 0 or d == -1) for d in arg
        )
    if name == "cast":
        return arg in DTYPES
    if name in ("scale", "offset"):
        return number
    if name == "divide":
        return number and arg != 0
    if name == "one_hot":
        return isinstance(arg, int) and not isinstance(arg, bool) and arg > 1
    if name == "standardize":
        return arg is True
    return False
