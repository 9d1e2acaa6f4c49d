"""YAML data -> typed spec objects, collecting every structural problem.

This stage checks what one can see without following references: known keys,
value types, required fields, name syntax. References, cycles and layer
arguments are checked by later stages on the objects built here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kgraph_cli.errors import Diagnostic, Location, Reporter
from kgraph_cli.keras_classes import LAYER_ARGUMENTS
from kgraph_cli.spec.loader import YamlList, YamlMap, value_location
from kgraph_cli.spec.model import (
    DTYPES,
    NAME_PATTERN,
    SPEC_VERSION,
    BlockSpec,
    InputForm,
    InputSpec,
    LayerSpec,
    ModelCall,
    ModelSpec,
    NodeKind,
    NodeSpec,
    OutputSpec,
    Ref,
    Spec,
)
from kgraph_cli.spec.values import describe
from kgraph_cli.suggest import did_you_mean

REF_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.([0-9]+|[A-Za-z_][A-Za-z0-9_]*))?$")

# Keys of each section, with what they mean (also used by the JSON Schema).
TOP_KEYS = {
    "kgraph": "spec format version (1)",
    "name": "name of the model defined by the top-level inputs/layers/outputs",
    "description": "free text",
    "include": "other spec files whose models and blocks this one uses",
    "default": "the model commands act on when --model is not given",
    "inputs": "the top-level model's inputs",
    "layers": "the top-level model's nodes",
    "outputs": "the top-level model's outputs",
    "models": "further models, by name",
    "blocks": "reusable parameterised sub-graphs, by name",
    "train": "how to train the default model",
}
MODEL_KEYS = {
    "description": "free text",
    "inputs": "inputs by name",
    "layers": "nodes by name",
    "outputs": "outputs: a list of refs, or a mapping of output name to ref",
    "graph": "build this model over another model's graph (shared layers)",
}
INPUT_KEYS = {
    "shape": "shape without the batch dimension; null for a variable size",
    "dtype": "data type (default float32)",
    "sparse": "whether the input is a sparse tensor",
    "batch_size": "fixed batch size (rarely needed)",
}
BLOCK_KEYS = {
    "description": "free text",
    "params": "parameters with their defaults (null: required), or a list of required names",
    "inputs": "names the block's layers use for its inputs",
    "layers": "the block's nodes; ${param} is replaced by the argument",
    "outputs": "the ref (or list of refs) the block returns",
}
NODE_KIND_KEYS = {kind.value: kind for kind in NodeKind}
NODE_COMMON_KEYS = {"from": "the node's inputs: a ref, a list of refs, or keyword refs"}
NODE_EXTRA_KEYS = {
    NodeKind.LAYER: {"call": "keyword arguments for calling the layer (e.g. training)"},
    NodeKind.SHARE: {"call": "keyword arguments for calling the layer"},
    NodeKind.MODEL: {"trainable": "freeze (false) or unfreeze the sub-model"},
    NodeKind.BLOCK: {
        "args": "arguments for the block's params",
        "repeat": "chain the block N times (one input, one output)",
    },
}
_EXAMPLES = {
    "inputs": "{x: {shape: [784]}}",
    "outputs": "[<node name>]",
    "layers": "{hidden: {type: Dense, units: 64, from: x}}",
}


class SpecParser(Reporter):
    """Turns one file's YAML data into a `Spec`, recording diagnostics."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    # -- generic checks -------------------------------------------------
    def check_keys(self, data: YamlMap, allowed: dict | set, path: str, what: str) -> None:
        self.diagnostics += unknown_keys(data, allowed, path, what)

    def mapping(self, parent: Any, key: Any, path: str, what: str) -> YamlMap | None:
        value = parent[key]
        if isinstance(value, YamlMap):
            return value
        example = f"e.g. `{key}: {_EXAMPLES[key]}`" if key in _EXAMPLES else ""
        self.type_error(parent, key, path, f"{what} must be a mapping", value, example)
        return None

    def type_error(
        self, parent: Any, key: Any, path: str, message: str, value: Any, hint: str = ""
    ) -> None:
        self.error(
            "type",
            f"{message}, got {describe(value)}",
            value_location(parent, key, Location(self.file)),
            path,
            hint,
        )

    def name_ok(self, name: str, loc: Location, path: str, what: str) -> bool:
        if NAME_PATTERN.match(name):
            return True
        self.error(
            "name",
            f"invalid {what} name '{name}'",
            loc,
            path,
            "names start with a letter or _ and contain only letters, digits and _",
        )
        return False

    def ref(self, parent: Any, key: Any, path: str) -> Ref | None:
        value = parent[key]
        loc = value_location(parent, key, Location(self.file))
        if not isinstance(value, str):
            self.type_error(parent, key, path, "a reference must be a node or input name", value)
            return None
        if not REF_PATTERN.match(value):
            self.error(
                "ref",
                f"invalid reference '{value}'",
                loc,
                path,
                "write a node name, or name.N / name.output for one of several outputs",
            )
            return None
        return Ref.parse(value, loc)

    # -- spec -----------------------------------------------------------
    def parse_spec(self, data: YamlMap) -> Spec:
        self.check_keys(data, TOP_KEYS, "", "the spec")
        version = self._version(data)
        stem = re.sub(r"\W", "_", Path(self.file).stem) or "model"
        if stem[0].isdigit():  # `01_mnist.yaml` must still give a valid model name
            stem = f"_{stem}"
        name = self._string(data, "name", "", stem)
        description = self._string(data, "description", "", "")
        models: dict[str, ModelSpec] = {}
        if any(k in data for k in ("inputs", "layers", "outputs")):
            if self.name_ok(
                name, data.value_loc("name") if "name" in data else data.loc, "name", "model"
            ):
                models[name] = self.parse_model(name, data, "", data.loc, top_level=True)
        if "models" in data and (section := self.mapping(data, "models", "models", "models")):
            for model_name, _body in section.items():
                path = f"models.{model_name}"
                if not self.name_ok(model_name, section.key_loc(model_name), path, "model"):
                    continue
                if model_name in models:
                    self.error(
                        "duplicate-name",
                        f"model '{model_name}' is defined twice: "
                        "by the top-level graph (its `name`) and in models",
                        section.key_loc(model_name),
                        path,
                        "rename one of them",
                    )
                    continue
                if body_map := self.mapping(section, model_name, path, "a model"):
                    models[model_name] = self.parse_model(
                        model_name, body_map, path, section.key_loc(model_name)
                    )
        blocks = {}
        if "blocks" in data and (section := self.mapping(data, "blocks", "blocks", "blocks")):
            for block_name in section:
                path = f"blocks.{block_name}"
                if self.name_ok(block_name, section.key_loc(block_name), path, "block") and (
                    body_map := self.mapping(section, block_name, path, "a block")
                ):
                    blocks[block_name] = self.parse_block(
                        block_name, body_map, path, section.key_loc(block_name)
                    )
        default = self._string(data, "default", "", "")
        train = data.get("train")
        if "train" in data and train is not None and not isinstance(train, YamlMap):
            self.type_error(data, "train", "train", "train must be a mapping", train)
        spec = Spec(self.file, version, name, default, models, blocks, train, description)
        spec.default_loc = data.value_loc("default") if "default" in data else data.loc
        spec.data = data
        return spec

    def _version(self, data: YamlMap) -> int:
        if "kgraph" not in data:
            self.error(
                "missing",
                "missing the spec format version `kgraph`",
                data.loc,
                "kgraph",
                f"add `kgraph: {SPEC_VERSION}` as the first line",
            )
            return SPEC_VERSION
        version = data["kgraph"]
        if not isinstance(version, int) or isinstance(version, bool):
            self.type_error(
                data, "kgraph", "kgraph", "the spec version must be an integer", version
            )
            return SPEC_VERSION
        if version != SPEC_VERSION:
            self.error(
                "version",
                f"spec format version {version} is not supported",
                data.value_loc("kgraph"),
                "kgraph",
                f"this kgraph reads version {SPEC_VERSION}; upgrade kgraph for newer specs",
            )
        return version

    def _string(self, data: YamlMap, key: str, path: str, default: str) -> str:
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, str):
            return value
        self.type_error(data, key, _join(path, key), f"{key} must be a string", value)
        return default

    # -- models ---------------------------------------------------------
    def parse_model(
        self, name: str, data: YamlMap, path: str, loc: Location, top_level: bool = False
    ) -> ModelSpec:
        if not top_level:
            self.check_keys(data, MODEL_KEYS, path, f"model '{name}'")
        description = "" if top_level else self._string(data, "description", path, "")
        model = ModelSpec(name, loc, description=description, path=path)
        if "graph" in data:
            return self._parse_view(model, data, path)
        for key in ("inputs", "outputs"):
            if key not in data:
                self.error(
                    "missing",
                    f"model '{name}' has no `{key}`",
                    data.loc,
                    _join(path, key),
                    f"add `{key}: {_EXAMPLES[key]}`"
                    + (
                        " (or `graph:` to build it over another model's layers)"
                        if not top_level
                        else ""
                    ),
                )
        if "inputs" in data and (
            section := self.mapping(data, "inputs", _join(path, "inputs"), "inputs")
        ):
            model.inputs = self.parse_inputs(section, _join(path, "inputs"))
        if "layers" in data and (
            section := self.mapping(data, "layers", _join(path, "layers"), "layers")
        ):
            model.nodes = self.parse_nodes(section, _join(path, "layers"), model.inputs)
            model.broken = set(section) - set(model.nodes) - set(model.inputs)
            model.broken |= {n for n in model.nodes if "from" not in section[n]}
        if "outputs" in data:
            model.outputs = self.parse_outputs(data, _join(path, "outputs"))
        return model

    def _parse_view(self, model: ModelSpec, data: YamlMap, path: str) -> ModelSpec:
        graph = data["graph"]
        if not isinstance(graph, str):
            self.type_error(
                data, "graph", _join(path, "graph"), "graph must be a model name", graph
            )
        else:
            model.graph = graph
            model.graph_loc = data.value_loc("graph")
        if "layers" in data:
            self.error(
                "view-layers",
                f"model '{model.name}' is built over graph '{graph}' and cannot add layers",
                data.key_loc("layers"),
                _join(path, "layers"),
                "define the layers in the graph model, or drop `graph:`",
            )
        if "inputs" in data:
            refs = data["inputs"]
            if isinstance(refs, YamlList):
                model.view_inputs = [
                    r
                    for i in range(len(refs))
                    if (r := self.ref(refs, i, f"{path}.inputs[{i}]")) is not None
                ]
            else:
                self.type_error(
                    data,
                    "inputs",
                    _join(path, "inputs"),
                    "a view's inputs must be a list of refs into its graph",
                    refs,
                )
        if "outputs" not in data:
            self.error(
                "missing",
                f"model '{model.name}' has no `outputs`",
                data.loc,
                _join(path, "outputs"),
                "name the graph nodes this model returns",
            )
        else:
            model.outputs = self.parse_outputs(data, _join(path, "outputs"))
        return model

    def parse_inputs(self, section: YamlMap, path: str) -> dict[str, InputSpec]:
        inputs = {}
        for name, body in section.items():
            ipath = f"{path}.{name}"
            if not self.name_ok(name, section.key_loc(name), ipath, "input"):
                continue
            loc = section.key_loc(name)
            if isinstance(body, YamlList):  # shorthand: `pixels: [784]`
                body = YamlMap({"shape": body}, loc=body.loc)
                body.value_locs["shape"] = body.loc
            if not isinstance(body, YamlMap):
                self.type_error(
                    section,
                    name,
                    ipath,
                    "an input must be a mapping with `shape` (or a shape list)",
                    body,
                )
                continue
            self.check_keys(body, INPUT_KEYS, ipath, f"input '{name}'")
            shape = self._shape(body, ipath) if "shape" in body else None
            if "shape" not in body:
                self.error(
                    "missing",
                    f"input '{name}' has no `shape`",
                    loc,
                    f"{ipath}.shape",
                    "e.g. `shape: [784]`; use null for a variable dimension",
                )
            dtype = self._string(body, "dtype", ipath, "float32")
            if dtype not in DTYPES:
                self.error(
                    "dtype",
                    f"unknown dtype '{dtype}'",
                    body.value_loc("dtype"),
                    f"{ipath}.dtype",
                    did_you_mean(dtype, DTYPES),
                )
            sparse = body.get("sparse", False)
            if not isinstance(sparse, bool):
                self.type_error(
                    body, "sparse", f"{ipath}.sparse", "sparse must be true or false", sparse
                )
                sparse = False
            batch_size = body.get("batch_size")
            if batch_size is not None and not _positive_int(batch_size):
                self.type_error(
                    body,
                    "batch_size",
                    f"{ipath}.batch_size",
                    "batch_size must be a positive integer",
                    batch_size,
                )
                batch_size = None
            inputs[name] = InputSpec(name, shape or (), dtype, loc, sparse, batch_size)
        return inputs

    def _shape(self, body: YamlMap, path: str) -> tuple[int | None, ...] | None:
        shape = body["shape"]
        if isinstance(shape, int) and not isinstance(shape, bool) and shape > 0:
            return (shape,)
        if not isinstance(shape, YamlList):
            self.type_error(body, "shape", f"{path}.shape", "shape must be a list of sizes", shape)
            return None
        dims: list[int | None] = []
        for i, dim in enumerate(shape):
            if dim is None or _positive_int(dim):
                dims.append(dim)
            else:
                self.type_error(
                    shape,
                    i,
                    f"{path}.shape[{i}]",
                    "a dimension must be a positive integer or null",
                    dim,
                    "e.g. `shape: [28, 28, 1]`; null for a size that varies",
                )
                return None
        return tuple(dims)

    # -- nodes ----------------------------------------------------------
    def parse_nodes(self, section: YamlMap, path: str, inputs: dict) -> dict[str, NodeSpec]:
        nodes = {}
        for name, body in section.items():
            npath = f"{path}.{name}"
            loc = section.key_loc(name)
            if not self.name_ok(name, loc, npath, "node"):
                continue
            if name in inputs:
                self.error(
                    "duplicate-name",
                    f"node '{name}' has the same name as an input",
                    loc,
                    npath,
                    "rename the node or the input",
                    related=((inputs[name].loc, "the input"),),
                )
                continue
            if not isinstance(body, YamlMap):
                self.type_error(
                    section,
                    name,
                    npath,
                    "a node must be a mapping such as {type: Dense, units: 8, from: x}",
                    body,
                )
                continue
            node = self.parse_node(name, body, npath, loc)
            if node is not None:
                nodes[name] = node
        return nodes

    def parse_node(self, name: str, body: YamlMap, path: str, loc: Location) -> NodeSpec | None:
        kinds = [key for key in NODE_KIND_KEYS if key in body]
        if not kinds:
            self.error(
                "missing",
                f"node '{name}' says neither `type`, `share`, `model` nor `block`",
                loc,
                path,
                "add `type: <Keras layer>` (or share/model/block)",
            )
            return None
        if len(kinds) > 1:
            self.error(
                "conflict",
                f"node '{name}' has both `{kinds[0]}` and `{kinds[1]}`",
                body.key_loc(kinds[1]),
                f"{path}.{kinds[1]}",
                "a node is exactly one of: a layer (type), a shared layer (share), "
                "a model call (model) or a block",
            )
            return None
        kind = NODE_KIND_KEYS[kinds[0]]
        target = body[kind.value]
        if not isinstance(target, str):
            self.type_error(
                body, kind.value, f"{path}.{kind.value}", f"`{kind.value}` must be a name", target
            )
            return None
        node = NodeSpec(name, kind, target, body.value_loc(kind.value), loc)
        if "from" not in body:
            self.error(
                "missing",
                f"node '{name}' has no `from`",
                loc,
                f"{path}.from",
                "say which input or node feeds it, e.g. `from: pixels`",
            )
        else:
            self._node_inputs(node, body, f"{path}.from")
        if kind is NodeKind.LAYER:
            args = _submap(body, ("type", "from", "call"))
            node.layer = self.layer_spec(target, args, body, path, node.target_loc)
        else:
            self.check_keys(
                body,
                {kind.value, *NODE_COMMON_KEYS, *NODE_EXTRA_KEYS[kind]},
                path,
                f"a `{kind.value}` node",
            )
        if "call" in body and (call := self.mapping(body, "call", f"{path}.call", "call")):
            node.call_args = dict(call)
        if kind is NodeKind.MODEL:
            node.model_call = ModelCall(target, node.target_loc, self._trainable(body, path))
        if kind is NodeKind.BLOCK:
            if "args" in body and (args := self.mapping(body, "args", f"{path}.args", "args")):
                node.block_args = args
            if "repeat" in body:
                if _positive_int(body["repeat"]):
                    node.repeat = body["repeat"]
                else:
                    self.type_error(
                        body,
                        "repeat",
                        f"{path}.repeat",
                        "repeat must be a positive integer",
                        body["repeat"],
                    )
        return node

    def _trainable(self, body: YamlMap, path: str) -> bool | None:
        value = body.get("trainable")
        if value is None or isinstance(value, bool):
            return value
        self.type_error(
            body, "trainable", f"{path}.trainable", "trainable must be true or false", value
        )
        return None

    def _node_inputs(self, node: NodeSpec, body: YamlMap, path: str) -> None:
        value = body["from"]
        if isinstance(value, YamlList):
            node.input_form = InputForm.LIST
            if not value:
                self.error(
                    "type",
                    "`from` is an empty list",
                    body.value_loc("from"),
                    path,
                    "name at least one input or node",
                )
            node.inputs = [
                r for i in range(len(value)) if (r := self.ref(value, i, f"{path}[{i}]"))
            ]
        elif isinstance(value, YamlMap):
            node.input_form = InputForm.KEYWORD
            for key in value:
                if (r := self.ref(value, key, f"{path}.{key}")) is not None:
                    node.input_keys.append(key)
                    node.inputs.append(r)
        elif (r := self.ref(body, "from", path)) is not None:
            node.inputs = [r]

    def layer_spec(
        self, type_name: str, args: YamlMap, parent: YamlMap, path: str, loc: Location
    ) -> LayerSpec:
        layer = LayerSpec(type_name, args, loc)
        for key in LAYER_ARGUMENTS:
            if key not in args or not isinstance(args[key], YamlMap):
                continue
            inner = args[key]
            ipath = f"{path}.{key}"
            if "model" in inner:
                self.check_keys(inner, {"model", "trainable"}, ipath, f"`{key}`")
                model_name = inner["model"]
                if isinstance(model_name, str):
                    layer.sublayers[key] = ModelCall(
                        model_name, inner.value_loc("model"), self._trainable(inner, ipath)
                    )
                else:
                    self.type_error(
                        inner, "model", f"{ipath}.model", "model must be a name", model_name
                    )
            elif "type" in inner:
                if isinstance(inner["type"], str):
                    if "from" in inner:
                        self.error(
                            "unknown-key",
                            f"a wrapped layer takes no `from` "
                            f"(the wrapper '{parent.get('type')}' feeds it)",
                            inner.key_loc("from"),
                            f"{ipath}.from",
                            "move `from` to the wrapper node",
                        )
                    inner_args = _submap(inner, ("type", "from"))
                    sub = self.layer_spec(
                        inner["type"], inner_args, inner, ipath, inner.value_loc("type")
                    )
                    layer.sublayers[key] = sub
                else:
                    self.type_error(
                        inner, "type", f"{ipath}.type", "type must be a layer name", inner["type"]
                    )
            else:
                self.error(
                    "missing",
                    f"`{key}` needs `type: <layer>` or `model: <name>`",
                    parent.value_loc(key),
                    ipath,
                    "e.g. `layer: {type: LSTM, units: 32}`",
                )
        return layer

    def parse_outputs(self, data: YamlMap, path: str) -> list[OutputSpec]:
        value = data["outputs"]
        outputs: list[OutputSpec] = []
        if isinstance(value, str):  # a single ref
            value = YamlList([value], loc=data.value_loc("outputs"))
            value.item_locs.append(data.value_loc("outputs"))
        if isinstance(value, YamlList):
            for i in range(len(value)):
                if (r := self.ref(value, i, f"{path}[{i}]")) is not None:
                    outputs.append(
                        OutputSpec(r.node if r.output is None else f"{r.node}_{r.output}", r)
                    )
        elif isinstance(value, YamlMap):
            for name in value:
                if self.name_ok(name, value.key_loc(name), f"{path}.{name}", "output") and (
                    r := self.ref(value, name, f"{path}.{name}")
                ):
                    outputs.append(OutputSpec(name, r))
        else:
            self.type_error(
                data,
                "outputs",
                path,
                "outputs must be a ref, a list of refs or a mapping name: ref",
                value,
            )
            return outputs
        if not value and isinstance(value, (YamlList, YamlMap)):  # not: every ref was bad
            self.error(
                "missing",
                "outputs is empty",
                data.value_loc("outputs"),
                path,
                "name at least one node",
            )
        return outputs

    # -- blocks ---------------------------------------------------------
    def parse_block(self, name: str, data: YamlMap, path: str, loc: Location) -> BlockSpec:
        self.check_keys(data, BLOCK_KEYS, path, f"block '{name}'")
        params: dict[str, Any] = {}
        required: set[str] = set()
        raw = data.get("params")
        if isinstance(raw, YamlList):
            for i, pname in enumerate(raw):
                if isinstance(pname, str):
                    required.add(pname)
                else:
                    self.type_error(raw, i, f"{path}.params[{i}]", "a param must be a name", pname)
        elif isinstance(raw, YamlMap):
            for pname, default in raw.items():
                if default is None:
                    required.add(pname)
                else:
                    params[pname] = default
        elif raw is not None:
            self.type_error(
                data,
                "params",
                f"{path}.params",
                "params must be a mapping of defaults or a list of names",
                raw,
            )
        inputs: list[str] = []
        raw_inputs = data.get("inputs")
        if isinstance(raw_inputs, str):
            raw_inputs = [raw_inputs]
        if isinstance(raw_inputs, list) and all(isinstance(i, str) for i in raw_inputs):
            inputs = list(raw_inputs)
        else:
            self.error(
                "missing" if raw_inputs is None else "type",
                f"block '{name}' needs `inputs`: the names its layers use for what the "
                "block is fed",
                data.value_loc("inputs") if "inputs" in data else loc,
                f"{path}.inputs",
                "e.g. `inputs: [x]`",
            )
        layers = data.get("layers")
        if not isinstance(layers, YamlMap):
            self.error(
                "missing" if layers is None else "type",
                f"block '{name}' needs `layers`, a mapping of nodes",
                data.value_loc("layers") if "layers" in data else loc,
                f"{path}.layers",
            )
            layers = YamlMap(loc=loc)
        outputs: list[Ref] = []
        if "outputs" not in data:
            self.error(
                "missing",
                f"block '{name}' has no `outputs`",
                loc,
                f"{path}.outputs",
                "name the node the block returns",
            )
        else:
            outputs = [o.ref for o in self.parse_outputs(data, f"{path}.outputs")]
        return BlockSpec(name, loc, params, required, inputs, layers, outputs)


def unknown_keys(data: YamlMap, allowed: dict | set, path: str, what: str) -> list[Diagnostic]:
    """An unknown-key error, with a suggestion, for each key of `data` not allowed."""
    return [
        Diagnostic(
            "unknown-key",
            f"unknown key '{key}' in {what}",
            data.key_loc(key),
            _join(path, key),
            did_you_mean(key, allowed),
        )
        for key in data
        if key not in allowed
    ]


def _submap(data: YamlMap, exclude: tuple[str, ...]) -> YamlMap:
    """`data` without some keys, locations kept."""
    out = YamlMap(loc=data.loc)
    for key in data:
        if key not in exclude:
            out.copy_entry(data, key)
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
