"""Validated spec -> Keras functional models. Keras errors become diagnostics
at the node's own location, with the shapes involved."""

from __future__ import annotations

import contextlib
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kgraph_cli import keras_graph
from kgraph_cli.applications import ApplicationFailed, apply_application, build_application
from kgraph_cli.deep import deep_recursion
from kgraph_cli.errors import Diagnostic, Location, Reporter, Severity, SpecError
from kgraph_cli.ops_catalog import OpCall, Slot, Tensor, Tensors, ops_catalog
from kgraph_cli.spec.constants import bind_node
from kgraph_cli.spec.graph import resolve
from kgraph_cli.spec.loader import YamlMap
from kgraph_cli.spec.model import (
    InputForm,
    LayerSpec,
    ModelCall,
    ModelSpec,
    NodeKind,
    NodeSpec,
    OutputSpec,
    Ref,
)
from kgraph_cli.spec.train import spec_precision
from kgraph_cli.spec.validate import ValidSpec
from kgraph_cli.spec.values import keras_config
from kgraph_cli.suggest import did_you_mean
from kgraph_cli.tf import debug_enabled, import_keras


class _NodeFailed(Exception):
    """A node could not be built; its diagnostic is recorded already."""


class ModelBuilder(Reporter):
    """Builds the models of one validated spec; each call makes fresh layers."""

    def __init__(self, valid: ValidSpec, pretrained: bool = False, data_dir: Path | None = None):
        """`pretrained`: load the weights `application:` nodes name (ImageNet's,
        looked for in `data_dir` first; a file); otherwise only check that they
        fit, for commands that need the structure alone."""
        self.valid = valid
        self.pretrained = pretrained
        self.data_dir = data_dir
        self.spec = valid.spec
        self.precision = spec_precision(valid.spec.train)
        self.keras = import_keras()
        super().__init__()
        # Graphs built for top-level models, so that views over a graph share
        # its layers (like keras.Model(img, code) next to the autoencoder).
        self._shared_graphs: dict[str, tuple[dict, dict | None]] = {}
        # The layers of those graphs, by node: `share: model.node` reuses them.
        self._shared_layers: dict[str, dict[str, Any]] = {}

    def build(self, name: str | None = None) -> Any:
        """A new keras.Model for the named (or default) model; SpecError on failure."""
        with self._precision():
            model = self._build_model(name or self.spec.default)
        if self.diagnostics or model is None:
            raise SpecError(self.diagnostics + self.valid.warnings)
        return model

    def build_all(self) -> dict[str, Any]:
        """Every model of the spec, reporting the problems of all of them at once."""
        with self._precision():
            models = {name: self._build_model(name) for name in self.valid.model_order}
        if self.diagnostics:
            raise SpecError(self.diagnostics + self.valid.warnings)
        return models

    @contextlib.contextmanager
    def _precision(self) -> Iterator[None]:
        """Layers made meanwhile compute in the spec's train.precision (Keras's
        global dtype policy, restored after)."""
        keras = self.keras
        before = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.precision)
        try:
            yield
        finally:
            keras.config.set_dtype_policy(before)

    def _float32_outputs(self, model: ModelSpec) -> set[str]:
        """Under mixed precision, the layer nodes that a model outputs stay
        float32 (Keras's guidance: the final softmax or linear layer)."""
        if self.precision == "float32":
            return set()
        return {(resolve(model, o.ref) or o.ref).node for o in model.outputs}

    # -- models ---------------------------------------------------------
    def _build_model(self, name: str, instance_name: str | None = None) -> Any:
        """A model; `instance_name` marks a nested instance, which gets new layers."""
        model = self.spec.models[name]
        if model.graph is not None:
            return self._build_view(model, instance_name)
        inputs, tensors = self._graph(model, shared=instance_name is None)
        if tensors is None:
            return None
        outputs = self._outputs(model, model.outputs, tensors)
        if outputs is None:
            return None
        return self._keras_model(
            [inputs[n] for n in model.inputs], outputs, instance_name or name, model.name
        )

    def _build_view(self, view: ModelSpec, instance_name: str | None) -> Any:
        base = self.spec.models[view.graph or ""]
        inputs, tensors = self._graph(base, shared=instance_name is None)
        if tensors is None:
            return None
        outputs = self._outputs(base, view.outputs, tensors, view)
        if outputs is None:
            return None
        return self._keras_model(
            [inputs[r.node] for r in view.view_inputs or []],
            outputs,
            instance_name or view.name,
            base.name,
        )

    def _keras_model(self, inputs: list, outputs: list, name: str, graph: str) -> Any:
        """keras.Model(inputs, outputs) over the graph of spec model `graph`."""
        # Keras maps the graph recursively, one frame per layer: see deep.py.
        # The Identity layers of renamed outputs add one layer to the depth.
        depth = self.valid.graphs[graph].depth + 1
        with deep_recursion(depth, what=f"model '{name}'"):
            return self.keras.Model(
                inputs=inputs[0] if len(inputs) == 1 else inputs,
                outputs=outputs[0] if len(outputs) == 1 else outputs,
                name=name,
            )

    def _outputs(
        self,
        model: ModelSpec,
        outputs: list[OutputSpec],
        tensors: dict,
        owner: ModelSpec | None = None,
    ) -> list | None:
        """The output tensors of `owner` (a view; by default `model`), refs into
        `model`'s graph; None if one is wrong."""
        try:
            return [self._output_tensor(model, o, tensors, owner or model) for o in outputs]
        except _NodeFailed:
            return None

    def _output_tensor(
        self, model: ModelSpec, output: OutputSpec, tensors: dict, owner: ModelSpec
    ) -> Any:
        name, ref = output.name, output.ref
        tensor = self._tensor(model, resolve(model, ref) or ref, tensors)
        if isinstance(tensor, (list, tuple, dict)):
            count = len(tensor)
            self.error(
                "ref",
                f"output '{name}' is '{ref}', which has {count} outputs; an output is one tensor",
                ref.loc,
                owner.key_path("outputs"),
                f"name one of them: {', '.join(f'{ref}.{i}' for i in range(count))}",
            )
            raise _NodeFailed
        width = tensor.shape[-1] if len(tensor.shape) > 1 else None
        if output.classes and width is not None and width != len(output.classes):
            self.error(
                "outputs",
                f"output '{name}' has {width} values per sample but `classes` names "
                f"{len(output.classes)}",
                ref.loc,
                owner.key_path("outputs", name, "classes"),
                "list one name per class index, in order",
            )
            raise _NodeFailed
        producer = keras_graph.producer(tensor).name
        if producer != name:  # give the output the name the spec chose
            tensor = self.keras.layers.Identity(name=name)(tensor)
        return tensor

    def _graph(self, model: ModelSpec, shared: bool) -> tuple[dict, dict | None]:
        if not shared:
            return self._build_graph(model)
        if model.name not in self._shared_graphs:
            layers = self._shared_layers.setdefault(model.name, {})
            self._shared_graphs[model.name] = self._build_graph(model, layers)
        return self._shared_graphs[model.name]

    def _build_graph(
        self, model: ModelSpec, layers: dict[str, Any] | None = None
    ) -> tuple[dict, dict | None]:
        keras = self.keras
        inputs = {
            name: keras.Input(
                shape=spec.shape,
                dtype=spec.dtype,
                sparse=spec.sparse,
                batch_size=spec.batch_size,
                name=name,
            )
            for name, spec in model.inputs.items()
        }
        tensors: dict[str, Any] = dict(inputs)
        layers = {} if layers is None else layers
        failed: set[str] = set()
        for name in self.valid.graphs[model.name].order:
            node = model.nodes[name]
            refs = [resolve(model, r) or r for r in node.inputs]
            if any(r.node in failed for r in refs) or (
                node.kind is NodeKind.SHARE and node.target in failed
            ):
                failed.add(name)  # its cause is reported already
                continue
            try:
                tensors[name] = self._call_node(model, node, refs, tensors, layers)
            except _NodeFailed:
                failed.add(name)
        if failed:
            return inputs, None
        return inputs, tensors

    # -- nodes ----------------------------------------------------------
    def _call_node(
        self, model: ModelSpec, node: NodeSpec, refs: list[Ref], tensors: dict, layers: dict
    ) -> Any:
        args = [self._tensor(model, r, tensors, node) for r in refs]
        if node.kind is NodeKind.OP:
            return self._call_op(model, node, args)
        layer = self._layer_for(model, node, layers, args)
        call_args = keras_config(node.call_args)
        owner, owner_model = self._owner(model, node)
        if owner.application is not None:
            return self._call_application(owner_model, owner, node, layer, args, call_args)
        try:
            if node.input_form is InputForm.KEYWORD:
                result = layer(**_keyword_tensors(node, args), **call_args)
            elif node.input_form is InputForm.LIST:
                result = layer(args, **call_args)
            else:
                result = layer(args[0], **call_args)
        except Exception as exc:  # Keras raises many kinds; all mean "cannot call"
            self._fail(
                model,
                node,
                "shape",
                f"{_layer_label(node)} {_describe_inputs(args)}: {_keras_message(exc)}",
                exc,
                hint=_all_outputs_hint(refs, args),
            )
        self._check_layer_result(model, node, args, result)
        return result

    def _check_layer_result(
        self, model: ModelSpec, node: NodeSpec, args: list, result: Any
    ) -> None:
        """A layer call that hands back one of its input tensors itself (Keras's
        Equalization does, on the symbolic tensors a model is built from) adds
        no operation to the graph: the model would lack the layer, or, when it
        is an output, keras.Model fails with "part of a cycle"."""
        passed = {id(tensor) for tensor in keras_graph.keras_tensors(args)}
        if any(id(tensor) in passed for tensor in keras_graph.keras_tensors(result)):
            self._fail(
                model,
                node,
                "layer-result",
                f"{_layer_label(node)} returns its input tensor itself when a model is "
                "built, so Keras records no operation for it and the model would not "
                "contain it",
                None,
                hint="a limitation of this Keras layer: leave it out of the model, or "
                "write the step as a layer in a --plugin module",
            )

    def _call_op(self, model: ModelSpec, node: NodeSpec, args: list) -> Any:
        """keras.ops.<op>(...) on the node's tensors; its operation named after the node."""
        call, _ = bind_node(ops_catalog()[node.target], node)
        assert call is not None  # validation bound it already
        constants = node.op_args if node.op_args is not None else {}
        try:
            result = apply_op(self.keras, node.target, call, args, constants)
        except Exception as exc:  # Keras raises many kinds; all mean "cannot call"
            self._fail(
                model,
                node,
                "shape",
                f"op {node.target} {_describe_inputs(args)}: {_keras_message(exc)}",
                exc,
                hint=f"check the shapes and constants keras.ops.{node.target} gets",
            )
        made = keras_graph.keras_tensors(result)
        if not made or len(made) != len(keras_graph.flatten(result)):
            self._fail(
                model,
                node,
                "op-result",
                f"op {node.target} gives {_value_text(result)}, a value known when the "
                "model is built, not a tensor of the model",
                None,
                hint="write such a value as a constant argument of the node that needs it",
            )
        inputs = {id(keras_graph.producer(t)) for t in keras_graph.keras_tensors(args)}
        for tensor in made:  # the operation it made, not an input's producer
            operation = keras_graph.producer(tensor)
            if keras_graph.is_graph_op(operation) and id(operation) not in inputs:
                operation.name = node.name
        return result

    def _owner(self, model: ModelSpec, node: NodeSpec) -> tuple[NodeSpec, ModelSpec]:
        """The node that made the layer `node` calls (itself unless it shares one)."""
        while node.kind is NodeKind.SHARE:
            if "." in node.target:
                owner_model, _, owner = node.target.partition(".")
                model = self.spec.models[owner_model]
                node = model.nodes[owner]
            else:
                node = model.nodes[node.target]
        return node, model

    def _call_application(
        self,
        owner_model: ModelSpec,
        owner: NodeSpec,
        node: NodeSpec,
        application: Any,
        args: list,
        call_args: dict,
    ) -> Any:
        assert owner.application is not None
        try:
            return apply_application(
                self.keras, owner.application, node.name, application, args[0], call_args
            )
        except ApplicationFailed as exc:
            self._application_failed(owner_model, owner, exc)
        except Exception as exc:  # Keras raises many kinds; all mean "cannot call"
            self._fail(
                owner_model,
                node,
                "shape",
                f"{owner.application.name} {_describe_inputs(args)}: {_keras_message(exc)}",
                exc,
            )

    def _application_failed(self, model: ModelSpec, node: NodeSpec, exc: ApplicationFailed) -> None:
        app = node.application
        assert app is not None
        key = exc.key if exc.key in app.args else None
        self._fail(
            model,
            node,
            exc.code,
            exc.message,
            exc,
            loc=app.args.value_loc(key) if key else app.loc,
            hint=exc.hint,
        )

    def _layer_for(self, model: ModelSpec, node: NodeSpec, layers: dict, args: list) -> Any:
        if node.name in layers:
            return layers[node.name]
        if node.kind is NodeKind.SHARE and "." in node.target:  # another model's layer
            owner_model, _, owner = node.target.partition(".")
            other = self.spec.models[owner_model]
            if self._graph(other, shared=True)[1] is None:
                raise _NodeFailed  # its own problems are reported already
            layer = self._layer_for(
                other, other.nodes[owner], self._shared_layers[owner_model], args
            )
        elif node.kind is NodeKind.SHARE:
            layer = self._layer_for(model, model.nodes[node.target], layers, args)
        elif node.application is not None:
            told: list[str] = []
            try:
                layer = build_application(
                    self.keras,
                    node.application,
                    node.name,
                    tuple(args[0].shape[1:]),
                    self.pretrained,
                    self.data_dir,
                    told,
                )
            except ApplicationFailed as exc:
                self._application_failed(model, node, exc)
            path = model.key_path("layers", node.name)
            self.valid.warnings += [  # shown with the spec's own warnings
                Diagnostic(
                    "weights", f"Keras: {text}", node.application.loc, path, "", Severity.WARNING
                )
                for text in told
            ]
        elif node.kind is NodeKind.MODEL:
            layer = self._instantiate(
                ModelCall(
                    node.target,
                    node.target_loc,
                    node.model_call.trainable if node.model_call else None,
                ),
                node.name,
                model,
                node,
            )
        else:
            assert node.layer is not None
            layer = self._construct(node.layer, node.name, model, node)
        layers[node.name] = layer
        return layer

    def _instantiate(self, call: ModelCall, name: str, model: ModelSpec, node: NodeSpec) -> Any:
        before = len(self.diagnostics)
        sub = self._build_model(call.model, instance_name=name)
        if sub is None or len(self.diagnostics) > before:
            raise _NodeFailed
        if call.trainable is not None:
            sub.trainable = call.trainable
        return sub

    def _construct(self, spec: LayerSpec, name: str, model: ModelSpec, node: NodeSpec) -> Any:
        kwargs = {key: keras_config(value) for key, value in spec.args.items()}
        if name in self._float32_outputs(model) and "dtype" not in kwargs:
            kwargs["dtype"] = "float32"
        for arg, sub in spec.sublayers.items():
            if isinstance(sub, ModelCall):
                kwargs[arg] = self._instantiate(sub, f"{name}_{arg}", model, node)
            else:
                kwargs[arg] = self._construct(sub, f"{name}_{arg}", model, node)
        cls = self.valid.registry.layer_class(spec.type)
        info = self.valid.registry.get(spec.type)
        # Tutorial-style custom layers may not accept `name`: name them after.
        takes_name = info is None or "name" in info.params
        try:
            layer = cls(name=name, **kwargs) if takes_name else cls(**kwargs)
            if not takes_name:
                layer.name = name
            return layer
        except Exception as exc:  # bad argument values surface here
            message = _keras_message(exc)
            blamed = _blamed_arg(message, spec.args)
            self._fail(
                model,
                node,
                "layer-args",
                f"{spec.type}({_format_kwargs(spec.args)}) cannot be created: {message}",
                exc,
                loc=spec.args.value_loc(blamed) if blamed else None,
                hint=f"change the value of `{blamed}`"
                if blamed
                else f"check the values of {spec.type}'s arguments",
            )

    def _tensor(
        self, model: ModelSpec, ref: Ref, tensors: dict, node: NodeSpec | None = None
    ) -> Any:
        value = tensors[ref.node]
        if ref.output is None:
            return value
        outputs = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, dict):
            outputs = list(value.values())
        index = ref.output
        if isinstance(index, str):
            names = keras_graph.output_names(outputs)
            if index not in names:
                numbered = ", ".join(f"{ref.node}.{i}" for i in range(len(outputs)))
                self._fail(
                    model,
                    node,
                    "undefined-ref",
                    f"'{ref.node}' has no output named '{index}'"
                    + (f" (its outputs: {', '.join(names)})" if names else ""),
                    None,
                    ref,
                    hint=f"name an output by its number: {numbered}"
                    if not names
                    else did_you_mean(index, names, f"or by its number: {numbered}"),
                )
            index = names.index(index)
        if not isinstance(value, (list, tuple, dict)) or index >= len(outputs):
            self._fail(
                model,
                node,
                "undefined-ref",
                f"'{ref.node}' has {len(outputs)} output(s); '{ref}' asks for output {index}",
                None,
                ref,
            )
        return outputs[index]

    def _fail(
        self,
        model: ModelSpec,
        node: NodeSpec | None,
        code: str,
        message: str,
        exc: BaseException | None,
        ref: Ref | None = None,
        loc: Location | None = None,
        hint: str = "",
    ) -> None:
        if exc is not None and debug_enabled():
            traceback.print_exception(exc)
        if loc is None:
            loc = ref.loc if ref is not None else (node.loc if node else model.loc)
        path = model.key_path("layers", node.name) if node else model.key_path("outputs")
        self.error(code, message, loc, path, hint or _hint_for(message))
        raise _NodeFailed from exc


def apply_op(keras: Any, name: str, call: OpCall, tensors: list, constants: Any) -> Any:
    """keras.ops.<name> called as `call` binds it: its slots filled from
    `tensors` (by index) and `constants` (YAML values, by key)."""

    def value(slot: Slot) -> Any:
        if isinstance(slot, Tensor):
            return tensors[slot.index]
        if isinstance(slot, Tensors):
            return [tensors[i] for i in slot.indices]
        return keras_config(constants[slot.key])

    function = keras.ops
    for part in name.split("."):
        function = getattr(function, part)
    return function(
        *[value(s) for s in call.positional], **{key: value(s) for key, s in call.keywords.items()}
    )


def _keyword_tensors(node: NodeSpec, args: list) -> dict[str, Any]:
    """`from: {sequences: a, initial_state: [b, c]}` as keyword arguments."""
    return {
        key: [args[i] for i in where] if isinstance(where, list) else args[where]
        for key, where in node.keyword_inputs().items()
    }


def _value_text(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _layer_label(node: NodeSpec) -> str:
    if node.kind is NodeKind.LAYER and node.layer is not None:
        return node.layer.type
    return f"{node.kind.value} '{node.target}'"


def _describe_inputs(tensors: list) -> str:
    shapes = [_structure_text(t) for t in tensors]
    if len(shapes) == 1:
        return f"got input shape {shapes[0]}"
    return "got shapes " + ", ".join(shapes[:-1]) + " and " + shapes[-1]


def _structure_text(value: Any) -> str:
    """A tensor's shape, or those of the outputs of a node with several (a ref
    without `.N` to an LSTM with return_state gives them all): `[(None, 3), ...]`."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_structure_text(v) for v in value) + "]"
    return keras_graph.tensor_text(value)


def _all_outputs_hint(refs: list[Ref], args: list) -> str:
    """For a layer that got every output of a node with several: name one."""
    for ref, value in zip(refs, args, strict=False):
        if isinstance(value, (list, tuple, dict)):
            names = list(value) if isinstance(value, dict) else range(len(value))
            numbered = ", ".join(f"{ref}.{name}" for name in names)
            count = len(value)
            return f"'{ref}' has {count} outputs and the layer got them all: name one ({numbered})"
    return ""


def _format_kwargs(args: dict) -> str:
    return ", ".join(f"{k}={keras_config(v)!r}" for k, v in args.items())


def _blamed_arg(message: str, args: Any) -> str | None:
    """The one argument a Keras error message names (`units`, units=...), if any."""
    if not isinstance(args, YamlMap):
        return None
    named = [
        arg for arg in args if f"`{arg}`" in message or re.search(rf"\b{re.escape(arg)}=", message)
    ]
    if not named:  # "Could not interpret activation function identifier: relux"
        named = [
            arg
            for arg, value in args.items()
            if isinstance(value, str) and re.search(rf"\b{re.escape(value)}\b", message)
        ]
    return named[0] if len(named) == 1 else None


def _keras_message(exc: BaseException) -> str:
    text = str(exc)
    text = re.split(r"\n\s*Arguments received by", text)[0]
    text = re.sub(r"Exception encountered when calling [^\n]*\n", "", text)
    text = " ".join(text.split())
    # The shapes are in kgraph's own words already, with the batch dimension.
    text = re.sub(r"\s*Received shapes \([^.]*\)(\.|$)", "", text).rstrip(" .:") or text
    # ...and so are the tensors (Keras's reprs, with names that vary from run to run).
    text = re.sub(r"\s*Inputs received: \[<KerasTensor.*$", "", text).rstrip(" .:") or text
    return text if len(text) <= 400 else text[:397] + "..."


def _hint_for(message: str) -> str:
    lowered = message.lower()
    if "incompatible shapes" in lowered or "shapes" in lowered and "add" in lowered:
        return "merge layers (Add, Multiply...) need equal shapes: check the layers feeding it"
    if "concatenat" in lowered:
        return "Concatenate needs equal shapes except on its axis"
    if "expected ndim" in lowered or "expected min_ndim" in lowered or "ndim" in lowered:
        return "the layer expects inputs of another rank: check the input shape (batch excluded)"
    return "check the layer's arguments and the shapes of what feeds it"
