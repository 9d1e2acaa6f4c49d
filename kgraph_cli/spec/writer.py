"""Spec data -> readable YAML (what `kgraph import` writes).

One flow-style line per input and node where it fits in `FLOW_WIDTH`
columns, block style (one key per line) where it does not; the top-level keys
in the order people write them; comments next to the inputs and nodes they
are about; every string quoted that kgraph's loader would read as something
else. Plain data in, text out: no Keras.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# A node line longer than this is written in block style, one key per line.
FLOW_WIDTH = 120

# (model key path: "" or "models.NAME", input or node name) -> comment text.
Comments = dict[tuple[str, str], str]


def spec_yaml(data: dict[str, Any], comments: Comments | None = None) -> str:
    """Readable YAML for a spec: one flow-style line per node where it fits;
    `comments` go next to nodes, by (model key path, node name)."""
    comments = comments or {}
    lines: list[str] = []
    for key in ("kgraph", "name", "description", "default"):
        if key in data:
            lines.append(_flow_entry(key, data[key]))
    if data.get("models"):
        lines.append("models:")
    for model_name, body in (data.get("models") or {}).items():
        lines.append(f"  {model_name}:")
        lines += _model_lines(body, "    ", f"models.{model_name}", comments)
    if "inputs" in data:
        lines += _model_lines(data, "", "", comments)
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Quotes every string kgraph's loader would read as something else."""


_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _flow(value: Any) -> str:
    """One value in flow style, quoted as inside a flow mapping."""
    text = yaml.dump(
        {"k": value},
        Dumper=_Dumper,
        default_flow_style=True,
        sort_keys=False,
        width=1 << 30,
        allow_unicode=True,
    ).strip()
    return text[len("{k: ") : -1]


def _flow_entry(key: str, value: Any) -> str:
    return f"{key}: {_flow(value)}"


def _model_lines(body: dict[str, Any], indent: str, path: str, comments: Comments) -> list[str]:
    """The `inputs:`, `layers:` and `outputs:` of one model, at `indent`."""
    lines = [f"{indent}inputs:"]
    for name, spec in body["inputs"].items():
        lines.append(_with_comment(f"{indent}  {name}: {_flow(spec)}", comments.get((path, name))))
    lines.append(f"{indent}layers:")
    for name, node in body["layers"].items():
        lines += _node_lines(name, node, indent + "  ", comments.get((path, name)))
    outputs = body["outputs"]
    if isinstance(outputs, dict) and len(f"{indent}outputs: {_flow(outputs)}") > FLOW_WIDTH:
        lines.append(f"{indent}outputs:")
        lines += [f"{indent}  {key}: {_flow(ref)}" for key, ref in outputs.items()]
    else:
        lines.append(f"{indent}outputs: {_flow(outputs)}")
    return lines


def _node_lines(name: str, node: dict[str, Any], indent: str, comment: str | None) -> list[str]:
    node = _node_order(node)
    line = f"{indent}{name}: {_flow(node)}"
    if len(line) <= FLOW_WIDTH:
        return [_with_comment(line, comment)]
    lines = [_with_comment(f"{indent}{name}:", comment)]
    lines += [f"{indent}  {key}: {_flow(value)}" for key, value in node.items()]
    return lines


def _node_order(node: dict[str, Any]) -> dict[str, Any]:
    """An `op:` node as people write one: `op`, `from`, then its constants
    ({op: add, from: h, x2: 3.0}); other nodes in their own order (`type`
    first, the arguments, `from`, `call`)."""
    if "op" not in node or any(kind in node for kind in ("type", "share", "model", "block")):
        return node  # not an op node (a layer may have an argument named `op`)
    head = {key: node[key] for key in ("op", "from") if key in node}
    return {**head, **{key: value for key, value in node.items() if key not in head}}


def _with_comment(line: str, comment: str | None) -> str:
    return f"{line}  # {comment}" if comment else line
