"""JSON Schema of the spec format, for editors (yaml-language-server).

Built from the same key tables the parser uses and from the layer catalog, so
editors complete layer types and each layer's arguments.
"""

from __future__ import annotations

from typing import Any

from kgraph_cli.keras_classes import LAYER_ARGUMENTS
from kgraph_cli.layers import keras_catalog, keras_internal_layers, string_identifiers
from kgraph_cli.ops_catalog import ops_catalog
from kgraph_cli.spec.applications import SET_FROM_NODE, applications_catalog
from kgraph_cli.spec.keys import (
    BLOCK_KEYS,
    INPUT_KEYS,
    MODEL_KEYS,
    NODE_COMMON_KEYS,
    NODE_EXTRA_KEYS,
    OUTPUT_KEYS,
    TOP_KEYS,
)
from kgraph_cli.spec.model import DTYPES, NAME_PATTERN, REF_PATTERN, SPEC_VERSION, NodeKind
from kgraph_cli.spec.train.schema import train_json_schema

_NAME = {"type": "string", "pattern": NAME_PATTERN.pattern}
_REF = {"$ref": "#/definitions/ref"}
# module.Class, but not Keras's own modules (`keras.layers.Dense` is written `Dense`)
_PLUGIN_TYPE = r"^(?!(keras|tf|tensorflow)\.)[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
_PARAM_VALUE = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"


def _described(schema: dict[str, Any], table: dict[str, str], key: str) -> dict[str, Any]:
    return {**schema, "description": table[key]}


def _refs_schema() -> dict[str, Any]:
    return {
        "description": NODE_COMMON_KEYS["from"],
        "oneOf": [
            _REF,
            {"type": "array", "items": _REF, "minItems": 1},
            {
                "type": "object",
                "additionalProperties": {
                    "oneOf": [_REF, {"type": "array", "items": _REF, "minItems": 1}]
                },
            },
        ],
    }


def _outputs_schema(description: str, named: dict[str, Any] = _REF) -> dict[str, Any]:
    return {
        "description": description,
        "oneOf": [
            _REF,
            {"type": "array", "items": _REF, "minItems": 1},
            {"type": "object", "propertyNames": _NAME, "additionalProperties": named},
        ],
    }


# A model's named output: a ref, or {from: ref, classes: [...]}.
_NAMED_OUTPUT = {
    "oneOf": [
        _REF,
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["from"],
            "properties": {
                "from": {**_REF, "description": OUTPUT_KEYS["from"]},
                "classes": {
                    "type": "array",
                    "items": {"type": ["string", "integer"]},
                    "minItems": 1,
                    "description": OUTPUT_KEYS["classes"],
                },
            },
        },
    ]
}


def _node_schema() -> dict[str, Any]:
    catalog = {**keras_catalog(), **keras_internal_layers()}
    ops = ops_catalog()
    apps = applications_catalog()
    kinds = [kind.value for kind in NodeKind]
    reserved = {"from", "call", "adapt"}
    properties: dict[str, Any] = {
        "type": {
            "description": "a Keras layer class (keras.layers), or module.Class from a --plugin",
            "anyOf": [
                {"enum": sorted(catalog)},
                {"type": "string", "pattern": _PLUGIN_TYPE},
                {"type": "string", "pattern": _PARAM_VALUE},
            ],
        },
        "op": {
            "description": "a keras.ops function, applied to the `from` tensors",
            "anyOf": [{"enum": sorted(ops)}, {"type": "string", "pattern": _PARAM_VALUE}],
        },
        "share": {
            "type": "string",
            "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
            "description": "reuse this node's layer (or MODEL.NODE: another model's layer)",
        },
        "model": {**_NAME, "description": "call a fresh instance of this spec model"},
        "application": {
            "description": "a keras.applications model (ResNet50...), called as one nested model",
            "anyOf": [{"enum": sorted(apps)}, {"type": "string", "pattern": _PARAM_VALUE}],
        },
        "preprocess": {
            "type": "boolean",
            "description": NODE_EXTRA_KEYS[NodeKind.APPLICATION]["preprocess"],
        },
        "block": {**_NAME, "description": "expand this block here"},
        "from": _refs_schema(),
        "call": {"type": "object", "description": NODE_EXTRA_KEYS[NodeKind.LAYER]["call"]},
        "args": {
            "description": NODE_EXTRA_KEYS[NodeKind.BLOCK]["args"],
            "oneOf": [
                {"type": "object"},
                {"type": "array", "items": {"type": "object"}, "minItems": 1},
            ],
        },
        "repeat": {
            "type": "integer",
            "minimum": 1,
            "description": NODE_EXTRA_KEYS[NodeKind.BLOCK]["repeat"],
        },
        "trainable": {"type": "boolean"},
        "adapt": {"type": "boolean", "description": NODE_EXTRA_KEYS[NodeKind.LAYER]["adapt"]},
    }
    activation = {
        "anyOf": [
            {"enum": sorted(string_identifiers("activations"))},
            {"type": "string", "pattern": _PARAM_VALUE},
            {"type": "object", "required": ["type"]},
            {"type": "null"},
        ]
    }
    for name in ("activation", "recurrent_activation"):
        properties[name] = {**activation, "description": "an activation name, or {type: ...}"}
    for name in LAYER_ARGUMENTS:  # a wrapped layer is fed by its wrapper
        properties[name] = {"type": "object", "not": {"required": ["from"]}}
    per_layer = [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {
                "description": info.doc,
                "propertyNames": {"enum": sorted((info.params - {"name"}) | reserved | {"type"})},
                "required": sorted(info.required),
            },
        }
        for name, info in sorted(catalog.items())
    ]
    per_op = [
        {
            "if": {"properties": {"op": {"const": name}}, "required": ["op"]},
            "then": {
                "description": info.doc,
                "propertyNames": {"enum": sorted({*info.named_params, "op", "from"})},
            },
        }
        for name, info in sorted(ops.items())
    ]
    app_keys = {"application", "from", *NODE_EXTRA_KEYS[NodeKind.APPLICATION]}
    per_app = [
        {
            "if": {"properties": {"application": {"const": name}}, "required": ["application"]},
            "then": {
                "description": entry["doc"],
                "propertyNames": {
                    "enum": sorted(app_keys | set(entry["params"]) - set(SET_FROM_NODE))
                },
            },
        }
        for name, entry in sorted(apps.items())
    ]
    return {
        "type": "object",
        "properties": properties,
        "required": ["from"],
        "oneOf": [{"required": [kind]} for kind in kinds],
        "allOf": per_layer + per_op + per_app,
    }


def _input_schema() -> dict[str, Any]:
    dim = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}
    shape = {"type": "array", "items": dim}
    return {
        "oneOf": [
            {**shape, "description": "shorthand for {shape: [...]}"},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["shape"],
                "properties": {
                    "shape": _described(shape, INPUT_KEYS, "shape"),
                    "dtype": _described({"enum": list(DTYPES)}, INPUT_KEYS, "dtype"),
                    "sparse": _described({"type": "boolean"}, INPUT_KEYS, "sparse"),
                    "batch_size": _described(
                        {"type": "integer", "minimum": 1}, INPUT_KEYS, "batch_size"
                    ),
                },
            },
        ]
    }


def _named_map(item: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "propertyNames": _NAME,
        "additionalProperties": item,
    }


def _tune_schema() -> dict[str, Any]:
    from kgraph_cli.spec.tune import DIRECTIONS, ENTRY_KEYS, PRUNERS, SAMPLERS, TUNE_KEYS

    expression = {"type": "string", "pattern": r"^\s*(choice|int|float|bool)\b"}
    entry = {
        "oneOf": [
            _described(expression, ENTRY_KEYS, "values"),
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["values"],
                "properties": {
                    "values": _described(expression, ENTRY_KEYS, "values"),
                    "when": _described({"type": "string"}, ENTRY_KEYS, "when"),
                },
            },
        ]
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "space": _described(
                {"type": "object", "additionalProperties": entry}, TUNE_KEYS, "space"
            ),
            "objective": _described({"type": "string"}, TUNE_KEYS, "objective"),
            "direction": _described({"enum": list(DIRECTIONS)}, TUNE_KEYS, "direction"),
            "trials": _described({"type": "integer", "minimum": 1}, TUNE_KEYS, "trials"),
            "timeout": _described(
                {"oneOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}]},
                TUNE_KEYS,
                "timeout",
            ),
            "sampler": _described({"enum": list(SAMPLERS)}, TUNE_KEYS, "sampler"),
            "pruner": _described({"enum": list(PRUNERS)}, TUNE_KEYS, "pruner"),
            "seed": _described({"type": "integer", "minimum": 0}, TUNE_KEYS, "seed"),
        },
    }


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of spec format version SPEC_VERSION."""
    layers = _named_map({"$ref": "#/definitions/node"}, TOP_KEYS["layers"])
    inputs = _named_map({"$ref": "#/definitions/input"}, TOP_KEYS["inputs"])
    model = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "description": _described({"type": "string"}, MODEL_KEYS, "description"),
            "inputs": {
                "description": MODEL_KEYS["inputs"] + " (for a graph view: a list of its inputs)",
                "oneOf": [inputs, {"type": "array", "items": _REF}],
            },
            "layers": layers,
            "outputs": _outputs_schema(MODEL_KEYS["outputs"], _NAMED_OUTPUT),
            "graph": _described(_NAME, MODEL_KEYS, "graph"),
        },
    }
    block = {
        "type": "object",
        "additionalProperties": False,
        "required": ["inputs", "layers", "outputs"],
        "properties": {
            "description": _described({"type": "string"}, BLOCK_KEYS, "description"),
            "params": _described(
                {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "string"}}]},
                BLOCK_KEYS,
                "params",
            ),
            "inputs": _described(
                {"oneOf": [_NAME, {"type": "array", "items": _NAME}]}, BLOCK_KEYS, "inputs"
            ),
            "layers": layers,
            "outputs": _outputs_schema(BLOCK_KEYS["outputs"]),
        },
    }
    train, train_definitions = train_json_schema()
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"kgraph spec (format version {SPEC_VERSION})",
        "type": "object",
        "additionalProperties": False,
        "required": ["kgraph"],
        "properties": {
            "kgraph": _described({"const": SPEC_VERSION}, TOP_KEYS, "kgraph"),
            "name": _described(_NAME, TOP_KEYS, "name"),
            "description": _described({"type": "string"}, TOP_KEYS, "description"),
            "include": _described(
                {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                TOP_KEYS,
                "include",
            ),
            "default": _described(_NAME, TOP_KEYS, "default"),
            "inputs": inputs,
            "layers": layers,
            "outputs": _outputs_schema(TOP_KEYS["outputs"], _NAMED_OUTPUT),
            "models": _named_map({"$ref": "#/definitions/model"}, TOP_KEYS["models"]),
            "blocks": _named_map({"$ref": "#/definitions/block"}, TOP_KEYS["blocks"]),
            "train": _described(train, TOP_KEYS, "train"),
            "tune": _described(_tune_schema(), TOP_KEYS, "tune"),
        },
        "definitions": {
            "ref": {
                "type": "string",
                "pattern": REF_PATTERN.pattern,
                "description": "a node or input name; name.N or name.output for one of "
                "several outputs",
            },
            "input": _input_schema(),
            "node": _node_schema(),
            "model": model,
            "block": block,
            **train_definitions,
        },
    }
