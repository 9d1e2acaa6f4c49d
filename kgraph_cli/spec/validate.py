"""Every check that needs no TensorFlow, over a loaded spec: the default model,
model references and their cycles, views, each graph's DAG, layer types and
arguments against the layer registry, and ops and constants (`constants.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kgraph_cli.errors import Diagnostic, Location, Reporter, SpecError
from kgraph_cli.layers import (
    PLUGIN_FILE,
    LayerRegistry,
    keras_internal_layers,
    keras_module_prefix,
    string_identifiers,
)
from kgraph_cli.spec.applications import check_application
from kgraph_cli.spec.assemble import Assignment, load_spec
from kgraph_cli.spec.constants import check_constant_refs, check_op, check_unresolved_params
from kgraph_cli.spec.graph import ModelGraph, check_model_graph, depends_on_inputs, resolve
from kgraph_cli.spec.loader import YamlMap
from kgraph_cli.spec.model import LayerSpec, ModelCall, ModelSpec, NodeKind, NodeSpec, Ref, Spec
from kgraph_cli.suggest import closest, did_you_mean


@dataclass
class ValidSpec:
    """A spec that passed structural validation, ready to build."""

    spec: Spec
    registry: LayerRegistry
    graphs: dict[str, ModelGraph]
    # Model names in an order where every model comes after those it uses.
    model_order: list[str]
    warnings: list[Diagnostic] = field(default_factory=list)


def validate_spec(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    plugins: list[str] | tuple[str, ...] = (),
    text: str | None = None,
    assignments: Sequence[Assignment] = (),
) -> ValidSpec:
    """Load and check a spec (or spec `text` named `path`), with `assignments`
    (assemble.load_spec); raise SpecError with every problem found."""
    spec, diagnostics = load_spec(path, overrides, text, assignments)
    registry = LayerRegistry(plugins)
    checker = _Checker(spec, registry)
    diagnostics += checker.run()
    if spec.train is not None and spec.default in spec.models:
        from kgraph_cli.spec.train import parse_train

        diagnostics += parse_train(spec.train, spec.models[spec.default], spec.file)[1]
    if isinstance(spec.data, dict) and "tune" in spec.data:
        from kgraph_cli.spec.tune import parse_tune

        diagnostics += parse_tune(spec.data["tune"], (), spec.file, spec.data.value_loc("tune"))[1]
    if any(d.is_error for d in diagnostics):
        raise SpecError(diagnostics)
    return ValidSpec(spec, registry, checker.graphs, checker.model_order, diagnostics)


# Preprocessing layers and the arguments that give the state adapt() learns.
_STATE_ARGUMENTS = {
    "Normalization": ("mean", "variance"),
    "Discretization": ("bin_boundaries",),
    "IntegerLookup": ("vocabulary",),
    "StringLookup": ("vocabulary",),
    "TextVectorization": ("vocabulary",),
}
_UNADAPTED = {
    "Normalization": "with no statistics it passes its input through unchanged",
    "Discretization": "it has no bins to sort values into",
    "IntegerLookup": "its vocabulary is empty, so every value maps to the OOV index",
    "StringLookup": "its vocabulary is empty, so every value maps to the OOV index",
    "TextVectorization": "its vocabulary is empty, so every token maps to the OOV index",
}

# Keras layers whose argument is a Python function.
_CODE_LAYERS = {"Lambda"}

# The argument-name suffix that says what kind of name a string value is.
_IDENTIFIER_KINDS = {"activation": "activations", "initializer": "initializers"}


class _Checker(Reporter):
    def __init__(self, spec: Spec, registry: LayerRegistry):
        self.spec = spec
        self.registry = registry
        super().__init__()
        self.graphs: dict[str, ModelGraph] = {}
        self.model_order: list[str] = []

    def run(self) -> list[Diagnostic]:
        spec = self.spec
        self.check_default()
        for model in spec.models.values():
            if model.graph is None:
                graph, problems = check_model_graph(spec, model)
                self.graphs[model.name] = graph
                self.diagnostics += problems
                for node in model.nodes.values():
                    if node.layer is not None:
                        self.check_layer(node.layer, model.key_path("layers", node.name))
                        self.check_adapt(model, node, node.layer)
                    if node.kind is NodeKind.OP:
                        check_op(self, model, node)
                    if node.application is not None:
                        check_application(self, model, node)
                    check_constant_refs(self, model, node)
                    check_unresolved_params(self, model, node)
        for model in spec.models.values():
            if model.graph is not None:
                self.check_view(model)
        self.model_order = self.order_models()
        for model in spec.models.values():
            for node in model.nodes.values():
                if node.kind is NodeKind.MODEL:
                    self.check_model_call_inputs(model, node)
        return self.diagnostics

    def check_model_call_inputs(self, model: ModelSpec, node: NodeSpec) -> None:
        """A called model gets as many inputs as it declares."""
        called = self.spec.models.get(node.target)
        if called is None:
            return
        wanted = len(called.inputs) if called.graph is None else len(called.view_inputs or [])
        given = len(node.inputs)
        if given != wanted or (wanted > 1 and node.input_form == "single"):
            self.error(
                "model-inputs",
                f"model '{called.name}' takes {wanted} input(s), node '{node.name}' gives {given}",
                node.loc,
                model.key_path("layers", node.name, "from"),
                f"`from:` lists one ref per input of '{called.name}', in its order",
            )

    def check_default(self) -> None:
        spec = self.spec
        if not spec.models:
            self.error(
                "missing",
                "the spec defines no model",
                Location(spec.file, 1, 1),
                hint="add `inputs:`, `layers:` and `outputs:` (or a `models:` section)",
            )
            return
        if spec.default:
            if spec.default not in spec.models:
                self.error(
                    "undefined-ref",
                    f"default model '{spec.default}' is not defined",
                    spec.default_loc or Location(spec.file),
                    "default",
                    did_you_mean(spec.default, spec.models),
                )
            return
        if spec.name in spec.models:
            spec.default = spec.name
        elif len(spec.models) == 1:
            spec.default = next(iter(spec.models))
        else:
            self.error(
                "missing",
                f"the spec defines {len(spec.models)} models "
                f"({', '.join(spec.models)}) and no `default`",
                spec.default_loc or Location(spec.file, 1, 1),
                "default",
                "add `default: <model name>`",
            )

    def check_view(self, view: ModelSpec) -> None:
        base = self.spec.models.get(view.graph or "")
        if base is None:
            self.error(
                "undefined-ref",
                f"model '{view.name}' is built over graph '{view.graph}', which is not a model",
                view.graph_loc or view.loc,
                view.key_path("graph"),
                did_you_mean(view.graph or "", self.spec.models),
            )
            return
        if base.graph is not None:
            self.error(
                "view-of-view",
                f"model '{view.name}' is built over '{base.name}', "
                f"which is itself built over '{base.graph}'",
                view.graph_loc or view.loc,
                view.key_path("graph"),
                f"use `graph: {base.graph}`",
            )
            return
        graph = self.graphs[base.name]
        inputs = view.view_inputs if view.view_inputs is not None else []
        for ref in inputs:
            if ref.node not in base.inputs:
                self.error(
                    "view-input",
                    f"'{ref}' is not an input of graph '{base.name}'",
                    ref.loc,
                    view.key_path("inputs"),
                    did_you_mean(ref.node, base.inputs),
                )
        outputs = []
        for output in view.outputs:
            target = resolve(base, output.ref)
            if target is None:
                self.error(
                    "undefined-ref",
                    f"'{output.ref}' is not a node of graph '{base.name}'",
                    output.ref.loc,
                    view.key_path("outputs"),
                    did_you_mean(output.ref.node, [*base.nodes, *base.inputs]),
                )
            else:
                outputs.append(target)
        needed = depends_on_inputs(graph, outputs)
        if view.view_inputs is None:
            view.view_inputs = [
                r for r in (self._input_ref(base, n) for n in base.inputs if n in needed) if r
            ]
        else:
            given = {r.node for r in view.view_inputs}
            for missing in sorted(needed - given):
                self.error(
                    "unreachable",
                    f"the outputs of model '{view.name}' depend on input "
                    f"'{missing}' of graph '{base.name}', which the model does not take",
                    view.loc,
                    view.key_path("inputs"),
                    f"add '{missing}' to its inputs",
                )

    @staticmethod
    def _input_ref(base: ModelSpec, name: str) -> Ref:
        return Ref(name, None, base.inputs[name].loc)

    def check_layer(self, layer: LayerSpec, path: str) -> None:
        if layer.type in _CODE_LAYERS:
            self.error(
                "runs-code",
                f"{layer.type} runs Python code, and a spec never runs code",
                layer.loc,
                f"{path}.type",
                "write the computation with `op:` nodes (keras.ops functions), or as a "
                "layer class in a module loaded with --plugin",
            )
            return
        info = self.registry.get(layer.type)
        if info is None:
            self.error(
                "unknown-layer",
                f"unknown layer type '{layer.type}'",
                layer.loc,
                f"{path}.type",
                self._layer_hint(layer.type),
            )
            return
        misspelt: set[str] = set()
        for arg in layer.args:
            loc = _arg_loc(layer, arg)
            if arg == "name":
                self.error(
                    "layer-arg",
                    "layers are named by their node's key; `name` is not an argument here",
                    loc,
                    f"{path}.name",
                    "rename the node instead",
                )
            elif arg not in info.params:
                misspelt.update(closest(arg, info.required - set(layer.args)))
                self.error(
                    "unknown-arg",
                    f"{layer.type} has no argument '{arg}'",
                    loc,
                    f"{path}.{arg}",
                    did_you_mean(arg, info.params - {"name"}),
                )
            else:
                self.check_identifier(layer, arg, f"{path}.{arg}")
        # A misspelt required argument is one mistake, reported once (as unknown).
        for arg in sorted(info.required - set(layer.args) - misspelt):
            self.error(
                "missing-arg",
                f"{layer.type} needs the argument '{arg}'",
                layer.loc,
                path,
                f"add `{arg}: ...`",
            )
        for arg in ("layer", "backward_layer"):
            if arg in layer.args and arg not in layer.sublayers and arg in info.params:
                self.error(
                    "type",
                    f"`{arg}` must be a layer: {{type: ...}} or {{model: ...}}",
                    _arg_loc(layer, arg),
                    f"{path}.{arg}",
                    f"e.g. `{arg}: {{type: LSTM, units: 32}}`",
                )
        for arg, sub in layer.sublayers.items():
            if isinstance(sub, LayerSpec):
                self.check_layer(sub, f"{path}.{arg}")
            elif sub.model not in self.spec.models:
                self._unknown_model(sub, f"{path}.{arg}.model")

    def check_adapt(self, model: ModelSpec, node: NodeSpec, layer: LayerSpec) -> None:
        """`adapt: true` only where there is an adapt(); a layer that needs one
        and has neither `adapt` nor its state as arguments does nothing useful."""
        info = self.registry.get(layer.type)
        if info is None:
            return
        path = model.key_path("layers", node.name)
        if node.adapt and not info.adapts:
            self.error(
                "layer-arg",
                f"{layer.type} has no adapt(): `adapt` is for preprocessing layers that "
                "learn from data",
                layer.loc,
                f"{path}.adapt",
                "remove `adapt`; layers that adapt: " + ", ".join(sorted(_STATE_ARGUMENTS)),
            )
        state = _STATE_ARGUMENTS.get(layer.type)
        if state and not node.adapt and not any(arg in layer.args for arg in state):
            self.warn(
                "not-adapted",
                f"{layer.type} gets neither `adapt: true` nor {' / '.join(state)}: "
                f"{_UNADAPTED[layer.type]}",
                layer.loc,
                path,
                "add `adapt: true` to learn it from the training data (kept in the saved "
                f"model), or give {' and '.join(state)}",
            )

    def check_identifier(self, layer: LayerSpec, arg: str, path: str) -> None:
        """`activation: relu`-style strings name something Keras knows."""
        value = layer.args[arg]
        kind = _IDENTIFIER_KINDS.get(arg.rsplit("_", 1)[-1])
        # Plugins may register their own activations and initializers.
        if kind is None or not isinstance(value, str) or self.registry.plugin_modules:
            return
        known = string_identifiers(kind)
        if value not in known:
            self.error(
                "unknown-value",
                f"unknown {kind[:-1]} '{value}' for {layer.type}.{arg}",
                layer.args.value_loc(arg) if isinstance(layer.args, YamlMap) else layer.loc,
                path,
                did_you_mean(value, known),
            )

    def _layer_hint(self, name: str) -> str:
        module, dot, _ = name.rpartition(".")
        if name.startswith("keras.") and not keras_module_prefix(name):
            return did_you_mean(
                name,
                keras_internal_layers(),
                "of Keras's own modules a spec names only the layer classes keras.layers "
                "does not export: " + ", ".join(keras_internal_layers()),
            )
        keras_names = [n for n in self.registry.names() if "." not in n]
        if (written := keras_module_prefix(name)) and module not in self.registry.plugin_modules:
            # `keras.layers.Dense`, as Python imports it: a spec names the class alone.
            python_module, short = written
            if short in keras_names:
                return f"write `{short}`: a spec names Keras layers without '{python_module}.'"
            return did_you_mean(
                short,
                keras_names,
                f"Keras has no layer '{short}': see https://keras.io/api/layers/ for layer names",
            )
        if dot and module not in self.registry.plugin_modules:
            return (
                f"'{name}' looks like a plugin layer: load its module with "
                f"--plugin path/to/{module}.py (a spec alone never imports code)"
            )
        if dot:
            plugin_names = [n for n in self.registry.names() if n.startswith(module + ".")]
            return did_you_mean(
                name, plugin_names, f"plugin '{module}' defines no such layer class"
            )
        return did_you_mean(name, keras_names, "see https://keras.io/api/layers/ for layer names")

    def _unknown_model(self, call: ModelCall, path: str) -> None:
        hint = did_you_mean(
            call.model, self.spec.models, "define it under `models:` or include a file that does"
        )
        self.error("undefined-ref", f"unknown model '{call.model}'", call.loc, path, hint)

    def _model_calls(self, model: ModelSpec) -> list[tuple[str, Location, str]]:
        """(called model, where, key path) for every model a model uses."""
        calls = []
        if model.graph is not None:
            calls.append((model.graph, model.graph_loc or model.loc, model.key_path("graph")))
        for node in model.nodes.values():
            if node.kind is NodeKind.MODEL and node.model_call is not None:
                calls.append(
                    (node.target, node.target_loc, model.key_path("layers", node.name, "model"))
                )
            if node.kind is NodeKind.SHARE and "." in node.target:  # another model's layer
                other = node.target.partition(".")[0]
                if other in self.spec.models and other != model.name:
                    calls.append((other, node.target_loc, model.key_path("layers", node.name)))
            stack = [node.layer] if node.layer else []
            while stack:
                layer = stack.pop()
                for sub in layer.sublayers.values():
                    if isinstance(sub, ModelCall):
                        calls.append((sub.model, sub.loc, model.key_path("layers", node.name)))
                    else:
                        stack.append(sub)
        return calls

    def order_models(self) -> list[str]:
        """Models after the models they call; unknown models and cycles reported."""
        uses: dict[str, list[str]] = {}
        call_sites: dict[tuple[str, str], tuple[Location, str]] = {}
        for name, model in self.spec.models.items():
            uses[name] = []
            for called, loc, path in self._model_calls(model):
                if called in self.spec.models:
                    uses[name].append(called)
                    call_sites.setdefault((name, called), (loc, path))
                elif model.graph != called:  # a view's bad graph is reported already
                    self._unknown_model(ModelCall(called, loc), path)
        order: list[str] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done
        # Iterative depth-first search: models may call models many levels deep.
        for root in self.spec.models:
            if state.get(root):
                continue
            state[root] = 1
            stack: list[tuple[str, int]] = [(root, 0)]
            while stack:
                name, index = stack[-1]
                if index < len(uses[name]):
                    stack[-1] = (name, index + 1)
                    called = uses[name][index]
                    if state.get(called) == 1:
                        trail = [caller for caller, _ in stack]
                        cycle = trail[trail.index(called) :] + [called]
                        self._model_cycle(cycle, call_sites)
                    elif not state.get(called):
                        state[called] = 1
                        stack.append((called, 0))
                    continue
                stack.pop()
                state[name] = 2
                order.append(name)
        return order

    def _model_cycle(
        self, cycle: list[str], call_sites: dict[tuple[str, str], tuple[Location, str]]
    ) -> None:
        calls = [call_sites[edge] for edge in zip(cycle, cycle[1:], strict=False)]
        self.error(
            "model-cycle",
            f"models call each other in a cycle: {' -> '.join(cycle)}",
            calls[0][0],
            calls[0][1],
            "a model cannot contain itself: one of these calls must go",
            related=tuple(
                (loc, f"'{caller}' calls '{called}'")
                for (loc, _), caller, called in zip(calls, cycle, cycle[1:], strict=False)
            ),
        )


def _arg_loc(layer: LayerSpec, arg: str) -> Location:
    return layer.args.key_loc(arg) if isinstance(layer.args, YamlMap) else layer.loc


__all__ = ["PLUGIN_FILE", "ValidSpec", "validate_spec"]
