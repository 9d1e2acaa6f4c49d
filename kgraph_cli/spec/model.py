"""Typed spec objects: what a spec says, with where it says it. No TensorFlow."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from kgraph_cli.errors import Location

if TYPE_CHECKING:
    from kgraph_cli.spec.loader import YamlMap

SPEC_VERSION = 1
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# a node or input, or one of its outputs: `name`, `name.N`, `name.output`
REF_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.([0-9]+|[A-Za-z_][A-Za-z0-9_]*))?$")
DTYPES = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "string",
    "complex64",
    "complex128",
)


class NodeKind(StrEnum):
    LAYER = "type"  # a new Keras layer
    SHARE = "share"  # call another node's layer again (shared weights)
    MODEL = "model"  # a fresh instance of a model from this spec
    BLOCK = "block"  # a parameterised sub-graph, expanded before building
    OP = "op"  # a keras.ops function applied to tensors
    APPLICATION = "application"  # a keras.applications model (pretrained or not)


@dataclass(frozen=True)
class Ref:
    """A reference to a node's output: `name`, or `name.1` / `name.code` for one
    output of a node that has several."""

    node: str
    output: int | str | None
    loc: Location

    @classmethod
    def parse(cls, text: str, loc: Location) -> Ref:
        node, _, output = text.partition(".")
        if not output:
            return cls(node, None, loc)
        return cls(node, int(output) if output.isdigit() else output, loc)

    def __str__(self) -> str:
        return self.node if self.output is None else f"{self.node}.{self.output}"


@dataclass
class InputSpec:
    name: str
    shape: tuple[int | None, ...]
    dtype: str
    loc: Location
    sparse: bool = False
    batch_size: int | None = None


@dataclass
class LayerSpec:
    """What a `type:` node (or a wrapper's `layer:` argument) constructs."""

    type: str
    # Constructor arguments as written (YAML data, locations kept).
    args: dict[str, Any]
    loc: Location
    # Arguments that are themselves layers (TimeDistributed's `layer`...).
    sublayers: dict[str, LayerSpec | ModelCall] = field(default_factory=dict)


@dataclass
class ModelCall:
    """A fresh instance of a spec model, used as a layer."""

    model: str
    loc: Location
    trainable: bool | None = None


@dataclass
class ApplicationSpec:
    """What an `application:` node constructs: a keras.applications model,
    called as one nested model, with its preprocessing in front of it."""

    name: str  # ResNet50
    # Constructor arguments as written (weights, include_top, pooling...).
    args: YamlMap
    loc: Location
    # Put the application's preprocess_input in the graph (raw pixels in).
    preprocess: bool = True
    trainable: bool | None = None

    def weights(self) -> Any:
        """`weights:` as written: "imagenet" (Keras's default), None, or a path."""
        return self.args.get("weights", "imagenet")


class InputForm(StrEnum):
    """How a node's `from:` is written, hence how its layer is called."""

    SINGLE = "single"  # from: x          -> layer(x)
    LIST = "list"  # from: [a, b]         -> layer([a, b])
    KEYWORD = "keyword"  # from: {query: q} -> layer(query=q); {xs: [a, b]} -> layer(xs=[a, b])


@dataclass
class NodeSpec:
    name: str
    kind: NodeKind
    target: str  # layer type, shared node, model or block name
    target_loc: Location
    loc: Location
    inputs: list[Ref] = field(default_factory=list)
    input_form: InputForm = InputForm.SINGLE
    # KEYWORD form: the keyword of each ref of `inputs` (repeated for a list),
    # and the keywords whose value is a list of refs.
    input_keys: list[str] = field(default_factory=list)
    list_keys: set[str] = field(default_factory=set)
    layer: LayerSpec | None = None
    model_call: ModelCall | None = None
    application: ApplicationSpec | None = None
    call_args: dict[str, Any] = field(default_factory=dict)
    # `adapt: true`: the layer learns its state from the training data first.
    adapt: bool = False
    # An `op:` node's constant arguments (YAML data, locations kept).
    op_args: YamlMap | None = None
    block_args: dict[str, Any] = field(default_factory=dict)
    # `args: [{...}, {...}]`: one argument set per repetition of a block.
    arg_sets: list[YamlMap] | None = None
    repeat: int = 1
    # For nodes made by expanding a block: the block node they came from.
    expanded_from: str | None = None

    def keyword_inputs(self) -> dict[str, int | list[int]]:
        """KEYWORD form: each keyword -> the index of its ref in `inputs`, or the
        indices of its list of refs."""
        grouped: dict[str, int | list[int]] = {key: [] for key in self.list_keys}
        for index, key in enumerate(self.input_keys):
            if key in self.list_keys:
                indices = grouped.setdefault(key, [])
                assert isinstance(indices, list)
                indices.append(index)
            else:
                grouped[key] = index
        return grouped


@dataclass
class OutputSpec:
    name: str
    ref: Ref
    # `{probs: {from: head, classes: [cat, dog]}}`: the name of each class index.
    classes: list[str] | None = None


@dataclass
class ModelSpec:
    name: str
    loc: Location
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    outputs: list[OutputSpec] = field(default_factory=list)
    # A view: a model over another model's graph (shared layers), given by
    # the graph's name and the refs of its own inputs (None: all of them).
    graph: str | None = None
    view_inputs: list[Ref] | None = None
    graph_loc: Location | None = None
    # Names a block node stands for after expansion: `stage1` -> its output.
    aliases: dict[str, list[Ref]] = field(default_factory=dict)
    description: str = ""
    # Key path of the model's definition: "" (top level) or "models.NAME".
    path: str = ""
    # Nodes written in the spec that could not be parsed, expanded or connected
    # (their error is reported): refs to them are not reported again as
    # undefined, and no node is called unused because of them.
    broken: set[str] = field(default_factory=set)

    def key_path(self, *keys: str) -> str:
        return ".".join(k for k in (self.path, *keys) if k)


@dataclass
class BlockSpec:
    name: str
    loc: Location
    params: dict[str, Any]
    required_params: set[str]
    inputs: list[str]
    # The block's layers as raw YAML, instantiated once per use.
    layers: YamlMap
    outputs: list[Ref]


@dataclass
class Spec:
    file: str
    version: int
    name: str
    default: str
    models: dict[str, ModelSpec]
    blocks: dict[str, BlockSpec] = field(default_factory=dict)
    # The `train:` section as read; spec.train parses it for the model trained.
    train: YamlMap | None = None
    description: str = ""
    # The root file's data as loaded, --set applied (what `train` records).
    data: Any = None
    # Where `default:` is written (or the top-level mapping when it is absent).
    default_loc: Location | None = None

    def model(self, name: str | None = None) -> ModelSpec:
        return self.models[name or self.default]

    def model_name(self, requested: str | None) -> str:
        """The model a command acts on: `requested` (--model) if the spec has
        it, else the spec's default; an unknown name is a usage error."""
        from kgraph_cli.errors import UsageError
        from kgraph_cli.suggest import did_you_mean

        if requested is None:
            return self.default
        if requested not in self.models:
            raise UsageError(
                f"the spec has no model '{requested}'", did_you_mean(requested, self.models)
            )
        return requested
