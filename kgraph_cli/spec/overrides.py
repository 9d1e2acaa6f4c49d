"""`--set path.to.key=value`: edit the spec's data before it is validated."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from kgraph_cli.errors import Diagnostic, Location, SpecError
from kgraph_cli.spec.loader import YamlList, YamlMap, parse_yaml
from kgraph_cli.suggest import did_you_mean

OVERRIDE_FILE = "--set"
# Sections keyed by the names the user chose, as (parent path, what an entry is);
# "*" is any model or block name. `--set` edits entries there but adds one only
# whole (`layers.extra={type: Dense, ...}`): a partial new entry is a typo of an
# existing name far more often than a wish for a node with a single key.
NAMED_SECTIONS: dict[tuple[str, ...], str] = {
    ("layers",): "node",
    ("inputs",): "input",
    ("models",): "model",
    ("blocks",): "block",
    ("models", "*", "layers"): "node",
    ("models", "*", "inputs"): "input",
    ("blocks", "*", "layers"): "node",
}


def override_source(overrides: list[str]) -> str:
    """The text diagnostics show for `--set` locations: one line per override."""
    return "\n".join(overrides)


def apply_overrides(data: YamlMap, overrides: list[str]) -> None:
    """Apply every `key.path=value` to `data` in place; values are YAML scalars
    or flow collections (`5`, `relu`, `[3, 3]`, `{type: Adam}`)."""
    problems: list[Diagnostic] = []
    for line, text in enumerate(overrides, start=1):
        path, eq, raw_value = text.partition("=")
        loc = Location(OVERRIDE_FILE, line, 1, max(len(path), 1))
        if not eq or not path.strip():
            problems.append(
                Diagnostic(
                    "override",
                    f"expected KEY.PATH=VALUE, got '{text}'",
                    loc,
                    hint="e.g. --set train.fit.epochs=5",
                )
            )
            continue
        value_loc = Location(OVERRIDE_FILE, line, len(path) + 2, max(len(raw_value), 1))
        keys = path.strip().split(".")
        try:
            value = _parse_value(raw_value, value_loc, len(keys))
        except SpecError as exc:
            problems.extend(exc.diagnostics)
            continue
        start = len(path) - len(path.lstrip()) + 1
        problem = _set(data, keys, value, loc, value_loc, start)
        if problem:
            problems.append(problem)
    if problems:
        raise SpecError(problems)


def assign(data: YamlMap, path: str, value: Any, loc: Location, key_loc: Location) -> None:
    """Set `path` (as --set takes it) to the plain `value`, located at `loc` (its
    path at `key_loc`): a searched value of `kgraph tune`. Raises SpecError."""
    value = parse_yaml(_VALUE_PREFIX + json.dumps(value), key_loc.file)["value"]
    _relocate(value, loc)
    problem = _set(data, path.split("."), value, key_loc, loc, key_loc.col)
    if problem:
        raise SpecError([problem])


_VALUE_PREFIX = "value: "  # a value is parsed as the YAML `value: VALUE`


def _parse_value(raw: str, loc: Location, depth: int) -> Any:
    """Parse a --set value with the spec loader (its scalars, limits and
    checks) as it will sit in the spec, `depth` keys below the top; a problem
    other than its syntax keeps the loader's message, pointed at the argument."""
    if not raw.strip():
        return ""
    try:
        # `value:` stands for the last key: the levels above it are the others.
        wrapped = parse_yaml(_VALUE_PREFIX + raw, OVERRIDE_FILE, nested=depth - 1)
    except SpecError as exc:
        if any(d.code != "yaml" for d in exc.diagnostics):
            raise SpecError([_in_argument(d, loc) for d in exc.diagnostics]) from None
        raise SpecError.at(
            "override",
            f"cannot parse the value '{raw}'",
            loc,
            hint="quote strings that contain ':' or '#'",
        ) from None
    value = wrapped["value"]
    _relocate(value, loc)
    return value


def _in_argument(diagnostic: Diagnostic, loc: Location) -> Diagnostic:
    """A diagnostic of a parsed value, located in the --set argument `loc`."""
    where = diagnostic.location
    if where is None or where.line != 1:
        return replace(diagnostic, location=loc, path="")
    col = max(loc.col + where.col - 1 - len(_VALUE_PREFIX), loc.col)
    return replace(diagnostic, location=replace(loc, col=col, length=where.length), path="")


def _relocate(value: Any, loc: Location) -> None:
    """Point every location inside an override value at the --set argument."""
    if isinstance(value, YamlMap):
        value.loc = loc
        value.key_locs = dict.fromkeys(value, loc)
        value.value_locs = dict.fromkeys(value, loc)
        for item in value.values():
            _relocate(item, loc)
    elif isinstance(value, YamlList):
        value.loc = loc
        value.item_locs = [loc] * len(value)
        for item in value:
            _relocate(item, loc)


def named_section(parents: list[str]) -> str | None:
    """What an entry of the section at `parents` is ("node", "model"...), if
    that section is keyed by user-chosen names."""
    for pattern, noun in NAMED_SECTIONS.items():
        if len(pattern) == len(parents) and all(
            p in ("*", key) for p, key in zip(pattern, parents, strict=True)
        ):
            return noun
    return None


def _no_such_entry(
    data: YamlMap, node: YamlMap, keys: list[str], depth: int, loc: Location, start: int
) -> Diagnostic:
    """`layers.hiddn1.units=5` where no node 'hiddn1' exists: located at the name."""
    key, noun = keys[depth], named_section(keys[:depth])
    col = start + len(".".join(keys[:depth])) + (1 if depth else 0)
    where = ".".join(keys[: depth + 1])
    fallback = f"a new {noun} is set whole: --set '{where}={{...}}'"
    if keys[0] in ("models", "blocks") and "include" in data:
        fallback += "; --set edits this file only, not the files it includes"
    return Diagnostic(
        "override",
        f"no {noun} '{key}' to set `{'.'.join(keys[depth + 1 :])}` on",
        Location(loc.file, loc.line, col, len(key)),
        where,
        did_you_mean(key, [k for k in node if isinstance(k, str)], fallback),
    )


def _set(
    data: YamlMap,
    keys: list[str],
    value: Any,
    loc: Location,
    value_loc: Location,
    start: int = 1,
) -> Diagnostic | None:
    """Set `keys` to `value`; `start`: the column of the path in its argument."""
    node: Any = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = ".".join(keys[: depth + 1])
        if isinstance(node, YamlList):
            if not key.lstrip("-").isdigit() or not -len(node) <= int(key) < len(node):
                return Diagnostic(
                    "override",
                    f"'{where}': index {key} is out of range for a list of {len(node)}",
                    loc,
                )
            index = int(key)
            if last:
                node[index] = value
                node.item_locs[index] = value_loc
            else:
                node = node[index]
            continue
        if not isinstance(node, YamlMap):
            return Diagnostic(
                "override",
                f"'{where}': cannot set a key inside a {type(node).__name__} value",
                loc,
                hint=f"'{'.'.join(keys[:depth])}' is not a mapping",
            )
        if last:
            node.put(key, value, loc, value_loc)
        else:
            if key not in node and named_section(keys[:depth]):
                return _no_such_entry(data, node, keys, depth, loc, start)
            if key not in node or node[key] is None:
                node.put(key, YamlMap(loc=loc), loc, loc)
            node = node[key]
    return None
