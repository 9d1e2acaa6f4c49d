"""The terminal tree of a described graph (`render_tree`, `--format tree`):
a rich Tree for the face to print. The only plot module that imports rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgraph_cli.plot.describe import DrawnGraph, GraphCluster
from kgraph_cli.plot.labels import (
    PlotOptions,
    cluster_contents,
    cluster_title,
    label_lines,
    style_of,
)

if TYPE_CHECKING:
    from rich.tree import Tree


def render_tree(graph: DrawnGraph, options: PlotOptions) -> Tree:
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
    children = cluster_contents(graph)
    colors = {
        "input": "green",
        "output": "dark_orange",
        "model": "blue",
        "shared": "yellow",
        "op": "magenta",
    }

    def add(branch: Tree, cluster: str | None) -> None:
        for item in children[cluster]:
            if isinstance(item, GraphCluster):
                title = "  ".join(cluster_title(item, options))
                add(branch.add(Text(title, style="bold blue")), item.id)
                continue
            label = Text()
            for text, role in label_lines(item, options):
                if role == "title":
                    label.append(text, style=f"bold {colors.get(style_of(item), '')}".strip())
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
