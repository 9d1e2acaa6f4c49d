"""The nodes of a model or block: a layer (`type:`), a keras.ops function
(`op:`), a shared layer (`share:`), a model call (`model:`), a block
(`block:`) or a keras.applications model (`application:`), with their inputs (`from:`),
call arguments, and the layers a wrapper holds."""

from __future__ import annotations

from kgraph_cli.errors import Location
from kgraph_cli.keras_classes import LAYER_ARGUMENTS
from kgraph_cli.spec.fields import FieldChecker, positive_int, submap
from kgraph_cli.spec.keys import NODE_COMMON_KEYS, NODE_EXTRA_KEYS, NODE_KIND_KEYS
from kgraph_cli.spec.loader import YamlList, YamlMap
from kgraph_cli.spec.model import (
    ApplicationSpec,
    InputForm,
    LayerSpec,
    ModelCall,
    NodeKind,
    NodeSpec,
)


class NodeParser(FieldChecker):
    """Reads nodes into `NodeSpec`s, recording diagnostics."""

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
                f"node '{name}' says neither `type`, `op`, `share`, `model`, `block` nor "
                "`application`",
                loc,
                path,
                "add `type: <Keras layer>` (or op/share/model/block/application)",
            )
            return None
        if len(kinds) > 1:
            self.error(
                "conflict",
                f"node '{name}' has both `{kinds[0]}` and `{kinds[1]}`",
                body.key_loc(kinds[1]),
                f"{path}.{kinds[1]}",
                "a node is exactly one of: a layer (type), a keras.ops function (op), "
                "a shared layer (share), a model call (model), a block or a "
                "keras.applications model (application)",
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
            args = submap(body, ("type", "from", "call", "adapt"))
            node.adapt = "adapt" in body and bool(self.boolean(body, "adapt", f"{path}.adapt"))
            node.layer = self.layer_spec(target, args, body, path, node.target_loc)
        elif kind is NodeKind.OP:  # every other key is a constant argument
            node.op_args = submap(body, ("op", "from"))
        elif kind is NodeKind.APPLICATION:  # every other key is a constructor argument
            preprocess = "preprocess" not in body or self.boolean(
                body, "preprocess", f"{path}.preprocess"
            )
            node.application = ApplicationSpec(
                target,
                submap(body, ("application", "from", *NODE_EXTRA_KEYS[kind])),
                node.target_loc,
                preprocess is not False,
                self._trainable(body, path),
            )
        else:
            self.check_keys(
                body,
                {kind.value, *NODE_COMMON_KEYS, *NODE_EXTRA_KEYS[kind]},
                path,
                f"a `{kind.value}` node",
            )
        if "call" in body and (call := self.mapping(body, "call", f"{path}.call", "call")):
            node.call_args = call
        if kind is NodeKind.MODEL:
            node.model_call = ModelCall(target, node.target_loc, self._trainable(body, path))
        if kind is NodeKind.BLOCK:
            self._block_args(node, body, path)
            if "repeat" in body:
                if positive_int(body["repeat"]):
                    node.repeat = body["repeat"]
                else:
                    self.type_error(
                        body,
                        "repeat",
                        f"{path}.repeat",
                        "repeat must be a positive integer",
                        body["repeat"],
                    )
        if node.arg_sets is not None and "repeat" in body and node.repeat != len(node.arg_sets):
            self.error(
                "block-repeat",
                f"repeat is {node.repeat} but `args` lists {len(node.arg_sets)} argument sets",
                body.value_loc("repeat"),
                f"{path}.repeat",
                "drop `repeat`: a list of argument sets repeats the block once per set",
            )
        return node

    def _block_args(self, node: NodeSpec, body: YamlMap, path: str) -> None:
        """`args: {...}` for every repetition, or `args: [{...}, {...}]`: one set each."""
        if "args" not in body:
            return
        value = body["args"]
        if not isinstance(value, YamlList):
            if args := self.mapping(body, "args", f"{path}.args", "args"):
                node.block_args = args
            return
        if not value:
            self.type_error(body, "args", f"{path}.args", "`args` is an empty list", value)
            return
        sets = [
            self.mapping(value, i, f"{path}.args[{i}]", "an argument set")
            for i in range(len(value))
        ]
        node.arg_sets = [s if s is not None else YamlMap(loc=value.loc) for s in sets]
        node.repeat = len(node.arg_sets)

    def _trainable(self, body: YamlMap, path: str) -> bool | None:
        if body.get("trainable") is None:
            return None
        return self.boolean(body, "trainable", f"{path}.trainable")

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
            for key, refs in value.items():
                if isinstance(refs, YamlList):  # initial_state: [enc.1, enc.2]
                    node.list_keys.add(key)
                    if not refs:
                        self.error(
                            "type",
                            f"`{key}` is an empty list",
                            self.where(value, key),
                            f"{path}.{key}",
                            "name at least one input or node",
                        )
                    for i in range(len(refs)):
                        if (r := self.ref(refs, i, f"{path}.{key}[{i}]")) is not None:
                            node.input_keys.append(key)
                            node.inputs.append(r)
                elif (r := self.ref(value, key, f"{path}.{key}")) is not None:
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
                    inner_args = submap(inner, ("type", "from"))
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
