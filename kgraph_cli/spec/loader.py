"""YAML text -> plain data that remembers where every key and value came from.

Mappings and sequences come back as `YamlMap` / `YamlList`, subclasses of dict
and list that carry the location of the container, of each key and of each
value. Scalars stay plain Python values; their location lives in the parent.
Duplicate keys, non-standard tags (`!!python/object`...), recursive aliases,
numbers a spec cannot hold (`.inf`, `.nan`, integers beyond 64 bits), control
characters, and oversized, too deep or alias-bomb input are errors, reported
with their position. The limits are enforced while the text is read and
composed, before anything is expanded or recursed on.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import math
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from kgraph_cli.errors import Diagnostic, Location, Reporter, SpecError

MAX_FILE_BYTES = 20 * 1024 * 1024
# Values in a document (keys, items and scalars), an alias counting as all the
# values it repeats. Real specs have hundreds (a 20,000-layer chain, the
# deepest graph kgraph builds, has 160,000); loading costs a few microseconds
# a value, so this keeps any document, or alias bomb, to a second or two.
MAX_VALUES = 250_000
# How deep values may nest (mappings in lists in mappings...), aliases
# expanded: real specs stay under ten levels; deeper input is refused before
# anything recurses on it.
MAX_NESTING = 100
_NESTING = f"values nest more than {MAX_NESTING} levels deep"
_NESTING_HINT = "a spec is a few levels deep: look for unclosed brackets or runaway indentation"
# Integers are 64-bit: what Keras and TensorFlow take.
MIN_INT, MAX_INT = -(2**63), 2**63 - 1
# libyaml finds a syntax error; pure Python parses the text again for PyYAML's
# clearer messages, but only up to this size (it reads about a megabyte a
# second): a larger document reports libyaml's own message.
MAX_REPARSE_CHARS = 256 * 1024

_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "merge")
}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOOL_TAG = "tag:yaml.org,2002:bool"


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
    """The implicit tags of plain scalars, YAML 1.2-like: `1e-3` is a float,
    only true/false are booleans, dates and `=` stay strings (see _plain_tag)."""


_SpecResolver.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag.rsplit(":", 1)[-1] not in ("bool", "timestamp", "value", "yaml")
    ]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
_SpecResolver.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_SpecResolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


# -- scalars ------------------------------------------------------------------
class _BadScalar(Exception):
    """A scalar that its type cannot hold: args are (message, hint)."""


# What an int or float tag may hold: the implicit forms, also for explicit tags.
_INT = re.compile(r"[-+]?(?:0b[01_]+|0x[0-9a-fA-F_]+|0[0-7_]+|0|[1-9][0-9_]*(?::[0-5]?[0-9])*)")
_FLOAT = re.compile(
    r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?"
    r"|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
    r"|[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*)"
)
_NOT_FINITE = {".inf": "infinity", "+.inf": "infinity", "-.inf": "-infinity", ".nan": "NaN"}
# The most significant digits a 64-bit integer has in each base, checked before
# int() is called: it refuses more than 4,300 decimal digits.
_MAX_DIGITS = {2: 64, 8: 22, 10: 19, 16: 16}
_OR_QUOTE = "or quote it if it is meant as text"


def _shown(text: str) -> str:
    """A scalar as a message quotes it: a long one cut, with its length."""
    if len(text) <= 40:
        return f"'{text}'"
    return f"'{text[:12]}...{text[-6:]}' ({len(text):,} characters)"


def _integer(text: str) -> int:
    if not _INT.fullmatch(text):
        raise _BadScalar(f"{_shown(text)} is not an integer", "write digits, e.g. 42")
    value = text.replace("_", "")
    sign = -1 if value[0] == "-" else 1
    value = value.lstrip("+-")
    if ":" in value:  # YAML 1.1 base 60: 1:30 is 90
        digits, base = value.replace(":", ""), 10
    elif value[:2] in ("0b", "0x"):
        digits, base = value[2:], 2 if value[1] == "b" else 16
    elif len(value) > 1 and value[0] == "0":  # YAML 1.1 octal: 010 is 8
        digits, base = value[1:], 8
    else:
        digits, base = value, 10
    if not digits:  # `0x_`
        raise _BadScalar(f"{_shown(text)} is not an integer", "write digits, e.g. 42")
    if len(digits.lstrip("0")) <= _MAX_DIGITS[base]:
        number = 0
        if ":" in value:
            for part in value.split(":"):
                number = number * 60 + int(part)
        else:
            number = int(digits, base)
        if MIN_INT <= sign * number <= MAX_INT:
            return sign * number
    raise _BadScalar(
        f"the integer {_shown(text)} is out of range: integers are 64-bit, "
        f"from {MIN_INT:,} to {MAX_INT:,}",
        f"write a smaller number, {_OR_QUOTE}",
    )


def _float(text: str) -> float:
    value = text.replace("_", "")
    special = _NOT_FINITE.get(value.lower())
    if special:
        raise _BadScalar(
            f"{_shown(text)} ({special}) is not allowed: numbers in a spec are finite",
            f"write a finite number such as 1e30, {_OR_QUOTE}",
        )
    if not _FLOAT.fullmatch(text):
        raise _BadScalar(f"{_shown(text)} is not a number", "write a number, e.g. 0.5 or 1e-3")
    number = 0.0
    if ":" in value:  # YAML 1.1 base 60: 1:30.5 is 90.5
        for part in value.split(":"):
            number = number * 60 + float(part)
    else:
        number = float(value)
    if not math.isfinite(number):
        raise _BadScalar(
            f"the number {_shown(text)} is too large: floats go up to about 1.8e308",
            f"write a smaller number, {_OR_QUOTE}",
        )
    return number


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise _BadScalar(f"{_shown(text)} is not a boolean", "write true or false")
    return text.lower() == "true"


_SCALARS = {
    "tag:yaml.org,2002:str": str,
    "tag:yaml.org,2002:null": lambda _text: None,
    _BOOL_TAG: _boolean,
    "tag:yaml.org,2002:int": _integer,
    "tag:yaml.org,2002:float": _float,
}


# -- composing, within the limits ---------------------------------------------
_STR_TAG, _SEQ_TAG, _MAP_TAG = (f"tag:yaml.org,2002:{t}" for t in ("str", "seq", "map"))
_IMPLICIT = _SpecResolver.yaml_implicit_resolvers  # first character: [(tag, regex)]


def _plain_tag(value: str) -> str:
    """The tag of a plain (unquoted, untagged) scalar: what _SpecResolver.resolve
    gives, without its generality (no path resolvers), as it runs for every scalar."""
    for tag, regex in _IMPLICIT.get(value[:1], ()):
        if regex.match(value):
            return tag
    return _STR_TAG


class _LimitedComposer(yaml.composer.Composer):
    """Events -> nodes, as PyYAML's composer does, counting as it goes: the depth
    before it goes one level deeper (it recurses), the values (an alias as all
    the values it repeats) before it makes one more. So neither deep nor huge
    nor alias-bomb input ever costs more than the limits allow, and whatever
    walks the nodes later stays within them too. Composes libyaml's events as
    well as pure Python's. A limit reached is a SpecError in `file`, at the
    event that went past it. `nested`: the levels above the document's root
    (a --set value's key path), counted against MAX_NESTING."""

    def __init__(self, file: str, nested: int = 0):
        super().__init__()
        self._file = file
        self._nested = nested

    def compose_document(self) -> Node:
        self._depth = self._nested  # of the collection being composed (the root is 1)
        self._values = 0  # composed so far, aliases expanded
        self._reach = 0  # the deepest level reached so far, aliases expanded
        self._expanded: dict[str, tuple[int, int]] = {}  # anchor: (values, height)
        return super().compose_document()

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.get_event()
        kind = type(event)
        depth = self._depth + 1
        if kind is AliasEvent:
            return self._alias(event, depth)
        self._values += 1
        if depth > self._reach:
            self._reach = depth
        if depth > MAX_NESTING or self._values > MAX_VALUES:
            self._refuse(event, 1, depth)
        anchor = event.anchor
        if anchor is not None:
            if anchor in self.anchors:
                raise yaml.composer.ComposerError(
                    f"found duplicate anchor '{anchor}'; first occurrence",
                    self.anchors[anchor].start_mark,
                    "second occurrence",
                    event.start_mark,
                )
            before, outer_reach, self._reach = self._values - 1, self._reach, depth
        tag = event.tag
        if kind is ScalarEvent:
            if tag is None or tag == "!":
                tag = _plain_tag(event.value) if event.implicit[0] else _STR_TAG
            node: Node = ScalarNode(
                tag, event.value, event.start_mark, event.end_mark, style=event.style
            )
            if anchor is not None:
                self.anchors[anchor] = node
        else:
            node = self._collection(event, kind is SequenceStartEvent, depth)
        if anchor is not None:
            self._expanded[anchor] = (self._values - before, self._reach - depth + 1)
            self._reach = max(outer_reach, self._reach)
        return node

    def _collection(self, start: Any, sequence: bool, depth: int) -> Node:
        tag = start.tag
        if tag is None or tag == "!":
            tag = _SEQ_TAG if sequence else _MAP_TAG
        node_class = SequenceNode if sequence else MappingNode
        node = node_class(tag, [], start.start_mark, None, flow_style=start.flow_style)
        if start.anchor is not None:
            self.anchors[start.anchor] = node
        self._depth = depth
        items, check_event, compose = node.value, self.check_event, self.compose_node
        if sequence:
            while not check_event(SequenceEndEvent):
                items.append(compose(node, None))
        else:
            while not check_event(MappingEndEvent):
                key = compose(node, None)
                items.append((key, compose(node, key)))
        node.end_mark = self.get_event().end_mark
        self._depth = depth - 1
        return node

    def _alias(self, event: Any, depth: int) -> Node:
        node = self.anchors.get(event.anchor)
        if node is None:
            raise yaml.composer.ComposerError(
                None, None, f"found undefined alias '{event.anchor}'", event.start_mark
            )
        # An alias inside its own anchor is not in _expanded yet: the converter
        # refuses that recursion.
        values, height = self._expanded.get(event.anchor, (0, 0))
        self._values += values
        self._reach = max(self._reach, depth + height - 1)
        if depth + height - 1 > MAX_NESTING or self._values > MAX_VALUES:
            self._refuse(event, values, depth + height - 1)
        return node

    def _refuse(self, event: Any, values: int, reach: int) -> None:
        alias = isinstance(event, AliasEvent)
        mark = event.start_mark
        where = Location(self._file, mark.line + 1, mark.column + 1)
        if reach > MAX_NESTING:
            through = f" (through the alias '*{event.anchor}')" if alias else ""
            raise SpecError.at("nesting", _NESTING + through, where, hint=_NESTING_HINT)
        if alias:
            message = (
                f"the alias '*{event.anchor}' repeats {values:,} values, which takes "
                f"the document past {MAX_VALUES:,} values (an alias bomb?)"
            )
            hint = "an alias repeats everything its anchor holds: use fewer of them"
        else:
            message = f"the document has more than {MAX_VALUES:,} values"
            hint = "a spec has a few thousand: is this the right file?"
        raise SpecError.at("too-large", message, where, hint=hint)


class _Composer(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _LimitedComposer):
    def __init__(self, text: str, file: str, nested: int = 0):
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _LimitedComposer.__init__(self, file, nested)


if yaml.__with_libyaml__:  # libyaml parses several times faster than pure Python
    from yaml.cyaml import CParser

    class _FastComposer(_LimitedComposer, CParser):
        """libyaml's events, composed (and counted) by _LimitedComposer."""

        def __init__(self, text: str, file: str, nested: int = 0):
            CParser.__init__(self, text)
            _LimitedComposer.__init__(self, file, nested)

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


def _compose(text: str, file: str, nested: int) -> Node | None:
    """Compose with libyaml when available; after a syntax error in a document
    of up to MAX_REPARSE_CHARS, compose again in pure Python, whose messages
    (and context marks) are the ones users see."""
    if _FastComposer is not None:
        loader = _FastComposer(text, file, nested)
        try:
            return loader.get_single_node()
        except yaml.YAMLError:
            if len(text) > MAX_REPARSE_CHARS:
                raise
        finally:
            loader.dispose()
    loader = _Composer(text, file, nested)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


# -- characters ---------------------------------------------------------------
_LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")
# What YAML does not allow in its text (PyYAML's own test): nor in a string.
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE


def _line_col(text: str, index: int) -> tuple[int, int]:
    """The 1-based line and column of `text[index]`, with YAML's line breaks
    (LF, CRLF, CR, NEL, LS, PS)."""
    line = 1 + sum(text.count(br, 0, index) for br in _LINE_BREAKS) - text.count("\r\n", 0, index)
    start = max(text.rfind(br, 0, index) for br in _LINE_BREAKS) + 1
    return line, index - start + 1


def _check_characters(text: str, file: str) -> None:
    """Refuse the first character YAML does not allow (a control character, a
    NUL, a lone surrogate), at its line and column, before YAML sees it."""
    found = _NON_PRINTABLE.search(text)
    if found is None:
        return
    point = ord(found.group())
    if 0xDC80 <= point <= 0xDCFF:  # a byte that was not UTF-8 (e.g. in argv)
        message = f"a byte that is not UTF-8 (0x{point - 0xDC00:02x}) is not allowed"
        hint = "write the value as UTF-8 text"
    elif point == 0:
        message = "a NUL character (U+0000) is not allowed in a spec"
        odd, even = text[1:65:2].count("\0"), text[0:64:2].count("\0")
        if max(odd, even) >= 16 and min(odd, even) <= 4:  # text and NULs alternate
            hint = "the file looks like UTF-16 (a NUL between the letters): save it as UTF-8"
        else:
            hint = "this looks like binary data, not a spec: check the file"
    else:
        kind = "control character" if point < 0xA0 else "character"
        message = f"the {kind} U+{point:04X} is not allowed in a spec"
        hint = f"remove the {kind} U+{point:04X}; specs are UTF-8 text"
    line, col = _line_col(text, found.start())
    raise SpecError.at("encoding", message, Location(file, line, col), hint=hint)


def _node_location(file: str, node: Node) -> Location:
    start, end = node.start_mark, node.end_mark
    length = end.column - start.column if end.line == start.line else 1
    return Location(file, start.line + 1, start.column + 1, max(length, 1))


_FAILED = object()  # a scalar that could not be converted (a diagnostic says why)


class _Converter(Reporter):
    """YAML nodes -> YamlMap/YamlList/scalars with locations, recording problems.
    The composer bounded the values and the depth, aliases expanded."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file
        self._active: set[int] = set()

    def at_node(self, code: str, message: str, node: Node, hint: str = "", path: str = ""):
        self.error(code, message, _node_location(self.file, node), path, hint)

    def convert(self, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode):
            value = self._scalar(node, path)
            return None if value is _FAILED else value
        if node.tag not in _STANDARD_TAGS:
            self._unsafe_tag(node, path)
            return None
        if id(node) in self._active:
            self.at_node("yaml", "recursive alias: a node contains itself", node, path=path)
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            return self._sequence(node, path)
        finally:
            self._active.discard(id(node))

    def _unsafe_tag(self, node: Node, path: str) -> None:
        self.at_node(
            "unsafe-tag",
            # Shown as written: `!!python/...`, not `tag:yaml.org,2002:python/...`.
            f"YAML tag '{node.tag.replace('tag:yaml.org,2002:', '!!')}' is not allowed",
            node,
            "specs are plain data: remove the tag (kgraph never constructs "
            "Python objects from YAML)",
            path,
        )

    def _scalar(self, node: ScalarNode, path: str) -> Any:
        """The scalar's value, or _FAILED once a diagnostic says why not."""
        convert = _SCALARS.get(node.tag)
        if convert is None:
            if node.tag == _MERGE_TAG:
                self.at_node("yaml", "'<<' merges mappings: it can only be a key", node, path=path)
            else:
                self._unsafe_tag(node, path)
            return _FAILED
        if node.style == '"' and (bad := _NON_PRINTABLE.search(node.value)):  # an escape
            point = ord(bad.group())
            self.at_node(
                "encoding",
                f"the string holds U+{point:04X}, which a spec cannot hold",
                node,
                f"remove the escape that makes U+{point:04X}: a NUL, a control "
                "character or half a surrogate pair cannot be a name, a path or a value",
                path,
            )
            return _FAILED
        try:
            return convert(node.value)
        except _BadScalar as exc:
            message, hint = exc.args
            self.at_node("type" if node.tag == _BOOL_TAG else "number", message, node, hint, path)
            return _FAILED

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
            key = self._scalar(key_node, path)
            if key is _FAILED:
                continue
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


def parse_yaml(text: str, file: str, nested: int = 0) -> YamlMap:
    """Parse one YAML document that must be a mapping; raise SpecError otherwise.
    The entry point for a spec's text from anywhere (a file, a model file's
    embedded spec, a --set value): every limit above applies. `nested`: how
    many levels above the document's root count against MAX_NESTING."""
    if not text.strip():
        raise SpecError.at(
            "empty",
            "the file is empty",
            Location(file, 1, 1),
            hint="start with `kgraph: 1`",
        )
    _check_characters(text, file)
    try:
        with _gc_paused():
            root = _compose(text, file, nested)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        related = ()
        started = exc.context_mark
        if exc.context and started and (started.line + 1, started.column + 1) != (line, col):
            context = Location(file, started.line + 1, started.column + 1)
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
    with _gc_paused():
        data = converter.convert(root, "")
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


def read_regular_file(path: Path, limit: int) -> bytes:
    """At most `limit + 1` bytes of `path`: more than `limit` means the file is
    over it, whatever size it reports. Anything but a regular file (a folder,
    a FIFO, a device, a socket) raises OSError before a byte is read (a FIFO
    without a writer would block, /dev/zero never ends), its `strerror`
    saying what it is: "a FIFO (named pipe), not a regular file"."""

    def refuse_special(mode: int) -> None:
        if stat.S_ISREG(mode):
            return
        kind = {
            stat.S_IFDIR: "a folder",
            stat.S_IFIFO: "a FIFO (named pipe)",
            stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device",
            stat.S_IFSOCK: "a socket",
        }.get(stat.S_IFMT(mode), "a special file")
        code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
        raise OSError(code, f"{kind}, not a regular file", str(path))

    refuse_special(os.stat(path).st_mode)  # before open(): opening a FIFO blocks
    # Non-blocking, in case it was swapped for a FIFO since: checked again below.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    with open(os.open(path, flags), "rb") as handle:
        refuse_special(os.fstat(handle.fileno()).st_mode)
        return handle.read(limit + 1)


_NOT_A_SPEC = "a spec is a YAML file: check the path"


def read_text(path: Path, display: str | None = None) -> str:
    """Read a spec file as UTF-8, turning I/O and encoding problems into
    diagnostics. Only a regular file is read (a folder, a FIFO or a device such
    as /dev/zero is refused before reading), and never more than MAX_FILE_BYTES."""
    file = display or str(path)
    try:
        raw = read_regular_file(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise SpecError.at("file", "no such file", Location(file), hint="check the path") from None
    except IsADirectoryError:
        raise SpecError.at(
            "file", "is a directory, not a spec file", Location(file), hint=_NOT_A_SPEC
        ) from None
    except OSError as exc:  # EINVAL: a FIFO, a device, a socket (read_regular_file)
        hint = _NOT_A_SPEC if exc.errno == errno.EINVAL else ""
        raise SpecError.at(
            "file", f"cannot read: {exc.strerror}", Location(file), hint=hint
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError.at(
            "too-large",
            f"the file is over {MAX_FILE_BYTES:,} bytes, the limit for a spec",
            Location(file),
            hint="a spec is a few kilobytes: is this the right file?",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = "the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as UTF-8"
        elif b"\0" in raw[:1024]:
            hint = "this looks like binary data, not a spec: check the file"
        else:
            hint = "save the file as UTF-8"
        raise SpecError.at(
            "encoding",
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            Location(file, line, col),
            hint=hint,
        ) from None


def load_yaml_file(path: Path, display: str | None = None) -> YamlMap:
    """Read and parse a spec file."""
    return parse_yaml(read_text(path, display), display or str(path))
