"""Checks of what a node passes besides its `from:` refs: an `op:` node's
function and constant arguments (against the keras.ops catalog), and the
constants of `call:` and `op:` nodes that name a node or input, which would
reach Keras as a string where a tensor was meant; and `${param}` outside any
block, which nothing would replace."""

from __future__ import annotations

import re
from typing import Any

from kgraph_cli.errors import Reporter
from kgraph_cli.layers import keras_catalog
from kgraph_cli.ops_catalog import BindProblem, OpCall, OpInfo, bind, ops_catalog
from kgraph_cli.spec.loader import YamlList, YamlMap
from kgraph_cli.spec.model import (
    REF_PATTERN,
    InputForm,
    LayerSpec,
    ModelSpec,
    NodeKind,
    NodeSpec,
)
from kgraph_cli.suggest import did_you_mean

_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")

# keras.ops functions left out of the catalog because they take Python code.
_CODE_OPS = {
    "associative_scan",
    "cond",
    "custom_gradient",
    "fori_loop",
    "jvp",
    "map",
    "scan",
    "switch",
    "vectorize",
    "vectorized_map",
    "while_loop",
}


def bind_node(info: OpInfo, node: NodeSpec) -> tuple[OpCall | None, list[BindProblem]]:
    """An `op:` node's `from:` and constants fitted to the function `info`."""
    keyword = node.input_form is InputForm.KEYWORD
    return bind(
        info,
        0 if keyword else len(node.inputs),
        node.keyword_inputs() if keyword else {},
        list(node.op_args or {}),
    )


def check_op(reporter: Reporter, model: ModelSpec, node: NodeSpec) -> None:
    """The op exists and `from:` and the constants fit its parameters."""
    path = model.key_path("layers", node.name)
    info = ops_catalog().get(node.target)
    if info is None:
        reporter.error(
            "unknown-op",
            f"unknown op '{node.target}'",
            node.target_loc,
            f"{path}.op",
            _unknown_op_hint(node.target),
        )
        return
    constants = node.op_args if node.op_args is not None else YamlMap()
    _, problems = bind_node(info, node)
    by_key = node.keyword_inputs() if node.input_form is InputForm.KEYWORD else {}
    for problem in problems:
        if problem.key in constants:
            loc, where = constants.key_loc(problem.key), f"{path}.{problem.key}"
        elif problem.key in by_key:
            first = by_key[problem.key]
            index = first if isinstance(first, int) else first[0]
            loc, where = node.inputs[index].loc, f"{path}.from.{problem.key}"
        else:
            loc, where = node.loc, f"{path}.from"
        reporter.error(problem.code, problem.message, loc, where, problem.hint)


def _unknown_op_hint(name: str) -> str:
    if name in keras_catalog():
        return f"'{name}' is a layer: write `type: {name}`"
    short = name.removeprefix("keras.").removeprefix("ops.")
    if short != name and short in ops_catalog():
        return f"write `op: {short}`: a spec names keras.ops functions without 'keras.ops.'"
    if short in _CODE_OPS:
        return (
            f"keras.ops.{short} takes Python functions, and a spec never runs code: "
            "write the computation as a layer in a --plugin module"
        )
    return did_you_mean(
        name, ops_catalog(), "see https://keras.io/api/ops/ for the keras.ops functions"
    )


def check_constant_refs(reporter: Reporter, model: ModelSpec, node: NodeSpec) -> None:
    """A string constant of `call:` or of an `op:` node that names a node or an
    input of the model is a tensor written in the wrong place."""

    # Looked up in the model's own dicts: a set of their names made per node
    # would make validation quadratic in the number of nodes.
    def names_a_tensor(text: str) -> bool:
        name = _ref_node(text)
        return name in model.nodes or name in model.inputs

    path = model.key_path("layers", node.name)
    sections: list[tuple[str, Any]] = [("call", node.call_args)]
    if node.kind is NodeKind.OP:
        sections.append(("", node.op_args))
    for section, values in sections:
        if not isinstance(values, YamlMap):
            continue
        for key, value in values.items():
            named = list(dict.fromkeys(t for t in _strings(value) if names_a_tensor(t)))
            if not named:
                continue
            where = f"{section}.{key}" if section else key
            written = value if isinstance(value, str) else f"[{', '.join(value)}]"
            reporter.error(
                "call-ref",
                f"`{where}` names {_nodes_text(named)}, but constants are passed to Keras "
                "as they are written: a tensor goes in `from:`",
                values.value_loc(key),
                f"{path}.{where}",
                f"write it as a keyword input: "
                f"`from: {{{_first_keyword(node)}, {key}: {written}}}`",
            )


def check_unresolved_params(reporter: Reporter, model: ModelSpec, node: NodeSpec) -> None:
    """`${name}` outside a block: nothing would replace it, and Keras would get
    the text. (Inside a block, the expander reports unknown params.)"""
    if node.expanded_from is not None:
        return
    path = model.key_path("layers", node.name)
    values: list[Any] = [node.call_args, node.op_args]
    layers = [node.layer] if node.layer is not None else []
    while layers:
        layer = layers.pop()
        values.append(layer.args)
        layers += [sub for sub in layer.sublayers.values() if isinstance(sub, LayerSpec)]
    for parent, key in _placeholders(values):
        text = parent[key]
        reporter.error(
            "unknown-param",
            f"'{text}' is outside any block: nothing replaces its `${{...}}`",
            parent.value_loc(key) if isinstance(parent, YamlMap) else parent.item_loc(key),
            f"{path}.{key}" if isinstance(parent, YamlMap) else path,
            "`${param}` is replaced only in a block's layers; "
            "set values from the command line with --set",
        )
    if _PLACEHOLDER.search(node.target):
        reporter.error(
            "unknown-param",
            f"'{node.target}' is outside any block: nothing replaces its `${{...}}`",
            node.target_loc,
            f"{path}.{node.kind.value}",
            "`${param}` is replaced only in a block's layers",
        )


def _placeholders(values: list[Any]) -> list[tuple[Any, Any]]:
    """(container, key) of every string with `${...}` in nested YAML data."""
    found = []
    stack = [v for v in values if isinstance(v, YamlMap | YamlList)]
    while stack:
        container = stack.pop()
        keys = container.keys() if isinstance(container, YamlMap) else range(len(container))
        for key in keys:
            item = container[key]
            if isinstance(item, str) and _PLACEHOLDER.search(item):
                found.append((container, key))
            elif isinstance(item, YamlMap | YamlList):
                stack.append(item)
    return found


def _first_keyword(node: NodeSpec) -> str:
    """`sequences: x`: the node's own input, as the first keyword input."""
    if node.input_form is not InputForm.SINGLE or not node.inputs:
        return "..."
    info = ops_catalog().get(node.target) if node.kind is NodeKind.OP else None
    if info and info.named_params:
        return f"{info.named_params[0]}: {node.inputs[0]}"
    rnn = node.layer is not None and node.layer.type.endswith(("RNN", "LSTM", "GRU"))
    return f"{'sequences' if rnn else 'inputs'}: {node.inputs[0]}"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, YamlList):
        return [item for item in value if isinstance(item, str)]
    return []


def _ref_node(text: str) -> str | None:
    return text.partition(".")[0] if REF_PATTERN.match(text) else None


def _nodes_text(named: list[str]) -> str:
    return f"'{named[0]}'" if len(named) == 1 else ", ".join(f"'{n}'" for n in named)
