"""Write `catalog/keras_layers.json`: every `keras.layers` class and its arguments.

The catalog lets structural validation check layer types and constructor
arguments (with did-you-mean) without importing TensorFlow. Run `make catalog`
after upgrading Keras; a test fails while the catalog and Keras disagree.
"""

from __future__ import annotations

import json
from typing import Any

from kgraph_cli.keras_classes import describe_class
from kgraph_cli.keras_graph import string_objects
from kgraph_cli.layers import CATALOG_PATH


def build_catalog() -> dict[str, Any]:
    from kgraph_cli.tf import import_keras

    keras = import_keras()

    layers: dict[str, Any] = {}
    for name in sorted(dir(keras.layers)):
        obj = getattr(keras.layers, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, keras.layers.Layer)
            and name not in ("Layer", "InputLayer", "Input")
        ):
            layers[name] = describe_class(obj)
    return {
        "keras_version": keras.__version__,
        "layers": layers,
        "activations": _string_identifiers("activations"),
        "initializers": _string_identifiers("initializers"),
        # What the `train:` section may name.
        "optimizers": _classes(
            keras.optimizers, keras.optimizers.Optimizer, _string_identifiers("optimizers")
        ),
        "losses": _classes(keras.losses, keras.losses.Loss, _string_identifiers("losses")),
        "metrics": _classes(
            keras.metrics,
            keras.metrics.Metric,
            # compile() also resolves these by the model's loss and output shape.
            sorted({*_string_identifiers("metrics"), "acc", "accuracy", "ce", "crossentropy"}),
        ),
        "callbacks": _classes(keras.callbacks, keras.callbacks.Callback, []),
        "schedules": _classes(
            keras.optimizers.schedules, keras.optimizers.schedules.LearningRateSchedule, []
        ),
    }


def _classes(module: Any, base: type, names: list[str]) -> dict[str, Any]:
    """Public subclasses of `base` in `module`, and the strings `get()` accepts."""
    abstract = {
        base.__name__,
        "CallbackList",
        "History",
        "ProgbarLogger",
        "MeanMetricWrapper",
        "LossFunctionWrapper",
        "OptimizerMap",
    }
    classes = {
        name: describe_class(obj)
        for name in sorted(dir(module))
        if isinstance(obj := getattr(module, name), type)
        and issubclass(obj, base)
        and name not in abstract
    }
    return {"classes": classes, "names": names}


def _string_identifiers(kind: str) -> list[str]:
    """Names `keras.<kind>.get()` accepts as a string (`activation: relu`)."""
    abstract = {"Initializer", "Loss", "Metric", "Optimizer", "optimizer", "metric"}
    return sorted(name for name in string_objects(kind) if name not in abstract)


def main() -> None:
    from kgraph_cli.tf import quiet_tensorflow

    quiet_tensorflow(debug=False)
    catalog = build_catalog()
    CATALOG_PATH.write_text(json.dumps(catalog, indent=1, sort_keys=True) + "\n")
    print(
        f"wrote {CATALOG_PATH} ({len(catalog['layers'])} layers, Keras {catalog['keras_version']})"
    )


if __name__ == "__main__":
    main()
