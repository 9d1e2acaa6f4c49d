"""Golden diagnostics for the invalid specs in tests/invalid/.

Each `tests/invalid/NN_name.yaml` is a small spec with one kind of problem (its
first line says which). Next to it, `NN_name.expected` holds what
`kgraph validate --json NN_name.yaml` reports, rendered as reviewable text:

    exit: 1
    LINE:COL severity[code] key.path: message
        | the source line
        |        ^ (the column the diagnostic points at)
        note LINE:COL: a related place
        hint: what to do

Diagnostics in another file (an included part) start with that file's path,
relative to tests/invalid/. The CLI runs in-process, from tests/invalid/, so
the text does not depend on where the repository lives.

After a deliberate change to kgraph's diagnostics, regenerate and review:

    make golden        # = .venv/bin/python -m tests.golden
    git diff tests/invalid/
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INVALID = Path(__file__).resolve().parent / "invalid"
# Rich reads these: a fixed width and no colour keep the human output stable.
CONSOLE_ENV = {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}


@dataclass
class Run:
    """One in-process `kgraph validate` run."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def cases() -> list[Path]:
    """The invalid specs, in order (helpers under invalid/parts/ are not cases)."""
    return sorted(INVALID.glob("*.yaml"))


def expected_path(spec: Path) -> Path:
    return spec.with_suffix(".expected")


def run_validate(spec: Path, json_output: bool = True) -> Run:
    """`kgraph validate [--json] NAME.yaml` in-process, from tests/invalid/."""
    from typer.testing import CliRunner

    from kgraph_cli.cli import app

    args = ["validate", *(["--json"] if json_output else []), spec.name]
    with contextlib.chdir(spec.parent):
        result = CliRunner().invoke(app, args, env=CONSOLE_ENV)
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return Run(result.exit_code, result.stdout, result.stderr, exception)


def needs_build(spec: Path) -> bool:
    """Whether the spec passes the structural checks, so that validating it builds
    the models (and imports TensorFlow). Pure Python."""
    from kgraph_cli.check import check_spec_file

    return check_spec_file(spec, [], [], build=False).ok


def render(spec: Path) -> str:
    """The golden text of one invalid spec: exit code, then each diagnostic."""
    run = run_validate(spec, json_output=True)
    if run.exception is not None:
        raise RuntimeError(f"kgraph validate crashed on {spec.name}") from run.exception
    try:
        diagnostics = json.loads(run.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(
            f"kgraph validate --json {spec.name} printed no JSON:\n{run.stdout}{run.stderr}"
        ) from exc
    lines = [f"exit: {run.exit_code}"]
    for diag in diagnostics:
        lines += _render_diagnostic(diag, spec.name)
    return "\n".join(lines) + "\n"


def first_location(spec: Path) -> str:
    """`file:line:col` (or `file`) of the first diagnostic, as the human output shows it."""
    diagnostics = json.loads(run_validate(spec, json_output=True).stdout)
    first = diagnostics[0]
    if not first.get("line"):
        return first["file"]
    return f"{first['file']}:{first['line']}:{first['col']}"


def _render_diagnostic(diag: dict[str, Any], own_file: str) -> list[str]:
    where = _where(diag.get("file"), diag.get("line"), diag.get("col"), own_file)
    head = f"{where} {diag['severity']}[{diag['code']}] "
    if diag.get("path"):
        head += f"{diag['path']}: "
    lines = [head + diag["message"]]
    lines += _excerpt(diag.get("file"), diag.get("line"), diag.get("col"))
    for rel in diag.get("related") or []:
        rel_where = _where(rel["file"], rel["line"], rel["col"], own_file)
        lines.append(f"    note {rel_where}: {rel['message']}")
    if diag.get("hint"):
        lines.append(f"    hint: {diag['hint']}")
    return lines


def _where(file: str | None, line: int | None, col: int | None, own_file: str) -> str:
    if not file:
        return "-"
    place = f"{line}:{col}" if line else "-"
    return place if file == own_file else f"{file}:{place}"


def _excerpt(file: str | None, line: int | None, col: int | None) -> list[str]:
    """The source line and a caret under the column, for reviewing the location."""
    if not file or not line:
        return []
    path = INVALID / file
    if not path.is_file():
        return []
    source = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    if not 1 <= line <= len(source):
        return []
    return [f"    | {source[line - 1]}".rstrip(), "    | " + " " * max((col or 1) - 1, 0) + "^"]


def main() -> int:
    """Regenerate every .expected file; say which ones changed."""
    changed = 0
    for spec in cases():
        text = render(spec)
        target = expected_path(spec)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            changed += 1
            print(f"updated {target.relative_to(INVALID.parent.parent)}")
    for stale in sorted(INVALID.glob("*.expected")):
        if not stale.with_suffix(".yaml").exists():
            print(f"stale (no .yaml): {stale.relative_to(INVALID.parent.parent)}")
    print(f"{len(cases())} cases, {changed} expected file(s) updated; review with git diff")
    return 0


if __name__ == "__main__":
    sys.exit(main())
