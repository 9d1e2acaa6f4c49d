"""The `data:` part of `train:`: the source (checked by
kgraph_cli.spec.train.sources), the test split, and how each model input and
output is fed from the source's fields, with its transforms."""

from __future__ import annotations

from typing import Any

from kgraph_cli.errors import Diagnostic
from kgraph_cli.spec.fields import FieldChecker
from kgraph_cli.spec.loader import YamlList, YamlMap
from kgraph_cli.spec.model import DTYPES, ModelSpec
from kgraph_cli.spec.train.keys import FEED_KEYS, TRANSFORMS
from kgraph_cli.spec.train.model import DataSpec, FeedSpec, SplitSpec, TransformSpec
from kgraph_cli.spec.train.sources import SourceChecker
from kgraph_cli.spec.values import describe, keras_config
from kgraph_cli.suggest import did_you_mean, listed


class DataParser(FieldChecker):
    """Parses `train.data` (and the splits `fit.validation` names) for one model."""

    def __init__(self, model: ModelSpec, outputs: list[str], file: str, problems: list[Diagnostic]):
        super().__init__(file, problems)
        self.model = model
        self.outputs = outputs
        self.sources = SourceChecker(file, problems)

    def parse(self, body: YamlMap) -> DataSpec | None:
        path = "train.data"
        if "source" not in body:
            self.error(
                "missing",
                "train.data has no `source`",
                body.loc,
                f"{path}.source",
                "e.g. `source: {dataset: mnist}` or `source: {npz: data.npz}`",
            )
            return None
        source = self.sources.source(body, "source", f"{path}.source")
        if source is None:
            return None
        data = DataSpec(source, {}, {}, body.loc)
        generated = source.kind == "generated"
        model_inputs = (
            list(self.model.inputs)
            if self.model.graph is None
            else [r.node for r in self.model.view_inputs or []]
        )
        data.inputs = self.feeds(body, "inputs", model_inputs, "input", generated)
        data.targets = self.feeds(body, "targets", self.outputs, "output", generated)
        if "take" in body:
            data.take = self.number(body, "take", f"{path}.take", int, 1)
        if "test" in body:
            data.test = self.split(body, "test", f"{path}.test")
        for flag in ("cache", "shuffle"):
            if flag in body and (value := self.boolean(body, flag, f"{path}.{flag}")) is not None:
                setattr(data, flag, value)
        return data

    def split(self, parent: Any, key: Any, path: str) -> SplitSpec | None:
        value = parent[key]
        loc = self.where(parent, key)
        if isinstance(value, float) or isinstance(value, int) and not isinstance(value, bool):
            if not 0 < value < 1:
                self.error(
                    "type",
                    f"a {key} fraction must be between 0 and 1, got {value}",
                    loc,
                    path,
                    "e.g. 0.2 for a fifth of the training data",
                )
                return None
            return SplitSpec(fraction=float(value), loc=loc)
        if isinstance(value, str):
            return SplitSpec(split=value, loc=loc)
        if isinstance(value, YamlMap) and "source" in value:
            for extra in value:
                if extra != "source":
                    self.error(
                        "unknown-key",
                        f"unknown key '{extra}' in {key}",
                        value.key_loc(extra),
                        f"{path}.{extra}",
                    )
            source = self.sources.source(value, "source", f"{path}.source")
            return SplitSpec(source=source, loc=loc) if source else None
        self.error(
            "type",
            f"{key} must be a fraction, a split name or {{source: ...}}, got {describe(value)}",
            loc,
            path,
            "e.g. 0.2, test, or {source: {npz: val.npz}}",
        )
        return None

    def feeds(
        self, body: YamlMap, key: str, names: list[str], what: str, generated: bool
    ) -> dict[str, FeedSpec]:
        path = f"train.data.{key}"
        if key not in body:
            # Defaults: generated data feeds everything by name; a one-input,
            # one-output model reads fields x and y (as keras.datasets names them).
            if generated:
                return {n: FeedSpec(n, [n], False, [], body.loc, path) for n in names}
            default = "x" if key == "inputs" else "y"
            if len(names) == 1:
                return {names[0]: FeedSpec(names[0], [default], False, [], body.loc, path)}
            self.error(
                "missing",
                f"train.data needs `{key}`: model '{self.model.name}' has "
                f"{len(names)} {what}s ({', '.join(names)})",
                body.loc,
                path,
                f"map each {what} to a field of the source, e.g. "
                f"`{key}: {{{names[0] if names else 'name'}: field}}`",
            )
            return {}
        section = self.mapping(body, key, path, f"train.data.{key}")
        if section is None:
            return {}
        feeds = {}
        for name in section:
            fpath = f"{path}.{name}"
            if name not in names:
                self.error(
                    "outputs" if key == "targets" else "undefined-ref",
                    f"model '{self.model.name}' has no {what} '{name}'",
                    section.key_loc(name),
                    fpath,
                    did_you_mean(name, names, f"{what}s: {listed(names)}"),
                )
                continue
            feed = self.feed(section, name, fpath)
            if feed is not None:
                feeds[name] = feed
        if key == "inputs":
            for name in names:
                if name not in section:
                    self.error(
                        "missing",
                        f"model input '{name}' is not fed",
                        section.loc,
                        path,
                        f"add `{name}: <field>`",
                    )
        return feeds

    def feed(self, section: YamlMap, name: str, path: str) -> FeedSpec | None:
        value = section[name]
        loc = section.value_loc(name)
        if isinstance(value, str):
            return FeedSpec(name, [value], False, [], loc, path)
        body = self.mapping(section, name, path, f"the feed of '{name}'", FEED_KEYS)
        if body is None:
            return None
        if ("field" in body) == ("columns" in body):
            self.error(
                "source",
                f"the feed of '{name}' needs `field` or `columns` (one of them)",
                body.loc,
                path,
                "e.g. {field: x} or {columns: [a, b, c]}",
            )
            return None
        if "field" in body:
            if not isinstance(body["field"], str):
                self.error(
                    "type",
                    f"field must be a name, got {describe(body['field'])}",
                    body.value_loc("field"),
                    f"{path}.field",
                    _QUOTE_HINT,
                )
                return None
            fields, stacked = [body["field"]], False
            field_locs = {body["field"]: body.value_loc("field")}
        else:
            columns = self.columns(body, f"{path}.columns")
            if columns is None:
                return None
            fields, stacked = list(columns), True
            field_locs = {c: columns.item_loc(i) for i, c in enumerate(columns)}
        transforms = self.transforms(body, f"{path}.transforms") if "transforms" in body else []
        return FeedSpec(name, fields, stacked, transforms, loc, path, field_locs)

    def columns(self, body: YamlMap, path: str) -> YamlList | None:
        """`columns:` of a feed: a non-empty list of distinct field names."""
        columns = body["columns"]
        if not isinstance(columns, YamlList) or not columns:
            self.error(
                "type",
                "columns must be a list of one or more column names, got "
                f"{describe(columns, lists=True)}",
                body.value_loc("columns"),
                path,
                "e.g. {columns: [a, b, c]} stacks three fields into one input; "
                "{field: a} feeds one",
            )
            return None
        ok = True
        first: dict[str, int] = {}
        for i, column in enumerate(columns):
            if not isinstance(column, str):
                self.error(
                    "type",
                    f"columns[{i}] must be a column name, got {describe(column)}",
                    columns.item_loc(i),
                    f"{path}[{i}]",
                    _QUOTE_HINT,
                )
                ok = False
            elif column in first:
                self.error(
                    "duplicate-name",
                    f"column '{column}' is listed twice in columns "
                    f"(columns[{first[column]}] and columns[{i}])",
                    columns.item_loc(i),
                    f"{path}[{i}]",
                    "each column is one value of every sample: list it once",
                )
                ok = False
            else:
                first[column] = i
        return columns if ok else None

    def transforms(self, body: YamlMap, path: str) -> list[TransformSpec]:
        value = body["transforms"]
        if not isinstance(value, YamlList):
            self.error(
                "type",
                "transforms must be a list such as [{reshape: [784]}, {divide: 255}]",
                body.value_loc("transforms"),
                path,
            )
            return []
        result = []
        for i, item in enumerate(value):
            loc = value.item_loc(i)
            if not isinstance(item, YamlMap) or len(item) != 1:
                self.error(
                    "type",
                    "each transform is a one-key mapping such as {divide: 255}",
                    loc,
                    f"{path}[{i}]",
                    f"transforms: {', '.join(TRANSFORMS)}",
                )
                continue
            ((name, arg),) = item.items()
            if name not in TRANSFORMS:
                self.error(
                    "unknown-transform",
                    f"unknown transform '{name}'",
                    item.key_loc(name),
                    f"{path}[{i}]",
                    did_you_mean(name, TRANSFORMS),
                )
                continue
            if name == "cast" and isinstance(arg, str) and arg.startswith("complex"):
                self.error(
                    "type",
                    f"cast: data cannot be cast to {arg}: inputs and targets take real "
                    "numbers or text",
                    item.value_loc(name),
                    f"{path}[{i}].{name}",
                    f"dtypes: {', '.join(d for d in DTYPES if not d.startswith('complex'))}",
                )
                continue
            if not _transform_arg_ok(name, arg):
                self.error(
                    "type",
                    f"{name}: expected {TRANSFORMS[name]}, got {describe(arg)}",
                    item.value_loc(name),
                    f"{path}[{i}].{name}",
                )
                continue
            result.append(TransformSpec(name, keras_config(arg), item.key_loc(name)))
        return result


# Field and column names are text: a name YAML reads as a number needs quotes.
_QUOTE_HINT = "quote names that YAML reads as numbers, booleans or null: '1', 'true', 'null'"


def _transform_arg_ok(name: str, arg: Any) -> bool:
    number = isinstance(arg, (int, float)) and not isinstance(arg, bool)
    if name == "reshape":
        return isinstance(arg, list) and all(
            isinstance(d, int) and not isinstance(d, bool) and (d > 0 or d == -1) for d in arg
        )
    if name == "cast":
        return arg in DTYPES
    if name in ("scale", "offset"):
        return number
    if name == "divide":
        return number and arg != 0
    if name == "one_hot":
        return isinstance(arg, int) and not isinstance(arg, bool) and arg > 1
    if name == "standardize":
        return arg is True
    return False
