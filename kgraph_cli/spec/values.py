"""Small helpers over spec values (YAML data), shared by the spec stages."""

from __future__ import annotations

from typing import Any


def describe(value: Any) -> str:
    """A value as a message shows what was received: "string 'x'", "a list"..."""
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
