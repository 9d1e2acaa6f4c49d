"""The search space checked before any trial runs: the spec is validated with
each param at each of its corners (every choice, up to MAX_ROUNDS, and both
bounds), several params at once, and, when asked, its models are built with
every param at its low corner and at its high corner. A problem is reported
like any other, located at the searched value when it is the value's, and
says which value of the space caused it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from kgraph_cli.errors import Diagnostic, SpecError
from kgraph_cli.spec.assemble import Assignment
from kgraph_cli.spec.tune import Param, TuneSpec, flow, holds

# Corner checks stop after this many problems: one wrong bound fails many corners.
MAX_CORNER_PROBLEMS = 20
# Structural checks per group of params: a choice longer than this is checked
# at this many of its values, spread over it (its first and last among them).
MAX_ROUNDS = 16


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

    def problems_at(values: list[tuple[Param, Any]], build_too: bool) -> list[Diagnostic]:
        assignments = [_assignment(p, v) for p, v in values]
        try:
            valid = validate_spec(spec, overrides, plugins, assignments=assignments)
            if build_too:
                from kgraph_cli.build import ModelBuilder

                ModelBuilder(valid).build_all()
        except SpecError as exc:
            return exc.diagnostics
        return []

    def check(values: list[tuple[Param, Any]], build_too: bool, name: str) -> None:
        """One check of several values at once; when it fails, each value alone
        (its condition's values with it) names the one at fault, if one is."""
        if not values or not problems_at(values, build_too):
            return
        alone = False
        for param, value in values:
            found = problems_at([*_condition_values(tune, param), (param, value)], build_too)
            if found:
                alone = True
                add(found, f"{param.path}={flow(value)}", [param])
        if not alone:
            shown = ", ".join(f"{p.path}={flow(v)}" for p, v in values)
            add(problems_at(values, build_too), f"{name} ({shown})", [p for p, _ in values])

    for values in rounds(tune):
        check(values, False, "the corner")
    if problems or not build:
        return problems
    for end, name in ((0, "low"), (-1, "high")):
        check(corner(tune, end), True, f"the {name} corner")
    return problems


def rounds(tune: TuneSpec) -> list[list[tuple[Param, Any]]]:
    """The sets of values the spec is validated with: round r gives every
    param its r-th corner (the last once it has no more; at most MAX_ROUNDS,
    spread over longer choices); a conditional param takes its corners in the
    rounds where its condition holds, and in rounds of its own for those left.
    One validation covers many values: a spec of thousands of nodes is read a
    few times, not once per value."""
    plain = [p for p in tune.space if p.when is None]
    conditional = [p for p in tune.space if p.when is not None]
    needed = {p.path: min(len(p.corners()), MAX_ROUNDS) for p in tune.space}
    count = max((needed[p.path] for p in plain), default=0)
    used = dict.fromkeys(needed, 0)
    plans = []
    for index in range(count):
        values = [(p, _spread(p.corners(), index, count)) for p in plain]
        chosen = {p.path: v for p, v in values}
        for param in conditional:
            if holds(param, chosen) and used[param.path] < needed[param.path]:
                value = _spread(param.corners(), used[param.path], needed[param.path])
                used[param.path] += 1
                values.append((param, value))
                chosen[param.path] = value
        plans.append(values)
    for param in conditional:
        fixed = _condition_values(tune, param)
        for index in range(used[param.path], needed[param.path]):
            value = _spread(param.corners(), index, needed[param.path])
            plans.append([*fixed, (param, value)])
    return plans


def _spread(values: list[Any], index: int, count: int) -> Any:
    if len(values) <= count:
        return values[min(index, len(values) - 1)]
    return values[round(index * (len(values) - 1) / (count - 1))]


def corner(tune: TuneSpec, end: int) -> list[tuple[Param, Any]]:
    """Every param at its first (`end` 0) or last (-1) corner value; a
    conditional param only where its condition holds there."""
    chosen: dict[str, Any] = {}
    values = []
    for param in tune.space:
        if not holds(param, chosen):
            continue
        value = param.corners()[end]
        chosen[param.path] = value
        values.append((param, value))
    return values


def _condition_values(tune: TuneSpec, param: Param) -> list[tuple[Param, Any]]:
    """The values of the params `param` depends on that make its `when:` hold."""
    if param.when is None:
        return []
    path, value = param.when
    other = tune.param(path)
    first = value[0] if isinstance(value, list) else value
    return [*_condition_values(tune, other), (other, first)] if other else []


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
