"""Pictures of a model (the `plot` command): Graphviz images, DOT, Mermaid, a
terminal tree; and a run directory's training curves.

The model's graph is described once (describe.py: `describe_model` returns a
`DrawnGraph` of nodes, edges and clusters as plain data), then rendered by
`render_dot` (dot.py), `render_mermaid` (mermaid.py) or `render_tree`
(tree.py, the only one that imports rich); labels.py holds what they share
(`PlotOptions`, label lines, styles). command.py is the command itself:
`plot_target`, format choice, Graphviz, files, training curves. Only
.png/.svg/.pdf need Graphviz's `dot`; nothing here imports TensorFlow (the
model arrives built).
"""

from kgraph_cli.plot.command import (
    EXTENSIONS,
    FORMATS,
    GRAPHVIZ_FORMATS,
    NO_GRAPHVIZ,
    RANKDIRS,
    TEXT_FORMATS,
    GraphvizMissingError,
    PlotRequest,
    PlotResult,
    output_format,
    plot_target,
    render_graphviz,
    require_graphviz,
)
from kgraph_cli.plot.describe import (
    DrawnGraph,
    GraphCluster,
    GraphEdge,
    GraphNode,
    describe_model,
    spec_model_names,
)
from kgraph_cli.plot.dot import render_dot
from kgraph_cli.plot.labels import PlotOptions
from kgraph_cli.plot.mermaid import render_mermaid
from kgraph_cli.plot.tree import render_tree

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "GRAPHVIZ_FORMATS",
    "NO_GRAPHVIZ",
    "RANKDIRS",
    "TEXT_FORMATS",
    "DrawnGraph",
    "GraphCluster",
    "GraphEdge",
    "GraphNode",
    "GraphvizMissingError",
    "PlotOptions",
    "PlotRequest",
    "PlotResult",
    "describe_model",
    "output_format",
    "plot_target",
    "render_dot",
    "render_graphviz",
    "render_mermaid",
    "render_tree",
    "require_graphviz",
    "spec_model_names",
]
