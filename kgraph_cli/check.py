"""`validate`: structural checks, then (optionally) a symbolic build of every model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kgraph_cli.errors import Diagnostic, SpecError


@dataclass
class CheckResult:
    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def check_spec_file(
    path: Path,
    overrides: list[str],
    plugins: list[str],
    build: bool,
    space: list[str] | None = None,
) -> CheckResult:
    """Every problem of one spec file, as diagnostics (never raises SpecError);
    its `tune:` space and the --tune entries `space` are checked at their
    corners (tune/corners.py)."""
    from kgraph_cli.spec.tune import tune_of
    from kgraph_cli.spec.validate import validate_spec

    result = CheckResult(str(path))
    try:
        valid = validate_spec(path, overrides, plugins)
        tune = tune_of(valid.spec.data, space or [], valid.spec.file)
    except SpecError as exc:
        result.diagnostics = exc.diagnostics
        return result
    result.models = list(valid.spec.models)
    if tune.space:
        from kgraph_cli.tune.corners import check_space

        problems = check_space(path, overrides, plugins, tune, build)
        if problems:
            result.diagnostics = problems
            return result
    if build:
        from kgraph_cli.build import ModelBuilder

        try:
            ModelBuilder(valid).build_all()
        except SpecError as exc:
            result.diagnostics = exc.diagnostics
            return result
    result.diagnostics = list(valid.warnings)  # with what the build warned about
    return result
