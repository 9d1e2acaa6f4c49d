"""The `train:` section: `parse_train` turns it into a TrainSpec checked against
the model it trains (optimizer, losses, metrics, callbacks, fit options; `data:`
by kgraph_cli.spec.train.data), every problem a located diagnostic, before any
data is loaded and without TensorFlow."""

from __future__ import annotations

from typing import Any

from kgraph_cli.errors import Diagnostic, Location
from kgraph_cli.layers import keras_objects
from kgraph_cli.spec.fields import FieldChecker, unknown_keys
from kgraph_cli.spec.loader import YamlList, YamlMap
from kgraph_cli.spec.model import ModelSpec
from kgraph_cli.spec.overrides import OVERRIDE_FILE
from kgraph_cli.spec.train.data import DataParser
from kgraph_cli.spec.train.keys import (
    COMPILE_KEYS,
    DATA_KEYS,
    DISTRIBUTE_KEYS,
    FINE_TUNE_KEYS,
    FIT_KEYS,
    PRECISIONS,
    STRATEGIES,
    TRAIN_KEYS,
)
from kgraph_cli.spec.train.model import (
    CompileSpec,
    DistributeSpec,
    FineTuneSpec,
    FitSpec,
    ObjectSpec,
    TrainSpec,
)
from kgraph_cli.spec.values import describe
from kgraph_cli.suggest import did_you_mean, listed


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
    return parser.parse(section), parser.diagnostics


def checked_train(spec: Any, model_name: str) -> TrainSpec:
    """The `train:` section of a loaded spec, for one of its models; SpecError if
    it has errors (a spec without one gives Keras's defaults)."""
    from kgraph_cli.errors import SpecError

    train, problems = parse_train(spec.train, spec.models[model_name], spec.file)
    if any(p.is_error for p in problems):
        raise SpecError(problems)
    return train


def spec_precision(section: Any) -> str:
    """The precision a validated spec's `train:` section names (default float32)."""
    value = section.get("precision") if isinstance(section, YamlMap) else None
    return value if isinstance(value, str) and value in PRECISIONS else "float32"


def output_names(model: ModelSpec) -> list[str]:
    return [o.name for o in model.outputs]


class _TrainParser(FieldChecker):
    """Parses one `train:` section; `problems` collects every diagnostic."""

    def __init__(self, model: ModelSpec, file: str):
        super().__init__(file)
        self.model = model
        self.outputs = output_names(model)
        self.data = DataParser(model, self.outputs, file, self.diagnostics)

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
        self.diagnostics += unknown_keys(section, TRAIN_KEYS, "train", "train")
        if "compile" in section and (
            body := self.mapping(section, "compile", "train.compile", "train.compile", COMPILE_KEYS)
        ):
            spec.compile = self.parse_compile(body)
        if "fit" in section and (
            body := self.mapping(section, "fit", "train.fit", "train.fit", FIT_KEYS)
        ):
            spec.fit = self.parse_fit(body)
        if "callbacks" in section:
            spec.callbacks = self.parse_callbacks(section)
        if "fine_tune" in section and (
            body := self.mapping(
                section, "fine_tune", "train.fine_tune", "train.fine_tune", FINE_TUNE_KEYS
            )
        ):
            spec.fine_tune = self.parse_fine_tune(body)
        if "data" in section and (
            body := self.mapping(section, "data", "train.data", "train.data", DATA_KEYS)
        ):
            spec.data = self.data.parse(body)
        if "distribute" in section:
            spec.distribute = self.parse_distribute(section)
        if "precision" in section and (
            precision := self.choice(
                section,
                "precision",
                "train.precision",
                list(PRECISIONS),
                "mixed_float16 speeds up GPUs, mixed_bfloat16 TPUs and recent CPUs",
            )
        ):
            spec.precision = precision
        return spec

    def parse_distribute(self, section: YamlMap) -> DistributeSpec:
        """`distribute: mirrored`, or `distribute: {strategy: mirrored, cpu_devices: 2}`."""
        path = "train.distribute"
        hint = "e.g. `distribute: mirrored` or `distribute: {strategy: multi_worker, timeout: 60}`"
        spec = DistributeSpec(loc=self.where(section, "distribute"))
        if isinstance(section["distribute"], str):
            spec.strategy = (
                self.choice(section, "distribute", path, list(STRATEGIES), hint) or spec.strategy
            )
            return spec
        body = section["distribute"]
        if not isinstance(body, YamlMap):
            self.type_error(
                section,
                "distribute",
                path,
                "distribute must be a strategy name or a mapping",
                body,
                hint,
            )
            return spec
        self.check_keys(body, DISTRIBUTE_KEYS, path, path)
        if "strategy" in body:
            spec.strategy = (
                self.choice(body, "strategy", f"{path}.strategy", list(STRATEGIES), hint)
                or spec.strategy
            )
        if "cpu_devices" in body:
            spec.cpu_devices = self.number(body, "cpu_devices", f"{path}.cpu_devices", int, 1)
        if "timeout" in body and (
            timeout := self.number(body, "timeout", f"{path}.timeout", float, 0.0, exclusive=True)
        ):
            spec.timeout = float(timeout)
        if "tpu" in body:
            spec.tpu = self.string(body, "tpu", path, "") or None
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
            if arg == "name" and kind != "metrics" and arg in info.params:
                self.error(
                    "unknown-arg",
                    f"{name} takes no `name` here: only metrics are named "
                    "(a metric's name is its history column)",
                    args.key_loc(arg),
                    f"{path}.{arg}",
                    "remove `name`",
                )
            elif arg not in info.params:
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
            spec.validation = self.data.split(body, "validation", f"{path}.validation")
        if "class_weight" in body and (
            weights := self.mapping(body, "class_weight", f"{path}.class_weight", "class_weight")
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

    def parse_fine_tune(self, body: YamlMap) -> FineTuneSpec | None:
        path = "train.fine_tune"
        if "unfreeze" not in body:
            self.error(
                "missing",
                "fine_tune says no node to `unfreeze`",
                body.loc,
                f"{path}.unfreeze",
                "e.g. `unfreeze: backbone` (the frozen application node)",
            )
            return None
        node = self.string(body, "unfreeze", path, "")
        if not node:
            return None
        if node not in self.model.nodes:
            self.error(
                "undefined-ref",
                f"model '{self.model.name}' has no node '{node}' to unfreeze",
                body.value_loc("unfreeze"),
                f"{path}.unfreeze",
                did_you_mean(node, self.model.nodes),
            )
        spec = FineTuneSpec(node, body.value_loc("unfreeze"))
        given = {key for key in ("layers", "from_layer") if body.get(key) is not None}
        if given == {"layers", "from_layer"}:
            self.error(
                "conflict",
                "fine_tune has both `layers` and `from_layer`",
                body.key_loc("from_layer"),
                f"{path}.from_layer",
                "unfreeze the last N layers or the layers from a name on, not both",
            )
        if "layers" in given:
            spec.layers = self.number(body, "layers", f"{path}.layers", int, 1)
        if "from_layer" in given:
            spec.from_layer = self.string(body, "from_layer", path, "") or None
        if "epochs" in body and (epochs := self.number(body, "epochs", f"{path}.epochs", int, 1)):
            spec.epochs = epochs
        if "learning_rate" in body and (
            rate := self.number(
                body, "learning_rate", f"{path}.learning_rate", float, 0.0, exclusive=True
            )
        ):
            spec.learning_rate = float(rate)
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


_EXAMPLES = {
    "optimizers": "rmsprop or {type: Adam, learning_rate: 0.001}",
    "losses": "sparse_categorical_crossentropy or "
    "{type: SparseCategoricalCrossentropy, from_logits: true}",
    "metrics": "accuracy or {type: AUC}",
    "callbacks": "{type: EarlyStopping, patience: 3}",
    "schedules": "{type: ExponentialDecay, initial_learning_rate: 0.01, decay_steps: 1000, "
    "decay_rate: 0.9}",
}
