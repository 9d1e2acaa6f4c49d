"""The typer arguments and options several `kgraph` commands share.

Each is an `Annotated` alias: the type, the flag names and the help text, in
one place so every command shows the same flag the same way. Options only one
command has stay with that command in `cli.py`. Nothing here imports more than
typer, so `kgraph --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from kgraph_cli.spec.train.keys import PRECISIONS, STRATEGIES

SpecFile = Annotated[
    Path,
    typer.Argument(
        exists=True, dir_okay=False, readable=True, show_default=False, help="A kgraph YAML spec."
    ),
]
TargetArgument = Annotated[
    Path,
    typer.Argument(
        exists=True,
        show_default=False,
        metavar="SPEC|RUN_DIR|MODEL",
        help="A spec, a run directory written by `kgraph train`, or a .keras file.",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY.PATH=VALUE",
        show_default=False,
        help="Override a spec value before validation (repeatable), e.g. "
        "--set layers.hidden1.units=128.",
    ),
]
TuneOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tune",
        "-t",
        metavar="KEY.PATH=EXPRESSION",
        show_default=False,
        help="Search a value (repeatable): choice(A, B), int(LOW, HIGH[, step=N][, log]), "
        "float(LOW, HIGH[, log]), bool; 'EXPRESSION when PATH=VALUE' for a conditional one.",
    ),
]
PluginOption = Annotated[
    list[str] | None,
    typer.Option(
        "--plugin",
        "-p",
        metavar="FILE.py|MODULE",
        show_default=False,
        help="Import custom layer classes; specs name them module.Class (repeatable).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        show_default=False,
        help="Which model of the spec (default: the spec's `default`).",
    ),
]
DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        "-d",
        show_default=False,
        help="A split of the spec's data (train, validation, test; default test) "
        "or a .npz/.csv file.",
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="KGRAPH_DATA_DIR",
        show_default=False,
        help="Where to look for dataset files before downloading (mnist.npz...).",
    ),
]
# Literal types: typer lists and checks the choices.
StrategyName = Literal[tuple(STRATEGIES)]  # type: ignore[valid-type]
PrecisionName = Literal[tuple(PRECISIONS)]  # type: ignore[valid-type]
StrategyOption = Annotated[
    StrategyName | None,
    typer.Option(
        "--strategy",
        show_default=False,
        help="The tf.distribute strategy (default: the spec's train.distribute); "
        "multi_worker reads the cluster from TF_CONFIG.",
    ),
]
PrecisionOption = Annotated[
    PrecisionName | None,
    typer.Option(
        "--precision",
        show_default=False,
        help="Override train.precision: the model's dtype policy (its outputs stay float32).",
    ),
]
BatchOption = Annotated[int | None, typer.Option("--batch-size", min=1, help="Batch size.")]
# --force of the commands that write one file, their --output.
ForceOutputOption = Annotated[bool, typer.Option("--force", help="Overwrite --output.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only problems.")]
DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show tracebacks and TensorFlow's own logs.")
]
