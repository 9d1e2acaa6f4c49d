"""keras.ops operations of a graph -> `op:` nodes.

`x * (1 / 6)` in a functional model is a `Multiply` operation called with
`(x, 0.1666...)`; `ops.concatenate([a, b], axis=-1)` a `Concatenate(axis=-1)`
called with `([a, b],)`. An operation's arguments are its constructor's (its
config) and its call's: bound by name to the parameters of the keras.ops
function behind it (the catalog's `ops_catalog`), the tensors become the
node's `from:` (`from: x`, `from: [a, b]`, or `from: {xs: [a, b]}`) and the
rest its constant arguments. Each node is checked by calling the function
as the builder would (`ops_catalog.bind`) on stand-in tensors: it must make
an operation of the same class, with the same config, called with the same
arguments, giving tensors of the same shapes and dtypes; constants that make
no difference (the defaults a config lists) are left out the same way. What
cannot be written or does not check out is a `ModelImportError` naming the
node, never a spec that builds something else.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kgraph_cli import keras_graph
from kgraph_cli.importer.configs import same
from kgraph_cli.importer.result import ModelImportError
from kgraph_cli.ops_catalog import OpInfo, ParamKind, bind, ops_catalog

_CONSTANTS_HINT = (
    "a spec's constant arguments are YAML data (numbers, strings, booleans, null, lists): "
    "write this step with a layer, or with keras.ops arguments of that kind"
)


_INDEXING_HINT = (
    "indexing with slices (`x[:, 0]`, `x[..., :3]`) has no spec: use keras.ops.take, "
    "ops.slice or ops.squeeze, or a layer (Reshape, Cropping1D...), in the model instead"
)


class _NotPlain(Exception):
    """A constant that is not YAML data; the message says what it is, `nested`
    whether it is inside a list (a tuple of slices)."""

    def __init__(self, text: str, nested: bool = False) -> None:
        super().__init__(text)
        self.nested = nested


@dataclass(frozen=True)
class _Marker:
    """A tensor argument, in a call's arguments made comparable: which of the
    node's distinct input tensors it is."""

    index: int


@dataclass
class _Inputs:
    """Where the tensor arguments of an op node go: `from:` with indices into
    the node's tensors for refs, and how `bind` reads it."""

    form: Any  # an index, a list of indices, or {param: index | [indices]}
    positional: int
    keyword: dict[str, Any]


class OpNodes:
    """Writes the calls of keras.ops operations as `op:` nodes."""

    def __init__(self, keras: Any) -> None:
        self.keras = keras

    def body(self, node: Any, ref: Callable[[Any], str], name: str, where: str) -> dict[str, Any]:
        """`{op: NAME, from: ..., constants...}` for the call `node` of an operation."""
        op = node.operation
        what = f"'{name}' ({where}) is a keras.ops operation ({type(op).__name__})"
        catalog = ops_catalog()
        functions = [f for f in keras_graph.op_function_names(op) if f in catalog]
        if not functions:
            raise ModelImportError(
                f"{what} that an `op:` node cannot call: "
                f"`{keras_graph.op_function_name(op)}` is not among the keras.ops functions "
                "a spec may call (those taking Python functions are not: a spec never runs "
                "code)",
                "use a layer in the model instead, or a keras.ops function that takes tensors "
                "and plain arguments",
            )
        failure: ModelImportError | None = None
        for function in functions:  # the first that makes this operation
            try:
                return self._body(node, catalog[function], ref, what)
            except ModelImportError as exc:
                failure = failure or exc
        assert failure is not None
        raise failure

    def _body(
        self, node: Any, info: OpInfo, ref: Callable[[Any], str], what: str
    ) -> dict[str, Any]:
        function = info.name
        arguments = self._arguments(node, info, what)
        # The node's tensors in the order the function takes them; a tensor
        # used twice is one stand-in (and one marker) when checking.
        tensors: list[Any] = []
        params: dict[str, int | list[int]] = {}
        extra: list[int] = []
        constants: dict[str, Any] = {}
        for param in info.params:
            if param.name not in arguments:
                continue
            value = arguments[param.name]
            found = keras_graph.keras_tensors(value)
            if not found:
                if param.kind is ParamKind.VAR_POSITIONAL and value:
                    raise ModelImportError(
                        f"{what} gets constants in *{param.name}, which a spec cannot give",
                        "a spec passes only tensors (the refs of `from`) as *" + param.name,
                    )
                if param.kind is ParamKind.VAR_POSITIONAL:
                    continue
                try:
                    constants[param.name] = _plain(value)
                except _NotPlain as exc:
                    verb = "holds" if exc.nested else "is"
                    raise ModelImportError(
                        f"{what} whose argument '{param.name}' {verb} {exc}, which a spec "
                        "cannot write",
                        _INDEXING_HINT if info.name == "get_item" else _CONSTANTS_HINT,
                    ) from None
                continue
            if keras_graph.is_keras_tensor(value) and param.kind is not ParamKind.VAR_POSITIONAL:
                params[param.name] = len(tensors)
                tensors.append(value)
            elif isinstance(value, (list, tuple)) and len(found) == len(value):
                indices = list(range(len(tensors), len(tensors) + len(value)))
                tensors.extend(value)
                if param.kind is ParamKind.VAR_POSITIONAL:
                    extra = indices
                else:
                    params[param.name] = indices
            else:
                raise ModelImportError(
                    f"{what} gets '{param.name}' as a structure of tensors and other values, "
                    "which a spec cannot write",
                    "a spec passes a tensor, or a list of tensors, per parameter",
                )
        inputs = _inputs(info, params, extra, constants)
        if inputs is None:
            raise ModelImportError(
                f"{what} gets its tensors in a way a spec's `from` cannot say "
                f"(as {', '.join(params) or 'none'}, and *args)",
                "a spec passes an op's tensors in order, or by parameter name",
            )
        original = _signature(node, _markers(tensors))
        stand_ins = self._stand_ins(tensors)
        if not self._gives(info, inputs, constants, stand_ins, original):
            arrays = [k for k, v in arguments.items() if getattr(v, "ndim", 0) and k in constants]
            if arrays:
                raise ModelImportError(
                    f"{what} whose argument '{arrays[0]}' is an array: written as a list, "
                    f"keras.ops.{function} makes another operation of it",
                    _CONSTANTS_HINT,
                )
            raise ModelImportError(
                f"{what} that kgraph cannot write as an `op:` node making the same "
                f"operation (keras.ops.{function} with these arguments makes another)",
                "use a layer in the model instead; this may be a kgraph limitation",
            )
        # Constants that make no difference: the defaults its config lists.
        for key in reversed(list(constants)):
            param = info.param(key)
            if param is None or param.required:
                continue
            trial = {k: v for k, v in constants.items() if k != key}
            trial_inputs = _inputs(info, params, extra, trial)
            if trial_inputs is not None and self._gives(
                info, trial_inputs, trial, stand_ins, original
            ):
                constants, inputs = trial, trial_inputs
        return {"op": function, "from": _refs(inputs.form, tensors, ref), **constants}

    def _arguments(self, node: Any, info: OpInfo, what: str) -> dict[str, Any]:
        """The operation's constructor arguments (its config) and call arguments,
        by the names of the function's parameters."""
        op = node.operation
        try:
            config = dict(op.get_config())
        except Exception:  # Keras makes no config of constructor arguments it cannot save
            raise ModelImportError(
                f"{what} made with arguments that are not plain data (such as dtype objects)",
                _CONSTANTS_HINT,
            ) from None
        config.pop("name", None)
        call = _call_arguments(node)
        if call is None:
            raise ModelImportError(
                f"{what} is called with arguments its call() does not take",
                "use a layer in the model instead",
            )
        named = set(info.named_params)
        star = next((p.name for p in info.params if p.kind is ParamKind.VAR_POSITIONAL), None)
        arguments: dict[str, Any] = {}
        # A constructor argument the function has no parameter for is one the
        # function derives: left out, and the check says whether that holds.
        for key, value in config.items():
            if key in named:
                arguments[key] = value
        for key, (kind, value) in call.items():
            if kind is inspect.Parameter.VAR_POSITIONAL:
                target = star
            elif kind is inspect.Parameter.VAR_KEYWORD:
                for sub, item in value.items():
                    self._put(arguments, named, sub, item, what)
                continue
            else:
                target = key if key in named else None
            if target is None:
                if value is None or (isinstance(value, (tuple, dict)) and not value):
                    continue
                raise ModelImportError(
                    f"{what} is called with '{key}', which keras.ops.{info.name} does not take",
                    "use a layer in the model instead",
                )
            self._put(arguments, {target}, target, value, what)
        return arguments

    @staticmethod
    def _put(arguments: dict[str, Any], named: set[str], key: str, value: Any, what: str) -> None:
        if key not in named:
            raise ModelImportError(
                f"{what} is called with '{key}', which its keras.ops function does not take",
                "use a layer in the model instead",
            )
        if key in arguments and not keras_graph.keras_tensors(value):
            if not same(arguments[key], value):
                raise ModelImportError(
                    f"{what} has two values for '{key}' (its config's and its call's)",
                    "use a layer in the model instead",
                )
        arguments[key] = value

    def _stand_ins(self, tensors: list[Any]) -> list[Any]:
        """Fresh tensors like the node's (one per distinct tensor), to call the
        function on without touching the model."""
        made: dict[int, Any] = {}
        for tensor in tensors:
            if id(tensor) not in made:
                made[id(tensor)] = self.keras.KerasTensor(
                    tensor.shape,
                    dtype=tensor.dtype,
                    sparse=bool(getattr(tensor, "sparse", False)),
                    ragged=bool(getattr(tensor, "ragged", False)),
                )
        return [made[id(tensor)] for tensor in tensors]

    def _gives(
        self,
        info: OpInfo,
        inputs: _Inputs,
        constants: dict[str, Any],
        stand_ins: list[Any],
        original: Any,
    ) -> bool:
        """Whether the node, built as the builder builds it, makes the operation
        `original` describes (class, config, call arguments, outputs)."""
        from kgraph_cli.build import apply_op

        call, _ = bind(info, inputs.positional, inputs.keyword, list(constants))
        if call is None:
            return False
        try:
            result = apply_op(self.keras, info.name, call, stand_ins, constants)
            made = keras_graph.keras_tensors(result)
            if not made or len(made) != len(keras_graph.flatten(result)):
                return False
            node = keras_graph.made_by(made[0])
            if any(keras_graph.made_by(t) is not node for t in made):
                return False
            return same(_signature(node, _markers(stand_ins)), original)
        except Exception:  # the function refuses these arguments: not the same call
            return False


def op_signature(node: Any) -> Any:
    """What makes a call of an operation the call it is: the operation's class
    and config (name aside), its call arguments with every tensor as one
    marker, and its outputs' shapes and dtypes. For comparing an original's
    operations with a rebuilt model's."""
    return _signature(node, {})


def _signature(node: Any, markers: dict[int, int]) -> Any:
    op = node.operation
    try:
        config = dict(op.get_config())
    except Exception:  # no config: compare the rest
        config = {}
    config.pop("name", None)

    def mark(value: Any) -> Any:
        if keras_graph.is_keras_tensor(value):
            return _Marker(markers.get(id(value), -1))
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [mark(v) for v in value]
        return value

    call = _call_arguments(node)
    arguments = {k: mark(v) for k, (_, v) in (call or {}).items()}
    outputs = [
        (tuple(t.shape), str(t.dtype), bool(getattr(t, "sparse", False))) for t in node.outputs
    ]
    return [type(op).__qualname__, config, arguments, outputs]


def _markers(tensors: list[Any]) -> dict[int, int]:
    """id(tensor) -> the number of the distinct tensor it is."""
    found: dict[int, int] = {}
    for tensor in tensors:
        found.setdefault(id(tensor), len(found))
    return found


def _call_arguments(node: Any) -> dict[str, tuple[Any, Any]] | None:
    """A call's arguments by the names of the operation's call() parameters:
    name -> (parameter kind, value); None if they do not fit."""
    try:
        signature = inspect.signature(node.operation.call)
        bound = signature.bind(*node.arguments.args, **node.arguments.kwargs)
    except (TypeError, ValueError):
        return None
    return {k: (signature.parameters[k].kind, v) for k, v in bound.arguments.items()}


def _inputs(
    info: OpInfo,
    params: dict[str, int | list[int]],
    extra: list[int],
    constants: dict[str, Any],
) -> _Inputs | None:
    """`from:` for tensors going to `params` (and `extra` to *args), with these
    constants: a ref or a list when the tensors fill, in order, the positional
    parameters no constant names (then *args); by name otherwise; None when a
    spec cannot say it."""
    if not params and not extra:  # no tensor: not an operation of a graph
        return None
    free = [
        p.name for p in info.params if p.kind is ParamKind.POSITIONAL and p.name not in constants
    ]
    single = all(isinstance(v, int) for v in params.values())
    leading = list(params) == free[: len(params)]
    if single and leading and (not extra or len(params) == len(free)):
        order = [params[name] for name in free[: len(params)]] + extra
        if len(order) == 1:
            return _Inputs(order[0], 1, {})
        return _Inputs(order, len(order), {})
    if extra:  # *args cannot be named
        return None
    return _Inputs(dict(params), 0, dict(params))


def _refs(form: Any, tensors: list[Any], ref: Callable[[Any], str]) -> Any:
    if isinstance(form, int):
        return ref(tensors[form])
    if isinstance(form, list):
        return [ref(tensors[i]) for i in form]
    return {key: _refs(value, tensors, ref) for key, value in form.items()}


def _plain(value: Any) -> Any:
    """A constant as YAML data: tuples as lists, numpy values as Python's;
    `_NotPlain` (saying what it is) for anything else."""
    import numpy as np

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotPlain(f"{value!r}")
        return value
    try:
        if isinstance(value, (list, tuple)):
            return [_plain(v) for v in value]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            if "type" not in value:  # a spec reads {type: ...} as a Keras object
                return {k: _plain(v) for k, v in value.items()}
    except _NotPlain as exc:
        raise _NotPlain(str(exc), nested=True) from None
    if isinstance(value, (np.generic, np.ndarray)) and value.dtype.kind in "biuf":
        return _plain(value.tolist())
    if isinstance(value, slice):
        raise _NotPlain("a slice (as in `x[:, 0]`)")
    if value is Ellipsis:
        raise _NotPlain("an Ellipsis (as in `x[..., 0]`)")
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    raise _NotPlain(f"a value of type {type(value).__name__} ({text})")
