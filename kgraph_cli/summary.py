"""Facts about a built Keras model, as plain data (the `summary` command)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kgraph_cli.keras_graph import (
    calls,
    has_graph,
    is_graph_op,
    model_operations,
    nodes_by_depth,
    op_function_name,
    producer,
    shape_text,
)
from kgraph_cli.keras_graph import history as keras_history


@dataclass
class LayerRow:
    name: str
    type: str
    output_shape: str
    params: int
    trainable: bool
    connected_to: list[str]
    # Rows of a nested model's own layers, when expanded.
    layers: list[LayerRow] = field(default_factory=list)


@dataclass
class TensorInfo:
    name: str
    shape: list[int | None]
    dtype: str


@dataclass
class ModelSummary:
    name: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    total_bytes: int
    trainable_bytes: int
    non_trainable_bytes: int
    # The Keras dtype policy its layers compute in (train.precision).
    precision: str = "float32"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize_model(model: Any, expand: bool = False) -> ModelSummary:
    """Layer table and parameter totals of a functional model."""
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    return ModelSummary(
        name=model.name,
        inputs=[_tensor_info(t) for t in model.inputs],
        outputs=[_tensor_info(t) for t in model.outputs],
        layers=_rows(model, expand),
        total_params=trainable[0] + non_trainable[0],
        trainable_params=trainable[0],
        non_trainable_params=non_trainable[0],
        total_bytes=trainable[1] + non_trainable[1],
        trainable_bytes=trainable[1],
        non_trainable_bytes=non_trainable[1],
        precision=getattr(model.dtype_policy, "name", "float32"),
    )


def _count(weights: list) -> tuple[int, int]:
    """(number of values, bytes) of a list of variables, each counted once."""
    seen: set[int] = set()
    count = size = 0
    for weight in weights:
        if id(weight) in seen:
            continue
        seen.add(id(weight))
        n = 1
        for dim in weight.shape:
            n *= int(dim)
        count += n
        size += n * _itemsize(weight.dtype)
    return count, size


def _itemsize(dtype: Any) -> int:
    import numpy as np

    return np.dtype(str(dtype)).itemsize if str(dtype) != "bfloat16" else 2


def _tensor_info(tensor: Any) -> TensorInfo:
    return TensorInfo(
        name=producer(tensor).name,
        shape=[None if d is None else int(d) for d in tensor.shape],
        dtype=str(tensor.dtype),
    )


def _rows(model: Any, expand: bool) -> list[LayerRow]:
    relevant = {id(n) for nodes in nodes_by_depth(model).values() for n in nodes}
    rows = []
    for layer in model_operations(model):
        inner = _inner_model(layer)
        op = is_graph_op(layer)
        rows.append(
            LayerRow(
                name=layer.name,
                type=f"ops.{op_function_name(layer)}" if op else type(layer).__name__,
                output_shape=_output_shape(layer, relevant),
                params=0 if op or not layer.built else layer.count_params(),
                trainable=not op and layer.trainable,
                connected_to=_connections(layer, relevant),
                layers=_rows(inner, expand) if inner is not None and expand else [],
            )
        )
    return rows


def _inner_model(layer: Any) -> Any:
    """The functional model a row stands for: the layer itself, or the model a
    wrapper (TimeDistributed, Bidirectional) wraps."""
    for candidate in (layer, getattr(layer, "layer", None)):
        if candidate is not None and has_graph(candidate):
            return candidate
    return None


def _output_shape(layer: Any, relevant: set[int]) -> str:
    nodes = [n for n in calls(layer) if id(n) in relevant] or calls(layer)
    if not nodes:
        return "?"
    outputs = nodes[0].output_tensors
    shapes = [shape_text(t.shape) for t in outputs]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _connections(layer: Any, relevant: set[int]) -> list[str]:
    found = []
    for node in calls(layer):
        if id(node) not in relevant:
            continue
        for tensor in node.input_tensors:
            history = keras_history(tensor)
            name = history.operation.name
            # Keras's notation, shortened: `enc[1]` is the second call of a
            # shared layer, `lstm[0][2]` the third output of its first call.
            if history.tensor_index:
                name += f"[{history.node_index}][{history.tensor_index}]"
            elif history.node_index:
                name += f"[{history.node_index}]"
            found.append(name)
    return found
