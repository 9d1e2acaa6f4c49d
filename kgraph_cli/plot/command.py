"""The `plot` command: `plot_target` draws what a `PlotRequest` names (a
spec's model, a saved model, or a run directory's training curves) in the
format asked for (`output_format`), runs Graphviz's `dot` for .png/.svg/.pdf
(`GraphvizMissingError` when it is missing) and writes the file atomically.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgraph_cli.errors import KgraphError, MissingDependencyError, UsageError, short_message
from kgraph_cli.fileio import check_writable, write_file_with, write_text_atomic
from kgraph_cli.plot.describe import DrawnGraph, describe_model, spec_model_names
from kgraph_cli.plot.dot import render_dot
from kgraph_cli.plot.labels import PlotOptions
from kgraph_cli.plot.mermaid import render_mermaid
from kgraph_cli.plot.tree import render_tree
from kgraph_cli.rundir import HISTORY_JSON, read_history, read_run_info

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


class GraphvizMissingError(MissingDependencyError):
    """`dot` is needed for raster and vector output and is not on PATH."""


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
    graph: DrawnGraph | None = None

    def to_json(self) -> dict[str, Any]:
        """What was drawn, as data (`kgraph plot --json`)."""
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
        write_file_with(request.output, lambda path: path.write_bytes(data), request.output.suffix)
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


def _plot_curves(run_dir: Path, output: Path | None, fmt: str, force: bool) -> PlotResult:
    """Draw a run directory's history.json as loss and metric curves (matplotlib)."""
    if fmt not in GRAPHVIZ_FORMATS or output is None:
        raise UsageError(
            f"a run directory's training curves are drawn as .png, .svg or .pdf, not {fmt}",
            f"pass -o curves.png; for the model's graph, plot {run_dir / 'model.keras'}",
        )
    history = read_history(run_dir)
    info = read_run_info(run_dir)
    title = info.model if info else run_dir.name
    from kgraph_cli.curves import plot_history

    check_writable(output, force)
    write_file_with(output, lambda path: plot_history(history, path, title=title), output.suffix)
    return PlotResult("curves", fmt, output)
