"""A Mermaid flowchart of a described graph (`render_mermaid`): the .mmd
format, which GitHub renders in Markdown.
"""

from __future__ import annotations

import re

from kgraph_cli.plot.describe import DrawnGraph, GraphNode
from kgraph_cli.plot.labels import (
    NODE_COLORS,
    PlotOptions,
    cluster_contents,
    cluster_title,
    label_lines,
    style_of,
)

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
_MERMAID_SHAPES = {
    "input": ('(["', '"])'),
    "model": ('[["', '"]]'),
    "layer": ('["', '"]'),
    "op": ('("', '")'),
}
_MERMAID_CLASSES = {
    style: f"fill:{fill},stroke:{border},stroke-width:{'3px' if style == 'output' else '1px'}"
    for style, (fill, border) in NODE_COLORS.items()
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


def render_mermaid(graph: DrawnGraph, options: PlotOptions) -> str:
    """A Mermaid flowchart of the model's graph (GitHub renders it in Markdown)."""
    ids = _MermaidIds()
    lines = [f"flowchart {options.rankdir}", f"    %% {graph.name}: drawn by kgraph plot"]
    children = cluster_contents(graph)
    styles: dict[str, list[str]] = {}

    def emit(cluster: str | None, indent: str) -> None:
        for item in children[cluster]:
            if isinstance(item, GraphNode):
                texts = []
                for text, role in label_lines(item, options):
                    text = _mermaid_text(text)
                    texts.append(f"<b>{text}</b>" if role == "title" else text)
                opening, closing = _MERMAID_SHAPES.get(item.kind, _MERMAID_SHAPES["layer"])
                node_id = ids(item.id)
                lines.append(f"{indent}{node_id}{opening}{'<br>'.join(texts)}{closing}")
                styles.setdefault(style_of(item), []).append(node_id)
                continue
            title = "<br>".join(_mermaid_text(t) for t in cluster_title(item, options))
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
