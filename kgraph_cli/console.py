"""Everything a person reads: diagnostics with excerpts and carets, tables.

Output goes through rich, which honours NO_COLOR and plain (non-terminal)
streams; machine-readable output is printed by the CLI as JSON instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from kgraph_cli.errors import Diagnostic, Location, Severity
from kgraph_cli.summary import LayerRow, ModelSummary

if TYPE_CHECKING:
    from kgraph_cli.infer import Evaluation, Predictions
    from kgraph_cli.persist import ModelInfo
    from kgraph_cli.train import TrainResult
    from kgraph_cli.tune import TuneResult

# A spec with hundreds of problems shows the first ones (sorted by place) and
# a count: the rest are usually knock-on errors of the same mistake.
SHOWN_DIAGNOSTICS = 20
_STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow"}


def make_console(stderr: bool = False) -> Console:
    # A stable width when not attached to a terminal keeps CI logs and tests
    # readable; COLUMNS still wins when set.
    width = None if os.environ.get("COLUMNS") else 120
    # soft_wrap: a diagnostic is one line however long, so tools can grep it.
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


class SourceLines:
    """Lines of the files diagnostics point into, read once, for excerpts."""

    def __init__(self, extra: dict[str, str] | None = None):
        self.extra = extra or {}

    def line(self, file: str, number: int) -> str | None:
        if file in self.extra:
            lines = self.extra[file].splitlines()
        else:
            lines = _read_lines(file)
        if 1 <= number <= len(lines):
            return lines[number - 1]
        return None


@lru_cache(maxsize=64)
def _read_lines(file: str) -> list[str]:
    try:
        return Path(file).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def render_diagnostics(
    console: Console, diagnostics: Iterable[Diagnostic], sources: SourceLines
) -> None:
    """Print each diagnostic as `file:line:col: error[code]: path: message`,
    its source line with a caret, related places and the hint."""
    diagnostics = list(diagnostics)
    for diag in _first_shown(diagnostics):
        head = Text()
        if diag.location:
            head.append(f"{diag.location}: ", style="bold")
        head.append(f"{diag.severity.value}[{diag.code}]", style=_STYLES[diag.severity])
        head.append(": ")
        if diag.path:
            head.append(f"{diag.path}: ", style="cyan")
        head.append(diag.message)
        console.print(head)
        if diag.location:
            _excerpt(console, diag.location, sources)
        for loc, note in diag.related:
            console.print(Text.assemble(("   note: ", "bold blue"), f"{loc}: {note}"))
        if diag.hint:
            console.print(Text.assemble(("   hint: ", "bold green"), diag.hint))
    hidden = len(diagnostics) - SHOWN_DIAGNOSTICS
    if hidden > 0:
        console.print(
            Text(f"... and {hidden} more not shown (--json lists them all)", style="bold")
        )
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = [
        f"{n} {word}{'s' if n != 1 else ''}"
        for n, word in ((errors, "error"), (warnings, "warning"))
        if n
    ]
    if parts:
        console.print(Text(", ".join(parts), style="bold red" if errors else "bold yellow"))


def _first_shown(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """The first SHOWN_DIAGNOSTICS, errors before warnings, in their order."""
    ranked = sorted(range(len(diagnostics)), key=lambda i: not diagnostics[i].is_error)
    return [diagnostics[i] for i in sorted(ranked[:SHOWN_DIAGNOSTICS])]


def _excerpt(console: Console, loc: Location, sources: SourceLines) -> None:
    if loc.line <= 0:
        return
    line = sources.line(loc.file, loc.line)
    if line is None:
        return
    gutter = f"{loc.line:>5} | "
    console.print(Text(gutter, style="dim") + Text(line.expandtabs(4)))
    start = max(loc.col - 1, 0)
    length = max(1, min(loc.length, max(len(line) - start, 1)))
    console.print(
        Text(" " * (len(gutter) - 2) + "| ", style="dim")
        + Text(" " * start + "^" * length, style="bold red")
    )


def render_summary(console: Console, summary: ModelSummary) -> None:
    """A Keras-like layer table with the parameter totals below it."""
    table = Table(
        title=f"Model: {escape(summary.name)}",
        title_justify="left",
        show_lines=False,
        header_style="bold",
    )
    table.add_column("Layer (type)")
    table.add_column("Output shape")
    table.add_column("Param #", justify="right")
    table.add_column("Connected to")
    for row in summary.layers:
        _add_rows(table, row, depth=0)
    console.print(table)
    for label, count, size in (
        ("Total params", summary.total_params, summary.total_bytes),
        ("Trainable params", summary.trainable_params, summary.trainable_bytes),
        ("Non-trainable params", summary.non_trainable_params, summary.non_trainable_bytes),
    ):
        console.print(Text.assemble((f"{label}: ", "bold"), f"{count:,} ({human_bytes(size)})"))
    if summary.precision != "float32":
        outputs = ", ".join(f"{o.name} {o.dtype}" for o in summary.outputs)
        console.print(
            Text.assemble(("Precision: ", "bold"), f"{summary.precision} (outputs: {outputs})")
        )


def _add_rows(table: Table, row: LayerRow, depth: int) -> None:
    indent = "  " * depth
    name = f"{indent}{row.name} ({row.type})"
    if not row.trainable and row.params:
        name += " [frozen]"
    table.add_row(
        escape(name),
        row.output_shape,
        f"{row.params:,}",
        escape(", ".join(row.connected_to) or "-"),
    )
    for child in row.layers:
        _add_rows(table, child, depth + 1)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{size} B"


def render_training(console: Console, result: TrainResult) -> None:
    """Final metrics of a training run, and where its files are."""
    table = Table(
        title=f"{escape(result.model)}: {result.epochs} epoch(s) in "
        f"{result.seconds:.1f}s ({result.samples_per_second:,.0f} samples/s)",
        title_justify="left",
        header_style="bold",
    )
    names = sorted({name for split in result.metrics.values() for name in split})
    table.add_column("metric")
    for split in result.metrics:
        table.add_column(split, justify="right")
    for name in names:
        table.add_row(escape(name), *(_metric(result.metrics[s].get(name)) for s in result.metrics))
    console.print(table)
    console.print(f"run directory: [bold]{escape(str(result.run_dir))}[/]")


def render_tune(console: Console, result: TuneResult) -> None:
    """A search's outcome: the trials by state, the best and its values, the files."""
    from kgraph_cli.reporting import params_text

    found = result.to_json()["counts"]
    states = ", ".join(f"{n} {state}" for state, n in found.items())
    console.print(
        f"study [bold]{escape(result.study)}[/]: {states or 'no trials'}; "
        f"stopped at {escape(result.stopped)}"
    )
    best = result.best
    if best is None:
        console.print("no trial completed yet: no best.yaml")
    else:
        console.print(
            f"best: trial {best.number}, {escape(result.objective)} [bold]{best.value:.4f}[/] "
            f"({result.direction}) - {escape(params_text(best.params))}"
        )
    if result.importances:
        shown = ", ".join(f"{escape(k)} {v:.2f}" for k, v in result.importances.items())
        console.print(f"importances: {shown}")
    labels = {
        "best_spec": "best spec (kgraph train it)",
        "trials": "every trial",
        "history_plot": "optimization history",
        "importances_plot": "importances",
    }
    for key, label in labels.items():
        if key in result.files:
            console.print(f"{label}: [bold]{escape(result.files[key])}[/]")


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def render_metrics(console: Console, result: Evaluation) -> None:
    """An evaluation: one row per metric (per output for multi-output models)."""
    table = Table(
        title=f"{escape(result.model)} on {escape(result.data)} ({result.samples:,} samples)",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(escape(name), _metric(value))
    console.print(table)


def render_top_classes(console: Console, result: Predictions) -> None:
    """`predict --image`: per class score output, each image's top classes."""
    assert result.ranking is not None
    for output in result.ranking.outputs.values():
        shown = min(result.top or 1, output.classes)
        table = Table(
            title=f"{escape(result.model)}: {escape(output.name)}, top {shown} of "
            f"{output.classes} classes ({output.how})",
            title_justify="left",
            header_style="bold",
        )
        table.add_column("image")
        table.add_column("rank", justify="right")
        table.add_column("class")
        table.add_column("probability", justify="right")
        for path, ranked in zip(result.images, output.top, strict=True):
            for rank, top in enumerate(ranked, start=1):
                table.add_row(
                    escape(str(path)) if rank == 1 else "",
                    str(rank),
                    escape(top.name),
                    f"{top.probability:.4f}",
                    end_section=rank == len(ranked),
                )
        console.print(table)


def render_model_info(console: Console, info: ModelInfo, show_spec: bool) -> None:
    """`kgraph load`: what the file is, its tensors, training state, spec, check."""
    console.print(
        Text.assemble(
            ("Model: ", "bold"),
            f"{info.name} ",
            (f"({info.format}, ", "dim"),
            (f"{info.path})", "dim"),
        )
    )
    tensors = Table(header_style="bold", title_justify="left")
    for column in ("", "name", "shape", "dtype"):
        tensors.add_column(column)
    for kind, items in (("input", info.inputs), ("output", info.outputs)):
        for item in items:
            shape = ", ".join("None" if d is None else str(d) for d in item["shape"])
            tensors.add_row(kind, escape(item["name"]), f"({shape})", item["dtype"])
    console.print(tensors)
    if info.summary is not None:
        render_summary(console, info.summary)
    state = "compiled" if info.compiled else "not compiled"
    if info.optimizer:
        state += f"; optimizer {info.optimizer} after {info.optimizer_steps:,} step(s)"
    if info.loss:
        state += f"; loss {info.loss}"
    console.print(Text.assemble(("Training: ", "bold"), state))
    if info.spec is None:
        console.print(Text.assemble(("Spec: ", "bold"), "none embedded"))
    elif show_spec:
        console.print(Text("Spec:", style="bold"))
        # As it is, unstyled: rich would lay out every line (40 s for 2 MB of newlines).
        console.file.write(info.spec if info.spec.endswith("\n") else info.spec + "\n")
        console.file.flush()
    else:
        lines = info.spec.count("\n")
        console.print(
            Text.assemble(("Spec: ", "bold"), f"embedded ({lines} lines; --spec prints it)")
        )
    if info.check is not None:
        shapes = ", ".join(f"{k} {tuple(v)}" for k, v in info.check["outputs"].items())
        verdict = ("ok", "green") if info.check["ok"] else ("NaN or infinite outputs", "red")
        console.print(Text.assemble(("Check: ", "bold"), verdict, f" - {shapes}"))
