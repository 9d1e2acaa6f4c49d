"""Layer registry: every Keras layer by name (from a catalog, without importing
TensorFlow) plus the classes of plugin modules the user names with --plugin."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from kgraph_cli.errors import Location, SpecError, UsageError

CATALOG_PATH = Path(__file__).parent / "catalog" / "keras_layers.json"
PLUGIN_FILE = "--plugin"


@dataclass(frozen=True)
class LayerInfo:
    name: str
    params: frozenset[str]
    required: frozenset[str]
    wraps_layer: bool
    doc: str = ""
    adapts: bool = False  # has adapt(): learns its state from data
    # None for Keras's own layers; the class itself for a plugin layer.
    plugin_class: Any = None


@cache
def keras_catalog() -> dict[str, LayerInfo]:
    """Every layer class of keras.layers, by name."""
    return {name: _info(name, entry) for name, entry in catalog_data()["layers"].items()}


@cache
def keras_internal_layers() -> dict[str, LayerInfo]:
    """Keras's own layer classes outside keras.layers, by their full name
    (`keras.src.applications.convnext.LayerScale`): a spec may name these,
    and no other module path under `keras.`."""
    return {
        name: _info(name, entry) for name, entry in catalog_data()["keras_internal_layers"].items()
    }


@cache
def catalog_data() -> dict[str, Any]:
    return json.loads(CATALOG_PATH.read_text())


def catalog_keras_version() -> str:
    return catalog_data()["keras_version"]


# How Python code spells Keras's layer module; a spec names the class alone.
KERAS_MODULES = frozenset(
    f"{root}{sub}"
    for root in ("keras", "tf.keras", "tensorflow.keras", "tensorflow.python.keras")
    for sub in ("", ".layers")
)


def keras_module_prefix(name: str) -> tuple[str, str] | None:
    """`tf.keras.layers.Dense` -> ("tf.keras.layers", "Dense"): a layer type
    written the way Python imports it; None for any other name."""
    module, dot, short = name.rpartition(".")
    if dot and module in KERAS_MODULES and short:
        return module, short
    return None


@dataclass(frozen=True)
class KerasObjects:
    """The optimizers (losses, metrics, callbacks, schedules) a spec may name."""

    classes: dict[str, LayerInfo]
    names: frozenset[str]  # lower-case aliases such as "rmsprop" or "mse"


@cache
def keras_objects(kind: str) -> KerasObjects:
    entry = catalog_data()[kind]
    classes = {name: _info(name, info) for name, info in entry["classes"].items()}
    return KerasObjects(classes, frozenset(entry["names"]))


def string_identifiers(kind: str) -> frozenset[str]:
    """Names Keras accepts as a string for `kind` ("activations", "initializers")."""
    return frozenset(catalog_data()[kind])


def _info(name: str, entry: dict[str, Any], plugin_class: Any = None) -> LayerInfo:
    return LayerInfo(
        name,
        frozenset(entry["params"]),
        frozenset(entry["required"]),
        entry["wraps_layer"],
        entry.get("doc", ""),
        entry.get("adapts", False),
        plugin_class,
    )


class LayerRegistry:
    """Layer types a spec may use: Keras's, then `module.Class` from plugins."""

    def __init__(self, plugins: list[str] | tuple[str, ...] = ()):
        self.layers: dict[str, LayerInfo] = {**keras_catalog(), **keras_internal_layers()}
        self.plugin_modules: dict[str, str] = {}  # module name -> what the user passed
        for plugin in plugins:
            self._load_plugin(plugin)

    def get(self, name: str) -> LayerInfo | None:
        return self.layers.get(name)

    def names(self) -> list[str]:
        return list(self.layers)

    def layer_class(self, name: str) -> type:
        """The class behind a layer type name (imports Keras)."""
        info = self.layers[name]
        if info.plugin_class is not None:
            return info.plugin_class
        from kgraph_cli.tf import import_keras

        keras = import_keras()
        if name in keras_internal_layers():  # a module of the installed Keras: safe
            module, _, short = name.rpartition(".")
            return getattr(importlib.import_module(module), short)
        return getattr(keras.layers, name)

    def _load_plugin(self, plugin: str) -> None:
        from kgraph_cli.keras_classes import describe_class
        from kgraph_cli.tf import import_keras

        keras = import_keras()
        module = _import_plugin(plugin)
        short = module.__name__.rsplit(".", 1)[-1]
        self.plugin_modules[short] = plugin
        for attr, obj in vars(module).items():
            if (
                isinstance(obj, type)
                and issubclass(obj, keras.layers.Layer)
                and obj.__module__ == module.__name__
            ):
                name = f"{short}.{attr}"
                self.layers[name] = _info(name, describe_class(obj), obj)
                # So that Keras finds the class again when it loads a saved model.
                keras.saving.get_custom_objects()[attr] = obj


def _import_plugin(plugin: str) -> Any:
    """Import a plugin from a .py file or by module name; errors are diagnostics."""
    loc = Location(PLUGIN_FILE)
    try:
        if plugin.endswith(".py") or Path(plugin).is_file():
            path = Path(plugin)
            if not path.is_file():
                raise UsageError(
                    f"plugin file '{plugin}' does not exist", "check the --plugin path"
                )
            name = path.stem
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise SpecError.at("plugin", f"cannot import '{plugin}'", loc)
            module = importlib.util.module_from_spec(spec)
            # Registered so that Keras can find the classes again when it
            # deserializes a saved model.
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
        # Like `python -m`: a module in the current directory is importable.
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        return importlib.import_module(plugin)
    except (SpecError, UsageError):
        raise
    except ModuleNotFoundError as exc:
        raise SpecError.at(
            "plugin",
            f"plugin '{plugin}': no module named '{exc.name}'",
            loc,
            hint="pass a .py file path, or a module importable from the current directory",
        ) from None
    except Exception as exc:  # the plugin's own code failed
        raise SpecError.at(
            "plugin",
            f"plugin '{plugin}' failed to import: {type(exc).__name__}: {exc}",
            loc,
            hint="run it with python to see the traceback, or use --debug",
        ) from exc
