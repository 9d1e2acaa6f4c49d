"""The `keras.ops` functions a spec may call as `op:` nodes, from the catalog
(no TensorFlow): their parameters, and how a node's tensor inputs and constant
arguments bind to them.

A node `{op: multiply, from: x, x2: 0.5}` calls `keras.ops.multiply(x, 0.5)`:
the refs of `from:` fill, in order, the positional parameters no constant
names (then `*args`); `from: {xs: [a, b]}` names the parameter each goes to;
every other key of the node is a constant argument. Functions that take
Python callables (`cond`, `scan`, `map`...) are not in the catalog: a spec
never runs code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from kgraph_cli.layers import catalog_data
from kgraph_cli.suggest import closest, did_you_mean

# keras.ops functions whose parameters are Python functions.
CALLABLE_PARAMS = frozenset(
    {
        "f",
        "fn",
        "fun",
        "pyfunc",
        "function",
        "body",
        "body_fun",
        "true_fn",
        "false_fn",
        "branches",
        "cond",
    }
)


class ParamKind(StrEnum):
    POSITIONAL = "positional"  # may be passed by position (or by name)
    VAR_POSITIONAL = "var_positional"  # *operands
    KEYWORD = "keyword"  # keyword-only
    VAR_KEYWORD = "var_keyword"  # **kwargs


@dataclass(frozen=True)
class OpParam:
    name: str
    kind: ParamKind
    required: bool


@dataclass(frozen=True)
class OpInfo:
    """One keras.ops function: `name` as a spec writes it (`add`, `image.resize`)."""

    name: str
    params: tuple[OpParam, ...]
    doc: str = ""

    def param(self, name: str) -> OpParam | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def named_params(self) -> list[str]:
        """The parameters a constant or a keyword input may name."""
        kinds = (ParamKind.POSITIONAL, ParamKind.KEYWORD)
        return [p.name for p in self.params if p.kind in kinds]


@cache
def ops_catalog() -> dict[str, OpInfo]:
    return {
        name: OpInfo(
            name,
            tuple(OpParam(p["name"], ParamKind(p["kind"]), p["required"]) for p in entry["params"]),
            entry.get("doc", ""),
        )
        for name, entry in catalog_data()["ops"].items()
    }


# What a parameter receives: one input (its index in the node's refs), a list
# of inputs, or the constant written under the parameter's name.
@dataclass(frozen=True)
class Tensor:
    index: int


@dataclass(frozen=True)
class Tensors:
    indices: tuple[int, ...]


@dataclass(frozen=True)
class Constant:
    key: str


Slot = Tensor | Tensors | Constant


@dataclass
class OpCall:
    """How to call an op: positional slots, then keyword slots."""

    positional: list[Slot]
    keywords: dict[str, Slot]


@dataclass(frozen=True)
class BindProblem:
    """Why inputs and constants do not fit the function; `key` is the constant
    or keyword input it is about (None: the node's `from`)."""

    code: str
    message: str
    hint: str
    key: str | None = None


def bind(
    info: OpInfo,
    positional_inputs: int,
    keyword_inputs: dict[str, Sequence[int] | int],
    constants: Sequence[str],
) -> tuple[OpCall | None, list[BindProblem]]:
    """Fit `positional_inputs` refs (in order), `keyword_inputs` (parameter ->
    one ref index, or a list of them) and `constants` (parameter names) to
    `info`'s parameters."""
    problems: list[BindProblem] = []
    named = info.named_params
    given: dict[str, Slot] = {}
    for key in constants:
        if key in named:
            given[key] = Constant(key)
        else:
            problems.append(_unknown(info, key, "argument"))
    for key, where in keyword_inputs.items():
        if key not in named:
            problems.append(_unknown(info, key, "input"))
        elif key in given:
            problems.append(
                BindProblem(
                    "op-args",
                    f"'{key}' is given twice: in `from` and as a constant",
                    "give it once",
                    key,
                )
            )
        else:
            given[key] = Tensors(tuple(where)) if not isinstance(where, int) else Tensor(where)
    free = [p for p in info.params if p.kind is ParamKind.POSITIONAL and p.name not in given]
    variadic = next((p for p in info.params if p.kind is ParamKind.VAR_POSITIONAL), None)
    extra: list[Slot] = []
    for index in range(positional_inputs):
        if index < len(free):
            given[free[index].name] = Tensor(index)
        elif variadic is not None:
            extra.append(Tensor(index))
        else:
            takes = len(free)
            problems.append(
                BindProblem(
                    "op-args",
                    f"op '{info.name}' takes {takes} tensor input(s) here, "
                    f"`from` gives {positional_inputs}",
                    f"its parameters: {_signature(info)}",
                )
            )
            break
    # A misspelt required parameter is one mistake, reported once (as unknown).
    unknown = [key for key in [*constants, *keyword_inputs] if key not in named]
    misspelt = {name for key in unknown for name in closest(key, named)}
    problems += [
        _missing(info, p)
        for p in info.params
        if p.required and p.name not in given and p.name not in misspelt
    ]
    if problems:
        return None, problems
    call = OpCall([], {})
    by_position = True
    for param in info.params:
        if param.kind is ParamKind.POSITIONAL:
            if param.name not in given:
                by_position = False  # a default left out: what follows goes by name
            elif by_position:
                call.positional.append(given[param.name])
            else:
                call.keywords[param.name] = given[param.name]
        elif param.kind is ParamKind.VAR_POSITIONAL:
            if extra and not by_position:
                return None, [
                    BindProblem(
                        "op-args",
                        f"op '{info.name}' gets more inputs than parameters before *{param.name}",
                        f"give every parameter before them: {_signature(info)}",
                    )
                ]
            call.positional.extend(extra)
        elif param.kind is ParamKind.KEYWORD and param.name in given:
            call.keywords[param.name] = given[param.name]
    return call, []


def _unknown(info: OpInfo, key: str, what: str) -> BindProblem:
    return BindProblem(
        "unknown-arg",
        f"op '{info.name}' has no parameter '{key}'",
        did_you_mean(key, info.named_params) or f"its parameters: {_signature(info)}",
        key,
    )


def _missing(info: OpInfo, param: OpParam) -> BindProblem:
    return BindProblem(
        "missing-arg",
        f"op '{info.name}' needs '{param.name}'",
        f"give it in `from` (a tensor) or as `{param.name}: ...` (a constant); "
        f"its parameters: {_signature(info)}",
    )


def _signature(info: OpInfo) -> str:
    parts = []
    for p in info.params:
        star = {ParamKind.VAR_POSITIONAL: "*", ParamKind.VAR_KEYWORD: "**"}.get(p.kind, "")
        parts.append(f"{star}{p.name}" + ("" if p.required or star else "=..."))
    return f"{info.name}({', '.join(parts)})"
