"""Legacy HDF5 model files (Keras 2's, and Keras 3's legacy `.h5`), made
loadable by Keras 3: the second of the two modules that read Keras internals
(`keras.src.legacy.saving`...), beside `keras_graph.py`.

The config is mended before Keras deserializes it: Keras 2's TFOpLambda layers
(`x + 3.0`) become keras.ops operations, `/` in layer names becomes `_`,
arguments Keras 3 no longer takes go, nested-model calls are renumbered.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from kgraph_cli.keras_graph import application_layer_classes

# Keras 2's TensorFlow-function layers (TFOpLambda, `x + 3.0` in a Keras 2
# functional model) that are keras.ops operations of Keras 3: the function's
# name in the layer's config -> the operation class, of one tensor `x` and,
# for the binary ones, `y`.
_TF_BINARY_OPS = {
    "__operators__.add": "Add",
    "math.add": "Add",
    "math.subtract": "Subtract",
    "math.multiply": "Multiply",
    "math.truediv": "TrueDivide",
    "math.divide": "Divide",
    "math.maximum": "Maximum",
    "math.minimum": "Minimum",
    "math.pow": "Power",
}
_TF_UNARY_OPS = {
    "nn.relu": "Relu",
    "nn.relu6": "Relu6",
    "math.sigmoid": "Sigmoid",
    "nn.sigmoid": "Sigmoid",
    "math.tanh": "Tanh",
    "nn.silu": "Silu",
    "nn.swish": "Silu",
    "math.exp": "Exp",
    "math.sqrt": "Sqrt",
    "math.square": "Square",
    "math.negative": "Negative",
    "math.abs": "Absolute",
}
# Arguments of Keras 2 layer configs that Keras 3's classes no longer take,
# with the value that makes leaving them out change nothing.
_KERAS2_ONLY_ARGUMENTS = {"groups": 1}
# ... and those Keras 2's classes took and never used (a separable
# convolution has no `kernel`: its depthwise and pointwise ones).
_KERAS2_UNUSED_ARGUMENTS = {
    "SeparableConv1D": ("kernel_initializer", "kernel_regularizer", "kernel_constraint"),
    "SeparableConv2D": ("kernel_initializer", "kernel_regularizer", "kernel_constraint"),
}
_MODEL_CLASSES = ("Functional", "Model", "Sequential")


class LegacyModelError(Exception):
    """A legacy .h5 model file whose config this adapter cannot make loadable."""


def load_legacy_h5(path: Any, safe_mode: bool = True) -> tuple[Any, list[str]]:
    """A model from a legacy HDF5 file (`model.save("x.h5")`, Keras 2's and
    Keras 3's), and notes on what had to change for Keras 3 to load it.

    Keras 3's own loader (`keras.saving.load_model`) reads these configs as
    Keras 2 wrote them, and so fails on: keras.ops operations saved by Keras 3
    (the file drops their module, and `Add` then reads as the layer), Keras 2's
    TensorFlow-function layers (TFOpLambda: made the keras.ops operations they
    are where there is one), layer names with `/` (Keras 2's applications:
    `conv1/conv`; made `conv1_conv`), Keras 2 arguments that Keras 3 dropped
    (`groups: 1` of DepthwiseConv2D), and the layer classes of
    keras.applications that keras.layers does not export (ConvNeXt's
    LayerScale). The weights are then loaded by layer order, as Keras does."""
    import h5py
    from keras.src.legacy.saving import json_utils, legacy_h5_format, saving_options, saving_utils
    from keras.src.saving import object_registration, serialization_lib

    notes: list[str] = []
    with h5py.File(path, "r") as handle:
        text = handle.attrs.get("model_config")
        if text is None:
            raise ValueError(f"No model config found in the file at {path}.")
        if hasattr(text, "decode"):
            text = text.decode("utf-8")
        config = json_utils.decode(text)
        version = handle.attrs.get("keras_version", "")
        version = version.decode() if hasattr(version, "decode") else str(version)
        renamed: dict[str, str] = {}
        converted: dict[str, str] = {}
        _legacy_fix_model(config, renamed, converted, keras2=not version.startswith("3."))
        if renamed:
            notes.append(
                f"{len(renamed)} layer names with '/' (which Keras 3 does not allow) "
                f"had '/' made '_' to load: {_some(renamed)}"
            )
        if converted:
            notes.append(
                f"{len(converted)} TensorFlow-function layers of Keras 2 (TFOpLambda) are "
                f"the keras.ops operations they compute, named as identifiers: {_some(converted)}"
            )
        custom = {
            name.rpartition(".")[2]: cls
            for name, cls in application_layer_classes().items()
            if _is_layer_class(cls)
        }
        custom.update(object_registration.GLOBAL_CUSTOM_OBJECTS)  # plugins' classes
        with (
            saving_options.keras_option_scope(use_legacy_config=True),
            serialization_lib.SafeModeScope(safe_mode),
        ):
            model = saving_utils.model_from_config(config, custom_objects=custom)
            weights = handle.get("model_weights")
            if weights is not None:
                legacy_h5_format.load_weights_from_hdf5_group(weights, model)
    return model, notes


def _some(renamed: dict[str, str]) -> str:
    """`'a/b' -> 'a_b', ... and 3 more`."""
    shown = ", ".join(f"'{old}' -> '{new}'" for old, new in list(renamed.items())[:2])
    return shown + (f" and {len(renamed) - 2} more" if len(renamed) > 2 else "")


def _is_layer_class(cls: type) -> bool:
    from keras.src.layers.layer import Layer

    return issubclass(cls, Layer)


_OP_CLASSES: dict[str, type] = {}


def _op_classes() -> dict[str, type]:
    """keras.ops operation classes by class name (names two modules share left out)."""
    if _OP_CLASSES:
        return _OP_CLASSES
    from keras.src.layers.layer import Layer
    from keras.src.ops.operation import Operation

    found: dict[str, type] = {}
    clashes: set[str] = set()
    for module_name in ("numpy", "nn", "math", "core", "image", "linalg"):
        module = importlib.import_module(f"keras.src.ops.{module_name}")
        for name, obj in vars(module).items():
            if (
                isinstance(obj, type)
                and issubclass(obj, Operation)
                and not issubclass(obj, Layer)
                and obj.__module__ == module.__name__
            ):
                if name in found and found[name] is not obj:
                    clashes.add(name)
                found[name] = obj
    _OP_CLASSES.update({name: cls for name, cls in found.items() if name not in clashes})
    return _OP_CLASSES


def _legacy_fix_model(
    config: dict, renamed_anywhere: dict[str, str], converted: dict[str, str], keras2: bool
) -> None:
    """Make a legacy model config (a dict of class_name/config) loadable, in
    place, nested models included; the layers renamed for their `/` (old ->
    new) are added to `renamed_anywhere`, the TFOpLambda layers made keras.ops
    operations to `converted` (whose names, `tf.math.multiply_3`, become
    identifiers: `tf_math_multiply_3`). `keras2`: written by Keras 2, which
    counts the calls of a nested model from 1 (its call 0 is the one it makes
    of itself, which Keras 3 models do not make)."""
    if config.get("class_name") not in _MODEL_CLASSES:
        return
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        return
    ops = _op_classes()
    names = {_legacy_name(layer) for layer in layers}
    renamed: dict[str, str] = {}
    for layer in layers:
        name = _legacy_name(layer)
        tf_op = layer.get("class_name") == "TFOpLambda"
        if isinstance(name, str) and ("/" in name or tf_op):
            base = re.sub(r"[\W_]+", "_", name).strip("_") if tf_op else name.replace("/", "_")
            new = base
            number = 1
            while new in names:
                number += 1
                new = f"{base}_{number}"
            names.add(new)
            renamed[name] = new
            (converted if tf_op else renamed_anywhere)[name] = new
    shifted = set()
    for layer in layers:
        _legacy_fix_model(layer, renamed_anywhere, converted, keras2)
        _legacy_fix_layer(layer, ops)
        nested = layer.get("config", {}).get("layers") if _is_model_entry(layer) else None
        if keras2 and nested and nested[0].get("class_name") == "InputLayer":
            shifted.add(_legacy_name(layer))
    if not renamed and not shifted:
        return
    for layer in layers:
        if layer.get("name") in renamed:
            layer["name"] = renamed[layer["name"]]
        if layer.get("config", {}).get("name") in renamed:
            layer["config"]["name"] = renamed[layer["config"]["name"]]
        if "inbound_nodes" in layer:
            layer["inbound_nodes"] = _fixed_refs(layer["inbound_nodes"], renamed, shifted)
    for key in ("input_layers", "output_layers"):
        if key in inner:
            inner[key] = _fixed_refs(inner[key], renamed, shifted)


def _legacy_name(layer: dict) -> Any:
    return layer.get("name") or layer.get("config", {}).get("name")


def _is_model_entry(layer: dict) -> bool:
    return layer.get("class_name") in _MODEL_CLASSES and isinstance(layer.get("config"), dict)


def _fixed_refs(value: Any, renamed: dict[str, str], shifted: set[str]) -> Any:
    """Node data whose references to layers (`[name, node, tensor, ...]`, in
    legacy node lists and in Keras 3 `keras_history` entries alike) name the
    renamed layers by their new names, and the calls of `shifted` nested models
    from 0."""
    if isinstance(value, list):
        if (
            len(value) >= 3
            and isinstance(value[0], str)
            and isinstance(value[1], int)
            and isinstance(value[2], int)
        ):
            node = value[1] - 1 if value[0] in shifted and value[1] > 0 else value[1]
            rest = [_fixed_refs(v, renamed, shifted) for v in value[3:]]
            return [renamed.get(value[0], value[0]), node, value[2], *rest]
        return [_fixed_refs(v, renamed, shifted) for v in value]
    if isinstance(value, dict):
        return {k: _fixed_refs(v, renamed, shifted) for k, v in value.items()}
    return value


def _legacy_fix_layer(layer: dict, ops: dict[str, type]) -> None:
    """One layer entry of a legacy config, made loadable in place."""
    class_name = layer.get("class_name")
    config = layer.get("config")
    if not isinstance(config, dict) or "module" in layer:
        return
    if class_name == "TFOpLambda":
        _legacy_tf_op(layer, ops)
        return
    if class_name in ops and "trainable" not in config:
        # A keras.ops operation saved by Keras 3: its config has only its
        # constructor's arguments, a layer's always `trainable` and `dtype`.
        cls = ops[class_name]
        layer["module"] = cls.__module__
        layer["registered_name"] = class_name
        return
    import keras.src.layers as layers_module

    cls = getattr(layers_module, class_name, None) if isinstance(class_name, str) else None
    if isinstance(cls, type):
        import inspect

        try:
            params = set(inspect.signature(cls.__init__).parameters)
        except (TypeError, ValueError):
            return
        for key, neutral in _KERAS2_ONLY_ARGUMENTS.items():
            if key in config and key not in params and config[key] == neutral:
                del config[key]
        for key in _KERAS2_UNUSED_ARGUMENTS.get(class_name, ()):
            if key not in params:
                config.pop(key, None)


def _legacy_tf_op(layer: dict, ops: dict[str, type]) -> None:
    """A Keras 2 TFOpLambda entry as the keras.ops operation it is, in Keras 3's
    format; LegacyModelError for a TensorFlow function without one."""
    function = layer["config"].get("function")
    op_name = _TF_BINARY_OPS.get(function) or _TF_UNARY_OPS.get(function)
    cls = ops.get(op_name) if op_name else None
    if cls is None:
        raise LegacyModelError(
            f"layer '{layer.get('name')}' is Keras 2's TensorFlow function `tf.{function}` "
            "(TFOpLambda), which has no keras.ops operation kgraph knows"
        )
    nodes = []
    for node in layer.get("inbound_nodes", []):
        # Keras 2 writes such a call as `[layer, node, tensor, kwargs]` for its
        # one positional tensor (some versions nest it in a list).
        if node and isinstance(node[0], list) and len(node) == 1:
            node = node[0]
        if not (isinstance(node, list) and len(node) == 4 and isinstance(node[3], dict)):
            raise LegacyModelError(
                f"layer '{layer.get('name')}' (TFOpLambda `tf.{function}`) has a call "
                "kgraph cannot read"
            )
        kwargs = {k: v for k, v in node[3].items() if k != "name" or v is not None}
        kwargs.pop("name", None)
        args = [_history_tensor(node[:3])]
        if function in _TF_BINARY_OPS:
            if "y" not in kwargs:
                raise LegacyModelError(
                    f"layer '{layer.get('name')}' (TFOpLambda `tf.{function}`) has no `y`"
                )
            y = kwargs.pop("y")
            args.append(_history_tensor(y) if _is_history(y) else y)
        if kwargs:
            raise LegacyModelError(
                f"layer '{layer.get('name')}' (TFOpLambda `tf.{function}`) is called with "
                f"{sorted(kwargs)}, which kgraph cannot read"
            )
        nodes.append({"args": args, "kwargs": {}})
    name = layer.get("name") or layer["config"].get("name")
    layer.clear()
    layer.update(
        {
            "module": cls.__module__,
            "class_name": cls.__name__,
            "config": {"name": name},
            "registered_name": cls.__name__,
            "name": name,
            "inbound_nodes": nodes,
        }
    )


def _is_history(value: Any) -> bool:
    """A tensor in a Keras 2 call's keyword arguments: `[layer, node, tensor]`."""
    return (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and all(isinstance(v, int) for v in value[1:])
    )


def _history_tensor(history: list) -> dict[str, Any]:
    """A reference to a layer's output as Keras 3 configs write it (its shape
    and dtype are stand-ins: loading takes the tensor the layer made)."""
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [], "dtype": "float32", "keras_history": list(history[:3])},
    }
