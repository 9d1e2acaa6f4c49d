"""The JSON Schema of `train:`, built from the key tables the parser uses
(keys.py) and the catalog of what Keras offers, so an editor completes and
checks what `kgraph validate` checks: the keys of every part, the source kinds
and their options, dataset names, transforms, and the option values known
without reading data. Values only the parser can judge (a loss keyed by an
output, a path that must exist) are left open rather than guessed.
"""

from __future__ import annotations

from typing import Any

from kgraph_cli.layers import keras_objects
from kgraph_cli.spec.train.keys import (
    COLOR_MODES,
    COMPILE_KEYS,
    DATA_KEYS,
    DATASETS,
    DISTRIBUTE_KEYS,
    FEED_KEYS,
    FINE_TUNE_KEYS,
    FIT_KEYS,
    LABEL_MODES,
    PRECISIONS,
    SOURCE_KINDS,
    STRATEGIES,
    TRAIN_KEYS,
    TRANSFORMS,
)

_INT = {"type": "integer"}
_POSITIVE = {"type": "integer", "minimum": 1}
_NUMBER = {"type": "number"}
_BOOL = {"type": "boolean"}
_TEXT = {"type": "string", "minLength": 1}
_OBJECT = {"type": "object"}

# Value schemas of the keys whose values are fixed by the tables or plainly typed.
_FIT_VALUES: dict[str, dict[str, Any]] = {
    "batch_size": _POSITIVE,
    "epochs": _POSITIVE,
    "shuffle": _BOOL,
    "steps_per_execution": _POSITIVE,
    "seed": _INT,
    "class_weight": _OBJECT,
}
_SOURCE_VALUES: dict[str, dict[str, Any]] = {
    "dataset": {"enum": list(DATASETS)},
    "label_mode": {"enum": list(LABEL_MODES)},
    "num_words": {"oneOf": [_POSITIVE, {"type": "null"}]},
    "maxlen": {"oneOf": [_POSITIVE, {"type": "null"}]},
    "skip_top": {"type": "integer", "minimum": 0},
    "npz": _TEXT,
    "csv": _TEXT,
    "images": _TEXT,
    "delimiter": {"type": "string", "minLength": 1, "maxLength": 1},
    "image_size": {"type": "array", "items": _POSITIVE, "minItems": 2, "maxItems": 2},
    "color_mode": {"enum": list(COLOR_MODES)},
    "tfrecord": {"oneOf": [_TEXT, {"type": "array", "items": _TEXT, "minItems": 1}]},
    "features": {"type": "object", "minProperties": 1},
    "npy": {"type": "object", "additionalProperties": _TEXT},
    "generated": _POSITIVE,
    "sequence_length": _POSITIVE,
    "test_samples": _POSITIVE,
    "positions": {"type": "array", "items": {"type": "string"}},
    "seed": {"type": "integer", "minimum": 0},
}


def _described(table: dict[str, str], key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "description": table[key]}


def _object(table: dict[str, str], values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A mapping of exactly the keys of `table`, each described."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {key: _described(table, key, values.get(key, {})) for key in table},
    }


def _source() -> dict[str, Any]:
    kinds = []
    for kind, options in SOURCE_KINDS.items():
        schema = _object(options, _SOURCE_VALUES)
        schema["required"] = [kind]
        kinds.append(schema)
    return {"description": DATA_KEYS["source"], "oneOf": kinds}


def _split(description: str) -> dict[str, Any]:
    """A held-out split: a fraction, a split name, or another source."""
    return {
        "description": description,
        "oneOf": [
            {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            _TEXT,
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["source"],
                "properties": {"source": {"$ref": "#/definitions/train_source"}},
            },
        ],
    }


def _feeds(description: str) -> dict[str, Any]:
    transform = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": {name: {"description": text} for name, text in TRANSFORMS.items()},
    }
    feed = _object(FEED_KEYS, {"field": _TEXT, "transforms": {"type": "array", "items": transform}})
    return {
        "description": description,
        "type": "object",
        "additionalProperties": {"oneOf": [_TEXT, feed]},
    }


def _keras_objects(kind: str) -> dict[str, Any]:
    """A Keras object by name, or as {type: Class, ...} with that class's arguments."""
    objects = keras_objects(kind)
    per_class = [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"propertyNames": {"enum": sorted((info.params - {"name"}) | {"type"})}},
        }
        for name, info in sorted(objects.classes.items())
    ]
    return {
        "anyOf": [
            {"type": "string", "description": f"a {kind[:-1]} name or alias"},
            {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "examples": sorted(objects.classes)}},
                "allOf": per_class,
            },
        ]
    }


def train_json_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """(the schema of `train:`, the definitions it refers to)."""
    optimizer = _keras_objects("optimizers")
    loss = _keras_objects("losses")
    metric = _keras_objects("metrics")
    callback = _keras_objects("callbacks")
    # one loss, a list (one per output), or a mapping by output name
    per_output = {"anyOf": [loss, {"type": "array"}, {"type": "object"}]}
    data = _object(
        DATA_KEYS,
        {
            "source": {"$ref": "#/definitions/train_source"},
            "inputs": _feeds(DATA_KEYS["inputs"]),
            "targets": _feeds(DATA_KEYS["targets"]),
            "take": _POSITIVE,
            "test": _split(DATA_KEYS["test"]),
            "cache": _BOOL,
            "shuffle": _BOOL,
        },
    )
    compile_ = _object(
        COMPILE_KEYS,
        {
            "optimizer": optimizer,
            "loss": per_output,
            "loss_weights": {"anyOf": [{"type": "array", "items": _NUMBER}, _OBJECT]},
            "metrics": {"anyOf": [{"type": "array", "items": metric}, _OBJECT]},
            "jit_compile": _BOOL,
        },
    )
    fit = _object(FIT_KEYS, {**_FIT_VALUES, "validation": _split(FIT_KEYS["validation"])})
    train = _object(
        TRAIN_KEYS,
        {
            "data": data,
            "compile": compile_,
            "fit": fit,
            "callbacks": {"type": "array", "items": callback},
            "fine_tune": _object(
                FINE_TUNE_KEYS,
                {
                    "unfreeze": {"type": "string"},
                    "layers": _POSITIVE,
                    "from_layer": {"type": "string"},
                    "learning_rate": {"type": "number", "exclusiveMinimum": 0},
                    "epochs": _POSITIVE,
                },
            ),
            "distribute": {
                "anyOf": [
                    {"enum": list(STRATEGIES)},
                    _object(
                        DISTRIBUTE_KEYS,
                        {
                            "strategy": {"enum": list(STRATEGIES)},
                            "cpu_devices": _POSITIVE,
                            "timeout": {"type": "number", "exclusiveMinimum": 0},
                            "tpu": {"type": "string"},
                        },
                    ),
                ]
            },
            "precision": {"enum": list(PRECISIONS)},
        },
    )
    return train, {"train_source": _source()}
