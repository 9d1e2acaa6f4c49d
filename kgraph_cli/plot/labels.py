"""What every renderer shows the same way: the options (`PlotOptions`), the
lines of a box's label and of a frame's title, each box's style and colours,
and which boxes and frames a frame holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from kgraph_cli.plot.describe import DrawnGraph, GraphCluster, GraphNode

# (fill, border) per kind of node.
NODE_COLORS = {
    "input": ("#dff3e3", "#2e7d32"),
    "output": ("#ffe6cc", "#d35400"),
    "model": ("#e3eefb", "#1d5fa8"),
    "shared": ("#fff5c2", "#b08900"),
    "layer": ("#f4f4f4", "#6b6b6b"),
    "op": ("#f1ecf9", "#6a4c93"),
}


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


def label_lines(node: GraphNode, options: PlotOptions) -> list[tuple[str, str]]:
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


def cluster_title(cluster: GraphCluster, options: PlotOptions) -> list[str]:
    """The lines of an expanded model's frame label: what it is, what it returns."""
    lines = [cluster.title]
    if options.show_shapes:
        lines += [f"\u2192 {shape}" for shape in cluster.shapes]
    return lines


def style_of(node: GraphNode) -> str:
    """The node's style, a key of NODE_COLORS: output, input, model, op, shared or layer."""
    if node.outputs:
        return "output"
    if node.kind in ("input", "model", "op"):
        return node.kind
    return "shared" if node.calls > 1 else "layer"


def cluster_contents(graph: DrawnGraph) -> dict[str | None, list[GraphNode | GraphCluster]]:
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
