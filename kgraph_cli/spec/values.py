"""Small helpers over spec values (YAML data), shared by the spec stages."""

from __future__ import annotations

from typing import Any


def describe(value: Any, *, lists: bool = False) -> str:
    """A value as a message shows what was received: "string 'x'", "a list"...
    With `lists`, for values that should be lists of numbers (a shape, an image
    size): a short list of numbers as written ("[0, 5]") and an empty mapping or
    list as empty."""
    if lists and isinstance(value, dict | list) and not value:
        return f"an empty {'mapping' if isinstance(value, dict) else 'list'}"
    if lists and isinstance(value, list) and len(value) <= 8 and all(_is_number(v) for v in value):
        return f"[{', '.join(str(v) for v in value)}]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"string '{value}'"
    return f"{type(value).__name__} {value!r}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def keras_config(value: Any) -> Any:
    """YAML data -> what Keras constructors take: plain dicts and lists, and
    `{type: X, ...}` mappings as Keras object configs ({class_name, config})."""
    if isinstance(value, dict):
        items = {k: keras_config(v) for k, v in value.items()}
        if isinstance(items.get("type"), str):
            class_name = items.pop("type")
            return {"class_name": class_name, "config": items}
        return items
    if isinstance(value, list):
        return [keras_config(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """YAML data (YamlMap/YamlList) as plain dicts and lists, e.g. to dump it."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
