"""The search space checked before any trial runs: the spec is validated with
each param at each of its corners (every choice, both bounds), and, when
asked, its models are built with every param at its low corner and at its
high corner. A problem is reported like any other, located at the searched
value when it is the value's, and says which value of the space caused it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from kgraph_cli.errors import Diagnostic, SpecError
from kgraph_cli.spec.assemble import Assignment
from kgraph_cli.spec.tune import Param, TuneSpec, flow

# Corner checks stop after this many problems: one wrong bound fails many corners.
MAX_CORNER_PROBLEMS = 20


def check_space(
    spec: Path,
    overrides: list[str],
    plugins: list[str],
    tune: TuneSpec,
    build: bool,
) -> list[Diagnostic]:
    """Every problem the space's corners show (empty when there is none)."""
    from kgraph_cli.spec.validate import validate_spec

    problems: list[Diagnostic] = []
    seen: set[tuple[str, str, Any]] = set()

    def add(found: list[Diagnostic], cause: str, searched: list[Param]) -> None:
        for diagnostic in found:
            key = (diagnostic.code, diagnostic.message, diagnostic.location)
            if diagnostic.is_error and key not in seen and len(problems) < MAX_CORNER_PROBLEMS:
                seen.add(key)
                problems.append(_caused_by(diagnostic, cause, searched))

    for param in tune.space:
        for value in param.corners():
            assignments = [*_condition(tune, param), _assignment(param, value)]
            try:
                validate_spec(spec, overrides, plugins, assignments=assignments)
            except SpecError as exc:
                add(exc.diagnostics, f"{param.path}={flow(value)}", [param])
    if problems or not build:
        return problems
    from kgraph_cli.build import ModelBuilder

    def build_problems(values: list[tuple[Param, Any]]) -> list[Diagnostic]:
        assignments = [_assignment(p, v) for p, v in values]
        try:
            valid = validate_spec(spec, overrides, plugins, assignments=assignments)
            ModelBuilder(valid).build_all()
        except SpecError as exc:
            return exc.diagnostics
        return []

    for end, name in ((0, "low"), (-1, "high")):
        values = corner(tune, end)
        if not build_problems(values):
            continue
        # Which value alone does it (the others as the spec has them), if one does.
        alone = False
        for param, value in values:
            found = build_problems([*_condition_values(tune, param), (param, value)])
            if found:
                alone = True
                add(found, f"{param.path}={flow(value)}", [param])
        if not alone:
            shown = ", ".join(f"{p.path}={flow(v)}" for p, v in values)
            add(build_problems(values), f"the {name} corner ({shown})", [p for p, _ in values])
    return problems


def corner(tune: TuneSpec, end: int) -> list[tuple[Param, Any]]:
    """Every param at its first (`end` 0) or last (-1) corner value; a
    conditional param only where its condition holds there."""
    chosen: dict[str, Any] = {}
    values = []
    for param in tune.space:
        if param.when is not None and not holds(param, chosen):
            continue
        value = param.corners()[end]
        chosen[param.path] = value
        values.append((param, value))
    return values


def holds(param: Param, chosen: dict[str, Any]) -> bool:
    """Whether `param`'s `when:` holds for the values chosen so far."""
    if param.when is None:
        return True
    path, value = param.when
    allowed = value if isinstance(value, list) else [value]
    return path in chosen and chosen[path] in allowed


def _condition_values(tune: TuneSpec, param: Param) -> list[tuple[Param, Any]]:
    """The values of the params `param` depends on that make its `when:` hold."""
    if param.when is None:
        return []
    path, value = param.when
    other = tune.param(path)
    first = value[0] if isinstance(value, list) else value
    return [*_condition_values(tune, other), (other, first)] if other else []


def _condition(tune: TuneSpec, param: Param) -> list[Assignment]:
    return [_assignment(p, v) for p, v in _condition_values(tune, param)]


def _assignment(param: Param, value: Any) -> Assignment:
    return (param.path, value, param.loc, param.key_loc)


def _caused_by(diagnostic: Diagnostic, cause: str, searched: list[Param]) -> Diagnostic:
    """The diagnostic, saying which searched value it comes from and (when it is
    located elsewhere) pointing at that value too."""
    related = tuple(
        (p.loc, f"searched here: {p.path}") for p in searched if p.loc != diagnostic.location
    )
    return replace(
        diagnostic,
        message=f"with {cause} (tune): {diagnostic.message}",
        related=(*diagnostic.related, *related),
    )
