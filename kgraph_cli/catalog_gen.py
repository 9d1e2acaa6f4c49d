"""Write `catalog/keras_layers.json`: every `keras.layers` class and its arguments.

The catalog lets structural validation check layer types and constructor
arguments (with did-you-mean) without importing TensorFlow. Run `make catalog`
after upgrading Keras; a test fails while the catalog and Keras disagree.
"""

from __future__ import annotations

import inspect
import json
import types
from typing import Any

from kgraph_cli.keras_classes import describe_class, describe_function
from kgraph_cli.keras_graph import application_layer_classes, string_objects
from kgraph_cli.layers import CATALOG_PATH
from kgraph_cli.ops_catalog import CALLABLE_PARAMS


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
        "keras_internal_layers": _internal_layers(keras),
        "ops": _ops(keras.ops),
        "applications": _applications(keras.applications),
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


def _internal_layers(keras: Any) -> dict[str, Any]:
    """Keras's own layer classes that keras.layers does not export (ConvNeXt's
    LayerScale, InceptionResNetV2's CustomScaleLayer...), by module.Class."""
    exported = {obj for obj in vars(keras.layers).values() if isinstance(obj, type)}
    return {
        name: describe_class(cls)
        for name, cls in application_layer_classes().items()
        if issubclass(cls, keras.layers.Layer) and cls not in exported
    }


def _applications(applications: Any) -> dict[str, Any]:
    """The keras.applications constructors (ResNet50...) with their arguments
    and defaults, and the module that holds their preprocess_input."""
    found: dict[str, Any] = {}
    for name in sorted(dir(applications)):
        constructor = getattr(applications, name)
        if not name[:1].isupper() or not callable(constructor):
            continue
        signature = inspect.signature(constructor)
        doc = (inspect.getdoc(constructor) or "").strip().splitlines()
        found[name] = {
            "module": constructor.__module__,
            "doc": doc[0] if doc else "",
            "defaults": {
                param.name: param.default
                for param in signature.parameters.values()
                if param.default is not inspect.Parameter.empty
                and isinstance(param.default, (str, int, float, bool, type(None)))
            },
            "params": list(signature.parameters),
        }
    return found


# keras.ops functions that are no graph operation: they give numpy arrays, or
# test what a value is. (`shape`, `ndim`... stay: a node using them is told
# that they give values known when the model is built.)
_NOT_GRAPH_OPS = {"convert_to_numpy", "is_tensor"}


def _ops(ops: Any) -> dict[str, Any]:
    """keras.ops functions by spec name (`add`; `image.resize` for what only a
    sub-module has), without those that take Python callables."""
    found: dict[str, Any] = {}
    modules = [("", ops)] + [
        (f"{name}.", module)
        for name in sorted(dir(ops))
        if isinstance(module := getattr(ops, name), types.ModuleType)
    ]
    seen: set[int] = set()
    for prefix, module in modules:
        for name in sorted(dir(module)):
            function = getattr(module, name)
            if (
                name.startswith("_")
                or isinstance(function, (type, types.ModuleType))
                or not callable(function)
                or id(function) in seen
                or name in _NOT_GRAPH_OPS
            ):
                continue
            seen.add(id(function))
            entry = describe_function(function)
            if any(p["name"] in CALLABLE_PARAMS for p in entry["params"]):
                continue
            found[prefix + name] = entry
    return found


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
