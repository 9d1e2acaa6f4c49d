"""The diagnostics machinery the `train:` checks share: a list of problems, each
located at the value it is about, and the checks of single values (a mapping
with known keys, a bounded number, a boolean, one of a few names)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from kgraph_cli.errors import Diagnostic, Location, Reporter
from kgraph_cli.spec.loader import YamlMap, value_location
from kgraph_cli.spec.parse import unknown_keys
from kgraph_cli.spec.values import describe
from kgraph_cli.suggest import closest


class Checker(Reporter):
    """Collects located diagnostics about values of one spec file in `problems`
    (a list the parsers of one `train:` section share)."""

    def __init__(self, file: str, diagnostics: list[Diagnostic] | None = None):
        super().__init__(diagnostics)
        self.file = file

    def where(self, parent: Any, key: Any) -> Location:
        return value_location(parent, key, Location(self.file))

    def expect_map(
        self, parent: Any, key: Any, path: str, keys: dict[str, str] | None, what: str
    ) -> YamlMap | None:
        """`parent[key]` if it is a mapping (unknown keys reported when `keys` is given)."""
        value = parent[key]
        if not isinstance(value, YamlMap):
            self.error(
                "type",
                f"{what} must be a mapping, got {describe(value)}",
                self.where(parent, key),
                path,
            )
            return None
        if keys is not None:
            self.diagnostics += unknown_keys(value, keys, path, what)
        return value

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
            self.error(
                "type",
                f"{path.rsplit('.', 1)[-1]} must be {noun}{bound}, got {describe(value)}",
                self.where(parent, key),
                path,
                hint,
            )
            return None
        return value

    def boolean(self, parent: Any, key: Any, path: str) -> bool | None:
        value = parent[key]
        if isinstance(value, bool):
            return value
        self.error(
            "type",
            f"{path.rsplit('.', 1)[-1]} must be true or false, got {describe(value)}",
            self.where(parent, key),
            path,
        )
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
        self.error(
            "type",
            f"{path.rsplit('.', 1)[-1]} must be {_either(names)}, got {describe(value)}",
            self.where(parent, key),
            path,
            f"did you mean '{close[0]}'? {hint}" if close else hint,
        )
        return None


def _either(names: Sequence[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
