"""The typed objects of a parsed `train:` section (TrainSpec and its parts), each
with where the spec wrote it. Built by kgraph_cli.spec.train.parse; read by
training, evaluation and the data pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kgraph_cli.errors import Location
from kgraph_cli.spec.loader import YamlMap
from kgraph_cli.spec.train.keys import DEFAULT_DISTRIBUTE_TIMEOUT
from kgraph_cli.spec.values import keras_config


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
    """A data source: its kind (dataset, npz, csv...) and its options as written."""

    kind: str
    options: YamlMap
    loc: Location
    path: str


@dataclass
class TransformSpec:
    """One transform of a feed: `{divide: 255}`."""

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
    """`train.data`: the source and how it feeds the model's inputs and outputs."""

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
    """`train.compile`: what model.compile() gets (None: Keras's default)."""

    optimizer: ObjectSpec | None = None
    loss: ObjectSpec | list[ObjectSpec] | dict[str, ObjectSpec] | None = None
    loss_weights: list[float] | dict[str, float] | None = None
    metrics: list[ObjectSpec] | dict[str, list[ObjectSpec]] | None = None
    jit_compile: bool | None = None


@dataclass
class FitSpec:
    """`train.fit`: what model.fit() gets."""

    batch_size: int = 32
    epochs: int = 1
    validation: SplitSpec | None = None
    shuffle: bool = True
    class_weight: dict[int, float] | None = None
    steps_per_execution: int | None = None
    seed: int | None = None


@dataclass
class FineTuneSpec:
    """`train.fine_tune`: after fit's epochs, unfreeze a node (its last `layers`,
    or from `from_layer` on; BatchNormalization stays frozen) and train
    `epochs` more at `learning_rate`."""

    unfreeze: str
    loc: Location
    layers: int | None = None
    from_layer: str | None = None
    learning_rate: float = 1e-5
    epochs: int = 1


@dataclass
class DistributeSpec:
    """`train.distribute`: the tf.distribute strategy a run uses, and its settings."""

    strategy: str = "default"
    cpu_devices: int | None = None
    timeout: float = DEFAULT_DISTRIBUTE_TIMEOUT
    tpu: str | None = None
    loc: Location | None = None


@dataclass
class TrainSpec:
    """A whole `train:` section (Keras's defaults where it says nothing)."""

    compile: CompileSpec
    fit: FitSpec
    callbacks: list[ObjectSpec] = field(default_factory=list)
    data: DataSpec | None = None
    fine_tune: FineTuneSpec | None = None
    distribute: DistributeSpec = field(default_factory=DistributeSpec)
    precision: str = "float32"
    loc: Location | None = None
    # Whether the spec file has a `train:` section (not only one that --set,
    # --epochs or --batch-size made up).
    in_file: bool = False
