"""The one module that reads Keras's graph internals.

Keras 3 has no public API for walking a functional model's graph: a tensor's
producer (`KerasTensor._keras_history`), a layer's calls
(`Operation._inbound_nodes`), a model's nodes by depth, a Sequential's inner
functional graph, and the `keras.src` modules behind `keras.*`, and where fit() starts when a
callback resumes it (`Model._initial_epoch`). Everything
kgraph needs of them is a function here, so that a Keras upgrade that moves
them is mended in one file; tests/test_architecture.py keeps every other
module off `keras.src` and these attributes.

Nothing here imports Keras at module level: the functions are handed Keras
objects, or import `keras.src` inside.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import Any, NamedTuple


class History(NamedTuple):
    """Where a tensor comes from: which operation, which call of it, which output."""

    operation: Any
    node_index: int
    tensor_index: int


def history(tensor: Any) -> History:
    operation, node_index, tensor_index = tensor._keras_history
    return History(operation, node_index, tensor_index)


def producer(tensor: Any) -> Any:
    """The operation (layer) whose call made `tensor`."""
    return tensor._keras_history.operation


def producer_names(tensors: Iterable[Any]) -> list[str]:
    """The names of the layers that made `tensors`: a model's input and output
    names (`[producer_names(model.outputs)]`), which losses are keyed by."""
    return [producer(tensor).name for tensor in tensors]


def output_names(tensors: list[Any]) -> list[str]:
    """The names of one call's several outputs, as refs name them (`encoder.z`):
    a nested model's own output names; else the layers that made them, when
    those differ; else none (an LSTM's outputs are only numbered)."""
    producers = [producer(tensor) for tensor in tensors]
    if len({id(p) for p in producers}) == 1:
        names = list(getattr(producers[0], "output_names", None) or [])
        return names if len(names) == len(tensors) else []
    names = [p.name for p in producers]
    return names if len(set(names)) == len(names) else []


def made_by(tensor: Any) -> Any:
    """The call (Keras Node) that made `tensor`."""
    item = history(tensor)
    return item.operation._inbound_nodes[item.node_index]


def calls(operation: Any) -> list[Any]:
    """Every call (Node) of a layer, in the order it was called, in any model."""
    return list(operation._inbound_nodes)


def calls_in(model: Any, operation: Any) -> list[Any]:
    """The calls (Nodes) of `operation` that belong to `model`'s own graph (a
    layer shared with other models has calls there too)."""
    graph = functional_graph(model)
    if graph is None:
        return []
    own = {id(node) for nodes in nodes_by_depth(graph).values() for node in nodes}
    return [node for node in operation._inbound_nodes if id(node) in own]


def call_outputs(node: Any) -> list[Any]:
    """The tensors one call (Node) made."""
    return list(node.output_tensors)


def call_index(operation: Any, node: Any) -> int:
    return operation._inbound_nodes.index(node)


def functional_graph(model: Any) -> Any:
    """The functional graph of a model (a Sequential keeps one inside), or None
    for a plain layer or a subclassed model."""
    if hasattr(model, "_nodes_by_depth"):
        return model
    inner = getattr(model, "_functional", None)
    return inner if inner is not None and hasattr(inner, "_nodes_by_depth") else None


def has_graph(model: Any) -> bool:
    """Whether `model` is itself a graph of layers (a functional model)."""
    return hasattr(model, "_nodes_by_depth")


def is_functional(model: Any) -> bool:
    """A functional model itself (not a Sequential, not a subclass)."""
    from keras.src.models.functional import Functional

    return type(model) is Functional


def nodes_by_depth(graph: Any) -> dict[int, list[Any]]:
    """A functional graph's calls by depth (0: the outputs' calls)."""
    return graph._nodes_by_depth


def operations(graph: Any) -> list[Any]:
    """A functional graph's operations in topological order, its inputs first
    and in order."""
    inputs = [producer(tensor) for tensor in graph.inputs]
    seen = {id(op) for op in inputs}
    return list(dict.fromkeys(inputs)) + [op for op in graph._operations if id(op) not in seen]


def is_graph_op(operation: Any) -> bool:
    """A keras.ops operation in a graph (`Add`, `Cumsum`...), not a layer."""
    from keras.src.layers.layer import Layer
    from keras.src.ops.operation import Operation

    return isinstance(operation, Operation) and not isinstance(operation, Layer)


def op_function_name(operation: Any) -> str:
    """The keras.ops function behind a graph op, as a spec names it: `Add` ->
    `add`, `OnesLike` -> `ones_like`, `Resize` -> `image.resize`, `FFT2` ->
    `fft2`: the first of `op_function_names` the catalog has."""
    from kgraph_cli.ops_catalog import ops_catalog

    names = op_function_names(operation)
    return next((name for name in names if name in ops_catalog()), names[0])


def model_operations(model: Any) -> list[Any]:
    """A model's layers and keras.ops operations, in Keras's summary order."""
    return list(getattr(model, "operations", model.layers))


def is_keras_tensor(value: Any) -> bool:
    from keras.src.backend import KerasTensor

    return isinstance(value, KerasTensor)


def flatten(structure: Any) -> list[Any]:
    """The leaves of a nested structure (lists, tuples, dicts), as Keras sees them."""
    from keras.src import tree

    return tree.flatten(structure)


def keras_tensors(structure: Any) -> list[Any]:
    return [leaf for leaf in flatten(structure) if is_keras_tensor(leaf)]


def is_automatic_mask(value: Any, source: Any) -> bool:
    """Whether a mask argument of a call is the one Keras takes from the input
    itself (so a spec need not say it)."""
    from keras.src import backend, tree

    if all(leaf is None for leaf in tree.flatten(value)):
        return True
    if source is None:
        return False
    try:
        expected = tree.map_structure(backend.get_keras_mask, source)
        got, want = tree.flatten(value), tree.flatten(expected)
    except Exception:  # a structure Keras cannot pair up: not its automatic mask
        return False
    return len(got) == len(want) and all(a is b for a, b in zip(got, want, strict=True))


def string_objects(kind: str) -> dict[str, Any]:
    """What `keras.<kind>.get()` resolves a string to (`relu`, `glorot_uniform`,
    `l2`...): Keras's own table, `keras.src.<kind>.ALL_OBJECTS_DICT`; empty
    when Keras has none for `kind`."""
    try:
        return dict(importlib.import_module(f"keras.src.{kind}").ALL_OBJECTS_DICT)
    except (ImportError, AttributeError):
        return {}


def shape_text(shape: Any) -> str:
    """`(None, 28, 28, 1)`, `(None,)`: a shape as Keras's summary writes it."""
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"


def tensor_text(tensor: Any) -> str:
    """A tensor's shape, and its dtype unless float32: `(None, 8) int32`."""
    dtype = str(getattr(tensor, "dtype", "float32"))
    shape = shape_text(tensor.shape)
    return shape if dtype == "float32" else f"{shape} {dtype}"


def layer_count(model: Any) -> int:
    """The layers of a model, its Input layers not counted."""
    return sum(type(layer).__name__ != "InputLayer" for layer in model.layers)


def op_function_names(operation: Any) -> list[str]:
    """The names the keras.ops function behind a graph op may have, most
    likely first: every capital starting a word, then with acronyms kept whole (`FFT2`
    -> `fft2`, `RGBToHSV` -> `image.rgb_to_hsv`), run together (`IsIn` ->
    `isin`), and `...Norm` as `..._normalization` (`RMSNorm`). Which one
    makes the operation is for the caller to check."""
    cls = type(operation)
    prefix = "image." if cls.__module__.endswith(".image") else ""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls.__name__).lower()
    names = [
        prefix + re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower(),
        prefix + words,
        prefix + words.replace("_", ""),
        prefix + re.sub(r"_norm$", "_normalization", words),
    ]
    return list(dict.fromkeys(names))


def application_layer_classes() -> dict[str, type]:
    """The classes defined in the modules of keras.applications, by their full
    name (`keras.src.applications.convnext.LayerScale`)."""
    import pkgutil

    import keras.src.applications as applications

    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(applications.__path__):
        module = importlib.import_module(f"{applications.__name__}.{info.name}")
        for name, obj in sorted(vars(module).items()):
            if isinstance(obj, type) and obj.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def start_fit_at_epoch(model: Any, epoch: int) -> None:
    """Make the running fit() continue at `epoch` (0-based), as Keras's own
    BackupAndRestore does from on_train_begin: fit() reads this attribute
    after the callbacks' on_train_begin."""
    model._initial_epoch = epoch
