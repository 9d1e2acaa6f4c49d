"""Pictures of a model (the `plot` command): Graphviz images, DOT, Mermaid, a
terminal tree; and a run directory's training curves.

The model's graph is described once (`describe_model`: nodes, edges, clusters
as plain data), then rendered by `render_dot`, `render_mermaid` or
`render_tree`. Only .png/.svg/.pdf need Graphviz's `dot`; nothing here imports
TensorFlow (the model arrives built).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kgraph_cli.errors import KgraphError, MissingDependencyError, UsageError, short_message
from kgraph_cli.fileio import atomic_path, check_writable, write_text_atomic
from kgraph_cli.rundir import HISTORY_JSON, read_run_info

GRAPHVIZ_FORMATS = ("png", "svg", "pdf")
TEXT_FORMATS = ("dot", "mmd")
FORMATS = (*GRAPHVIZ_FORMATS, *TEXT_FORMATS, "tree")
EXTENSIONS = {
    ".png": "png",
    ".svg": "svg",
    ".pdf": "pdf",
    ".dot": "dot",
    ".gv": "dot",
    ".mmd": "mmd",
    ".mermaid": "mmd",
}
RANKDIRS = ("TB", "LR", "BT", "RL")
NO_GRAPHVIZ = (
    "Graphviz's `dot` is not installed: apt-get install graphviz (Debian/Ubuntu), "
    "brew install graphviz (macOS); or write .dot or .mmd, which need no Graphviz"
)

# Edges of the calls of a shared layer: call 1, call 2... each its own colour.
_CALL_COLORS = ("#1f6fb4", "#d1495b", "#2e9d4a", "#8e44ad", "#e67e22", "#16a2a2")
_EDGE_COLOR = "#555555"
# (fill, border) per kind of node.
_NODE_COLORS = {
    "input": ("#dff3e3", "#2e7d32"),
    "output": ("#ffe6cc", "#d35400"),
    "model": ("#e3eefb", "#1d5fa8"),
    "shared": ("#fff5c2", "#b08900"),
    "layer": ("#f4f4f4", "#6b6b6b"),
}


class GraphvizMissingError(MissingDependencyError):
    """`dot` is needed for raster and vector output and is not on PATH."""


@dataclass
class PlotOptions:
    """What the labels show and how the picture is laid out."""

    show_shapes: bool = False
    show_dtype: bool = False
    show_layer_names: bool = True
    show_activations: bool = False
    expand_nested: bool = False
    rankdir: str = "TB"
    dpi: int = 96


@dataclass
class GraphNode:
    """One box: a layer (called once or several times), an input, or a collapsed model."""

    id: str  # unique in the picture: the layer's path, "encoder/conv1"
    name: str
    kind: str  # input, layer, model
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
        if self.source_call and self.call:
            return f"call {self.source_call} \u2192 call {self.call}"
        if self.source_call or self.call:
            return f"call {self.source_call or self.call}"
        return ""

    @property
    def label(self) -> str:
        return ", ".join(part for part in (self.output, self.call_label) if part)

    @property
    def color(self) -> str:
        number = self.call or self.source_call
        return _CALL_COLORS[(number - 1) % len(_CALL_COLORS)] if number else _EDGE_COLOR


@dataclass
class GraphCluster:
    """An expanded nested model (or a wrapper's model): a box around its layers."""

    id: str
    name: str
    title: str
    parent: str | None
    shapes: list[str] = field(default_factory=list)  # of the nested model's call(s)


@dataclass
class ModelGraph:
    """Everything the renderers draw, computed once from a built model."""

    name: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    clusters: list[GraphCluster]
    inputs: list[str]  # node ids of the model inputs, in order

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for edge, row in zip(self.edges, data["edges"], strict=True):
            row["label"] = edge.label
        return data


# -- the graph description ----------------------------------------------------


def describe_model(
    model: Any,
    expand_nested: bool = False,
    spec_models: Callable[[str | None], dict[str, str]] | None = None,
) -> ModelGraph:
    """The nodes, edges and (with `expand_nested`) clusters of a built model.

    `spec_models(model_name)` may map the layer names of a spec model's nested
    instances to the spec models they instantiate, for labels ("model encoder").
    """
    builder = _GraphBuilder(expand_nested, spec_models or (lambda name: {}))
    return builder.describe(model)


class _GraphBuilder:
    def __init__(self, expand: bool, spec_models: Callable[[str | None], dict[str, str]]):
        self.expand = expand
        self.spec_models = spec_models
        self.nodes: list[GraphNode] = []
        self.edges: list[GraphEdge] = []
        self.clusters: list[GraphCluster] = []
        self._relevant: dict[int, set[int]] = {}

    def describe(self, model: Any) -> ModelGraph:
        graph = _functional(model)
        if graph is None:  # a subclassed model: one opaque box
            class_name = type(model).__name__
            node = GraphNode(model.name, model.name, "model", class_name, [], "", None, None)
            return ModelGraph(model.name, [node], [], [], [])
        self._add_model(graph, "", None, model.name, top=True)
        by_id = {node.id: node for node in self.nodes}
        count = len(graph.outputs)
        names = list(getattr(graph, "output_names", None) or [])
        for i, tensor in enumerate(graph.outputs):
            history = tensor._keras_history
            node_id, _ = self._resolve_source("", history.operation, history.tensor_index)
            node = by_id[node_id]
            name = names[i] if i < len(names) else history.operation.name
            mark = f"output {i + 1} of {count}" if count > 1 else "output"
            if name != node.name:
                mark += f": {name}"
            if node.calls > 1 and node.cluster is None:  # which call of a shared layer
                calls = [id(n) for n in self._calls(graph, history.operation)]
                made_by = history.operation._inbound_nodes[history.node_index]
                mark += f" (call {calls.index(id(made_by)) + 1})"
            node.outputs.append(mark)
        inputs = [t._keras_history.operation.name for t in graph.inputs]
        return ModelGraph(model.name, self.nodes, self.edges, self.clusters, inputs)

    def _add_model(
        self, graph: Any, prefix: str, cluster: str | None, spec_model: str | None, top: bool
    ) -> None:
        spec_names = self.spec_models(spec_model)
        operations = _operations(graph)
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
        history = tensor._keras_history
        source = history.operation
        if source is None:
            return
        source_calls = self._calls(graph, source)
        source_call = None
        if len(source_calls) > 1:
            made_by = source._inbound_nodes[history.node_index]
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
            history = inner.outputs[index]._keras_history
            op, index = history.operation, history.tensor_index
        outputs = _first_call(op).output_tensors
        if len(outputs) < 2:
            return prefix + op.name, None
        which: Any = index
        inner = _functional(op)
        if inner is not None:  # a model's outputs have names (spec refs use them too)
            names = list(getattr(op, "output_names", None) or [])
            producer = inner.outputs[index]._keras_history.operation.name
            which = names[index] if index < len(names) else producer
        return prefix + op.name, f"{op.name}.{which}"

    def _resolve_target(self, prefix: str, op: Any, position: int) -> str:
        """The node that receives input `position` of `op`, inside expanded models."""
        while (inner := self._expanded(op)) is not None:
            prefix += op.name + "/"
            inputs = inner.inputs
            op = inputs[position if position < len(inputs) else 0]._keras_history.operation
            position = 0
        return prefix + op.name

    def _expanded(self, op: Any) -> Any:
        """The functional model drawn as a cluster in place of `op`, if any."""
        if not self.expand:
            return None
        if _is_model(op):
            return _functional(op)
        inner = getattr(op, "layer", None)
        if inner is not None and _is_model(inner):
            return _functional(inner)
        return None

    def _calls(self, graph: Any, op: Any) -> list[Any]:
        """The calls (Keras nodes) of `op` that belong to `graph`, in call order."""
        key = id(graph)
        if key not in self._relevant:
            self._relevant[key] = {
                id(node) for nodes in graph._nodes_by_depth.values() for node in nodes
            }
        relevant = self._relevant[key]
        return [node for node in op._inbound_nodes if id(node) in relevant]

    def _node(
        self,
        graph: Any,
        op: Any,
        prefix: str,
        cluster: str | None,
        spec_names: dict[str, str],
        top: bool,
    ) -> GraphNode:
        calls = self._calls(graph, op) or op._inbound_nodes[:1]
        shapes = [_shapes_text(node.output_tensors) for node in calls]
        if len(set(shapes)) > 1:
            shapes = [f"call {i}: {text}" for i, text in enumerate(shapes, 1)]
        shapes = list(dict.fromkeys(shapes))
        dtypes = dict.fromkeys(str(t.dtype) for node in calls[:1] for t in node.output_tensors)
        kind, class_name = _kind_and_class(op, spec_names)
        if kind == "input" and top and len(graph.inputs) > 1:
            names = [t._keras_history.operation.name for t in graph.inputs]
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


def _functional(model: Any) -> Any:
    """The functional graph of a model (a Sequential keeps one inside), or None."""
    if hasattr(model, "_nodes_by_depth"):
        return model
    inner = getattr(model, "_functional", None)
    return inner if inner is not None and hasattr(inner, "_nodes_by_depth") else None


def _is_model(op: Any) -> bool:
    return _functional(op) is not None


def _operations(graph: Any) -> list[Any]:
    """The graph's operations in topological order, its inputs first and in order."""
    inputs = [t._keras_history.operation for t in graph.inputs]
    seen = {id(op) for op in inputs}
    return list(dict.fromkeys(inputs)) + [op for op in graph._operations if id(op) not in seen]


def _first_call(op: Any) -> Any:
    return op._inbound_nodes[0]


def _shape_text(shape: Any) -> str:
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"


def _shapes_text(tensors: list[Any]) -> str:
    shapes = [_shape_text(t.shape) for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _layer_count(model: Any) -> int:
    return sum(type(layer).__name__ != "InputLayer" for layer in model.layers)


def _model_text(model: Any, spec_names: dict[str, str], layer_name: str) -> str:
    """`model encoder (6 layers)`; the spec model's name only when the
    layer's name does not say it already."""
    spec_name = spec_names.get(model.name)
    count = _layer_count(model)
    named = f" {spec_name}" if spec_name and spec_name != layer_name else ""
    return f"model{named} ({count} layer{'s' * (count != 1)})"


def _kind_and_class(op: Any, spec_names: dict[str, str]) -> tuple[str, str]:
    class_name = type(op).__name__
    if class_name == "InputLayer":
        return "input", "Input"
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


# -- renderers ------------------------------------------------------------------


def _label_lines(node: GraphNode, options: PlotOptions) -> list[tuple[str, str]]:
    """(text, role) lines of a node's label; roles: title, class, detail, mark."""
    lines = [(node.name, "title"), (node.class_name, "class")]
    if not options.show_layer_names:
        lines = [(node.class_name, "title")]
    if options.show_activations and node.activation:
        lines.append((f"activation: {node.activation}", "detail"))
    if options.show_shapes:
        lines += [(shape, "detail") for shape in node.shapes]
    if options.show_dtype and node.dtype:
        lines.append((node.dtype, "detail"))
    if node.calls > 1:
        lines.append((f"shared: called {node.calls} times", "mark"))
    lines += [(mark, "mark") for mark in node.outputs]
    return lines


def _cluster_title(cluster: GraphCluster, options: PlotOptions) -> list[str]:
    """The lines of an expanded model's frame label: what it is, what it returns."""
    lines = [cluster.title]
    if options.show_shapes:
        lines += [f"\u2192 {shape}" for shape in cluster.shapes]
    return lines


def _style_of(node: GraphNode) -> str:
    if node.outputs:
        return "output"
    if node.kind in ("input", "model"):
        return node.kind
    return "shared" if node.calls > 1 else "layer"


def _children(graph: ModelGraph) -> dict[str | None, list[GraphNode | GraphCluster]]:
    """Per cluster (None: the top level), its nodes and sub-clusters in graph order."""
    clusters = {cluster.id: cluster for cluster in graph.clusters}
    items: dict[str | None, list[GraphNode | GraphCluster]] = {None: []}
    for cluster in graph.clusters:
        items.setdefault(cluster.id, [])
    placed: set[str] = set()
    for node in graph.nodes:
        items[node.cluster].append(node)
        parent = node.cluster
        # A cluster takes the place of its first node in its parent.
        while parent is not None and parent not in placed:
            placed.add(parent)
            cluster = clusters[parent]
            items[cluster.parent].append(cluster)
            parent = cluster.parent
    return items


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _html(text: str) -> str:
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        text = text.replace(char, entity)
    return text


_DOT_ROLES = {
    "title": ('<font point-size="12"><b>', "</b></font>"),
    "class": ('<font color="#333333">', "</font>"),
    "mark": ('<font point-size="9" color="#8a4b08"><i>', "</i></font>"),
    "detail": ('<font point-size="9" face="Courier">', "</font>"),
}


def _dot_label(node: GraphNode, options: PlotOptions) -> str:
    # One table row per line: <br/> lines overlap (an underscore of the bold
    # name would strike through the class below it).
    rows = []
    for text, role in _label_lines(node, options):
        opening, closing = _DOT_ROLES[role]
        rows.append(f"<tr><td>{opening}{_html(text)}{closing}</td></tr>")
    return '<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">' + (
        "".join(rows) + "</table>>"
    )


def _dot_cluster_label(cluster: GraphCluster, options: PlotOptions) -> str:
    first, *rest = _cluster_title(cluster, options)
    lines = [f"<b>{_html(first)}</b>"] + [f'<font face="Courier">{_html(t)}</font>' for t in rest]
    return "".join(line + '<br align="left"/>' for line in lines)


def _dot_node(node: GraphNode, options: PlotOptions) -> str:
    style = _style_of(node)
    fill, border = _NODE_COLORS[style]
    attrs = {
        "label": _dot_label(node, options),
        "fillcolor": _dot_id(fill),
        "color": _dot_id(border),
    }
    if node.kind == "input":
        attrs["style"] = '"rounded,filled"'
        attrs["shape"] = "box"
    if node.kind == "model":
        attrs["shape"] = "box3d"
    if style == "output":
        attrs["penwidth"] = "2.5"
    if style == "shared":
        attrs["penwidth"] = "2"
    return f"{_dot_id(node.id)} [{', '.join(f'{k}={v}' for k, v in attrs.items())}];"


def render_dot(graph: ModelGraph, options: PlotOptions) -> str:
    """Graphviz DOT source of the model's graph."""
    lines = [
        f"// {graph.name}: drawn by kgraph plot",
        f"digraph {_dot_id(graph.name)} {{",
        f"  graph [rankdir={options.rankdir}, label={_dot_id(graph.name)}, labelloc=t, "
        'fontname="Helvetica", fontsize=16, nodesep=0.35, ranksep=0.45];',
        '  node [shape=box, style=filled, fontname="Helvetica", fontsize=11, margin="0.14,0.06"];',
        f'  edge [fontname="Helvetica", fontsize=9, arrowsize=0.7, color="{_EDGE_COLOR}"];',
    ]
    children = _children(graph)

    def emit(cluster: str | None, indent: str) -> None:
        for item in children[cluster]:
            if isinstance(item, GraphNode):
                lines.append(indent + _dot_node(item, options))
                continue
            lines.append(f"{indent}subgraph {_dot_id('cluster_' + item.id)} {{")
            lines.append(
                f"{indent}  label=<{_dot_cluster_label(item, options)}>; "
                'style="rounded,dashed"; color="#1d5fa8"; bgcolor="#f5f9fe"; '
                "fontsize=12; labeljust=l;"
            )
            emit(item.id, indent + "  ")
            lines.append(indent + "}")

    emit(None, "  ")
    if len(graph.inputs) > 1:
        # Every input on the first row, in the model's order (invisible edges
        # keep Graphviz from reordering them).
        ranked = " ".join(_dot_id(i) + ";" for i in graph.inputs)
        chain = " -> ".join(_dot_id(i) for i in graph.inputs)
        lines.append(f"  {{rank=source; {ranked} {chain} [style=invis];}}")
    for edge in graph.edges:
        attrs = ""
        if edge.label:
            color = _dot_id(edge.color)
            attrs = (
                f" [label={_dot_id(' ' + edge.label + ' ')}, color={color}, "
                f"fontcolor={color}, penwidth=1.6]"
            )
        lines.append(f"  {_dot_id(edge.source)} -> {_dot_id(edge.target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_MERMAID_RESERVED = {
    "end",
    "graph",
    "subgraph",
    "flowchart",
    "direction",
    "click",
    "style",
    "class",
    "classdef",
    "linkstyle",
    "default",
    "call",
    "href",
}
_MERMAID_SHAPES = {"input": ('(["', '"])'), "model": ('[["', '"]]'), "layer": ('["', '"]')}
_MERMAID_CLASSES = {
    style: f"fill:{fill},stroke:{border},stroke-width:{'3px' if style == 'output' else '1px'}"
    for style, (fill, border) in _NODE_COLORS.items()
}


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: entity codes for what Mermaid parses."""
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text.replace("|", "#124;")


class _MermaidIds:
    """Node ids Mermaid accepts: word characters, not a keyword, unique."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.used: set[str] = set()

    def __call__(self, key: str) -> str:
        if key not in self.ids:
            base = re.sub(r"\W", "_", key.replace("/", "__")) or "node"
            if base[0].isdigit() or base.lower() in _MERMAID_RESERVED:
                base = "n_" + base
            candidate, i = base, 2
            while candidate in self.used:
                candidate, i = f"{base}_{i}", i + 1
            self.ids[key] = candidate
            self.used.add(candidate)
        return self.ids[key]


def render_mermaid(graph: ModelGraph, options: PlotOptions) -> str:
    """A Mermaid flowchart of the model's graph (GitHub renders it in Markdown)."""
    ids = _MermaidIds()
    lines = [f"flowchart {options.rankdir}", f"    %% {graph.name}: drawn by kgraph plot"]
    children = _children(graph)
    styles: dict[str, list[str]] = {}

    def emit(cluster: str | None, indent: str) -> None:
        for item in children[cluster]:
            if isinstance(item, GraphNode):
                texts = []
                for text, role in _label_lines(item, options):
                    text = _mermaid_text(text)
                    texts.append(f"<b>{text}</b>" if role == "title" else text)
                opening, closing = _MERMAID_SHAPES.get(item.kind, _MERMAID_SHAPES["layer"])
                node_id = ids(item.id)
                lines.append(f"{indent}{node_id}{opening}{'<br>'.join(texts)}{closing}")
                styles.setdefault(_style_of(item), []).append(node_id)
                continue
            title = "<br>".join(_mermaid_text(t) for t in _cluster_title(item, options))
            lines.append(f'{indent}subgraph {ids("cluster/" + item.id)} ["{title}"]')
            lines.append(f"{indent}    direction {options.rankdir}")
            emit(item.id, indent + "    ")
            lines.append(f"{indent}end")

    emit(None, "    ")
    colored: dict[str, list[int]] = {}
    for number, edge in enumerate(graph.edges):
        arrow = f"-->|{_mermaid_text(edge.label)}|" if edge.label else "-->"
        lines.append(f"    {ids(edge.source)} {arrow} {ids(edge.target)}")
        if edge.label:
            colored.setdefault(edge.color, []).append(number)
    for style, definition in _MERMAID_CLASSES.items():
        if style in styles:
            lines.append(f"    classDef {style} {definition}")
            lines.append(f"    class {','.join(styles[style])} {style}")
    for color, numbers in colored.items():
        lines.append(f"    linkStyle {','.join(map(str, numbers))} stroke:{color},color:{color}")
    return "\n".join(lines) + "\n"


def render_tree(graph: ModelGraph, options: PlotOptions) -> Any:
    """A rich Tree: the layers in order, with where their inputs come from."""
    from rich.text import Text
    from rich.tree import Tree

    names = {node.id: node.name for node in graph.nodes}
    incoming: dict[str, list[str]] = {}
    for edge in graph.edges:
        text = edge.output or names.get(edge.source, edge.source)
        text += f" ({edge.call_label})" if edge.call_label else ""
        incoming.setdefault(edge.target, []).append(text)
    root = Tree(Text(graph.name, style="bold"))
    children = _children(graph)
    colors = {"input": "green", "output": "dark_orange", "model": "blue", "shared": "yellow"}

    def add(branch: Any, cluster: str | None) -> None:
        for item in children[cluster]:
            if isinstance(item, GraphCluster):
                title = "  ".join(_cluster_title(item, options))
                add(branch.add(Text(title, style="bold blue")), item.id)
                continue
            label = Text()
            for text, role in _label_lines(item, options):
                if role == "title":
                    label.append(text, style=f"bold {colors.get(_style_of(item), '')}".strip())
                elif role == "class":
                    label.append(f"  {text}", style="cyan")
                elif role == "mark":
                    label.append(f"  [{text}]", style="yellow")
                else:
                    label.append(f"  {text}")
            if item.id in incoming:
                label.append("  \u2190 " + ", ".join(incoming[item.id]), style="dim")
            branch.add(label)

    add(root, None)
    return root


# -- the command ----------------------------------------------------------------


@dataclass
class PlotRequest:
    """What `kgraph plot` was asked to draw, and where."""

    target: Path
    output: Path | None = None
    format: str | None = None
    model: str | None = None
    overrides: list[str] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)
    force: bool = False
    options: PlotOptions = field(default_factory=PlotOptions)


@dataclass
class PlotResult:
    """What was drawn: a file, text for stdout, or a tree for the terminal."""

    kind: str  # model or curves
    format: str
    output: Path | None = None
    text: str | None = None
    tree: Any = None
    graph: ModelGraph | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "format": self.format}
        data["output"] = str(self.output) if self.output else None
        if self.graph is not None:
            data["nodes"] = len(self.graph.nodes)
            data["edges"] = len(self.graph.edges)
        if self.text is not None:
            data["text"] = self.text
        return data


def plot_target(request: PlotRequest) -> PlotResult:
    """Draw a spec's model, a .keras file's, or a run directory's training curves."""
    fmt = output_format(request.output, request.format)
    target = request.target
    if target.is_dir() and (target / HISTORY_JSON).is_file():
        return _plot_curves(target, request.output, fmt, request.force)
    if target.is_dir():
        raise UsageError(
            f"'{target}' has no {HISTORY_JSON}: not a run directory written by `kgraph train`",
            "pass a spec, a .keras file, or a run directory with its training history",
        )
    if request.options.rankdir.upper() not in RANKDIRS:
        raise UsageError(
            f"unknown --rankdir '{request.options.rankdir}'",
            "TB (top to bottom) or LR (left to right); also BT, RL",
        )
    request.options.rankdir = request.options.rankdir.upper()
    # Fail fast, before TensorFlow is imported and the model built.
    if fmt in GRAPHVIZ_FORMATS:
        require_graphviz(request.output)
    if request.output is not None:
        check_writable(request.output, request.force)
    from kgraph_cli.persist import load_target

    loaded = load_target(target, request.model, request.overrides, request.plugins)
    graph = describe_model(
        loaded.model, request.options.expand_nested, spec_model_names(loaded.valid)
    )
    result = PlotResult("model", fmt, request.output, graph=graph)
    if fmt == "tree":
        result.tree = render_tree(graph, request.options)
    elif fmt in TEXT_FORMATS:
        render = render_dot if fmt == "dot" else render_mermaid
        text = render(graph, request.options)
        if request.output is None:
            result.text = text
        else:
            write_text_atomic(request.output, text, force=request.force)
    else:
        assert request.output is not None
        data = render_graphviz(render_dot(graph, request.options), fmt, request.options.dpi)
        _write_atomic(request.output, request.force, lambda path: path.write_bytes(data))
    return result


def output_format(output: Path | None, requested: str | None) -> str:
    """The format asked for with --format, or given by -o's extension."""
    known = ", ".join(EXTENSIONS)
    if requested is not None:
        fmt = requested.lower().lstrip(".")
        fmt = {"mermaid": "mmd", "gv": "dot"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise UsageError(f"unknown --format '{requested}'", f"one of {', '.join(FORMATS)}")
        if fmt == "tree" and output is not None:
            raise UsageError("--format tree prints in the terminal", "drop -o, or write .mmd/.dot")
        implied = EXTENSIONS.get(output.suffix.lower()) if output is not None else None
        if implied is not None and implied != fmt:
            raise UsageError(
                f"--format {fmt} does not match the extension of '{output}'",
                f"name the file *.{fmt}, or drop --format",
            )
        if output is None and fmt in GRAPHVIZ_FORMATS:
            raise UsageError(f"{fmt} output needs a file", f"pass -o FILE.{fmt}")
        return fmt
    if output is None:
        raise UsageError(
            "nothing to write: pass -o FILE or --format",
            f"-o FILE with one of {known}; or --format tree (terminal), "
            "--format dot / --format mmd (stdout)",
        )
    fmt = EXTENSIONS.get(output.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"cannot tell the format of '{output}' from its extension '{output.suffix}'",
            f"use one of {known} (or --format tree to print in the terminal)",
        )
    return fmt


def require_graphviz(output: Path | None = None) -> str:
    """The path of Graphviz's `dot`, or an error that says how to install it."""
    dot = shutil.which("dot")
    if dot is None:
        stem = output.stem if output is not None else "model"
        raise GraphvizMissingError(
            NO_GRAPHVIZ, f"e.g. -o {stem}.mmd (Mermaid; GitHub renders it) or -o {stem}.dot"
        )
    return dot


def render_graphviz(dot_source: str, fmt: str, dpi: int) -> bytes:
    """Run Graphviz's `dot` on DOT source (through pydot, as Keras does)."""
    try:
        import pydot
    except ImportError:
        raise MissingDependencyError(
            "pydot is not installed", "pip install pydot (or write .dot or .mmd)"
        ) from None
    require_graphviz()
    arguments = [f"-T{fmt}", "graph.dot"]
    if fmt == "png":
        arguments.insert(0, f"-Gdpi={dpi}")
    with tempfile.TemporaryDirectory(prefix="kgraph-plot-") as folder:
        Path(folder, "graph.dot").write_text(dot_source, encoding="utf-8")
        try:
            data, errors, process = pydot.call_graphviz("dot", arguments, folder)
        except OSError as exc:  # vanished between the check and the call
            raise GraphvizMissingError(NO_GRAPHVIZ) from exc
    if process.returncode != 0 or not data:
        message = errors.decode(errors="replace") if isinstance(errors, bytes) else str(errors)
        raise KgraphError(
            f"Graphviz's dot failed to draw the graph: {short_message(message, 400)}",
            "write .dot to look at the source, or .mmd (no Graphviz needed)",
        )
    return data if isinstance(data, bytes) else data.encode()


def _write_atomic(path: Path, force: bool, write: Callable[[Path], None]) -> None:
    """Let `write` fill a temporary file beside `path` (same extension), then
    rename it over `path`: a failed write leaves no half file behind."""
    check_writable(path, force)
    with atomic_path(path, path.suffix) as tmp:
        write(tmp)


def _plot_curves(run_dir: Path, output: Path | None, fmt: str, force: bool) -> PlotResult:
    if fmt not in GRAPHVIZ_FORMATS or output is None:
        raise UsageError(
            f"a run directory's training curves are drawn as .png, .svg or .pdf, not {fmt}",
            f"pass -o curves.png; for the model's graph, plot {run_dir / 'model.keras'}",
        )
    history = read_history(run_dir)
    info = read_run_info(run_dir)
    title = info.model if info else run_dir.name
    from kgraph_cli.curves import plot_history

    _write_atomic(output, force, lambda path: plot_history(history, path, title=title))
    return PlotResult("curves", fmt, output)


def read_history(run_dir: Path) -> dict[str, list[float]]:
    """The per-epoch history a run directory's history.json records."""
    path = run_dir / HISTORY_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise KgraphError(
            f"cannot read '{path}': {exc}", "was it written by `kgraph train`?"
        ) from None
    valid = isinstance(data, dict) and all(
        isinstance(v, list) and all(isinstance(x, int | float) for x in v) for v in data.values()
    )
    if not valid:
        raise KgraphError(
            f"'{path}' is not a training history",
            'expected {"loss": [per-epoch values], "val_loss": [...], ...}',
        )
    if not any(data.values()):
        raise KgraphError(f"'{path}' has no completed epoch yet", "train for one epoch or more")
    return data
