"""The `kgraph` command: the typer app, its callback and the thin commands.

Each command is options in, one call of `kgraph_cli.api`, results out (rich
or JSON). The options several commands share are in `options.py`; output,
errors and exit codes are the `session` of `session.py`. Heavy modules
(TensorFlow, the builder) are imported inside the commands that need them, so
`kgraph --help` and structural validation stay fast.

It is one cohesive thing, the command-line surface, and over 500 lines only
because each command declares the options it alone has beside it (`plot`'s
take 50 lines): split further, a flag would live far from its one command.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from kgraph_cli import __version__
from kgraph_cli.errors import Diagnostic
from kgraph_cli.options import (
    BatchOption,
    DataDirOption,
    DataOption,
    DebugOption,
    ForceOutputOption,
    JsonOption,
    ModelOption,
    PluginOption,
    PrecisionOption,
    QuietOption,
    SetOption,
    SpecFile,
    StrategyOption,
    TargetArgument,
    TuneOption,
)
from kgraph_cli.session import CommandGroup, escape, session
from kgraph_cli.spec.overrides import OVERRIDE_FILE, override_source

app = typer.Typer(
    name="kgraph",
    cls=CommandGroup,
    help="Define, validate, train and ship Keras models from YAML specs.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # No markup in help texts: saves loading rich.markdown (--help must be instant).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"kgraph {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version_callback,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """Define, validate, train and ship Keras models from YAML specs.

    Exit codes: 0 success, 1 invalid spec/data/model, 2 usage error, 130 interrupted.
    """


@app.command()
def validate(
    specs: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
            help="One or more spec files.",
        ),
    ],
    no_build: Annotated[
        bool,
        typer.Option("--no-build", help="Structural checks only: no TensorFlow, no shape checks."),
    ] = False,
    space: TuneOption = None,
    overrides: SetOption = None,
    plugins: PluginOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Check specs and report every problem with its file:line:col.

    Without --no-build, every model is also built symbolically to find shape
    and dtype errors. Exit code 0 when all specs are valid, 1 otherwise.
    """
    from kgraph_cli import api

    all_diagnostics: list[Diagnostic] = []
    failed = False
    with session(json_output, debug, overrides, space) as current:
        for spec_file in specs:
            result = api.validate(
                spec_file, overrides or [], plugins or [], not no_build, space or []
            )
            all_diagnostics += result.diagnostics
            failed |= not result.ok
            if not json_output:
                current.report(result.diagnostics)
                if result.ok and not quiet:
                    what = "structure valid" if no_build else "valid"
                    models = ", ".join(result.models)
                    current.out.print(
                        f"[green]ok[/] {escape(str(spec_file))}: {what} "
                        f"({len(result.models)} model(s): {escape(models)})"
                    )
        if json_output:
            current.report(all_diagnostics)
    if failed:
        raise typer.Exit(1)


@app.command()
def summary(
    spec: TargetArgument,
    model: ModelOption = None,
    expand: Annotated[
        bool, typer.Option("--expand", "-e", help="Show the layers of nested models.")
    ] = False,
    overrides: SetOption = None,
    plugins: PluginOption = None,
    json_output: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Show a model's layers, output shapes, connections and parameter counts."""
    with session(json_output, debug, overrides) as current:
        from kgraph_cli import api
        from kgraph_cli.console import render_summary

        loaded = api.load(spec, model, overrides or [], plugins or [])
        facts = api.summarize(loaded, expand=expand)
        if json_output:
            current.print_json(facts.to_json())
        else:
            if loaded.valid is not None and not loaded.trained:
                current.report(loaded.valid.warnings)
            render_summary(current.out, facts)


@app.command()
def train(
    spec: TargetArgument,
    model: ModelOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run directory (default: runs/MODEL-TIMESTAMP)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the interrupted run in --out.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out.")] = False,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Override train.fit.epochs.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Override train.fit.batch_size.")
    ] = None,
    data_dir: DataDirOption = None,
    strategy: StrategyOption = None,
    precision: PrecisionOption = None,
    tensorboard: Annotated[
        bool,
        typer.Option(
            "--tensorboard",
            help="Log to RUN_DIR/tensorboard for TensorBoard (unless the spec has a "
            "TensorBoard callback).",
        ),
    ] = False,
    overrides: SetOption = None,
    plugins: PluginOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Train a model on its spec's data and write a run directory.

    The run directory holds model.keras, spec.yaml (as trained), history.json
    and .csv, metrics.json and curves.png. Ctrl-C stops after keeping what
    --resume needs to continue from the last completed epoch.
    """
    with session(json_output, debug, overrides) as current:
        from kgraph_cli import api
        from kgraph_cli.progress import EpochReporter
        from kgraph_cli.train import PeerLost, TrainingInterrupted

        # People get progress on stdout; with --json, stdout is for the result.
        reporter = EpochReporter(current.err if json_output else current.out, quiet)
        # The flags are overrides, so the run's spec.yaml records them.
        current.sources.extra[OVERRIDE_FILE] = override_source(
            [*(overrides or []), *api.train_overrides(epochs, batch_size, precision)]
        )
        try:
            result = api.train(
                spec,
                model,
                out,
                resume,
                force,
                epochs,
                batch_size,
                data_dir,
                overrides or [],
                plugins or [],
                reporter,
                strategy,
                precision,
                tensorboard,
            )
        except PeerLost:
            raise  # the same command, on every worker, resumes it
        except TrainingInterrupted as exc:
            typed = [str(spec), *(["--model", model] if model else [])]
            flags = (
                ("--epochs", epochs),
                ("--batch-size", batch_size),
                ("--strategy", strategy),
                ("--precision", precision),
            )
            for flag, value in flags:
                typed += [flag, str(value)] if value is not None else []
            typed += ["--tensorboard"] if tensorboard else []
            typed += [f"--set={item}" for item in overrides or []]
            typed += [f"--plugin={item}" for item in plugins or []]
            typed += ["--out", str(exc.run_dir), "--resume"]
            typed += ["--data-dir", str(data_dir)] if data_dir else []
            exc.hint = f"continue with: {shlex.join(['kgraph', 'train', *typed])}"
            raise
        if json_output:
            current.print_json(result.to_json())
        elif not quiet:
            from kgraph_cli.console import render_training

            render_training(current.out, result)


@app.command()
def tune(
    spec: SpecFile,
    space: TuneOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Tune directory (default: tunes/SPEC_STEM); the same one resumes."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Start over: replace the tune directory and its study.")
    ] = False,
    trials: Annotated[
        int | None,
        typer.Option("--trials", "-n", min=1, help="Trials to finish, over every process."),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option("--timeout", help="Start no trial after this long: 90, 90s, 10m, 2h."),
    ] = None,
    objective: Annotated[
        str | None,
        typer.Option("--objective", help="The metric to optimize (default: val_loss)."),
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option("--direction", help="minimize or maximize (default: from the metric)."),
    ] = None,
    sampler: Annotated[
        str | None, typer.Option("--sampler", help="tpe (default), random, grid or cmaes.")
    ] = None,
    pruner: Annotated[
        str | None, typer.Option("--pruner", help="median (default), hyperband or none.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="The sampler's seed (default 0).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="A database URL to share the study between processes and machines "
            "(default: sqlite in the tune directory).",
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="The study's name (default: the spec's stem).")
    ] = None,
    model: ModelOption = None,
    data_dir: DataDirOption = None,
    tensorboard: Annotated[
        bool,
        typer.Option("--tensorboard", help="Each trial logs to TRIAL_DIR/tensorboard."),
    ] = False,
    overrides: SetOption = None,
    plugins: PluginOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Search hyperparameters: train a trial per set of values, keep the best.

    The space is the spec's `tune:` section and the --tune options. Each trial
    is a run directory in TUNE_DIR/trials; TUNE_DIR gets best.yaml (the spec
    with the best values: kgraph train it), trials.csv, tune.json, history.png
    and importances.png. Ctrl-C keeps every finished trial: the same command
    continues the search.
    """
    with session(json_output, debug, overrides, space) as current:
        from kgraph_cli import api
        from kgraph_cli.progress import TuneTable

        reporter = TuneTable(current.err if json_output else current.out, quiet)
        result = api.tune(
            spec,
            space or [],
            out,
            force,
            trials,
            timeout,
            objective,
            direction,
            sampler,
            pruner,
            seed,
            storage,
            study,
            model,
            data_dir,
            tensorboard,
            overrides or [],
            plugins or [],
            reporter,
        )
        if json_output:
            current.print_json(result.to_json())
        elif not quiet:
            from kgraph_cli.console import render_tune

            render_tune(current.out, result)


@app.command()
def save(
    spec: SpecFile,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Where to write (.keras, .h5, .weights.h5, "
            ".tflite, .onnx, or a folder for SavedModel).",
        ),
    ],
    model: ModelOption = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            "-w",
            show_default=False,
            help="Take the weights of a trained .keras model, a run directory or a "
            ".weights.h5 file (default: fresh, untrained).",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            show_default=False,
            help="keras, h5, weights, savedmodel, tflite or onnx (default: from -o).",
        ),
    ] = None,
    force: ForceOutputOption = False,
    overrides: SetOption = None,
    plugins: PluginOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Build a spec's model and write it (the spec is embedded where the format allows)."""
    with session(json_output, debug, overrides) as current:
        from kgraph_cli import api

        result = api.save(spec, output, model, weights, fmt, force, overrides or [], plugins or [])
        if json_output:
            current.print_json(result.to_json())
        elif not quiet:
            from kgraph_cli.console import human_bytes

            current.wrote(output, f" ({result.format}, {human_bytes(result.bytes)})")


@app.command()
def load(
    model_path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            show_default=False,
            metavar="MODEL",
            help="A .keras or .h5 file, a run directory or a SavedModel folder.",
        ),
    ],
    check: Annotated[
        bool, typer.Option("--check", help="Run a forward pass on random inputs.")
    ] = False,
    unsafe: Annotated[
        bool,
        typer.Option(
            "--unsafe",
            help="Allow models that contain code (Lambda layers). Only for files you trust.",
        ),
    ] = False,
    show_spec: Annotated[bool, typer.Option("--spec", help="Print the embedded spec.")] = False,
    plugins: PluginOption = None,
    json_output: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Show what a saved model is: layers, inputs, outputs, embedded spec, training state."""
    with session(json_output, debug) as current:
        from kgraph_cli import api
        from kgraph_cli.console import render_model_info

        info = api.inspect(model_path, safe_mode=not unsafe, check=check, plugins=plugins or [])
        if json_output:
            current.print_json(info.to_json())
        else:
            render_model_info(current.out, info, show_spec)


@app.command()
def evaluate(
    target: TargetArgument,
    model: ModelOption = None,
    data: DataOption = None,
    batch_size: BatchOption = None,
    data_dir: DataDirOption = None,
    strategy: StrategyOption = None,
    overrides: SetOption = None,
    plugins: PluginOption = None,
    json_output: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Compute the loss and metrics of a model (per output) on a split or a file."""
    with session(json_output, debug, overrides) as current:
        from kgraph_cli import api
        from kgraph_cli.console import render_metrics

        result = api.evaluate(
            target, data, data_dir, batch_size, model, overrides or [], plugins or [], strategy
        )
        if json_output:
            current.print_json(result.to_json())
        else:
            if not result.trained:
                current.note(
                    "evaluating an untrained model built from "
                    "the spec (pass a run directory for trained weights)"
                )
            render_metrics(current.out, result)


@app.command()
def predict(
    target: TargetArgument,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            show_default=False,
            help="Where to write: .npy, .npz or .csv (optional with --image).",
        ),
    ] = None,
    images: Annotated[
        list[Path] | None,
        typer.Option(
            "--image",
            "-i",
            show_default=False,
            metavar="FILE|DIR",
            help="An image file, or a folder of them (not recursive), as the model's "
            "input (repeatable); prints the top classes.",
        ),
    ] = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top",
            "-k",
            min=1,
            metavar="K",
            show_default=False,
            help="How many classes per image (default 5).",
        ),
    ] = None,
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            metavar="NODE",
            show_default=False,
            help="Write the activations of this node (a layer, by name) instead of the outputs.",
        ),
    ] = None,
    model: ModelOption = None,
    data: DataOption = None,
    batch_size: BatchOption = None,
    force: ForceOutputOption = False,
    data_dir: DataDirOption = None,
    strategy: StrategyOption = None,
    overrides: SetOption = None,
    plugins: PluginOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Run a model on a split, a file or images and write its outputs (.npy, .npz,
    .csv); for images, print the top classes of each class score output."""
    with session(json_output, debug, overrides) as current:
        from kgraph_cli import api

        result = api.predict(
            target,
            output,
            data,
            data_dir,
            batch_size,
            force,
            model,
            overrides or [],
            plugins or [],
            images or [],
            top,
            node,
            strategy,
        )
        for note in result.notes:
            current.note(escape(note))
        if json_output:
            current.print_json(result.to_json())
            return
        if result.ranking is not None and result.ranking.outputs:
            from kgraph_cli.console import render_top_classes

            render_top_classes(current.out, result)
        if output is not None and not quiet:
            shapes = ", ".join(f"{name} {shape}" for name, shape in result.shapes.items())
            current.wrote(output, f": {result.samples:,} samples; {escape(shapes)}")


@app.command()
def plot(
    target: TargetArgument,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            show_default=False,
            help="Where to write: .png, .svg, .pdf (Graphviz), .dot or .mmd (Mermaid; no "
            "Graphviz needed). A run directory gives its training curves (.png/.svg/.pdf).",
        ),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            show_default=False,
            help="png, svg, pdf, dot, mmd (default: -o's extension), or tree to print the "
            "graph in the terminal; dot and mmd without -o go to stdout.",
        ),
    ] = None,
    model: ModelOption = None,
    show_shapes: Annotated[bool, typer.Option("--show-shapes", help="Show output shapes.")] = False,
    show_dtype: Annotated[bool, typer.Option("--show-dtype", help="Show output dtypes.")] = False,
    show_layer_names: Annotated[
        bool,
        typer.Option(
            "--show-layer-names/--hide-layer-names",
            help="Label boxes with layer names (the spec's node names) or only classes.",
        ),
    ] = True,
    show_activations: Annotated[
        bool, typer.Option("--show-activations", help="Show layers' activation functions.")
    ] = False,
    expand_nested: Annotated[
        bool,
        typer.Option("--expand-nested", help="Draw the layers of nested models in a frame."),
    ] = False,
    rankdir: Annotated[
        str, typer.Option("--rankdir", help="TB (top to bottom) or LR (left to right).")
    ] = "TB",
    dpi: Annotated[
        int, typer.Option("--dpi", min=20, max=1200, help="Resolution of .png model graphs.")
    ] = 96,
    force: ForceOutputOption = False,
    overrides: SetOption = None,
    plugins: PluginOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Draw a model's graph (.png .svg .pdf .dot .mmd, or a terminal tree), or a
    run directory's training curves.

    Shared layers are one box whose calls are numbered on their edges; nested
    models are one box, or a frame of their layers with --expand-nested.
    """
    with session(json_output, debug, overrides) as current:
        from kgraph_cli import api
        from kgraph_cli.plot import PlotOptions

        options = PlotOptions(
            show_shapes, show_dtype, show_layer_names, show_activations, expand_nested, rankdir, dpi
        )
        result = api.plot(
            target, output, output_format, model, options, force, overrides or [], plugins or []
        )
        if json_output:
            current.print_json(
                result.graph.to_json() if result.tree is not None else result.to_json()
            )
        elif result.tree is not None:
            current.out.print(result.tree)
        elif result.text is not None:
            sys.stdout.write(result.text)
        elif not quiet:
            what = "training curves" if result.kind == "curves" else "graph"
            current.wrote(output, f" ({what})")


@app.command("import")
def import_model(
    model_file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
            metavar="MODEL",
            help="A Keras model file (.keras or .h5): functional or Sequential.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", show_default=False, help="The spec to write (.yaml)."),
    ],
    weights: Annotated[
        bool,
        typer.Option(
            "--weights", help="Also write the weights next to the spec (SPEC.weights.h5)."
        ),
    ] = False,
    weights_file: Annotated[
        Path | None,
        typer.Option(
            "--weights-file",
            show_default=False,
            help="Write the weights to this .weights.h5 file (implies --weights).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    plugins: PluginOption = None,
    json_output: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Turn a Keras model into a spec that rebuilds the same architecture.

    Arguments equal to Keras's defaults are left out; shared layers become
    `share:` nodes, nested models entries of `models:`. With --weights, the
    rebuilt model loads the weights file (model.load_weights) and predicts
    exactly what the original does.
    """
    with session(json_output, debug) as current:
        from kgraph_cli import api

        result = api.import_model(model_file, output, weights_file or weights, force, plugins or [])
        if json_output:
            current.print_json(result.to_json())
            return
        current.wrote(
            output,
            f": {result.layers:,} layers, {result.params:,} parameters"
            + (f", {len(result.models)} nested model(s)" if result.models else ""),
        )
        if result.weights is not None:
            current.wrote(result.weights, " (weights)")
        for renamed in result.renamed:
            where = f"{renamed.name} in {renamed.model}" if renamed.model else renamed.name
            current.note(
                f"{escape(repr(renamed.keras_name))} is not a valid spec "
                f"name: written as {escape(where)}"
            )
        for note in result.notes:
            current.note(escape(note))


@app.command()
def schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Print the JSON Schema of the spec format (for editors' YAML support)."""
    with session() as current:
        from kgraph_cli import api
        from kgraph_cli.fileio import write_text_atomic

        text = json.dumps(api.schema(), indent=2) + "\n"
        if output is None:
            sys.stdout.write(text)
            return
        write_text_atomic(output, text, force=force)
        current.wrote(output)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
