"""Keras model -> spec data: the walk over a model's functional graph.

The graph of a model (a Sequential model: its functional equivalent) is
walked node by node, inputs first, in the order of Keras's summary: each call
of a layer becomes a spec node, the first call of a layer a `type:` node and
later calls `share:` nodes; each call of a keras.ops operation (`x * 2`) an
`op:` node (ops.py); nested functional models become entries of
`models:` (identical ones share an entry), called with `model:`; a wrapper's
layer is `{type: ...}` or `{model: ...}`. Call arguments Keras fills in by
itself (its masks, a call's defaults) are left out. The layers' arguments are
the config minimiser's (configs.py); Keras's graph is read through
kgraph_cli.keras_graph.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any

from kgraph_cli import keras_graph
from kgraph_cli.importer.configs import ConfigMinimiser, class_path, same, without_names
from kgraph_cli.importer.ops import OpNodes
from kgraph_cli.importer.result import ImportResult, ModelImportError, Renamed
from kgraph_cli.spec.model import NAME_PATTERN, SPEC_VERSION

if TYPE_CHECKING:
    from kgraph_cli.layers import LayerRegistry


def model_to_spec(model: Any, plugins: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """A kgraph spec (plain data) that rebuilds `model`'s architecture."""
    return import_keras_model(model, plugins).data


def import_keras_model(model: Any, plugins: list[str] | tuple[str, ...] = ()) -> ImportResult:
    """`model_to_spec` with the renamed nodes and notes."""
    from kgraph_cli.layers import LayerRegistry

    return _Importer(LayerRegistry(plugins)).run(model)


class _Importer:
    """One import: the walk's state across a model and the models it nests."""

    def __init__(self, registry: LayerRegistry) -> None:
        from kgraph_cli.tf import import_keras

        self.keras = import_keras()
        self.registry = registry
        self.configs = ConfigMinimiser(self.keras, registry, self._wrapped)
        self.ops = OpNodes(self.keras)
        # Models of `models:`, by entry name, and for each nested model object
        # the entry that describes it.
        self.entries: dict[str, dict[str, Any]] = {}
        self.entry_of: dict[int, str] = {}
        self.top_name = ""
        self.renamed: list[Renamed] = []
        self.notes: list[str] = []
        self.layer_names: dict[int, str] = {}

    def run(self, model: Any) -> ImportResult:
        """The spec of `model`, with the `models:` its nested models became."""
        self._check_model(model, "the model")
        self.top_name = _identifier(model.name, "model")
        body = self._graph(model, "")
        data: dict[str, Any] = {"kgraph": SPEC_VERSION, "name": self.top_name}
        if self.entries:
            data["default"] = self.top_name
            data["models"] = self.entries
        data.update(body)
        return ImportResult(data, self.renamed, self.notes, self.layer_names)

    # -- models --------------------------------------------------------------
    def _check_model(self, model: Any, what: str) -> None:
        if type(model) is self.keras.Sequential:
            if keras_graph.functional_graph(model) is None:
                raise ModelImportError(
                    f"{what} '{model.name}' is a Sequential model without an input shape",
                    "build it first: start it with keras.Input(shape=...)",
                )
            return
        if not keras_graph.is_functional(model):
            raise ModelImportError(
                f"{what} '{model.name}' is a subclassed model ({class_path(type(model))}): "
                "its call() is Python code, not a graph of layers",
                "only functional and Sequential models can be imported",
            )

    def _graph(self, model: Any, path: str) -> dict[str, Any]:
        """inputs/layers/outputs of a functional or Sequential model."""
        label = path.partition("#")[0] or self.top_name  # for messages
        fn = keras_graph.functional_graph(model)
        names = _Names()
        inputs: dict[str, Any] = {}
        node_names: dict[int, str] = {}  # id(Node) -> spec name
        for tensor in fn.inputs:
            layer = keras_graph.producer(tensor)
            if type(layer) is not self.keras.layers.InputLayer:
                raise ModelImportError(
                    f"an input of '{model.name}' is the output of layer '{layer.name}', "
                    "not a keras.Input",
                    "a spec's model inputs are inputs: rebuild the model from keras.Input",
                )
            name = self._name(names, layer.name, path)
            inputs[name] = _input_spec(layer)
            node_names[id(keras_graph.made_by(tensor))] = name

        needed = self._needed_nodes(fn)
        order = _topological(fn, needed)
        layer_nodes: dict[int, str] = {}  # id(layer) -> name of its `type:`/`model:` node
        layers: dict[str, Any] = {}
        op_calls: set[int] = set()  # id() of the keras.ops operations
        for node in order:
            op = node.operation
            if id(node) in node_names:
                continue
            first = layer_nodes.get(id(op))
            if first is None:
                name = self._name(names, op.name, path)
                layer_nodes[id(op)] = name
                self.layer_names[id(op)] = name
            else:
                name = names.unique(f"{first}_{_call_number(op, node, needed)}")
            node_names[id(node)] = name
            if keras_graph.is_graph_op(op):  # `x * 2`, `ops.concatenate(...)`
                layers[name] = self.ops.body(
                    node, lambda tensor: _ref(tensor, node_names), name, label
                )
                # Each op node makes an operation of its own: a later call of
                # an operation object is not a shared layer's call.
                op_calls.add(id(op))
                if first is not None:
                    self.notes.append(
                        f"{label}: operation '{op.name}' is called again as op node '{name}'"
                    )
                continue
            body: dict[str, Any] = {}
            if first is not None:
                body["share"] = first
            elif self._is_model(op):
                body["model"] = self._entry(op)
                if not op.trainable:
                    body["trainable"] = False
            else:
                body.update(self.configs.layer_body(op, f"{label}.{name}"))
            inputs_form, call = self._node_inputs(node, node_names, name)
            body["from"] = inputs_form
            if call:
                body["call"] = call
            layers[name] = body
        outputs = self._outputs(fn, node_names, layer_nodes, op_calls, label)
        return {"inputs": inputs, "layers": layers, "outputs": outputs}

    def _needed_nodes(self, fn: Any) -> set[int]:
        """Ids of the nodes the outputs depend on through what the spec writes
        (not through masks Keras adds by itself, e.g. Embedding's mask_zero)."""
        needed: set[int] = set()
        stack = [keras_graph.made_by(t) for t in fn.outputs]
        while stack:
            node = stack.pop()
            if id(node) in needed:
                continue
            needed.add(id(node))
            if node.is_input:
                continue
            args, kwargs = self._call_arguments(node)
            for tensor in keras_graph.keras_tensors((args, kwargs)):
                stack.append(keras_graph.made_by(tensor))
        return needed

    def _call_arguments(self, node: Any) -> tuple[tuple, dict]:
        """The node's call arguments without those Keras filled in itself."""
        op = node.operation
        args = node.arguments.args
        kwargs = dict(node.arguments.kwargs)
        if not isinstance(op, self.keras.layers.Layer):
            return args, kwargs
        signature = _call_signature(op)
        for key, value in list(kwargs.items()):
            param = signature.get(key)
            if (
                param is not None
                and not keras_graph.keras_tensors(value)
                and same(value, param.default)
            ):
                # The call's default: what Keras passes (`training`) when the call
                # does not say.
                del kwargs[key]
            elif key == "mask" or key.endswith("_mask"):
                source = _mask_source(key, args, kwargs, signature)
                if keras_graph.is_automatic_mask(value, source):
                    del kwargs[key]
        return args, kwargs

    def _is_model(self, op: Any) -> bool:
        return isinstance(op, self.keras.Model)

    def _entry(self, model: Any) -> str:
        """The `models:` entry for a nested model (made on first use)."""
        if id(model) in self.entry_of:
            return self.entry_of[id(model)]
        self._check_model(model, "nested model")
        base = _identifier(model.name, "model")
        # Renamed nodes are recorded under a provisional path until the entry
        # has its name (an identical entry may exist already).
        path = f"models.{base}#{id(model)}"
        body = self._graph(model, path)
        name = next((n for n, existing in self.entries.items() if existing == body), None)
        if name is not None:  # another instance of the same architecture
            self._move_renamed(path, None)
            self.entry_of[id(model)] = name
            return name
        name = base
        number = 1
        while name in self.entries or name == self.top_name:
            number += 1
            name = f"{base}_{number}"
        self._move_renamed(path, f"models.{name}")
        if name != model.name:
            self.notes.append(f"nested model '{model.name}' is `models: {name}`")
        self.entries[name] = body
        self.entry_of[id(model)] = name
        return name

    def _move_renamed(self, old: str, new: str | None) -> None:
        self.renamed = [
            r if r.model != old else Renamed(new, r.name, r.keras_name)
            for r in self.renamed
            if r.model != old or new is not None
        ]

    def _name(self, names: _Names, keras_name: str, path: str) -> str:
        name = names.unique(_identifier(keras_name, "layer"))
        if name != keras_name:
            self.renamed.append(Renamed(path, name, keras_name))
        return name

    def _wrapped(self, layer: Any, key: str, config: Any, defaults: dict[str, Any] | None) -> Any:
        """A wrapper's `layer:` / `backward_layer:` as {type: ...} or {model: ...};
        None for the backward copy a Bidirectional makes by itself."""
        if config is None:
            return None
        if key == "layer":
            inner = getattr(layer, "forward_layer", None) or layer.layer
        else:
            if defaults is not None and same(
                without_names(config), without_names(defaults.get(key))
            ):
                return None  # the backward copy the wrapper makes by itself
            inner = layer.backward_layer
        if self._is_model(inner):
            sub: dict[str, Any] = {"model": self._entry(inner)}
            if not inner.trainable:
                sub["trainable"] = False
            return sub
        body = self.configs.layer_body(inner, f"{key} of '{layer.name}'")
        if key == "layer":
            for arg in self.configs.forced_by_wrapper(layer, body):
                del body[arg]
        return body

    # -- nodes -----------------------------------------------------------
    def _node_inputs(self, node: Any, node_names: dict[int, str], name: str) -> tuple[Any, dict]:
        """`from:` (a ref, a list, or keyword refs) and `call:` of a node."""
        op = node.operation
        args, kwargs = self._call_arguments(node)
        tensor_kwargs = {k: v for k, v in kwargs.items() if keras_graph.keras_tensors(v)}
        call = {k: _lists(v) for k, v in kwargs.items() if k not in tensor_kwargs}
        for key, value in tensor_kwargs.items():
            if not keras_graph.is_keras_tensor(value) and not _tensor_list(value):
                raise ModelImportError(
                    f"layer '{op.name}' is called with {key}= a structure of tensors",
                    "a spec passes one tensor or a list of tensors per keyword "
                    "(`from: {sequences: x, initial_state: [h, c]}`)",
                )

        def ref(tensor: Any) -> str:
            return _ref(tensor, node_names)

        if not tensor_kwargs and len(args) == 1 and keras_graph.is_keras_tensor(args[0]):
            return ref(args[0]), call
        if (
            not tensor_kwargs
            and len(args) == 1
            and isinstance(args[0], (list, tuple))
            and args[0]
            and all(keras_graph.is_keras_tensor(t) for t in args[0])
        ):
            return [ref(t) for t in args[0]], call
        # Several tensors: by the names of the call's parameters.
        params = [p for p in _call_signature(op) if p not in ("self",)]
        keyword: dict[str, str | list[str]] = {}
        for i, value in enumerate(args):
            if not keras_graph.is_keras_tensor(value) or i >= len(params):
                raise ModelImportError(
                    f"layer '{op.name}' (node '{name}') is called with positional arguments "
                    "a spec cannot write",
                    "a spec calls layers with one tensor, a list of tensors, or keyword tensors",
                )
            keyword[params[i]] = ref(value)
        for key, value in tensor_kwargs.items():
            keyword[key] = [ref(t) for t in value] if _tensor_list(value) else ref(value)
        return keyword, call

    def _outputs(
        self,
        fn: Any,
        node_names: dict[int, str],
        layer_nodes: dict[int, str],
        op_calls: set[int],
        label: str,
    ) -> list[str] | dict[str, str]:
        """A list of refs; a mapping where a list would make kgraph add Identity
        layers (an output of a shared layer's later call, one of several outputs)."""
        refs = [_ref(t, node_names) for t in fn.outputs]
        keys = []
        for tensor, ref in zip(fn.outputs, refs, strict=True):
            op = keras_graph.producer(tensor)
            if id(op) in op_calls:  # named after its node, whichever call it is
                keys.append(node_names[id(keras_graph.made_by(tensor))])
            else:
                keys.append(layer_nodes.get(id(op), ref))
        if keys == refs:
            return refs
        outputs: dict[str, str] = {}
        for key, ref in zip(keys, refs, strict=True):
            if key in outputs:
                key = ref.replace(".", "_")
                self.notes.append(
                    f"{label}: output '{ref}' gets an Identity layer "
                    f"named '{key}' (two outputs of one layer)"
                )
            outputs[key] = ref
        return outputs


# -- names -------------------------------------------------------------------------


class _Names:
    """Unique identifiers within one model (its inputs and nodes)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def unique(self, name: str) -> str:
        candidate, number = name, 1
        while candidate in self.used:
            number += 1
            candidate = f"{name}_{number}"
        self.used.add(candidate)
        return candidate


def _identifier(name: str, what: str) -> str:
    """A Keras name as a spec identifier ([A-Za-z_][A-Za-z0-9_]*)."""
    if NAME_PATTERN.match(name):
        return name
    text = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not text or text[0].isdigit():
        text = f"_{text}"
    if not NAME_PATTERN.match(text):  # pragma: no cover - the substitution prevents it
        raise ModelImportError(f"cannot turn {what} name {name!r} into an identifier")
    return text


def _ref(tensor: Any, node_names: dict[int, str]) -> str:
    """The spec ref of a tensor: its node's name, `.N` for one of several outputs."""
    node = keras_graph.made_by(tensor)
    name = node_names[id(node)]
    index = keras_graph.history(tensor).tensor_index
    return f"{name}.{index}" if len(node.outputs) > 1 else name


# -- calls and their order ---------------------------------------------------------


def _call_number(op: Any, node: Any, needed: set[int]) -> int:
    """1-based position of a call among the layer's calls in this model."""
    calls = [n for n in keras_graph.calls(op) if id(n) in needed]
    return calls.index(node) + 1


def _call_signature(op: Any) -> dict[str, inspect.Parameter]:
    try:
        params = inspect.signature(op.call).parameters
    except (TypeError, ValueError):
        return {}
    return {k: p for k, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _mask_source(key: str, args: tuple, kwargs: dict, signature: dict) -> Any:
    """The tensor argument whose Keras mask fills `key` (`mask`, `query_mask`...)."""
    names = list(signature)
    if key == "mask":
        return args[0] if args else None
    arg = key[: -len("_mask")]
    if arg in kwargs:
        return kwargs[arg]
    if arg in names and names.index(arg) < len(args):
        return args[names.index(arg)]
    return None


def _lists(value: Any) -> Any:
    """A call argument as YAML data: tuples as lists too (which
    spec.values.plain, made for YAML data, leaves alone)."""
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _topological(fn: Any, needed: set[int]) -> list[Any]:
    """The needed nodes, inputs first, as Keras's summary lists them: by depth,
    then by the order of the model's operations."""
    position = {id(op): i for i, op in enumerate(fn.operations)}
    nodes = []
    for depth, depth_nodes in keras_graph.nodes_by_depth(fn).items():
        for node in depth_nodes:
            if id(node) in needed:
                op = node.operation
                order = (-depth, position.get(id(op), 0), keras_graph.call_index(op, node))
                nodes.append((*order, node))
    nodes.sort(key=lambda item: item[:3])
    return [item[3] for item in nodes]


def _input_spec(layer: Any) -> Any:
    """An input as a spec writes it: its shape, or a mapping with its dtype,
    sparseness and batch size where they are not the defaults."""
    config = layer.get_config()
    if config.get("ragged"):
        raise ModelImportError(f"input '{layer.name}' is ragged, which a spec cannot declare")
    if config.get("optional"):
        raise ModelImportError(f"input '{layer.name}' is optional, which a spec cannot declare")
    batch_shape = list(config.get("batch_shape") or layer.batch_shape)
    shape = [None if d is None else int(d) for d in batch_shape[1:]]
    dtype = config.get("dtype") or "float32"
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", "float32")
    spec: dict[str, Any] = {"shape": shape}
    if dtype != "float32":
        spec["dtype"] = dtype
    if config.get("sparse"):
        spec["sparse"] = True
    if batch_shape[0] is not None:
        spec["batch_size"] = int(batch_shape[0])
    return shape if len(spec) == 1 else spec


def _tensor_list(value: Any) -> bool:
    """A non-empty list (or tuple) of tensors: `initial_state=[h, c]`."""
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(keras_graph.is_keras_tensor(t) for t in value)
    )
