"""Hypothesis strategies for tests/test_fuzz.py: spec texts, `--set` overrides
and command lines that a user (or an attacker) could hand kgraph.

Four families:

- `valid_specs()`: specs assembled from parts (inputs, Dense/merge/op/share
  nodes, blocks with `repeat`, nested models, several outputs) that kgraph
  must accept: a rejection is a bug either here or there.
- `mutated_specs()`: every example spec of specs/ (and specs/parts/) with one
  to three damages: keys deleted, renamed or retyped, near-miss names, refs to
  missing, self or cyclic nodes, bad shapes, repeats and includes, hostile
  YAML (tags, special floats, huge integers, deep nesting, alias bombs).
- `damaged_bytes()`: the same files damaged as bytes (control characters,
  invalid UTF-8, BOMs, tabs, truncation).
- `overrides()` and `command_lines()`: `--set` arguments made from a spec's
  real key paths and made-up ones, and argument lists for the commands.

Strategies return text (or bytes, or argument lists) only; the harness in
test_fuzz.py writes them into a scratch folder laid out by `WORKSPACE_FILES`
and runs kgraph there. Pure Python: no TensorFlow here.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
CATALOG_FILE = REPO / "kgraph_cli" / "catalog" / "keras_layers.json"
SPEC_NAME = "spec.yaml"  # the spec under test, in the scratch folder

# -- the scratch folder ----------------------------------------------------
# Files every run finds in its working folder. The canaries record being
# imported: a spec that makes kgraph import one (as a plugin, a layer module
# or a YAML tag) has run code. They are named like the example plugins so
# that `type: my_layers.CustomDense` finds one if kgraph ever imported it.
CANARY_MODULES = ("my_layers", "vae_layers", "canary")
EXECUTED_PREFIX = "EXECUTED-"
CANARY_SOURCE = (
    "import pathlib\npathlib.Path(__file__).with_name('{marker}').write_text('imported')\n"
)
# Relative paths (in the scratch folder) the strategies may name.
PARTS = "parts/encoder.yaml"
CYCLE_A, CYCLE_B = "cycle_a.yaml", "cycle_b.yaml"
A_FOLDER = "adir"  # an empty folder
FOLDER_NAMED_YAML = "folder.yaml"  # a folder with a spec's name
FIFO = "fifo.yaml"  # a named pipe: reading it blocks until someone writes
EMPTY = "empty.yaml"
NOT_UTF8 = "latin1.yaml"
CYCLE_TEXT = "kgraph: 1\ninclude: {other}\nblocks: {{}}\n"


def workspace_files() -> dict[str, bytes]:
    """The regular files of the scratch folder (besides the spec under test)."""
    files = {
        f"{name}.py": CANARY_SOURCE.format(marker=EXECUTED_PREFIX + name).encode()
        for name in CANARY_MODULES
    }
    files[PARTS] = (SPECS / "parts" / "encoder.yaml").read_bytes()
    files[CYCLE_A] = CYCLE_TEXT.format(other=CYCLE_B).encode()
    files[CYCLE_B] = CYCLE_TEXT.format(other=CYCLE_A).encode()
    files[EMPTY] = b""
    files[NOT_UTF8] = "kgraph: 1\ndescription: caf\u00e9\n".encode("latin-1")
    return files


# -- YAML text with raw pieces ---------------------------------------------
class Raw(str):
    """A value written into the YAML text verbatim (a tag, `.inf`, a huge
    integer, an alias bomb): what `yaml.safe_dump` cannot or will not write."""


def dump(data: Any) -> str:
    """`data` as block-style YAML, with every `Raw` value spliced in as written."""
    raws: list[str] = []

    def stash(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(str(value))
            return f"__raw_{len(raws) - 1}__"
        if isinstance(value, dict):
            return {stash(k) if isinstance(k, Raw) else k: stash(v) for k, v in value.items()}
        if isinstance(value, list):
            return [stash(v) for v in value]
        return value

    text = yaml.safe_dump(
        stash(data), sort_keys=False, allow_unicode=True, width=1 << 30, default_flow_style=None
    )
    # Longest index first, so that __raw_1__ does not match inside __raw_12__.
    for index in reversed(range(len(raws))):
        text = text.replace(f"__raw_{index}__", raws[index])
    return text


def nested(depth: int, open_: str = "[", close: str = "]") -> Raw:
    return Raw(open_ * depth + close * depth)


def alias_bomb(levels: int, width: int = 9) -> Raw:
    """A flow sequence of `levels` anchors, each repeating the one before
    `width` times: width**levels values from a few hundred bytes."""
    items = ["&a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        items.append(f"&a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return Raw("[" + ", ".join(items) + "]")


# What a value can be turned into: every YAML type, and the edge cases.
SPECIAL_SCALARS = [
    ".inf",
    "-.inf",
    "+.inf",
    ".nan",
    ".NaN",
    ".Inf",
    "-.INF",
    "1e999",
    "-1e999",
    "1e-999",
    "0x1F",
    "0o17",
    "1_000",
    "+1",
    "-0",
    "0.",
    ".5",
    "1:30",
    "2001-12-14",
    "2001-12-14T21:59:43.10-05:00",
    "~",
    "null",
    "Null",
    "NULL",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "True",
    "FALSE",
    "''",
    '""',
    "' '",
    "'\\x00'",
    '"\\0"',
    '"\\x07"',
    '"\\u2028"',
    '"\\ud800"',
    "-",
    "?",
    "[]",
    "{}",
    "[[]]",
    "[{}]",
    "{a: }",
    "!!str 1",
    "!!int x",
    "!!float abc",
    "!!bool maybe",
    "!!null x",
    "!!map x",
    "!!seq x",
    "!!merge x",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!timestamp x",
    "!custom x",
    "!<tag:yaml.org,2002:str> x",
    "!!python/none ''",
    "*undefined_alias",
    "&anchor 1",
    "<<",
    "$" + "{units}",
    "$" + "{index}",
    "$" + "{",
    "$" + "{nope}",
    "!!python/object/apply:os.system ['touch EXECUTED-yaml-tag']",
    "!!python/object/new:canary.X []",
    "!!python/name:canary.X ''",
    "!!python/module:canary ''",
]
HUGE_INTS = [
    "9" * 19,
    "9" * 20,
    "-" + "9" * 19,
    "1" + "0" * 308,
    "1" * 4300,
    "1" * 4301,
    "7" * 10_000,
]


@st.composite
def hostile_values(draw: st.DrawFn) -> Any:
    """A value of any type, leaning on the ones that break converters."""
    choice = draw(st.integers(0, 11))
    if choice == 0:
        return Raw(draw(st.sampled_from(SPECIAL_SCALARS)))
    if choice == 1:
        return Raw(draw(st.sampled_from(HUGE_INTS)))
    if choice == 2:
        return draw(st.integers(-(2**70), 2**70))
    if choice == 3:
        return draw(st.floats(allow_nan=True, allow_infinity=True))
    if choice == 4:
        return draw(st.text(max_size=20))
    if choice == 5:
        return draw(st.sampled_from([None, True, False, 0, -1, 1, 2**31, 2**63, 0.0, -0.5]))
    if choice == 6:
        return draw(st.lists(st.integers(-3, 100) | st.none() | st.text(max_size=3), max_size=4))
    if choice == 7:
        return draw(st.dictionaries(st.text(max_size=6), st.integers() | st.none(), max_size=3))
    if choice == 8:
        return nested(draw(st.sampled_from([2, 50, 99, 100, 101, 150, 500, 1200, 5000])))
    if choice == 9:
        return nested(draw(st.sampled_from([99, 100, 101, 600])), "{a: ", "}")
    if choice == 10:
        return alias_bomb(draw(st.integers(2, 9)))
    return draw(st.sampled_from(["Dense", "relu", "x", "layers", "kgraph", "from", "type"]))


# -- near-miss names ---------------------------------------------------------
@st.composite
def near_miss(draw: st.DrawFn, name: str) -> str:
    """`name` with one character changed, dropped, doubled or swapped, or its case."""
    if not name:
        return draw(st.sampled_from(["_", "a", " "]))
    index = draw(st.integers(0, len(name) - 1))
    how = draw(st.integers(0, 5))
    if how == 0:
        return name[:index] + name[index + 1 :]
    if how == 1:
        char = draw(st.sampled_from(list("aeioxz_0-. ") + ["\u00e9", "\u0430", "\t"]))
        return name[:index] + char + name[index + 1 :]
    if how == 2:
        return name[:index] + name[index] + name[index:]
    if how == 3 and len(name) > 1:
        index = min(index, len(name) - 2)
        return name[:index] + name[index + 1] + name[index] + name[index + 2 :]
    if how == 4:
        return name.swapcase()
    return name + draw(st.sampled_from(["_", "1", "s", ".0", ".1", ".99"]))


# -- the example specs -------------------------------------------------------
@dataclass(frozen=True)
class Example:
    """An example spec of specs/, as text and as plain data."""

    name: str  # relative to specs/
    text: str
    data: Any


@cache
def examples() -> tuple[Example, ...]:
    files = sorted(SPECS.glob("*.yaml")) + sorted((SPECS / "parts").glob("*.yaml"))
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        found.append(Example(str(path.relative_to(SPECS)), text, yaml.safe_load(text)))
    return tuple(found)


# Specs whose models are quick to build (the `fuzz` budget builds them): no
# keras.applications model, few parameters.
SLOW_TO_BUILD = {"resnet50_imagenet.yaml", "transfer_mobilenet.yaml", "main_aux.yaml"}


def example_names(buildable_only: bool = False) -> list[str]:
    return [e.name for e in examples() if not (buildable_only and e.name in SLOW_TO_BUILD)]


def example(name: str) -> Example:
    return next(e for e in examples() if e.name == name)


def key_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and list indices) into `data`, containers included."""
    paths: list[tuple[Any, ...]] = []
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for key, value in items:
        path = (*prefix, key)
        paths.append(path)
        paths += key_paths(value, path)
    return paths


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


def _graphs(data: Any) -> list[dict]:
    """The mappings holding a graph (`layers:`) in a spec: top level, models, blocks."""
    if not isinstance(data, dict):
        return []
    found = [data] if isinstance(data.get("layers"), dict) else []
    for section in ("models", "blocks"):
        if isinstance(data.get(section), dict):
            found += [
                g
                for g in data[section].values()
                if isinstance(g, dict) and isinstance(g.get("layers"), dict)
            ]
    return found


REF_DAMAGE = ["missing_node", "x.", ".x", "x..y", "x.99", "x.-1", "", " ", "1abc", "a-b"]
SHAPES = [
    [0],
    [-1],
    [-5, 3],
    [10**12],
    [2**63],
    [None],
    [None, None, None],
    ["a"],
    [],
    [1.5],
    [True],
    None,
    "x",
    3,
    3.5,
    [[]],
    {"a": 1},
    [1] * 40,
    [0, 0, 0],
    Raw("[.inf]"),
    Raw("[.nan, 3]"),
    Raw("[" + "9" * 5000 + "]"),
]
BLOCK_ARGS = [[], [{}], [{"units": 2}] * 3, {"units": Raw(".nan")}, {"nope": 1}, [None], "x"]
REPEATS = [0, -1, -(2**31), 10**6, 10**9, 2**63, 10**30, 1.5, "2", True, None, [], {}, Raw(".inf")]
INCLUDES = [
    "missing.yaml",
    SPEC_NAME,
    f"./{SPEC_NAME}",
    CYCLE_A,
    [CYCLE_A, CYCLE_B],
    "/dev/null",
    A_FOLDER,
    f"{A_FOLDER}/",
    ".",
    "..",
    "",
    FOLDER_NAMED_YAML,
    FIFO,
    EMPTY,
    NOT_UTF8,
    f"{PARTS}/x.yaml",
    "canary.py",
    [PARTS, PARTS],
    [None],
    3,
    {"a": 1},
    "/" + "x" * 300 + ".yaml",
    "a" * 5000 + ".yaml",
    "parts\x00.yaml",
    "\u00e9.yaml",
]
# Special files whose reading never ends: added to INCLUDES and the command
# paths only once the harness has proved, out of process, that kgraph refuses
# them (otherwise reading one takes the machine's memory).
ENDLESS_FILES = ["/dev/zero", "/dev/urandom"]


def pool(values: list[Any]) -> st.SearchStrategy[Any]:
    """One of `values`, as a copy: later damages edit the spec in place, and
    must not edit the pool (Hypothesis replays draws and needs them unchanged)."""
    return st.sampled_from(values).map(copy.deepcopy)


def mutation_names(data: Any) -> list[str]:
    names = ["delete", "retype", "rename_key", "near_miss_value", "swap", "include", "add_key"]
    if _graphs(data):
        names += ["bad_ref", "self_ref", "cycle", "duplicate_name", "block_repeat", "wide"]
    if isinstance(data, dict) and isinstance(data.get("inputs"), dict):
        names.append("shape")
    return names


@st.composite
def mutate(draw: st.DrawFn, data: Any, endless: bool = False, large: bool = True) -> Any:
    """One damage to `data` (a fresh copy of an example's plain data), in place.
    `large`: may add thousands of nodes (too slow to build: Keras takes about
    10 ms a layer)."""
    how = draw(st.sampled_from(mutation_names(data)))
    paths = key_paths(data) or [("kgraph",)]
    if how in ("delete", "retype", "rename_key", "near_miss_value"):
        path = draw(st.sampled_from(paths))
        parent = _parent(data, path)
        key = path[-1]
        if how == "delete":
            del parent[key]
        elif how == "retype":
            parent[key] = draw(hostile_values())
        elif how == "rename_key" and isinstance(parent, dict):
            new = draw(near_miss(str(key)) | st.sampled_from(["", "from", "type", "<<", "1"]))
            parent[new] = parent.pop(key)
        elif isinstance(parent[key], str):
            parent[key] = draw(near_miss(parent[key]))
        return data
    if how == "swap":
        first, second = draw(st.sampled_from(paths)), draw(st.sampled_from(paths))
        a, b = _parent(data, first), _parent(data, second)
        try:
            a[first[-1]], b[second[-1]] = b[second[-1]], a[first[-1]]
        except (KeyError, IndexError):
            pass  # one was inside the other and moved
        return data
    if how == "include":
        values = INCLUDES + (ENDLESS_FILES if endless else [])
        data["include"] = draw(pool(values))
        return data
    if how == "add_key":
        path = draw(st.sampled_from([(), *paths]))
        target = _parent(data, (*path, None)) if path else data
        if isinstance(target, dict):
            key = draw(
                st.sampled_from(
                    [
                        "from",
                        "type",
                        "repeat",
                        "args",
                        "share",
                        "block",
                        "model",
                        "op",
                        "graph",
                        "call",
                        "params",
                        "include",
                        "train",
                    ]
                )
            )
            target[key] = draw(hostile_values())
        return data
    if how == "shape":
        inputs = data["inputs"]
        if inputs:
            name = draw(st.sampled_from(sorted(inputs, key=str)))
            shape = draw(pool(SHAPES))
            inputs[name] = {"shape": shape} if draw(st.booleans()) else shape
        return data
    graph = draw(st.sampled_from(_graphs(data)))
    layers = graph["layers"]
    if not layers:
        return data
    names = sorted(layers, key=str)
    name = draw(st.sampled_from(names))
    node = layers[name]
    if not isinstance(node, dict):
        return data
    if how == "bad_ref":
        node["from"] = draw(st.sampled_from(REF_DAMAGE) | st.sampled_from(names).flatmap(near_miss))
    elif how == "self_ref":
        node["from"] = draw(st.sampled_from([name, [name, name], {"x": name}, f"{name}.0"]))
    elif how == "cycle":
        # This node takes its input from another: a cycle wherever the other
        # depends on this one.
        node["from"] = draw(st.sampled_from(names))
    elif how == "duplicate_name":
        other = draw(st.sampled_from(names))
        layers[draw(near_miss(other) | st.just(other.upper()))] = dict(node)
    elif how == "block_repeat":
        if not isinstance(data.get("blocks"), dict):
            data["blocks"] = {}
        data["blocks"]["fuzz_block"] = {
            "params": {"units": 4},
            "inputs": ["x"],
            "layers": {"d": {"type": "Dense", "units": "${units}", "from": "x"}},
            "outputs": "d",
        }
        for key in ("type", "op", "share", "model", "application"):
            node.pop(key, None)
        node.update(block="fuzz_block", repeat=draw(pool(REPEATS)))
        if draw(st.booleans()):
            node["args"] = draw(pool(BLOCK_ARGS))
    elif how == "wide":
        # Many nodes in one graph: what the graph checks do per node.
        count = draw(st.sampled_from([200, 2000] if large else [200]))
        for index in range(count):
            layers[f"w{index}"] = {"type": "Dense", "units": 1, "from": name}
    return data


@st.composite
def mutated_specs(
    draw: st.DrawFn, names: list[str] | None = None, endless: bool = False, large: bool = True
) -> str:
    """An example spec with one to three damages, as YAML text."""
    chosen = example(draw(st.sampled_from(names or example_names())))
    data = yaml.safe_load(chosen.text)  # a fresh copy to damage
    for _ in range(draw(st.integers(1, 3))):
        data = draw(mutate(data, endless, large))
    return dump(data)


# -- byte-level damage -------------------------------------------------------
CONTROL = [
    b"\x00",
    b"\x01",
    b"\x07",
    b"\x08",
    b"\x0b",
    b"\x0c",
    b"\x1b",
    b"\x7f",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"\xef\xbb\xbf",
    b"\xef\xbf\xbe",
    b"\xf4\x8f\xbf\xbf",
    b"\r",
    b"\t",
]
BAD_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xc3",
    b"\xe2\x82",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
]
BOMS = [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"]
YAML_PUNCT = list(b":{}[]&*!|>'\"%@`#,?-")


@st.composite
def damage(draw: st.DrawFn, raw: bytes) -> bytes:
    """One byte-level damage of a file's text."""
    at = draw(st.integers(0, len(raw)))
    how = draw(st.integers(0, 11))
    if how == 0:
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if how == 1:
        return raw[:at] + draw(st.sampled_from(CONTROL)) + raw[at:]
    if how == 2:
        return raw[:at]
    if how == 3:
        return raw[:at] + draw(st.sampled_from(BAD_UTF8)) + raw[at:]
    if how == 4:
        bom = draw(st.sampled_from(BOMS))
        if bom == b"\xff\xfe":
            return bom + raw.decode("utf-8", "replace").encode("utf-16-le")
        return bom + raw if draw(st.booleans()) else raw[:at] + bom + raw[at:]
    if how == 5:  # indentation by tabs
        return re.sub(rb"(?m)^  ", b"\t", raw, count=draw(st.integers(1, 5)))
    if how == 6:
        return raw.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\x85", b"\n\n"])))
    if how == 7:
        lines = raw.split(b"\n")
        index = draw(st.integers(0, len(lines) - 1))
        op = draw(st.integers(0, 2))
        if op == 0:
            lines.insert(index, lines[index])
        elif op == 1:
            del lines[index]
        else:
            lines[index] = b"  " + lines[index]
        return b"\n".join(lines)
    if how == 8 and raw:
        at = min(at, len(raw) - 1)
        return raw[:at] + bytes([draw(st.sampled_from(YAML_PUNCT))]) + raw[at + 1 :]
    if how == 9:  # a chunk repeated: long lines, many keys
        end = min(len(raw), at + draw(st.integers(1, 200)))
        return raw[:at] + raw[at:end] * draw(st.sampled_from([2, 100, 5000])) + raw[end:]
    if how == 10:
        return raw[:at] + b"\n" * draw(st.sampled_from([1, 1000, 100_000])) + raw[at:]
    return raw[:at] + b"\xa0" + raw[at:]  # a Latin-1 no-break space: not UTF-8


@st.composite
def damaged_bytes(draw: st.DrawFn, names: list[str] | None = None) -> bytes:
    """An example spec's bytes with one to three byte-level damages."""
    raw = example(draw(st.sampled_from(names or example_names()))).text.encode("utf-8")
    for _ in range(draw(st.integers(1, 3))):
        raw = draw(damage(raw))
    return raw


# -- valid specs from parts --------------------------------------------------
ACTIVATIONS = ["relu", "tanh", "sigmoid", "linear", "gelu", "softmax", None]
UNARY = [
    lambda d: {"type": "Dropout", "rate": d(st.sampled_from([0.0, 0.1, 0.5]))},
    lambda d: {"type": "Activation", "activation": d(st.sampled_from(ACTIVATIONS[:-1]))},
    lambda d: {"type": "LayerNormalization"},
    lambda d: {"type": "BatchNormalization", "momentum": 0.9},
    lambda d: {"type": "GaussianNoise", "stddev": 0.1},
    lambda d: {"type": "Identity"},
    lambda d: {"op": d(st.sampled_from(["relu", "tanh", "abs", "negative", "square"]))},
    lambda d: {"op": "add", "x2": d(st.floats(-10, 10, allow_nan=False))},
]
MERGES = ["Add", "Average", "Maximum", "Minimum", "Multiply"]
UNIT_BLOCK = {
    "params": {"units": None},
    "inputs": ["x"],
    "layers": {
        "d": {"type": "Dense", "units": "${units}", "activation": "relu", "from": "x"},
        "sum": {"type": "Add", "from": ["d", "x"]},
    },
    "outputs": "sum",
}
GENERATED_TRAIN = {
    "data": {"source": {"generated": 16}},
    "compile": {"optimizer": "sgd", "loss": "mse"},
    "fit": {"batch_size": 8, "epochs": 1, "seed": 0},
}
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@st.composite
def valid_specs(draw: st.DrawFn) -> str:
    """A spec kgraph must accept: every tensor has one shape, (batch, width),
    (batch, 3, width) or (batch, 3, 3, width), so any node can feed any other,
    merges and shares line up, and blocks chain."""
    width = draw(st.integers(1, 6))
    shape = [3] * draw(st.integers(0, 2)) + [width]
    spec: dict[str, Any] = {
        "kgraph": 1,
        "name": draw(identifiers.filter(lambda s: s not in ("sub", "unit"))),
    }
    if draw(st.booleans()):
        # Any text but control characters (U+0000-001F, U+007F-009F), which a spec refuses.
        spec["description"] = draw(
            st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=40)
        )
    inputs: dict[str, Any] = {}
    for index in range(draw(st.integers(1, 3))):
        inputs[f"in{index}"] = draw(
            st.sampled_from([shape, {"shape": shape}, {"shape": shape, "dtype": "float32"}])
        )
    # Every input feeds a Dense layer first, so that none is left unused.
    layers: dict[str, Any] = {
        f"{name}_d": {"type": "Dense", "units": width, "from": name} for name in inputs
    }
    producers = list(layers)  # names whose output has the one shape
    used: set[str] = set()
    dense_nodes = list(layers)  # Dense layers fed that shape: safe to share
    models: dict[str, Any] = {}
    blocks: dict[str, Any] = {}

    def pick(count: int = 1) -> list[str]:
        chosen = draw(
            st.lists(st.sampled_from(producers), min_size=count, max_size=count, unique=True)
            if len(producers) >= count
            else st.just(producers[:1] * count)
        )
        used.update(chosen)
        return chosen

    for index in range(draw(st.integers(1, 8))):
        name = f"n{index}"
        kinds = ["dense", "unary", "merge", "concat", "share", "block", "model"]
        kind = draw(st.sampled_from(kinds + (["conv", "pool"] if len(shape) > 1 else [])))
        if kind == "dense" or (kind == "share" and not dense_nodes):
            node = {"type": "Dense", "units": width, "from": pick()[0]}
            if (act := draw(st.sampled_from(ACTIVATIONS))) is not None:
                node["activation"] = act
            dense_nodes.append(name)
        elif kind == "conv":
            node = {
                "type": f"Conv{len(shape) - 1}D",
                "filters": width,
                "kernel_size": draw(st.integers(1, 3)),
                "padding": "same",
                "from": pick()[0],
            }
        elif kind == "pool":
            pool = draw(st.sampled_from(["MaxPooling", "AveragePooling"]))
            node = {"type": f"{pool}{len(shape) - 1}D", "pool_size": 2, "strides": 1}
            node |= {"padding": "same", "from": pick()[0]}
        elif kind == "unary":
            node = {**draw(st.sampled_from(UNARY))(draw), "from": pick()[0]}
        elif kind == "merge" and len(producers) >= 2:
            node = {
                "type": draw(st.sampled_from(MERGES)),
                "from": pick(draw(st.integers(2, min(3, len(producers))))),
            }
        elif kind == "concat" and len(producers) >= 2:
            layers[f"{name}_cat"] = {"type": "Concatenate", "from": pick(2)}
            node = {"type": "Dense", "units": width, "from": f"{name}_cat"}
        elif kind == "share":
            node = {"share": draw(st.sampled_from(dense_nodes)), "from": pick()[0]}
        elif kind == "block":
            blocks["unit"] = UNIT_BLOCK
            repeat = draw(st.integers(1, 3))
            node = {"block": "unit", "from": pick()[0]}
            if draw(st.booleans()):
                node.update(args={"units": width}, repeat=repeat)
            else:
                node["args"] = [{"units": width}] * repeat
        elif kind == "model":
            models["sub"] = {
                "inputs": {"z": shape},
                "layers": {"h": {"type": "Dense", "units": width, "from": "z"}},
                "outputs": ["h"],
            }
            node = {"model": "sub", "from": pick()[0]}
        else:
            node = {"type": "Dense", "units": width, "from": pick()[0]}
            dense_nodes.append(name)
        layers[name] = node
        producers.append(name)
    sinks = [p for p in producers if p not in used]
    spec["inputs"] = inputs
    spec["layers"] = layers
    if draw(st.booleans()):
        spec["outputs"] = sinks
    else:
        spec["outputs"] = {f"out_{s}": ({"from": s} if draw(st.booleans()) else s) for s in sinks}
    if models:
        spec["models"] = models
    if blocks:
        spec["blocks"] = blocks
    if draw(st.booleans()):
        spec["train"] = GENERATED_TRAIN
    return dump(spec)


@st.composite
def catalog_specs(draw: st.DrawFn) -> str:
    """One layer of the Keras catalog with random arguments (valid or not) on a
    rank-1 to rank-4 input: what layer-argument checks and building meet."""
    layers = catalog()["layers"]
    name = draw(st.sampled_from(sorted(layers)))
    info = layers[name]
    params = [p for p in info["params"] if p not in ("name", "dtype")]
    node: dict[str, Any] = {"type": name}
    for param in info["required"]:
        node[param] = draw(st.sampled_from([1, 2, 3, [2, 2], 0.5, "relu", True]))
    for param in draw(st.lists(st.sampled_from(params), max_size=3, unique=True)) if params else []:
        node[param] = draw(hostile_values() | st.sampled_from([1, 2, [1, 1], "same", 0.1]))
    if info.get("wraps_layer"):
        node["layer"] = {"type": "Dense", "units": 2}
    rank = draw(st.integers(1, 4))
    node["from"] = "x"
    spec = {
        "kgraph": 1,
        "name": "one_layer",
        "inputs": {"x": [draw(st.integers(1, 5)) for _ in range(rank)]},
        "layers": {"layer": node},
        "outputs": ["layer"],
    }
    return dump(spec)


@cache
def catalog() -> dict[str, Any]:
    return json.loads(CATALOG_FILE.read_text(encoding="utf-8"))


# -- --set overrides ---------------------------------------------------------
VALUE_TEXTS = [
    *SPECIAL_SCALARS,
    *HUGE_INTS,
    "5",
    "relu",
    "[3, 3]",
    "{type: Adam}",
    "[",
    "{",
    "]",
    "}",
    "'",
    '"',
    "a: b",
    "a # b",
    "#",
    "%YAML 1.2",
    "---",
    "...",
    "- x",
    "|",
    ">",
    "&a [*a]",
    "[" * 200,
    "[" * 2000,
    "{type: Dense, units: 3, from: pixels}",
    "\x00",
    "\x07",
    "\t",
    "\u2028",
    "\ufeff",
    " ",
    "x" * 10_000,
]


def path_text(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


@st.composite
def override_paths(draw: st.DrawFn, data: Any) -> str:
    real = [path_text(p) for p in key_paths(data)] or ["kgraph"]
    how = draw(st.integers(0, 5))
    if how <= 1:
        return draw(st.sampled_from(real))
    if how == 2:
        return draw(st.sampled_from(real).flatmap(near_miss))
    if how == 3:
        suffix = draw(st.sampled_from(["x", "0", "-1", "99", "9" * 30, "", "from.0", "a.b.c"]))
        return f"{draw(st.sampled_from(real))}.{suffix}"
    if how == 4:
        return draw(
            st.sampled_from(
                [
                    "",
                    ".",
                    "..",
                    "a..b",
                    ".name",
                    "name.",
                    " name",
                    "name ",
                    "layers",
                    "layers.",
                    "0",
                    "-1",
                    "inputs.0",
                    "a" * 5000,
                    ".".join(["a"] * 500),
                    "\x00",
                    "kgraph.x",
                    "train.fit.epochs",
                ]
            )
        )
    return ".".join(
        draw(st.lists(identifiers | st.integers(-2, 5).map(str), min_size=1, max_size=5))
    )


@st.composite
def overrides(draw: st.DrawFn, data: Any) -> list[str]:
    """One to four `--set` arguments for a spec whose plain data is `data`."""
    found = []
    for _ in range(draw(st.integers(1, 4))):
        path = draw(override_paths(data))
        value = draw(st.sampled_from(VALUE_TEXTS) | st.text(max_size=12))
        form = draw(st.integers(0, 9))
        found.append(path if form == 0 else f"={value}" if form == 1 else f"{path}={value}")
    return found


# Pieces of search expressions: right, nearly right and wrong.
EXPRESSION_HEADS = ["choice", "int", "float", "bool", "choise", "Int", "range", "", "choice("]
EXPRESSION_ARGS = [
    "1, 2", "0.001, 0.1, log", "1, 8, step=2", "8, 1", "0, 1, log", "1, 2, log, step=1",
    "relu, tanh", "[3, 3], [5, 5]", "{type: Adam}, {type: SGD}", "", "1, 2.5", "a: b",
    "1, 1", "-1, 1e300", "'x', \"y\"", "[", "1,,2", "step=0", "nan, 1",
]  # fmt: skip


@st.composite
def tune_entries(draw: st.DrawFn, data: Any) -> list[str]:
    """One to three `--tune` arguments for a spec whose plain data is `data`."""
    found = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(override_paths(data))
        head = draw(st.sampled_from(EXPRESSION_HEADS) | st.text(max_size=6))
        args = draw(st.sampled_from(EXPRESSION_ARGS) | st.text(max_size=16))
        expression = head if draw(st.booleans()) and head == "bool" else f"{head}({args})"
        if draw(st.integers(0, 3)) == 0:
            other = draw(override_paths(data))
            expression += f" when {other}={draw(st.sampled_from(VALUE_TEXTS))}"
        found.append(f"{path}={expression}" if draw(st.integers(0, 9)) else expression)
    return found


# -- command lines -----------------------------------------------------------
INPUT_PATHS = [
    SPEC_NAME,
    f"./{SPEC_NAME}",
    "missing.yaml",
    ".",
    A_FOLDER,
    f"{A_FOLDER}/",
    FOLDER_NAMED_YAML,
    "/dev/null",
    PARTS,
    f"{SPEC_NAME}/x.yaml",
    "",
    "-",
    "--",
    CYCLE_A,
    EMPTY,
    NOT_UTF8,
    "canary.py",
    FIFO,
    "\u00e9.yaml",
    "x" * 300,
]
# Outputs stay inside the scratch folder (never absolute, never `..`): what
# they may replace is the harness's to check.
OUTPUT_PATHS = [
    "out.json",
    "out.mmd",
    "out.dot",
    "out.txt",
    "sub/out.json",
    SPEC_NAME,
    A_FOLDER,
    ".",
    f"{SPEC_NAME}/x.json",
    "missing_dir/out.json",
    FIFO,
    "canary.py",
    "out",
    "-",
    "",
    ".out.json",
    "out.json.tmp",
    "x" * 300,
]
UNKNOWN_FLAGS = [
    "--nope",
    "-Z",
    "--jsn",
    "--no-buil",
    "--set",
    "-s",
    "--model",
    "-o",
    "--plugin",
    "--format",
    "---",
    "-",
    "--=x",
    "--json=1",
    "--no-build=yes",
]


@dataclass(frozen=True)
class CommandSet:
    """Which commands a budget runs: `build` adds those that import TensorFlow."""

    build: bool = False


@st.composite
def command_lines(draw: st.DrawFn, commands: CommandSet, endless: bool = False) -> list[str]:
    """An argument list for kgraph: mostly well-formed, with random options,
    missing values, unknown flags, and paths that are files, folders or missing."""
    inputs = INPUT_PATHS + (ENDLESS_FILES if endless else [])
    names = ["validate", "schema", "help", "top"]
    if commands.build:
        names += ["summary", "plot"]
    command = draw(st.sampled_from(names))
    args: list[str]
    if command == "top":
        return draw(
            st.sampled_from(
                [
                    [],
                    ["--help"],
                    ["-h"],
                    ["--version"],
                    ["-V"],
                    ["valdate"],
                    ["nope"],
                    ["--nope"],
                    ["validate"],
                    ["schema", "--force"],
                ]
            )
        )
    if command == "help":
        sub = draw(
            st.sampled_from(
                [
                    "validate",
                    "summary",
                    "train",
                    "save",
                    "load",
                    "evaluate",
                    "predict",
                    "plot",
                    "import",
                    "schema",
                ]
            )
        )
        return [sub, draw(st.sampled_from(["--help", "-h"]))]
    options: list[list[str]] = []
    if command == "validate":
        args = ["validate"]
        if not commands.build:
            options.append(["--no-build"])
        options += draw(
            st.lists(st.sampled_from([["--no-build"], ["--json"], ["-q"], ["--quiet"]]), max_size=3)
        )
        paths = draw(st.lists(st.sampled_from(inputs), max_size=3))
    elif command == "schema":
        args = ["schema"]
        if draw(st.booleans()):
            options.append(["-o", draw(st.sampled_from(OUTPUT_PATHS))])
        if draw(st.booleans()):
            options.append(["--force"])
        paths = []
    elif command == "summary":
        args = ["summary"]
        options += draw(
            st.lists(
                st.sampled_from(
                    [
                        ["--json"],
                        ["--expand"],
                        ["-e"],
                        ["--model", "nope"],
                        ["--model", ""],
                        ["-m", "sub"],
                    ]
                ),
                max_size=2,
            )
        )
        paths = [draw(st.sampled_from(inputs))]
    else:
        args = ["plot"]
        fmt = draw(st.sampled_from(["mmd", "tree", "dot", "mermaid", "png", "", "MMD"]))
        options.append(["--format", fmt])
        if draw(st.booleans()):
            options.append(["-o", draw(st.sampled_from(OUTPUT_PATHS))])
        options += draw(
            st.lists(
                st.sampled_from(
                    [
                        ["--json"],
                        ["--force"],
                        ["--show-shapes"],
                        ["--rankdir", "LR"],
                        ["--rankdir", "XX"],
                        ["--dpi", "0"],
                        ["--expand-nested"],
                    ]
                ),
                max_size=2,
            )
        )
        paths = [draw(st.sampled_from(inputs))]
    if command != "schema" and draw(st.booleans()):
        options.append(
            [
                "--set",
                draw(st.sampled_from(["name=x", "kgraph=2", "layers=", "=", "x", "name=.inf"])),
            ]
        )
    if draw(st.integers(0, 4)) == 0:
        options.append([draw(st.sampled_from(UNKNOWN_FLAGS))])
    if draw(st.integers(0, 9)) == 0:
        options.append([draw(st.sampled_from(["--help", "-h"]))])
    order = draw(st.permutations(range(len(options) + len(paths))))
    pieces: list[list[str]] = [*options, *([p] for p in paths)]
    for index in order:
        args += pieces[index]
    if draw(st.integers(0, 5)) == 0:  # an option left without its value
        args.append(draw(st.sampled_from(["-o", "--set", "--format", "--model", "-s"])))
    return args
