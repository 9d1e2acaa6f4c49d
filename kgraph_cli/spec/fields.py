"""Checks of single spec values, each problem located at the value it is about.

`FieldChecker` is the base of every parser of spec data (the graph parser, the
`train:` parsers): a mapping with known keys, a string, a bounded number, a
boolean, one of a few names, a name, a reference. A check returns the value
when it is right, and otherwise records a diagnostic and returns None.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from kgraph_cli.errors import Diagnostic, Location, Reporter
from kgraph_cli.spec.loader import YamlMap, value_location
from kgraph_cli.spec.model import NAME_PATTERN, REF_PATTERN, Ref
from kgraph_cli.spec.values import describe
from kgraph_cli.suggest import closest, did_you_mean


class FieldChecker(Reporter):
    """Collects located diagnostics about the values of one spec file (in a
    list that several checkers of one stage may share)."""

    def __init__(self, file: str, diagnostics: list[Diagnostic] | None = None):
        super().__init__(diagnostics)
        self.file = file

    def where(self, parent: Any, key: Any) -> Location:
        return value_location(parent, key, Location(self.file))

    def type_error(
        self, parent: Any, key: Any, path: str, message: str, value: Any, hint: str = ""
    ) -> None:
        """A `type` error at `parent[key]`: `message`, then what `value` is."""
        self.error("type", f"{message}, got {describe(value)}", self.where(parent, key), path, hint)

    def check_keys(self, data: YamlMap, allowed: dict | set, path: str, what: str) -> None:
        self.diagnostics += unknown_keys(data, allowed, path, what)

    def mapping(
        self,
        parent: Any,
        key: Any,
        path: str,
        what: str,
        keys: dict[str, str] | None = None,
        hint: str = "",
    ) -> YamlMap | None:
        """`parent[key]` if it is a mapping (unknown keys reported when `keys` is given)."""
        value = parent[key]
        if not isinstance(value, YamlMap):
            self.type_error(parent, key, path, f"{what} must be a mapping", value, hint)
            return None
        if keys is not None:
            self.check_keys(value, keys, path, what)
        return value

    def string(self, data: YamlMap, key: str, path: str, default: str) -> str:
        """`data[key]` if it is a string, `default` if it is absent (or wrong)."""
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, str):
            return value
        self.type_error(data, key, join(path, key), f"{key} must be a string", value)
        return default

    def number(
        self,
        parent: Any,
        key: Any,
        path: str,
        kind: type,
        minimum: float | None = None,
        exclusive: bool = False,
        hint: str = "",
    ) -> Any:
        """`parent[key]` if it is an int (or, for `kind` float, any number) within
        the bound, else None and a type error."""
        value = parent[key]
        ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(
            value, bool
        )
        if ok and minimum is not None:
            ok = value > minimum if exclusive else value >= minimum
        if not ok:
            bound = "" if minimum is None else f" {'>' if exclusive else '>='} {minimum:g}"
            noun = "a number" if kind is float else "an integer"
            self.type_error(parent, key, path, f"{_last(path)} must be {noun}{bound}", value, hint)
            return None
        return value

    def boolean(self, parent: Any, key: Any, path: str) -> bool | None:
        value = parent[key]
        if isinstance(value, bool):
            return value
        self.type_error(parent, key, path, f"{_last(path)} must be true or false", value)
        return None

    def choice(
        self,
        parent: Any,
        key: Any,
        path: str,
        names: Sequence[str],
        hint: str,
        aliases: Collection[str] = (),
    ) -> str | None:
        """`parent[key]` if it is one of `names` (or, lower-cased, of `aliases`); else
        None and a type error listing `names`, its hint did-you-mean and `hint`."""
        value = parent[key]
        if isinstance(value, str) and (value in names or value.lower() in aliases):
            return value
        close = closest(value, names) if isinstance(value, str) and value else []
        self.type_error(
            parent,
            key,
            path,
            f"{_last(path)} must be {_either(names)}",
            value,
            f"did you mean '{close[0]}'? {hint}" if close else hint,
        )
        return None

    def name_ok(self, name: str, loc: Location, path: str, what: str) -> bool:
        if NAME_PATTERN.match(name):
            return True
        self.error(
            "name",
            f"invalid {what} name '{name}'",
            loc,
            path,
            "names start with a letter or _ and contain only letters, digits and _",
        )
        return False

    def ref(self, parent: Any, key: Any, path: str) -> Ref | None:
        value = parent[key]
        loc = self.where(parent, key)
        if not isinstance(value, str):
            self.type_error(parent, key, path, "a reference must be a node or input name", value)
            return None
        if not REF_PATTERN.match(value):
            self.error(
                "ref",
                f"invalid reference '{value}'",
                loc,
                path,
                "write a node name, or name.N / name.output for one of several outputs",
            )
            return None
        return Ref.parse(value, loc)


def unknown_keys(data: YamlMap, allowed: dict | set, path: str, what: str) -> list[Diagnostic]:
    """An unknown-key error, with a suggestion, for each key of `data` not allowed."""
    return [
        Diagnostic(
            "unknown-key",
            f"unknown key '{key}' in {what}",
            data.key_loc(key),
            join(path, key),
            did_you_mean(key, allowed),
        )
        for key in data
        if key not in allowed
    ]


def submap(data: YamlMap, exclude: tuple[str, ...]) -> YamlMap:
    """`data` without some keys, locations kept."""
    out = YamlMap(loc=data.loc)
    for key in data:
        if key not in exclude:
            out.copy_entry(data, key)
    return out


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _last(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _either(names: Sequence[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
