"""How a `kgraph` command meets the terminal: the per-command `Session`.

`session()` wraps each command's body. It chooses human (rich) or JSON output,
keeps stdout for the one JSON document under --json, renders diagnostics and
errors, and maps kgraph errors to exit codes (each error's own; 130 for
Ctrl-C). `Session` holds the two consoles and the lines commands share
(`wrote`, `note`). rich comes in when a command starts; TensorFlow never
does here (the session only quiets its logs before a command loads it), so
`kgraph --help` stays instant.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import typer
from typer.core import TyperGroup

from kgraph_cli.errors import Diagnostic, KgraphError, SpecError
from kgraph_cli.spec.overrides import OVERRIDE_FILE, override_source


class Session:
    """Per-command output and error policy (JSON or human, debug)."""

    def __init__(
        self,
        json_output: bool,
        debug: bool,
        overrides: list[str] | None = None,
        json_stream: TextIO | None = None,
        space: list[str] | None = None,
    ):
        from kgraph_cli.console import SourceLines, make_console
        from kgraph_cli.tf import quiet_tensorflow

        quiet_tensorflow(debug)
        self.json_output = json_output
        self.debug = debug
        self.json_stream = json_stream or sys.stdout
        self.out = make_console()
        self.err = make_console(stderr=True)
        self.sources = SourceLines({OVERRIDE_FILE: override_source(overrides or [])})
        if space:  # --tune entries, shown like --set's in diagnostics
            from kgraph_cli.spec.tune import TUNE_FILE

            self.sources.extra[TUNE_FILE] = "\n".join(space)

    def print_json(self, data: Any) -> None:
        """The command's one JSON document, on the real stdout."""
        write_json(self.json_stream, data)

    def report(self, diagnostics: list[Diagnostic]) -> None:
        """Diagnostics to stderr (people) or as a JSON list on stdout (scripts)."""
        from kgraph_cli.console import render_diagnostics

        if self.json_output:
            self.print_json([d.to_json() for d in diagnostics])
        elif diagnostics:
            render_diagnostics(self.err, diagnostics, self.sources)

    def fail(self, error: KgraphError) -> None:
        if self.json_output:
            self.report([Diagnostic(error.code, str(error), hint=error.hint)])
            return
        self.err.print(f"[bold red]error:[/] {escape(str(error))}")
        if error.hint:
            self.err.print(f"   [bold green]hint:[/] {escape(error.hint)}")

    def wrote(self, path: Path, detail: str = "") -> None:
        """`wrote PATH` on stdout; `detail` is markup (escape what it interpolates)."""
        self.out.print(f"wrote {escape(str(path))}{detail}")

    def note(self, markup: str) -> None:
        """A `note:` on stderr (escape what `markup` interpolates)."""
        self.err.print(f"[yellow]note:[/] {markup}")


@contextmanager
def session(
    json_output: bool = False,
    debug: bool = False,
    overrides: list[str] | None = None,
    space: list[str] | None = None,
) -> Iterator[Session]:
    """Run a command body; map kgraph errors to messages and exit codes
    (`overrides`, `space`: the --set and --tune arguments diagnostics quote)."""
    with _stdout_for_json(json_output) as json_stream:
        current = Session(json_output, debug, overrides, json_stream, space)
        try:
            yield current
        except SpecError as exc:
            current.report(exc.diagnostics)
            raise typer.Exit(exc.exit_code) from (exc if debug else None)
        except KgraphError as exc:
            if debug:
                raise
            current.fail(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            current.err.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None


class CommandGroup(TyperGroup):
    """The `kgraph` group: a usage error (an unknown option, a missing or bad
    argument) found while parsing a command line that asks for --json is one
    JSON diagnostic list on stdout, like every other error under --json, and
    still exit code 2. Without --json it is typer's usual text on stderr."""

    json_requested = False  # set from the command line by main()

    def main(self, args: Any = None, *rest: Any, **options: Any) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        self.json_requested = "--json" in args[: args.index("--") if "--" in args else None]
        return super().main(args, *rest, **options)

    def make_context(self, *args: Any, **options: Any) -> Any:
        with self._usage_errors():
            return super().make_context(*args, **options)

    def invoke(self, ctx: typer.Context) -> Any:
        with self._usage_errors():
            return super().invoke(ctx)

    @contextmanager
    def _usage_errors(self) -> Iterator[None]:
        try:
            yield
        except typer.TyperException as exc:
            if self.json_requested:
                # typer shows the error with its own `show()` (and then exits
                # with its code): this one error shows itself as JSON instead.
                exc.show = functools.partial(_show_usage_json, exc)  # type: ignore[attr-defined]
            raise


def _show_usage_json(error: typer.TyperException, file: TextIO | None = None) -> None:
    context = getattr(error, "ctx", None)
    hint = f"see '{context.command_path} --help'" if context is not None else ""
    write_json(sys.stdout, [Diagnostic("usage", error.format_message(), hint=hint).to_json()])


def write_json(stream: TextIO, data: Any) -> None:
    """One JSON document on `stream`, as every --json output is written."""
    stream.write(json.dumps(data, indent=2, default=str) + "\n")
    stream.flush()


@contextmanager
def _stdout_for_json(active: bool) -> Iterator[TextIO]:
    """With --json, stdout carries exactly one JSON document: meanwhile anything
    else written there, by kgraph or by libraries (Keras's download messages,
    TensorFlow's C++ logs), goes to stderr. Yields the stream for the JSON."""
    stdout = sys.stdout
    if not active:
        yield stdout
        return
    try:
        fd, err_fd = stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # in-memory streams (tests)
        fd = err_fd = -1
    saved = -1
    if fd >= 0:
        stdout.flush()
        saved = os.dup(fd)
        os.dup2(err_fd, fd)
    json_stream = os.fdopen(os.dup(saved), "w", encoding="utf-8") if saved >= 0 else stdout
    sys.stdout = sys.stderr
    try:
        yield json_stream
    finally:
        sys.stdout = stdout
        json_stream.flush()
        if saved >= 0:
            stdout.flush()
            os.dup2(saved, fd)
            os.close(saved)
            json_stream.close()


def escape(text: str) -> str:
    """`text` safe inside rich markup (rich is imported on first use)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
