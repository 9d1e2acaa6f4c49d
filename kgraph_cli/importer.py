"""Keras model -> kgraph spec (`kgraph import`).

The functional graph of a model (a Sequential model: its functional
equivalent) is walked node by node: each call of a layer becomes a spec node,
the first call of a layer a `type:` node and later calls `share:` nodes;
nested functional models become entries of `models:`, called with `model:`.
Layer arguments are the layer's `get_config()` without what the spec would
not change: the name (the node's key), and every value equal to the one a
freshly constructed layer has. Keras object configs become `{type: X, ...}`,
or the plain string Keras accepts ("glorot_uniform") when that means the same.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgraph_cli.errors import KgraphError, SpecError, UsageError
from kgraph_cli.keras_classes import LAYER_ARGUMENTS
from kgraph_cli.rundir import SPEC_SUFFIXES
from kgraph_cli.spec.model import NAME_PATTERN, SPEC_VERSION

WEIGHTS_SUFFIX = ".weights.h5"
# A node line longer than this is written in block style, one key per line.
FLOW_WIDTH = 120
_MISSING = object()


class ModelImportError(KgraphError):
    """A model that a spec cannot describe (a Lambda layer, a subclassed model...)."""


@dataclass
class ImportResult:
    """A spec as plain data, and what the import had to change or could not keep."""

    data: dict[str, Any]
    # Names that are not the Keras names (which are not identifiers).
    renamed: list[Renamed] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # id() of each layer (and nested model) of the imported model -> its node's
    # name, to copy the weights layer by layer.
    layer_names: dict[int, str] = field(default_factory=dict, repr=False)

    def comments(self) -> dict[tuple[str, str], str]:
        """(model key path, name) -> the comment written next to the input or node."""
        return {(r.model, r.name): f"Keras name: {r.keras_name!r}" for r in self.renamed}


@dataclass(frozen=True)
class Renamed:
    model: str  # key path of the model: "" (top level) or "models.NAME"
    name: str  # the input's or node's name in the spec
    keras_name: str

    def to_json(self) -> dict[str, str]:
        return {"model": self.model, "name": self.name, "keras_name": self.keras_name}


# -- public API ------------------------------------------------------------


def model_to_spec(model: Any, plugins: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """A kgraph spec (plain data) that rebuilds `model`'s architecture."""
    return import_keras_model(model, plugins).data


def import_keras_model(model: Any, plugins: list[str] | tuple[str, ...] = ()) -> ImportResult:
    """`model_to_spec` with the renamed nodes and notes."""
    from kgraph_cli.layers import LayerRegistry

    return _Importer(LayerRegistry(plugins)).run(model)


def spec_yaml(data: dict[str, Any], comments: dict[tuple[str, str], str] | None = None) -> str:
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


@dataclass
class FileImport:
    """What `kgraph import` wrote."""

    spec: Path
    weights: Path | None
    layers: int
    params: int
    models: list[str]
    renamed: list[Renamed]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": str(self.spec),
            "weights": str(self.weights) if self.weights else None,
            "layers": self.layers,
            "params": self.params,
            "models": self.models,
            "renamed": [r.to_json() for r in self.renamed],
            "notes": self.notes,
        }


def default_weights_path(spec: Path) -> Path:
    return spec.with_name(spec.stem + WEIGHTS_SUFFIX)


def import_file(
    model_file: Path,
    output: Path,
    weights: Path | None = None,
    force: bool = False,
    plugins: list[str] | tuple[str, ...] = (),
) -> FileImport:
    """Load a model file, write its spec (and weights), check that both rebuild it."""
    from kgraph_cli.layers import LayerRegistry
    from kgraph_cli.persist import ModelFileError, load_keras_model

    _check_outputs(output, weights, force)
    LayerRegistry(plugins)  # before loading: Keras must find the plugins' classes
    try:
        model = load_keras_model(model_file, safe_mode=True)
    except ModelFileError as exc:
        if "Lambda" in str(exc) or "safe_mode" in str(exc):
            raise ModelImportError(
                f"'{model_file}' contains a Lambda layer (Python code): a spec cannot hold code",
                "replace the Lambda by a Keras layer, or by a custom layer class that "
                "`kgraph import --plugin MODULE` can name",
            ) from exc
        raise
    return import_model(model, output, weights, force, plugins, model_file.name)


def import_model(
    model: Any,
    output: Path,
    weights: Path | None = None,
    force: bool = False,
    plugins: list[str] | tuple[str, ...] = (),
    source: str = "",
) -> FileImport:
    """Write the spec of a model (and its weights), after checking that the spec
    builds a model with the same parameters (and that the weights fit it)."""
    from kgraph_cli.fileio import write_text_atomic

    _check_outputs(output, weights, force)
    result = import_keras_model(model, plugins)
    if source:
        result.data = {
            "kgraph": result.data["kgraph"],
            "name": result.data["name"],
            "description": f"Imported by `kgraph import` from {source}.",
            **result.data,
        }
    text = spec_yaml(result.data, result.comments())
    rebuilt = _rebuild(text, output.name, plugins, model)
    if weights is not None:
        _save_weights(model, rebuilt, weights, result.layer_names)
    write_text_atomic(output, text, force=True)
    return FileImport(
        output,
        weights,
        _layer_count(rebuilt),
        int(rebuilt.count_params()),
        list(result.data.get("models") or {}),
        result.renamed,
        result.notes,
    )


def _check_outputs(output: Path, weights: Path | None, force: bool) -> None:
    """Refuse bad names and existing files before any work (usage errors)."""
    from kgraph_cli.fileio import check_writable

    if output.suffix not in SPEC_SUFFIXES:
        raise UsageError(f"'{output}' is not a .yaml file", "name the spec SOMETHING.yaml")
    if weights is not None and not weights.name.endswith(WEIGHTS_SUFFIX):
        raise UsageError(
            f"'{weights}' does not end with {WEIGHTS_SUFFIX}",
            f"Keras weights files end with {WEIGHTS_SUFFIX}",
        )
    if weights is not None and weights.resolve() == output.resolve():
        raise UsageError("the spec and the weights would be the same file")
    check_writable(output, force)
    if weights is not None:
        check_writable(weights, force)


# -- the graph walk ----------------------------------------------------------


class _Importer:
    def __init__(self, registry: Any):
        from kgraph_cli.tf import import_keras

        self.keras = import_keras()
        self.registry = registry
        # Models of `models:`, by entry name, and for each nested model object
        # the entry that describes it.
        self.entries: dict[str, dict[str, Any]] = {}
        self.entry_of: dict[int, str] = {}
        self.top_name = ""
        self.renamed: list[Renamed] = []
        self.notes: list[str] = []
        self.layer_names: dict[int, str] = {}
        self._default_configs: dict[str, Any] = {}
        self._bodies: dict[str, dict[str, Any]] = {}

    def run(self, model: Any) -> ImportResult:
        self._check_model(model, "the model")
        self.top_name = _identifier(model.name, "model")
        body = self._graph(model, "")
        data: dict[str, Any] = {"kgraph": SPEC_VERSION, "name": self.top_name}
        if self.entries:
            data["default"] = self.top_name
            data["models"] = self.entries
        data.update(body)
        return ImportResult(data, self.renamed, self.notes, self.layer_names)

    # -- models --------------------------------------------------------------
    def _check_model(self, model: Any, what: str) -> None:
        from keras.src.models.functional import Functional

        if type(model) is self.keras.Sequential:
            if getattr(model, "_functional", None) is None:
                raise ModelImportError(
                    f"{what} '{model.name}' is a Sequential model without an input shape",
                    "build it first: start it with keras.Input(shape=...)",
                )
            return
        if type(model) is not Functional:
            raise ModelImportError(
                f"{what} '{model.name}' is a subclassed model ({_class_path(type(model))}): "
                "its call() is Python code, not a graph of layers",
                "only functional and Sequential models can be imported",
            )

    def _graph(self, model: Any, path: str) -> dict[str, Any]:
        """inputs/layers/outputs of a functional or Sequential model."""
        label = path.partition("#")[0] or self.top_name  # for messages
        fn = model._functional if type(model) is self.keras.Sequential else model
        names = _Names()
        inputs: dict[str, Any] = {}
        node_names: dict[int, str] = {}  # id(Node) -> spec name
        for tensor in fn.inputs:
            layer, node_index, _ = tensor._keras_history
            if type(layer) is not self.keras.layers.InputLayer:
                raise ModelImportError(
                    f"an input of '{model.name}' is the output of layer '{layer.name}', "
                    "not a keras.Input",
                    "a spec's model inputs are inputs: rebuild the model from keras.Input",
                )
            name = self._name(names, layer.name, path)
            inputs[name] = _input_spec(layer)
            node_names[id(layer._inbound_nodes[node_index])] = name

        needed = self._needed_nodes(fn)
        order = _topological(fn, needed)
        layer_nodes: dict[int, str] = {}  # id(layer) -> name of its `type:`/`model:` node
        layers: dict[str, Any] = {}
        for node in order:
            op = node.operation
            if id(node) in node_names:
                continue
            first = layer_nodes.get(id(op))
            if first is None:
                name = self._name(names, op.name, path)
                layer_nodes[id(op)] = name
                self.layer_names[id(op)] = name
            else:
                name = names.unique(f"{first}_{_call_number(op, node, needed)}")
            node_names[id(node)] = name
            if not isinstance(op, self.keras.layers.Layer):
                raise ModelImportError(
                    f"'{op.name}' ({label}) is a keras.ops operation "
                    f"({type(op).__name__}) applied to tensors directly, such as `x * 2`: "
                    "a spec's nodes are layers",
                    "use a layer in the model instead (keras.layers.Multiply, Add, "
                    "Rescaling, Activation...)",
                )
            body: dict[str, Any] = {}
            if first is not None:
                body["share"] = first
            elif self._is_model(op):
                body["model"] = self._entry(op)
                if not op.trainable:
                    body["trainable"] = False
            else:
                body.update(self._layer_body(op, f"{label}.{name}"))
            inputs_form, call = self._node_inputs(node, node_names, name)
            body["from"] = inputs_form
            if call:
                body["call"] = call
            layers[name] = body
        outputs = self._outputs(fn, node_names, layer_nodes, label)
        return {"inputs": inputs, "layers": layers, "outputs": outputs}

    def _needed_nodes(self, fn: Any) -> set[int]:
        """Ids of the nodes the outputs depend on through what the spec writes
        (not through masks Keras adds by itself, e.g. Embedding's mask_zero)."""
        needed: set[int] = set()
        stack = [_node_of(t) for t in fn.outputs]
        while stack:
            node = stack.pop()
            if id(node) in needed:
                continue
            needed.add(id(node))
            if node.is_input:
                continue
            args, kwargs = self._call_arguments(node)
            for tensor in _keras_tensors((args, kwargs)):
                stack.append(_node_of(tensor))
        return needed

    def _call_arguments(self, node: Any) -> tuple[tuple, dict]:
        """The node's call arguments without those Keras filled in itself."""
        op = node.operation
        args = node.arguments.args
        kwargs = dict(node.arguments.kwargs)
        if not isinstance(op, self.keras.layers.Layer):
            return args, kwargs
        signature = _call_signature(op)
        for key, value in list(kwargs.items()):
            param = signature.get(key)
            if param is not None and not _keras_tensors(value) and _same(value, param.default):
                # The call's default: what Keras passes (`training`) when the call
                # does not say.
                del kwargs[key]
            elif key == "mask" or key.endswith("_mask"):
                source = _mask_source(key, args, kwargs, signature)
                if _is_auto_mask(value, source):
                    del kwargs[key]
        return args, kwargs

    def _is_model(self, op: Any) -> bool:
        return isinstance(op, self.keras.Model)

    def _entry(self, model: Any) -> str:
        """The `models:` entry for a nested model (made on first use)."""
        if id(model) in self.entry_of:
            return self.entry_of[id(model)]
        self._check_model(model, "nested model")
        base = _identifier(model.name, "model")
        # Renamed nodes are recorded under a provisional path until the entry
        # has its name (an identical entry may exist already).
        path = f"models.{base}#{id(model)}"
        body = self._graph(model, path)
        name = next((n for n, existing in self.entries.items() if existing == body), None)
        if name is not None:  # another instance of the same architecture
            self._move_renamed(path, None)
            self.entry_of[id(model)] = name
            return name
        name = base
        number = 1
        while name in self.entries or name == self.top_name:
            number += 1
            name = f"{base}_{number}"
        self._move_renamed(path, f"models.{name}")
        if name != model.name:
            self.notes.append(f"nested model '{model.name}' is `models: {name}`")
        self.entries[name] = body
        self.entry_of[id(model)] = name
        return name

    def _move_renamed(self, old: str, new: str | None) -> None:
        self.renamed = [
            r if r.model != old else Renamed(new, r.name, r.keras_name)
            for r in self.renamed
            if r.model != old or new is not None
        ]

    def _name(self, names: _Names, keras_name: str, path: str) -> str:
        name = names.unique(_identifier(keras_name, "layer"))
        if name != keras_name:
            self.renamed.append(Renamed(path, name, keras_name))
        return name

    # -- nodes -----------------------------------------------------------
    def _node_inputs(self, node: Any, node_names: dict[int, str], name: str) -> tuple[Any, dict]:
        """`from:` (a ref, a list, or keyword refs) and `call:` of a node."""
        op = node.operation
        args, kwargs = self._call_arguments(node)
        tensor_kwargs = {k: v for k, v in kwargs.items() if _keras_tensors(v)}
        call = {k: _plain(v) for k, v in kwargs.items() if k not in tensor_kwargs}
        for key, value in tensor_kwargs.items():
            if not _is_tensor(value):
                raise ModelImportError(
                    f"layer '{op.name}' is called with {key}= a structure of tensors",
                    "a spec passes one tensor per keyword (`from: {query: q, value: v}`)",
                )

        def ref(tensor: Any) -> str:
            return self._ref(tensor, node_names)

        if not tensor_kwargs and len(args) == 1 and _is_tensor(args[0]):
            return ref(args[0]), call
        if (
            not tensor_kwargs
            and len(args) == 1
            and isinstance(args[0], (list, tuple))
            and args[0]
            and all(_is_tensor(t) for t in args[0])
        ):
            return [ref(t) for t in args[0]], call
        # Several tensors: by the names of the call's parameters.
        params = [p for p in _call_signature(op) if p not in ("self",)]
        keyword: dict[str, str] = {}
        for i, value in enumerate(args):
            if not _is_tensor(value) or i >= len(params):
                raise ModelImportError(
                    f"layer '{op.name}' (node '{name}') is called with positional arguments "
                    "a spec cannot write",
                    "a spec calls layers with one tensor, a list of tensors, or keyword tensors",
                )
            keyword[params[i]] = ref(value)
        for key, value in tensor_kwargs.items():
            keyword[key] = ref(value)
        return keyword, call

    def _ref(self, tensor: Any, node_names: dict[int, str]) -> str:
        node = _node_of(tensor)
        name = node_names[id(node)]
        index = tensor._keras_history.tensor_index
        return f"{name}.{index}" if len(node.outputs) > 1 else name

    def _outputs(
        self, fn: Any, node_names: dict[int, str], layer_nodes: dict[int, str], label: str
    ) -> list[str] | dict[str, str]:
        """A list of refs; a mapping where a list would make kgraph add Identity
        layers (an output of a shared layer's later call, one of several outputs)."""
        refs = [self._ref(t, node_names) for t in fn.outputs]
        keys = []
        for tensor, ref in zip(fn.outputs, refs, strict=True):
            op = tensor._keras_history.operation
            keys.append(layer_nodes.get(id(op), ref))
        if keys == refs:
            return refs
        outputs: dict[str, str] = {}
        for key, ref in zip(keys, refs, strict=True):
            if key in outputs:
                key = ref.replace(".", "_")
                self.notes.append(
                    f"{label}: output '{ref}' gets an Identity layer "
                    f"named '{key}' (two outputs of one layer)"
                )
            outputs[key] = ref
        return outputs

    # -- layers ----------------------------------------------------------
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
        if cls.__module__.startswith("keras."):
            raise ModelImportError(
                f"layer '{layer.name}' ({where}) is a {cls.__name__}, which is not a class "
                "of keras.layers",
                "a spec's layer types are the classes of keras.layers and plugin classes",
            )
        module = cls.__module__.rsplit(".", 1)[-1]
        raise ModelImportError(
            f"layer '{layer.name}' ({where}) is a custom layer, {_class_path(cls)}",
            f"pass --plugin with the module that defines it (the spec names it "
            f"{module}.{cls.__name__})",
        )

    def _layer_body(self, layer: Any, where: str) -> dict[str, Any]:
        """`type:` and the arguments that differ from the defaults: those of a
        layer of the same class made with only the required arguments."""
        if self._is_model(layer):
            return {"model": self._entry(layer)}
        type_name = self._layer_type(layer, where)
        info = self.registry.get(type_name)
        config = layer.get_config()
        wraps = any(k in config for k in LAYER_ARGUMENTS)
        # Layers configured alike (DenseNet's 120 BatchNormalizations) are worked out once.
        cache_key = None if wraps else f"{_class_path(type(layer))}:{_json_key(config, 'name')}"
        if cache_key in self._bodies:
            return copy.deepcopy(self._bodies[cache_key])
        body = self._new_layer_body(layer, type_name, info, config, where)
        if cache_key is not None:
            self._bodies[cache_key] = copy.deepcopy(body)
        return body

    def _new_layer_body(
        self, layer: Any, type_name: str, info: Any, config: dict, where: str
    ) -> dict[str, Any]:
        defaults = self._default_config(layer, config, info)
        signature_defaults = _init_defaults(type(layer))
        body: dict[str, Any] = {"type": type_name}
        for key in _ordered(config, config, info):
            value = config[key]
            if key == "name":
                continue
            if key in LAYER_ARGUMENTS and key in info.params:
                sub = self._sublayer(layer, key, value, defaults)
                if sub is not None:
                    body[key] = sub
                continue
            if key in info.required:
                pass  # always written, even when it happens to equal a default
            elif defaults is not None and key in defaults:
                if _same(value, defaults[key]):
                    continue
            elif key in signature_defaults and _same(value, signature_defaults[key]):
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
                body[key] = self._value(value, key)
            except ModelImportError as exc:
                raise ModelImportError(f"layer '{layer.name}' ({where}): {exc}", exc.hint) from None
        return self._complete(layer, config, body, info)

    def _complete(self, layer: Any, config: dict, body: dict[str, Any], info: Any) -> dict:
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
                and not _same(config[k], made.get(k, _MISSING))
            ]

        missing = differences(body)
        for _ in range(3):
            if not missing:
                break
            for k in missing:
                # Already written but not enough (a shortened Keras object): in full.
                body[k] = self._value(config[k], k, shorten=k not in body)
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

    def _sublayer(self, layer: Any, key: str, config: Any, defaults: Any) -> Any:
        """A wrapper's `layer:` / `backward_layer:` as {type: ...} or {model: ...}."""
        if config is None:
            return None
        if key == "layer":
            inner = getattr(layer, "forward_layer", None) or layer.layer
        else:
            if defaults is not None and _same(
                _without_names(config), _without_names(defaults.get(key))
            ):
                return None  # the backward copy the wrapper makes by itself
            inner = layer.backward_layer
        if self._is_model(inner):
            sub: dict[str, Any] = {"model": self._entry(inner)}
            if not inner.trainable:
                sub["trainable"] = False
            return sub
        body = self._layer_body(inner, f"{key} of '{layer.name}'")
        if key == "layer":
            for arg in self._forced_by_wrapper(layer, body):
                del body[arg]
        return body

    def _forced_by_wrapper(self, wrapper: Any, body: dict[str, Any]) -> list[str]:
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
            if _same(_without_names(got), _without_names(inner)):
                forced.append(arg)
        return forced

    def _default_config(self, layer: Any, config: dict, info: Any) -> dict | None:
        """The config of a layer of the same class made with only the required
        arguments (and a wrapper's layer), or None when it cannot be made."""
        cls = type(layer)
        base = {k: copy.deepcopy(config[k]) for k in info.required if k in config}
        if "layer" in config and "layer" in info.params:
            base["layer"] = copy.deepcopy(config["layer"])
        key = f"{_class_path(cls)}:{_json_key(base)}"
        if key not in self._default_configs:
            try:
                self._default_configs[key] = _construct(cls, base).get_config()
            except Exception:  # some classes need more than their required arguments
                self._default_configs[key] = None
        return self._default_configs[key]

    def _value(self, value: Any, key: str = "", shorten: bool = True) -> Any:
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
            return {str(k): self._value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._value(v) for v in value]
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
            return self._value(config.get("value"), key)
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
            k: self._value(v, k)
            for k, v in config.items()
            if k not in defaults or not _same(v, defaults[k])
        }
        if not args and obj is not None and shorten:
            alias = _string_alias(type(obj), value.get("module") or "")
            if alias:
                return alias
        return {"type": class_name, **args}


# -- helpers over Keras objects ----------------------------------------------


class _Names:
    """Unique identifiers within one model (its inputs and nodes)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def unique(self, name: str) -> str:
        candidate, number = name, 1
        while candidate in self.used:
            number += 1
            candidate = f"{name}_{number}"
        self.used.add(candidate)
        return candidate


def _identifier(name: str, what: str) -> str:
    """A Keras name as a spec identifier ([A-Za-z_][A-Za-z0-9_]*)."""
    if NAME_PATTERN.match(name):
        return name
    text = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not text or text[0].isdigit():
        text = f"_{text}"
    if not NAME_PATTERN.match(text):  # pragma: no cover - the substitution prevents it
        raise ModelImportError(f"cannot turn {what} name {name!r} into an identifier")
    return text


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _node_of(tensor: Any) -> Any:
    op, node_index, _ = tensor._keras_history
    return op._inbound_nodes[node_index]


def _call_number(op: Any, node: Any, needed: set[int]) -> int:
    """1-based position of a call among the layer's calls in this model."""
    calls = [n for n in op._inbound_nodes if id(n) in needed]
    return calls.index(node) + 1


def _is_tensor(value: Any) -> bool:
    from keras.src.backend import KerasTensor

    return isinstance(value, KerasTensor)


def _keras_tensors(structure: Any) -> list[Any]:
    from keras.src import tree

    return [t for t in tree.flatten(structure) if _is_tensor(t)]


def _call_signature(op: Any) -> dict[str, inspect.Parameter]:
    try:
        params = inspect.signature(op.call).parameters
    except (TypeError, ValueError):
        return {}
    return {k: p for k, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _mask_source(key: str, args: tuple, kwargs: dict, signature: dict) -> Any:
    """The tensor argument whose Keras mask fills `key` (`mask`, `query_mask`...)."""
    names = list(signature)
    if key == "mask":
        return args[0] if args else None
    arg = key[: -len("_mask")]
    if arg in kwargs:
        return kwargs[arg]
    if arg in names and names.index(arg) < len(args):
        return args[names.index(arg)]
    return None


def _is_auto_mask(value: Any, source: Any) -> bool:
    """Whether a mask argument is the one Keras takes from the input itself."""
    from keras.src import backend, tree

    if all(leaf is None for leaf in tree.flatten(value)):
        return True
    if source is None:
        return False
    try:
        expected = tree.map_structure(backend.get_keras_mask, source)
        got, want = tree.flatten(value), tree.flatten(expected)
    except Exception:
        return False
    return len(got) == len(want) and all(a is b for a, b in zip(got, want, strict=True))


def _topological(fn: Any, needed: set[int]) -> list[Any]:
    """The needed nodes, inputs first, as Keras's summary lists them: by depth,
    then by the order of the model's operations."""
    position = {id(op): i for i, op in enumerate(fn.operations)}
    nodes = []
    for depth, depth_nodes in fn._nodes_by_depth.items():
        for node in depth_nodes:
            if id(node) in needed:
                op = node.operation
                nodes.append((-depth, position.get(id(op), 0), op._inbound_nodes.index(node), node))
    nodes.sort(key=lambda item: item[:3])
    return [item[3] for item in nodes]


def _input_spec(layer: Any) -> Any:
    config = layer.get_config()
    if config.get("ragged"):
        raise ModelImportError(f"input '{layer.name}' is ragged, which a spec cannot declare")
    if config.get("optional"):
        raise ModelImportError(f"input '{layer.name}' is optional, which a spec cannot declare")
    batch_shape = list(config.get("batch_shape") or layer.batch_shape)
    shape = [None if d is None else int(d) for d in batch_shape[1:]]
    dtype = config.get("dtype") or "float32"
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", "float32")
    spec: dict[str, Any] = {"shape": shape}
    if dtype != "float32":
        spec["dtype"] = dtype
    if config.get("sparse"):
        spec["sparse"] = True
    if batch_shape[0] is not None:
        spec["batch_size"] = int(batch_shape[0])
    return shape if len(spec) == 1 else spec


@functools.cache
def _init_defaults(cls: type) -> dict[str, Any]:
    """Constructor defaults, following **kwargs up the MRO (as the catalog does)."""
    defaults: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            break
        more = False
        for name, param in params.items():
            if param.kind is param.VAR_KEYWORD:
                more = True
            elif param.default is not param.empty:
                defaults.setdefault(name, param.default)
        if not more:
            break
    return defaults


def _string_alias(cls: type, module: str) -> str | None:
    """The snake_case name Keras resolves to `cls` (glorot_uniform, zeros, l2)."""
    import importlib

    kind = module.rsplit(".", 1)[-1]
    if kind not in ("initializers", "regularizers", "constraints", "activations"):
        return None
    try:
        objects = importlib.import_module(f"keras.src.{kind}").ALL_OBJECTS_DICT
    except (ImportError, AttributeError):
        return None
    for name, obj in objects.items():
        if obj is cls and name == name.lower() and name != cls.__name__:
            return name
    return None


def _construct(cls: type, kwargs: dict[str, Any]) -> Any:
    """A layer from arguments as the builder passes them; a wrapper from its
    config, so that its `layer` (a config here) is deserialized."""
    if any(k in kwargs for k in LAYER_ARGUMENTS):
        return cls.from_config(kwargs)
    return cls(**kwargs)


def _ordered(body: dict[str, Any], config: dict, info: Any) -> dict[str, Any]:
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


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _same(a: Any, b: Any) -> bool:
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


def _without_names(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_names(v) for k, v in value.items() if k != "name"}
    if isinstance(value, (list, tuple)):
        return [_without_names(v) for v in value]
    return value


def _json_key(value: Any, without: str = "") -> str:
    if without and isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != without}
    return json.dumps(_canonical(value), sort_keys=True, default=repr)


def _layer_count(model: Any) -> int:
    return sum(1 for layer in model.layers if type(layer).__name__ != "InputLayer")


# -- checking what was written ------------------------------------------------


def _rebuild(text: str, file_name: str, plugins: Any, original: Any) -> Any:
    """Build the spec as `kgraph` will, and check it is the original's architecture."""
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.spec.validate import validate_spec

    with tempfile.TemporaryDirectory(prefix="kgraph-import-") as folder:
        path = Path(folder) / file_name
        path.write_text(text, encoding="utf-8")
        try:
            rebuilt = ModelBuilder(validate_spec(path, (), plugins)).build()
        except SpecError as exc:
            errors = [d for d in exc.diagnostics if d.is_error] or exc.diagnostics
            first = errors[0] if errors else None
            where = f" ({first.path})" if first and first.path else ""
            raise ModelImportError(
                f"the imported spec does not build{where}: {exc}",
                "this is a kgraph bug: please report it with the model file",
            ) from exc
    if rebuilt.count_params() != original.count_params():
        raise ModelImportError(
            f"the imported spec builds a model with {rebuilt.count_params():,} parameters, "
            f"the original has {original.count_params():,}",
            "this is a kgraph bug: please report it with the model file",
        )
    return rebuilt


def _save_weights(original: Any, rebuilt: Any, path: Path, names: dict[int, str]) -> None:
    """The original's weights, saved from the rebuilt model (so that its layer
    structure is the one load_weights finds), written atomically."""
    from kgraph_cli.fileio import atomic_path

    _copy_weights(original, rebuilt, names)
    with atomic_path(path, WEIGHTS_SUFFIX) as tmp:
        rebuilt.save_weights(tmp)


def _copy_weights(source: Any, target: Any, names: dict[int, str]) -> None:
    """Layer by layer, by name: Keras may order the layers of the two models
    differently (keyword inputs are ordered by name), never their names."""
    from kgraph_cli.tf import import_keras

    keras = import_keras()
    for layer in source.layers:
        if not layer.weights:
            continue
        name = names.get(id(layer))
        try:
            twin = target.get_layer(name)
        except ValueError:
            twin = None
        if name is None or twin is None:
            raise ModelImportError(
                f"layer '{layer.name}' has no counterpart in the imported spec",
                "this is a kgraph bug: please report it with the model file",
            )
        inner = getattr(layer, "layer", None)
        if isinstance(layer, keras.Model):
            _copy_weights(layer, twin, names)
        elif isinstance(inner, keras.Model):
            _copy_weights(inner, twin.layer, names)
        else:
            values = layer.get_weights()
            shapes = [tuple(w.shape) for w in twin.weights]
            if [tuple(v.shape) for v in values] != shapes:
                raise ModelImportError(
                    f"the weights of layer '{layer.name}' do not fit the imported spec's",
                    "this is a kgraph bug: please report it with the model file",
                )
            twin.set_weights(values)


# -- YAML ----------------------------------------------------------------------


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


def _model_lines(
    body: dict[str, Any], indent: str, path: str, comments: dict[tuple[str, str], str]
) -> list[str]:
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
    line = f"{indent}{name}: {_flow(node)}"
    if len(line) <= FLOW_WIDTH:
        return [_with_comment(line, comment)]
    lines = [_with_comment(f"{indent}{name}:", comment)]
    lines += [f"{indent}  {key}: {_flow(value)}" for key, value in node.items()]
    return lines


def _with_comment(line: str, comment: str | None) -> str:
    return f"{line}  # {comment}" if comment else line


__all__ = [
    "FileImport",
    "ImportResult",
    "ModelImportError",
    "Renamed",
    "default_weights_path",
    "import_file",
    "import_keras_model",
    "import_model",
    "model_to_spec",
    "spec_yaml",
]
