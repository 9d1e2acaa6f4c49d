"""What a Keras class's constructor takes, read from its signatures (no Keras
import): used at run time for plugin layers and by `make catalog` for Keras's own."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

# Constructor arguments that hold another layer (wrappers).
LAYER_ARGUMENTS = ("layer", "backward_layer")


def init_parameters(cls: type) -> Iterator[tuple[bool, list[inspect.Parameter]]]:
    """The parameters of each `__init__` up the MRO, for as long as each passes
    **kwargs on to the next: (whether it is the class's own, its parameters)."""
    own = True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = list(inspect.signature(init).parameters.values())
        except (TypeError, ValueError):  # a builtin's __init__ says nothing more
            return
        yield own, parameters
        own = False
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return


def constructor_defaults(cls: type) -> dict[str, Any]:
    """Every constructor argument with a default, and that default (the
    nearest class's, following **kwargs up the MRO)."""
    defaults: dict[str, Any] = {}
    for _, parameters in init_parameters(cls):
        for param in parameters:
            if param.kind is not param.VAR_KEYWORD and param.default is not param.empty:
                defaults.setdefault(param.name, param.default)
    return defaults


def describe_class(cls: type) -> dict[str, Any]:
    """Constructor arguments of a Keras class, following **kwargs up the MRO."""
    params: dict[str, bool] = {}  # name -> required
    for own, parameters in init_parameters(cls):
        for param in parameters:
            skipped = (param.VAR_POSITIONAL, param.VAR_KEYWORD)
            if param.name == "self" or param.name in params or param.kind in skipped:
                continue
            required = param.default is inspect.Parameter.empty
            # A base class's required argument (RNN's `cell`, BaseConv's
            # `rank`) is one the subclass fills in itself, not the user's.
            if own or not required:
                params[param.name] = required
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    return {
        "params": sorted(params),
        "required": sorted(name for name, required in params.items() if required),
        "wraps_layer": any(name in params for name in LAYER_ARGUMENTS),
        # A preprocessing layer that learns from data (Normalization...).
        "adapts": callable(getattr(cls, "adapt", None)),
        "doc": doc[0] if doc else "",
    }


_PARAM_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
    inspect.Parameter.VAR_POSITIONAL: "var_positional",
    inspect.Parameter.KEYWORD_ONLY: "keyword",
    inspect.Parameter.VAR_KEYWORD: "var_keyword",
}


def describe_function(function: Any) -> dict[str, Any]:
    """The parameters of a function (a keras.ops one), in order, with their kind."""
    params = [
        {
            "name": param.name,
            "kind": _PARAM_KINDS[param.kind],
            "required": param.default is inspect.Parameter.empty
            and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD),
        }
        for param in inspect.signature(function).parameters.values()
    ]
    doc = (inspect.getdoc(function) or "").strip().splitlines()
    return {"params": params, "doc": doc[0] if doc else ""}
