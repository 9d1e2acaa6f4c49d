"""Spec file -> `Spec`: read, apply --set, parse, follow includes, expand blocks
(the YAML itself is read by loader.py)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kgraph_cli.errors import Diagnostic, Location, SpecError
from kgraph_cli.spec.blocks import expand_blocks
from kgraph_cli.spec.loader import YamlList, YamlMap, load_yaml_file, parse_yaml
from kgraph_cli.spec.model import Spec
from kgraph_cli.spec.overrides import apply_overrides, assign
from kgraph_cli.spec.parse import SpecParser
from kgraph_cli.spec.values import plain

MAX_INCLUDE_DEPTH = 32
# A value set at a spec path: (path, value, where the value is written, where the path is).
Assignment = tuple[str, Any, Location, Location]


def load_spec(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    text: str | None = None,
    assignments: Sequence[Assignment] = (),
) -> tuple[Spec, list[Diagnostic]]:
    """Load a spec with its includes and expanded blocks; `text`, when given, is
    the spec's content (one embedded in a model file), `path` then only names it.
    `assignments`: values set after the overrides, each located where it was
    written (a `kgraph tune` trial's values, as (path, value, location, path location)).

    Returns the spec and its diagnostics; raises SpecError when a problem
    stops loading altogether (unreadable file, YAML syntax error).
    """
    diagnostics: list[Diagnostic] = []
    spec = _load_file(Path(path), str(path), list(overrides), diagnostics, [], text, assignments)
    diagnostics += expand_blocks(spec)
    return spec, diagnostics


def _load_file(
    path: Path,
    display: str,
    overrides: list[str],
    diagnostics: list[Diagnostic],
    stack: list[tuple[Path, str, Location]],
    text: str | None = None,
    assignments: Sequence[Assignment] = (),
) -> Spec:
    """`stack`: the files including this one, outermost first, each as (resolved
    path, displayed path, where it includes the next one)."""
    data = load_yaml_file(path, display) if text is None else parse_yaml(text, display)
    if overrides:
        apply_overrides(data, overrides)
    for assignment in assignments:
        assign(data, *assignment)
    parser = SpecParser(display)
    spec = parser.parse_spec(data)
    diagnostics += parser.diagnostics
    for include, loc in _include_paths(data, parser):
        target = path.parent / include
        shown = str(Path(display).parent / include)
        resolved = target.resolve()
        chain = [*stack, (path.resolve(), display, loc)]
        starts = [i for i, (file, _, _) in enumerate(chain) if file == resolved]
        if starts:
            cycle = chain[starts[0] :]
            names = [shown_name for _, shown_name, _ in cycle] + [cycle[0][1]]
            diagnostics.append(
                Diagnostic(
                    "include-cycle",
                    f"include cycle: {' -> '.join(names)}",
                    cycle[0][2],
                    "include",
                    "remove one of these includes",
                    related=tuple(
                        (where, f"'{name}' includes '{nxt}'")
                        for (_, name, where), nxt in zip(cycle, names[1:], strict=False)
                    ),
                )
            )
            continue
        if len(stack) >= MAX_INCLUDE_DEPTH:
            diagnostics.append(
                Diagnostic("include-cycle", "includes nest too deeply", loc, "include")
            )
            continue
        try:
            included = _load_file(target, shown, [], diagnostics, chain)
        except SpecError as exc:
            # A problem of the whole file (missing, a folder or a device, too
            # large) is the include's: shown where it is named.
            whole = [
                d
                for d in exc.diagnostics
                if d.location and d.location.file == shown and not d.location.line
            ]
            if whole:
                missing = not os.path.lexists(target)
                diagnostics.append(
                    Diagnostic(
                        "include",
                        f"cannot include '{include}': {whole[0].message}",
                        loc,
                        "include",
                        "paths are relative to the including file" if missing else whole[0].hint,
                    )
                )
            else:
                diagnostics += exc.diagnostics
            continue
        _merge(spec, included, diagnostics)
    return spec


def _include_paths(data: YamlMap, parser: SpecParser) -> list[tuple[str, Location]]:
    if "include" not in data:
        return []
    value = data["include"]
    if isinstance(value, str):
        return [(value, data.value_loc("include"))]
    if isinstance(value, YamlList) and all(isinstance(v, str) for v in value):
        return [(v, value.item_loc(i)) for i, v in enumerate(value)]
    parser.type_error(
        data, "include", "include", "include must be a path or a list of paths", value
    )
    return []


def _merge(spec: Spec, included: Spec, diagnostics: list[Diagnostic]) -> None:
    """Bring an included file's models and blocks into `spec`."""
    for kind, mine, theirs in (
        ("model", spec.models, included.models),
        ("block", spec.blocks, included.blocks),
    ):
        for name, item in theirs.items():
            if name in mine:
                diagnostics.append(
                    Diagnostic(
                        "duplicate-name",
                        f"{kind} '{name}' is defined in two files",
                        item.loc,
                        hint="rename one of them",
                        related=((mine[name].loc, "other definition"),),
                    )
                )
                continue
            mine[name] = item


def resolved_spec_text(spec: Spec) -> str:
    """The spec as loaded (--set applied) as YAML, its includes made absolute so
    that a copy stored elsewhere (a run directory, a model file) still finds them."""
    import yaml

    data = plain(spec.data)
    include = data.get("include")
    if include is not None:
        folder = Path(spec.file).parent
        data["include"] = _absolute([include] if isinstance(include, str) else include, folder)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _absolute(path: Any, folder: Path) -> Any:
    """A path (or the paths of a list or mapping) relative to `folder`, made absolute."""
    if isinstance(path, str) and not Path(path).is_absolute():
        return str((folder / path).resolve())
    if isinstance(path, list):
        return [_absolute(p, folder) for p in path]
    if isinstance(path, dict):
        return {key: _absolute(p, folder) for key, p in path.items()}
    return path


def with_absolute_data_paths(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`data` (a spec as plain data) with the relative file paths of its
    `train:` sources (`npz`, `csv`, `images`...) made absolute from `folder`,
    the spec's: the spec then trains from wherever it is written."""
    from kgraph_cli.spec.train.keys import PATH_SOURCES

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            source = value.get("source")
            if isinstance(source, dict):
                for kind in PATH_SOURCES:
                    if kind in source:
                        source[kind] = _absolute(source[kind], folder)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(data.get("train"))
    return data
