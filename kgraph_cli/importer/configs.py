"""Layer configs -> the spec values that rebuild them (the config minimiser).

A layer's `get_config()` without what the spec would not change: the name
(the node's key), and every value equal to the one a freshly constructed
layer of the class has; the arguments left are checked to give back the
original's configuration. Keras object configs become `{type: X, ...}`, or
the plain string Keras accepts ("glorot_uniform") when that means the same.
What a class's constructor takes comes from the layer registry (the catalog
`keras_classes.describe_class` makes); how a wrapper's layer is written is
the graph walk's (`WrappedLayer`).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kgraph_cli.importer.result import ModelImportError
from kgraph_cli.keras_classes import LAYER_ARGUMENTS, constructor_defaults
from kgraph_cli.keras_graph import string_objects
from kgraph_cli.layers import keras_internal_layers

if TYPE_CHECKING:
    from kgraph_cli.layers import LayerInfo, LayerRegistry

_MISSING = object()
# The kinds of Keras objects a layer's constructor reads with `keras.<kind>.get`.
_OBJECT_KINDS = ("initializers", "regularizers", "constraints", "activations")

# How a wrapper's `layer:` / `backward_layer:` is written: (wrapper, key, that
# argument's config, the wrapper's default config or None) -> its spec value,
# or None to leave the argument out.
WrappedLayer = Callable[[Any, str, Any, "dict[str, Any] | None"], Any]


class ConfigMinimiser:
    """The arguments a spec writes for a layer: its type, and those that differ
    from what the layer would have anyway."""

    def __init__(self, keras: Any, registry: LayerRegistry, wrapped: WrappedLayer) -> None:
        self.keras = keras
        self.registry = registry
        self.wrapped = wrapped
        self._default_configs: dict[str, Any] = {}
        self._bodies: dict[str, dict[str, Any]] = {}

    def layer_body(self, layer: Any, where: str) -> dict[str, Any]:
        """`type:` and the arguments that differ from the defaults: those of a
        layer of the same class made with only the required arguments."""
        type_name = self._layer_type(layer, where)
        info = self.registry.get(type_name)
        config = layer.get_config()
        wraps = any(k in config for k in LAYER_ARGUMENTS)
        # Layers configured alike (DenseNet's 120 BatchNormalizations) are worked out once.
        cache_key = None if wraps else f"{class_path(type(layer))}:{_json_key(config, 'name')}"
        if cache_key in self._bodies:
            return copy.deepcopy(self._bodies[cache_key])
        body = self._new_layer_body(layer, type_name, info, config, where)
        if cache_key is not None:
            self._bodies[cache_key] = copy.deepcopy(body)
        return body

    def _layer_type(self, layer: Any, where: str) -> str:
        keras = self.keras
        cls = type(layer)
        if cls is keras.layers.Lambda:
            raise ModelImportError(
                f"layer '{layer.name}' ({where}) is a Lambda layer: its Python function "
                "cannot be written in a spec",
                "replace it by a Keras layer, or by a custom layer class loaded with --plugin",
            )
        if getattr(keras.layers, cls.__name__, None) is cls and self.registry.get(cls.__name__):
            return cls.__name__
        for name, info in self.registry.layers.items():
            plugin = info.plugin_class
            # A plugin file imported again makes new class objects: match by name too.
            if plugin is cls or (
                plugin is not None
                and (plugin.__module__, plugin.__qualname__) == (cls.__module__, cls.__qualname__)
            ):
                return name
        # Keras's own classes outside keras.layers (ConvNeXt's LayerScale), by module path.
        internal = class_path(cls)
        if internal in keras_internal_layers() and self.registry.layer_class(internal) is cls:
            return internal
        if cls.__module__.startswith("keras."):
            raise ModelImportError(
                f"layer '{layer.name}' ({where}) is a {cls.__name__}, which is not a class "
                "of keras.layers",
                "a spec's layer types are the classes of keras.layers and plugin classes",
            )
        module = cls.__module__.rsplit(".", 1)[-1]
        raise ModelImportError(
            f"layer '{layer.name}' ({where}) is a custom layer, {class_path(cls)}",
            f"pass --plugin with the module that defines it (the spec names it "
            f"{module}.{cls.__name__})",
        )

    def _new_layer_body(
        self, layer: Any, type_name: str, info: LayerInfo, config: dict, where: str
    ) -> dict[str, Any]:
        defaults = self._default_config(layer, config, info)
        signature_defaults = constructor_defaults(type(layer))
        body: dict[str, Any] = {"type": type_name}
        for key in _ordered(config, config, info):
            value = config[key]
            if key == "name":
                continue
            if key in LAYER_ARGUMENTS and key in info.params:
                sub = self.wrapped(layer, key, value, defaults)
                if sub is not None:
                    body[key] = sub
                continue
            if key in info.required:
                pass  # always written, even when it happens to equal a default
            elif defaults is not None and key in defaults:
                if same(value, defaults[key]):
                    continue
            elif key in signature_defaults and same(value, signature_defaults[key]):
                continue
            if key == "trainable" and value is True:
                continue
            if key not in info.params:
                if value is None or value == {} or value == []:
                    continue
                raise ModelImportError(
                    f"layer '{layer.name}' ({where}): its config has '{key}', which "
                    f"{type_name}() does not take",
                    "the layer's get_config() and its constructor disagree",
                )
            try:
                body[key] = self.value(value, key)
            except ModelImportError as exc:
                raise ModelImportError(f"layer '{layer.name}' ({where}): {exc}", exc.hint) from None
        return self._complete(layer, config, body, info)

    def _complete(
        self, layer: Any, config: dict, body: dict[str, Any], info: LayerInfo
    ) -> dict[str, Any]:
        """Check the arguments against the layer they make, whose config must be
        the original's: put back those whose default depends on others, drop
        those the others imply (MaxPooling2D's strides are its pool_size unless
        given), and write `[3, 3]` as `3` where Keras reads both alike."""
        from kgraph_cli.spec.values import keras_config

        cls = type(layer)

        def differences(candidate: dict[str, Any]) -> list[str] | None:
            kwargs = {
                k: copy.deepcopy(config[k]) if k in LAYER_ARGUMENTS else keras_config(v)
                for k, v in candidate.items()
                if k != "type"
            }
            try:
                made = _construct(cls, kwargs).get_config()
            except Exception:  # cannot be checked
                return None
            return [
                k
                for k in config
                if k != "name"
                and k not in LAYER_ARGUMENTS
                and k in info.params
                and not same(config[k], made.get(k, _MISSING))
            ]

        missing = differences(body)
        for _ in range(3):
            if not missing:
                break
            for k in missing:
                # Already written but not enough (a shortened Keras object): in full.
                body[k] = self.value(config[k], k, shorten=k not in body)
            body = _ordered(body, config, info)
            missing = differences(body)
        if missing != []:  # cannot be checked, or does not settle: keep it all
            return body
        for key in reversed(list(body)):
            if key == "type" or key in info.required or key in LAYER_ARGUMENTS:
                continue
            trial = {k: v for k, v in body.items() if k != key}
            if differences(trial) == []:
                body = trial
        for key, value in list(body.items()):
            short = _scalar(value)
            if short is not None and differences({**body, key: short}) == []:
                body[key] = short
        return body

    def forced_by_wrapper(self, wrapper: Any, body: dict[str, Any]) -> list[str]:
        """Arguments of a wrapped layer that the wrapper sets by itself
        (Bidirectional: zero_output_for_mask follows return_sequences)."""
        try:
            config = wrapper.get_config()
        except Exception:
            return []
        config.pop("backward_layer", None)
        inner = config["layer"]["config"]
        info = self.registry.get(body["type"])
        forced: list[str] = []
        for arg in body:
            if arg == "type" or arg in info.required or arg not in inner:
                continue
            trial = copy.deepcopy(config)
            trial["layer"]["config"] = {
                k: v for k, v in inner.items() if k != arg and k not in forced
            }
            try:
                made = type(wrapper).from_config(trial)
                got = (getattr(made, "forward_layer", None) or made.layer).get_config()
            except Exception:  # the argument matters to the wrapper
                continue
            if same(without_names(got), without_names(inner)):
                forced.append(arg)
        return forced

    def _default_config(self, layer: Any, config: dict, info: LayerInfo) -> dict | None:
        """The config of a layer of the same class made with only the required
        arguments (and a wrapper's layer), or None when it cannot be made."""
        cls = type(layer)
        base = {k: copy.deepcopy(config[k]) for k in info.required if k in config}
        if "layer" in config and "layer" in info.params:
            base["layer"] = copy.deepcopy(config["layer"])
        key = f"{class_path(cls)}:{_json_key(base)}"
        if key not in self._default_configs:
            try:
                self._default_configs[key] = _construct(cls, base).get_config()
            except Exception:  # some classes need more than their required arguments
                self._default_configs[key] = None
        return self._default_configs[key]

    def value(self, value: Any, key: str = "", shorten: bool = True) -> Any:
        """A config value as spec YAML data."""
        import numpy as np

        if isinstance(value, dict):
            if "class_name" in value and "config" in value:
                return self._keras_object(value, key, shorten)
            if "type" in value:
                raise ModelImportError(
                    f"argument '{key}' is a mapping with a `type` key, which a spec reads "
                    "as a Keras object"
                )
            return {str(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise ModelImportError(
            f"argument '{key}' has a value a spec cannot hold: {type(value).__name__}"
        )

    def _keras_object(self, value: dict, key: str, shorten: bool = True) -> Any:
        """{class_name, config} -> a string Keras accepts, or {type: X, ...}."""
        class_name = value["class_name"]
        config = value.get("config") or {}
        if class_name in ("__numpy__", "__tensor__"):
            return self.value(config.get("value"), key)
        if "DTypePolicy" in class_name:
            return config.get("name")
        try:
            obj = self.keras.saving.deserialize_keras_object(value)
        except Exception:
            obj = None
        if isinstance(obj, self.keras.layers.Layer):
            raise ModelImportError(
                f"argument '{key}' is a layer ({class_name}): a spec passes layers only as "
                "a wrapper's `layer:` or `backward_layer:`",
                "use the layer that wraps it (keras.layers.LSTM rather than RNN(LSTMCell))",
            )
        defaults: dict = {}
        if obj is not None and shorten:
            try:
                defaults = type(obj)().get_config()
            except Exception:
                defaults = {}
        args = {
            k: self.value(v, k)
            for k, v in config.items()
            if k not in defaults or not same(v, defaults[k])
        }
        module = value.get("module") or ""
        if not args and obj is not None and shorten:
            alias = _string_alias(type(obj), module)
            if alias and self._reads_back(alias, obj, module):
                return alias
        short = {"type": class_name, **args}
        if obj is not None and shorten and not self._reads_back(short, obj, module):
            # Keras cannot make it from its non-default arguments alone
            # (Constant's from_config needs its `value`): every argument.
            return {"type": class_name, **{k: self.value(v, k) for k, v in config.items()}}
        return short

    def _reads_back(self, short: Any, obj: Any, module: str) -> bool:
        """Whether Keras reads the spec value `short` (a string or `{type: ...}`)
        back as `obj`, as a layer's constructor does (`keras.initializers.get`);
        True when that cannot be checked (not an initializer, regularizer,
        constraint or activation)."""
        from kgraph_cli.spec.values import keras_config

        kind = module.rsplit(".", 1)[-1]
        getter = getattr(getattr(self.keras, kind, None), "get", None)
        if kind not in _OBJECT_KINDS or getter is None:
            return True
        try:
            made = getter(keras_config(short))
        except Exception:
            return False
        if type(made) is not type(obj):
            return made is obj
        if not hasattr(obj, "get_config"):
            return True
        try:
            return same(made.get_config(), obj.get_config())
        except Exception:
            return False


# -- comparing configs ---------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal as configs: tuples and lists alike, numpy values by value."""
    return _canonical(a) == _canonical(b)


def _canonical(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return _canonical(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def without_names(value: Any) -> Any:
    """A config without its `name` keys, at any depth (a wrapped layer's too)."""
    if isinstance(value, dict):
        return {k: without_names(v) for k, v in value.items() if k != "name"}
    if isinstance(value, (list, tuple)):
        return [without_names(v) for v in value]
    return value


def _json_key(value: Any, without: str = "") -> str:
    if without and isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != without}
    return json.dumps(_canonical(value), sort_keys=True, default=repr)


# -- Keras classes ---------------------------------------------------------------


def class_path(cls: type) -> str:
    """`module.QualName` of a class, as messages and cache keys name it."""
    return f"{cls.__module__}.{cls.__qualname__}"


@functools.cache
def _string_alias(cls: type, module: str) -> str | None:
    """The snake_case name Keras resolves to `cls` (glorot_uniform, zeros, l2)."""
    kind = module.rsplit(".", 1)[-1]
    if kind not in _OBJECT_KINDS:
        return None
    for name, obj in string_objects(kind).items():
        if obj is cls and name == name.lower() and name != cls.__name__:
            return name
    return None


def _construct(cls: type, kwargs: dict[str, Any]) -> Any:
    """A layer from arguments as the builder passes them; a wrapper from its
    config, so that its `layer` (a config here) is deserialized."""
    if any(k in kwargs for k in LAYER_ARGUMENTS):
        return cls.from_config(kwargs)
    return cls(**kwargs)


def _ordered(body: dict[str, Any], config: dict, info: LayerInfo) -> dict[str, Any]:
    """`type`, then the required arguments, as people write them (Dense(64,
    activation=...)), then the others, each group in the config's order."""
    keys = [k for k in config if k in info.required] + [k for k in config if k not in info.required]
    head = {"type": body["type"]} if "type" in body else {}
    return {**head, **{k: body[k] for k in keys if k in body}}


def _scalar(value: Any) -> int | None:
    """The one int of a list of equal ints ([3, 3], [[1, 1], [1, 1]]), else None."""
    if not isinstance(value, list) or not value:
        return None
    leaves: list[Any] = []
    stack = list(value)
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            leaves.append(item)
    first = leaves[0] if leaves else None
    if type(first) is not int or any(type(v) is not int or v != first for v in leaves):
        return None
    return first
