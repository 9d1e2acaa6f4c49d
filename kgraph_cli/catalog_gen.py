"""Write `catalog/keras_layers.json`: every `keras.layers` class and its arguments.

The catalog lets structural validation check layer types and constructor
arguments (with did-you-mean) without importing TensorFlow. Run `make catalog`
after upgrading Keras; a test fails while the catalog and Keras disagree.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).parent / "catalog" / "keras_layers.json"

# Layer.__init__ accepts these through **kwargs but only warns or is legacy.
_LEGACY_KWARGS = {"input_dim", "input_shape", "batch_input_shape", "batch_size", "weights"}
# Constructor arguments that hold another layer (wrappers).
LAYER_ARGUMENTS = ("layer", "backward_layer")


def describe_class(cls: type) -> dict[str, Any]:
    """Constructor arguments of a Keras class, following **kwargs up the MRO."""
    params: dict[str, bool] = {}  # name -> required
    own = True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        signature = inspect.signature(init)
        takes_more = False
        for name, param in signature.parameters.items():
            if name == "self" or name in params or param.kind is param.VAR_POSITIONAL:
                continue
            if param.kind is param.VAR_KEYWORD:
                takes_more = True
                continue
            required = param.default is inspect.Parameter.empty
            # A base class's required argument (RNN's `cell`, BaseConv's
            # `rank`) is one the subclass fills in itself, not the user's.
            if own or not required:
                params[name] = required
        own = False
        if not takes_more:
            break
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    return {
        "params": sorted(params),
        "required": sorted(name for name, required in params.items() if required),
        "wraps_layer": any(name in params for name in LAYER_ARGUMENTS),
        "doc": doc[0] if doc else "",
    }


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
    module = importlib.import_module(f"keras.src.{kind}")
    abstract = {"Initializer", "Loss", "Metric", "Optimizer", "optimizer", "metric"}
    return sorted(name for name in module.ALL_OBJECTS_DICT if name not in abstract)


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
