"""YAML text -> plain data that remembers where every key and value came from.

Mappings and sequences come back as `YamlMap` / `YamlList`, subclasses of dict
and list that carry the location of the container, of each key and of each
value. Scalars stay plain Python values; their location lives in the parent.
Duplicate keys, non-standard tags (`!!python/object`...), recursive aliases and
oversized or alias-bomb input are errors, reported with their position.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from kgraph_cli.errors import Diagnostic, Location, Reporter, SpecError

MAX_FILE_BYTES = 20 * 1024 * 1024
# Aliases may repeat a subtree; this bounds the data an alias bomb can make.
MAX_VALUES = 2_000_000
# How deep values may nest (mappings in lists in mappings...): real specs stay
# under ten levels; deeper input is refused before anything recurses on it.
MAX_NESTING = 100
_NESTING = f"values nest more than {MAX_NESTING} levels deep"
_NESTING_HINT = "a spec is a few levels deep: look for unclosed or runaway brackets"

_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "merge")
}
_MERGE_TAG = "tag:yaml.org,2002:merge"


_SAME = object()


class YamlMap(dict):
    """A mapping with the locations of itself, its keys and its values."""

    def __init__(self, *args: Any, loc: Location | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.loc = loc or Location("<unknown>")
        self.key_locs: dict[str, Location] = {}
        self.value_locs: dict[str, Location] = {}

    def key_loc(self, key: str) -> Location:
        return self.key_locs.get(key, self.loc)

    def value_loc(self, key: str) -> Location:
        return self.value_locs.get(key, self.key_loc(key))

    def put(self, key: str, value: Any, key_loc: Location, value_loc: Location) -> None:
        """Set a key together with where it and its value were written."""
        self[key] = value
        self.key_locs[key] = key_loc
        self.value_locs[key] = value_loc

    def copy_entry(self, source: YamlMap, key: str, value: Any = _SAME) -> None:
        """Take `source[key]` (or `value` in its place) with source's locations."""
        new = source[key] if value is _SAME else value
        self.put(key, new, source.key_loc(key), source.value_loc(key))


class YamlList(list):
    """A sequence with the locations of itself and of each item."""

    def __init__(self, *args: Any, loc: Location | None = None):
        super().__init__(*args)
        self.loc = loc or Location("<unknown>")
        self.item_locs: list[Location] = []

    def item_loc(self, index: int) -> Location:
        if 0 <= index < len(self.item_locs):
            return self.item_locs[index]
        return self.loc


def value_location(container: Any, key: Any, default: Location) -> Location:
    """Location of `container[key]`, whatever kind of container it is."""
    if isinstance(container, YamlMap) and isinstance(key, str):
        return container.value_loc(key)
    if isinstance(container, YamlList) and isinstance(key, int):
        return container.item_loc(key)
    return getattr(container, "loc", default)


class _SpecResolver(Resolver):
    """YAML 1.2-like scalars: `1e-3` is a float, only true/false are booleans."""


_SpecResolver.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
_SpecResolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_SpecResolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class _Composer(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _SpecResolver,
):
    def __init__(self, text: str):
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _SpecResolver.__init__(self)


if yaml.__with_libyaml__:  # libyaml composes about 3x faster than pure Python
    from yaml.cyaml import CParser

    class _FastComposer(CParser, _SpecResolver):
        def __init__(self, text: str):
            CParser.__init__(self, text)
            _SpecResolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml
    _FastComposer = None  # type: ignore[assignment, misc]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsing makes many small objects that all stay alive: the cyclic garbage
    collector would walk them again and again for nothing (superlinear time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compose(text: str) -> Node | None:
    """Compose with libyaml when available; for a syntax error, compose again in
    pure Python, whose messages (and context marks) are the ones users see."""
    if _FastComposer is not None:
        try:
            loader = _FastComposer(text)
            try:
                return loader.get_single_node()
            finally:
                loader.dispose()
        except yaml.YAMLError as exc:
            if _too_deep(exc):  # pure Python would recurse that deep: no second try
                raise
    return yaml.compose(text, Loader=_Composer)


def _too_deep(exc: yaml.YAMLError) -> bool:
    """libyaml's refusal of flow collections nested more than 1,000 deep."""
    return "maximum nesting depth" in str(getattr(exc, "problem", "") or exc)


def _node_location(file: str, node: Node) -> Location:
    start, end = node.start_mark, node.end_mark
    length = end.column - start.column if end.line == start.line else 1
    return Location(file, start.line + 1, start.column + 1, max(length, 1))


class _Converter(Reporter):
    """YAML nodes -> YamlMap/YamlList/scalars with locations, recording problems."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file
        self.count = 0
        self._active: set[int] = set()
        self._scalars = SafeConstructor()

    def at_node(self, code: str, message: str, node: Node, hint: str = "", path: str = ""):
        self.error(code, message, _node_location(self.file, node), path, hint)

    def convert(self, node: Node, path: str) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooLarge(node)
        if node.tag not in _STANDARD_TAGS:
            self.at_node(
                "unsafe-tag",
                # Shown as written: `!!python/...`, not `tag:yaml.org,2002:python/...`.
                f"YAML tag '{node.tag.replace('tag:yaml.org,2002:', '!!')}' is not allowed",
                node,
                "specs are plain data: remove the tag (kgraph never constructs "
                "Python objects from YAML)",
                path,
            )
            return None
        if id(node) in self._active:
            self.at_node("yaml", "recursive alias: a node contains itself", node, path=path)
            return None
        if len(self._active) >= MAX_NESTING:  # the values being converted: the depth
            self.at_node("nesting", _NESTING, node, _NESTING_HINT, path)
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            return self._scalar(node)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag == "tag:yaml.org,2002:float":
            return float(node.value.replace("_", ""))
        return self._scalars.construct_object(node, deep=True)

    def _sequence(self, node: SequenceNode, path: str) -> YamlList:
        result = YamlList(loc=_node_location(self.file, node))
        for index, item in enumerate(node.value):
            result.append(self.convert(item, f"{path}[{index}]"))
            result.item_locs.append(_node_location(self.file, item))
        return result

    def _mapping(self, node: MappingNode, path: str) -> YamlMap:
        result = YamlMap(loc=_node_location(self.file, node))
        merged: list[YamlMap] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag not in _STANDARD_TAGS:
                self.at_node("yaml", "mapping keys must be plain scalars", key_node, path=path)
                continue
            key = self._scalars.construct_object(key_node)
            key = key if isinstance(key, str) else str(key)
            child_path = f"{path}.{key}" if path else key
            if key in result:
                first = result.key_locs[key]
                self.diagnostics.append(
                    Diagnostic(
                        "duplicate-key",
                        f"duplicate key '{key}' (first defined at line {first.line})",
                        _node_location(self.file, key_node),
                        child_path,
                        "YAML keeps only the last value of a repeated key: remove "
                        "or rename one of them",
                        related=((first, "first definition"),),
                    )
                )
                continue
            result.put(
                key,
                self.convert(value_node, child_path),
                _node_location(self.file, key_node),
                _node_location(self.file, value_node),
            )
        for source in merged:  # explicit keys win over merged ones
            for key in source:
                if key not in result:
                    result.copy_entry(source, key)
        return result

    def _merge_sources(self, node: Node, path: str) -> list[YamlMap]:
        nodes = node.value if isinstance(node, SequenceNode) else [node]
        sources = []
        for item in nodes:
            value = self.convert(item, path)
            if isinstance(value, YamlMap):
                sources.append(value)
            else:
                self.at_node("yaml", "'<<' merges only mappings", item, path=path)
        return sources


class _TooLarge(Exception):
    def __init__(self, node: Node):
        self.node = node


def parse_yaml(text: str, file: str) -> YamlMap:
    """Parse one YAML document that must be a mapping; raise SpecError otherwise."""
    if not text.strip():
        raise SpecError.at(
            "empty",
            "the file is empty",
            Location(file, 1, 1),
            hint="start with `kgraph: 1`",
        )
    try:
        with _gc_paused():
            root = _compose(text)
    except RecursionError:
        raise SpecError.at("nesting", _NESTING, Location(file), hint=_NESTING_HINT) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        if _too_deep(exc):
            where = Location(file, line, col)
            raise SpecError.at("nesting", _NESTING, where, hint=_NESTING_HINT) from None
        related = ()
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            context = Location(file, exc.context_mark.line + 1, exc.context_mark.column + 1)
            related = ((context, exc.context.replace("while parsing", "started") + " here"),)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError.at(
            "yaml",
            f"YAML syntax error: {problem}",
            Location(file, line, col),
            hint=_yaml_hint(problem),
            related=related,
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError.at("yaml", f"YAML error: {exc}", Location(file)) from None
    if root is None:
        raise SpecError.at(
            "empty",
            "the file has no content, only comments",
            Location(file, 1, 1),
            hint="start with `kgraph: 1`",
        )
    converter = _Converter(file)
    try:
        with _gc_paused():
            data = converter.convert(root, "")
    except _TooLarge as exc:
        raise SpecError.at(
            "too-large",
            f"the document expands to more than {MAX_VALUES:,} values (alias bomb?)",
            _node_location(file, exc.node),
        ) from None
    if converter.diagnostics:
        raise SpecError(converter.diagnostics)
    if not isinstance(data, YamlMap):
        raise SpecError.at(
            "not-a-mapping",
            f"a spec must be a mapping of keys, got a "
            f"{type(data).__name__ if not isinstance(data, list) else 'list'}",
            _node_location(file, root),
            hint="start with `kgraph: 1`",
        )
    return data


def _yaml_hint(problem: str) -> str:
    if "tab" in problem:
        return "indent with spaces, not tabs"
    if "expected ',' or '}'" in problem or "expected ',' or ']'" in problem:
        return "a flow collection ({...} or [...]) is not closed, or an item lacks a comma"
    if "mapping values are not allowed" in problem:
        return "quote values that contain ': ', or check the indentation"
    if "could not find expected ':'" in problem:
        return "a key needs ': ' after it; check the indentation of this line"
    return "check the indentation and brackets near here"


def read_text(path: Path, display: str | None = None) -> str:
    """Read a spec file as UTF-8, turning I/O and encoding problems into diagnostics."""
    file = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError.at(
                "too-large",
                f"the file is {size:,} bytes; specs are limited to {MAX_FILE_BYTES:,}",
                Location(file),
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError.at("file", "no such file", Location(file), hint="check the path") from None
    except IsADirectoryError:
        raise SpecError.at("file", "is a directory, not a spec file", Location(file)) from None
    except OSError as exc:
        raise SpecError.at("file", f"cannot read: {exc.strerror}", Location(file)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise SpecError.at(
            "encoding",
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            Location(file, line, col),
            hint="save the file as UTF-8",
        ) from None


def load_yaml_file(path: Path, display: str | None = None) -> YamlMap:
    """Read and parse a spec file."""
    return parse_yaml(read_text(path, display), display or str(path))
