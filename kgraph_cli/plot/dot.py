"""The Graphviz DOT source of a described graph (`render_dot`): written as
.dot, and what Graphviz's `dot` turns into .png, .svg and .pdf.
"""

from __future__ import annotations

from kgraph_cli.plot.describe import EDGE_COLOR, DrawnGraph, GraphCluster, GraphNode
from kgraph_cli.plot.labels import (
    NODE_COLORS,
    PlotOptions,
    cluster_contents,
    cluster_title,
    label_lines,
    style_of,
)


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
    for text, role in label_lines(node, options):
        opening, closing = _DOT_ROLES[role]
        rows.append(f"<tr><td>{opening}{_html(text)}{closing}</td></tr>")
    return '<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">' + (
        "".join(rows) + "</table>>"
    )


def _dot_cluster_label(cluster: GraphCluster, options: PlotOptions) -> str:
    first, *rest = cluster_title(cluster, options)
    lines = [f"<b>{_html(first)}</b>"] + [f'<font face="Courier">{_html(t)}</font>' for t in rest]
    return "".join(line + '<br align="left"/>' for line in lines)


def _dot_node(node: GraphNode, options: PlotOptions) -> str:
    style = style_of(node)
    fill, border = NODE_COLORS[style]
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
    if node.kind == "op":  # a keras.ops function: no weights, drawn round
        attrs["style"] = '"rounded,filled"'
    if style == "output":
        attrs["penwidth"] = "2.5"
    if style == "shared":
        attrs["penwidth"] = "2"
    return f"{_dot_id(node.id)} [{', '.join(f'{k}={v}' for k, v in attrs.items())}];"


def render_dot(graph: DrawnGraph, options: PlotOptions) -> str:
    """Graphviz DOT source of the model's graph."""
    lines = [
        f"// {graph.name}: drawn by kgraph plot",
        f"digraph {_dot_id(graph.name)} {{",
        f"  graph [rankdir={options.rankdir}, label={_dot_id(graph.name)}, labelloc=t, "
        'fontname="Helvetica", fontsize=16, nodesep=0.35, ranksep=0.45];',
        '  node [shape=box, style=filled, fontname="Helvetica", fontsize=11, margin="0.14,0.06"];',
        f'  edge [fontname="Helvetica", fontsize=9, arrowsize=0.7, color="{EDGE_COLOR}"];',
    ]
    children = cluster_contents(graph)

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
