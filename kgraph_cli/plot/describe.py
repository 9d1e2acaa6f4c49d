"""A built model's graph as plain data, for the renderers to draw.

`describe_model` walks the model once, through kgraph_cli.keras_graph, and
returns a `DrawnGraph`: its boxes (`GraphNode`: a layer, an input, a
collapsed nested model), arrows (`GraphEdge`, numbered by call when a layer
is shared) and frames (`GraphCluster`: an expanded nested model). Nothing
here imports TensorFlow: the model arrives built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from kgraph_cli import keras_graph

# Edges of the calls of a shared layer: call 1, call 2... each its own colour.
CALL_COLORS = ("#1f6fb4", "#d1495b", "#2e9d4a", "#8e44ad", "#e67e22", "#16a2a2")
EDGE_COLOR = "#555555"


@dataclass
class GraphNode:
    """One box: a layer (called once or several times), an input, or a collapsed model."""

    id: str  # unique in the picture: the layer's path, "encoder/conv1"
    name: str
    kind: str  # input, layer, op, model
    class_name: str  # "Dense", "Input 1/3", "model encoder, 6 layers", "TimeDistributed(LSTM)"
    shapes: list[str]  # output shapes; one per call ("call 2: ...") when calls differ
    dtype: str
    activation: str | None
    cluster: str | None  # the expanded nested model it is drawn in
    calls: int = 1
    outputs: list[str] = field(default_factory=list)  # "output 1/2: priority"


@dataclass
class GraphEdge:
    """A tensor from one node to another; calls are numbered when a layer is shared."""

    source: str
    target: str
    call: int | None = None  # which call of a shared target this input feeds
    source_call: int | None = None  # which call of a shared source made the tensor
    output: str | None = None  # which output of a multi-output source, as a spec ref

    @property
    def call_label(self) -> str:
        """`call 2`, or `call 1 → call 2` between two shared layers; empty otherwise."""
        if self.source_call and self.call:
            return f"call {self.source_call} \u2192 call {self.call}"
        if self.source_call or self.call:
            return f"call {self.source_call or self.call}"
        return ""

    @property
    def label(self) -> str:
        """The edge's text: which output (`lstm.1`) and which call, if any."""
        return ", ".join(part for part in (self.output, self.call_label) if part)

    @property
    def color(self) -> str:
        """The colour of its call, or the plain edge colour."""
        number = self.call or self.source_call
        return CALL_COLORS[(number - 1) % len(CALL_COLORS)] if number else EDGE_COLOR


@dataclass
class GraphCluster:
    """An expanded nested model (or a wrapper's model): a box around its layers."""

    id: str
    name: str
    title: str
    parent: str | None
    shapes: list[str] = field(default_factory=list)  # of the nested model's call(s)


@dataclass
class DrawnGraph:
    """Everything the renderers draw, computed once from a built model."""

    name: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    clusters: list[GraphCluster]
    inputs: list[str]  # node ids of the model inputs, in order

    def to_json(self) -> dict[str, Any]:
        """The graph as data (`kgraph plot --format tree --json`), edges with their labels."""
        data = asdict(self)
        for edge, row in zip(self.edges, data["edges"], strict=True):
            row["label"] = edge.label
        return data


def describe_model(
    model: Any,
    expand_nested: bool = False,
    spec_models: Callable[[str | None], dict[str, str]] | None = None,
) -> DrawnGraph:
    """The nodes, edges and (with `expand_nested`) clusters of a built model.

    `spec_models(model_name)` may map the layer names of a spec model's nested
    instances to the spec models they instantiate, for labels ("model encoder").
    """
    builder = _GraphBuilder(expand_nested, spec_models or (lambda name: {}))
    return builder.describe(model)


class _GraphBuilder:
    def __init__(self, expand: bool, spec_models: Callable[[str | None], dict[str, str]]) -> None:
        self.expand = expand
        self.spec_models = spec_models
        self.nodes: list[GraphNode] = []
        self.edges: list[GraphEdge] = []
        self.clusters: list[GraphCluster] = []
        self._relevant: dict[int, set[int]] = {}

    def describe(self, model: Any) -> DrawnGraph:
        graph = keras_graph.functional_graph(model)
        if graph is None:  # a subclassed model: one opaque box
            class_name = type(model).__name__
            node = GraphNode(model.name, model.name, "model", class_name, [], "", None, None)
            return DrawnGraph(model.name, [node], [], [], [])
        self._add_model(graph, "", None, model.name, top=True)
        by_id = {node.id: node for node in self.nodes}
        count = len(graph.outputs)
        names = list(getattr(graph, "output_names", None) or [])
        for i, tensor in enumerate(graph.outputs):
            source = keras_graph.history(tensor)
            node_id, _ = self._resolve_source("", source.operation, source.tensor_index)
            node = by_id[node_id]
            name = names[i] if i < len(names) else source.operation.name
            mark = f"output {i + 1} of {count}" if count > 1 else "output"
            if name != node.name:
                mark += f": {name}"
            if node.calls > 1 and node.cluster is None:  # which call of a shared layer
                calls = [id(n) for n in self._calls(graph, source.operation)]
                made_by = keras_graph.made_by(tensor)
                mark += f" (call {calls.index(id(made_by)) + 1})"
            node.outputs.append(mark)
        inputs = keras_graph.producer_names(graph.inputs)
        return DrawnGraph(model.name, self.nodes, self.edges, self.clusters, inputs)

    def _add_model(
        self, graph: Any, prefix: str, cluster: str | None, spec_model: str | None, top: bool
    ) -> None:
        spec_names = self.spec_models(spec_model)
        operations = keras_graph.operations(graph)
        for op in operations:
            inner = self._expanded(op)
            if inner is None:
                self.nodes.append(self._node(graph, op, prefix, cluster, spec_names, top))
                continue
            cluster_id = prefix + op.name
            shapes = self._node(graph, op, prefix, cluster, spec_names, top).shapes
            self.clusters.append(
                GraphCluster(cluster_id, op.name, _model_title(op, spec_names), cluster, shapes)
            )
            self._add_model(
                inner, cluster_id + "/", cluster_id, spec_names.get(inner.name), top=False
            )
        for op in operations:
            calls = self._calls(graph, op)
            for number, node in enumerate(calls, 1):
                for position, tensor in enumerate(node.input_tensors):
                    self._add_edge(graph, prefix, op, position, tensor, number, len(calls))

    def _add_edge(
        self, graph: Any, prefix: str, op: Any, position: int, tensor: Any, call: int, calls: int
    ) -> None:
        history = keras_graph.history(tensor)
        source = history.operation
        if source is None:
            return
        source_calls = self._calls(graph, source)
        source_call = None
        if len(source_calls) > 1:
            made_by = keras_graph.made_by(tensor)
            source_call = [id(n) for n in source_calls].index(id(made_by)) + 1
        source_id, output = self._resolve_source(prefix, source, history.tensor_index)
        self.edges.append(
            GraphEdge(
                source_id,
                self._resolve_target(prefix, op, position),
                call if calls > 1 else None,
                source_call,
                output,
            )
        )

    def _resolve_source(self, prefix: str, op: Any, index: int) -> tuple[str, str | None]:
        """The node that draws output `index` of `op`, inside expanded models; and
        which of its outputs it is when it has several."""
        while (inner := self._expanded(op)) is not None:
            prefix += op.name + "/"
            history = keras_graph.history(inner.outputs[index])
            op, index = history.operation, history.tensor_index
        outputs = keras_graph.calls(op)[0].output_tensors
        if len(outputs) < 2:
            return prefix + op.name, None
        which: Any = index
        inner = keras_graph.functional_graph(op)
        if inner is not None:  # a model's outputs have names (spec refs use them too)
            names = list(getattr(op, "output_names", None) or [])
            producer = keras_graph.producer(inner.outputs[index]).name
            which = names[index] if index < len(names) else producer
        return prefix + op.name, f"{op.name}.{which}"

    def _resolve_target(self, prefix: str, op: Any, position: int) -> str:
        """The node that receives input `position` of `op`, inside expanded models."""
        while (inner := self._expanded(op)) is not None:
            prefix += op.name + "/"
            inputs = inner.inputs
            op = keras_graph.producer(inputs[position if position < len(inputs) else 0])
            position = 0
        return prefix + op.name

    def _expanded(self, op: Any) -> Any:
        """The functional model drawn as a cluster in place of `op`, if any."""
        if not self.expand:
            return None
        if _is_model(op):
            return keras_graph.functional_graph(op)
        inner = getattr(op, "layer", None)
        if inner is not None and _is_model(inner):
            return keras_graph.functional_graph(inner)
        return None

    def _calls(self, graph: Any, op: Any) -> list[Any]:
        """The calls (Keras nodes) of `op` that belong to `graph`, in call order."""
        key = id(graph)
        if key not in self._relevant:
            self._relevant[key] = {
                id(node) for nodes in keras_graph.nodes_by_depth(graph).values() for node in nodes
            }
        relevant = self._relevant[key]
        return [node for node in keras_graph.calls(op) if id(node) in relevant]

    def _node(
        self,
        graph: Any,
        op: Any,
        prefix: str,
        cluster: str | None,
        spec_names: dict[str, str],
        top: bool,
    ) -> GraphNode:
        calls = self._calls(graph, op) or keras_graph.calls(op)[:1]
        shapes = [_shapes_text(node.output_tensors) for node in calls]
        if len(set(shapes)) > 1:
            shapes = [f"call {i}: {text}" for i, text in enumerate(shapes, 1)]
        shapes = list(dict.fromkeys(shapes))
        dtypes = dict.fromkeys(str(t.dtype) for node in calls[:1] for t in node.output_tensors)
        kind, class_name = _kind_and_class(op, spec_names)
        if kind == "input" and top and len(graph.inputs) > 1:
            names = keras_graph.producer_names(graph.inputs)
            if op.name in names:
                class_name = f"Input {names.index(op.name) + 1} of {len(names)}"
        return GraphNode(
            id=prefix + op.name,
            name=op.name,
            kind=kind,
            class_name=class_name,
            shapes=shapes,
            dtype=", ".join(dtypes),
            activation=_activation(op),
            cluster=cluster,
            calls=len(calls),
        )


def _is_model(op: Any) -> bool:
    return keras_graph.functional_graph(op) is not None


def _shapes_text(tensors: list[Any]) -> str:
    shapes = [keras_graph.shape_text(t.shape) for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _model_text(model: Any, spec_names: dict[str, str], layer_name: str) -> str:
    """`model encoder (6 layers)`; the spec model's name only when the
    layer's name does not say it already."""
    spec_name = spec_names.get(model.name)
    count = keras_graph.layer_count(model)
    named = f" {spec_name}" if spec_name and spec_name != layer_name else ""
    return f"model{named} ({count} layer{'s' * (count != 1)})"


def _kind_and_class(op: Any, spec_names: dict[str, str]) -> tuple[str, str]:
    class_name = type(op).__name__
    if class_name == "InputLayer":
        return "input", "Input"
    if keras_graph.is_graph_op(op):
        return "op", f"ops.{keras_graph.op_function_name(op)}"
    if _is_model(op):
        return "model", "nested " + _model_text(op, spec_names, op.name)
    # A wrapper: TimeDistributed(layer), Bidirectional(forward_layer).
    inner = getattr(op, "layer", None) or getattr(op, "forward_layer", None)
    if inner is not None and hasattr(inner, "name"):
        if _is_model(inner):
            return "model", f"{class_name} of {_model_text(inner, spec_names, op.name)}"
        return "layer", f"{class_name}({type(inner).__name__})"
    return "layer", class_name


def _model_title(op: Any, spec_names: dict[str, str]) -> str:
    """The label of an expanded model's cluster."""
    _, class_name = _kind_and_class(op, spec_names)
    return f"{op.name}: {class_name}"


def _activation(op: Any) -> str | None:
    for holder in (op, getattr(op, "layer", None), getattr(op, "forward_layer", None)):
        activation = getattr(holder, "activation", None)
        if activation is not None:
            name = getattr(activation, "__name__", None) or getattr(activation, "name", None)
            return str(name or activation)
    return None


def spec_model_names(valid: Any) -> Callable[[str | None], dict[str, str]]:
    """For a spec model: its nested model instances' layer names -> the spec
    models they instantiate (`{model: encoder}`, `layer: {model: mnist_mlp}`)."""
    from kgraph_cli.spec.model import ModelCall, NodeKind

    def names(model_name: str | None) -> dict[str, str]:
        model = valid.spec.models.get(model_name or "") if valid is not None else None
        if model is None:
            return {}
        if model.graph is not None:
            model = valid.spec.models.get(model.graph, model)
        found: dict[str, str] = {}
        for node in model.nodes.values():
            if node.kind is NodeKind.MODEL:
                found[node.name] = node.target
            for arg, sub in (node.layer.sublayers if node.layer else {}).items():
                if isinstance(sub, ModelCall):
                    found[f"{node.name}_{arg}"] = sub.model
        return found

    return names
