"""What a Keras class's constructor takes, read from its signatures (no Keras
import): used at run time for plugin layers and by `make catalog` for Keras's own."""

from __future__ import annotations

import inspect
from typing import Any

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
