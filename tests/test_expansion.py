"""Block expansion: a documented cap on the nodes a spec expands to, checked
before expanding (a `repeat: 1000000` used to run for ever), cycles refused
at once, and one pass over the nodes made (nested blocks used to cost more
per node at every level, and to lose aliases when names repeated).

Pure Python: nothing here builds a model.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgraph_cli.cli import app
from kgraph_cli.errors import Diagnostic, SpecError
from kgraph_cli.spec import blocks
from kgraph_cli.spec.assemble import load_spec
from kgraph_cli.spec.blocks import MAX_EXPANDED_NODES
from kgraph_cli.spec.model import ModelSpec, Spec
from kgraph_cli.spec.validate import validate_spec

# Refusals are instant; this only keeps a regression from hanging the suite.
HANG_GUARD_S = 5.0

DENSE = """\
  dense:
    inputs: [x]
    layers:
      d: {type: Dense, units: 2, from: x}
    outputs: d
"""


def repeated(times: int, extra_layers: str = "") -> str:
    return (
        "kgraph: 1\nname: rep\ninputs:\n  x: [2]\nblocks:\n" + DENSE + "layers:\n"
        f"  stack: {{block: dense, repeat: {times}, from: x}}\n"
        + extra_layers
        + "outputs: [stack]\n"
    )


def nested(levels: int) -> str:
    """Block b1 is two Dense layers; b{k} uses b{k-1} twice, with the same node
    names `a` and `b` at every level: 2**levels layers."""
    lines = ["kgraph: 1", "name: nested", "inputs:", "  x: [2]", "blocks:"]
    lines += ["  b1:", "    inputs: [x]", "    layers:"]
    lines += [
        "      a: {type: Dense, units: 2, from: x}",
        "      b: {type: Dense, units: 2, from: a}",
    ]
    lines += ["    outputs: b"]
    for k in range(2, levels + 1):
        lines += [f"  b{k}:", "    inputs: [x]", "    layers:"]
        lines += [
            f"      a: {{block: b{k - 1}, from: x}}",
            f"      b: {{block: b{k - 1}, from: a}}",
        ]
        lines += ["    outputs: b"]
    lines += ["layers:", f"  top: {{block: b{levels}, from: x}}", "outputs: [top]"]
    return "\n".join(lines) + "\n"


def towers(repeats: tuple[int, int], top_repeat: int = 1) -> str:
    """tower -> stage (repeats[0] times) -> unit (repeats[1] times), one Dense each."""
    stage, unit = repeats
    top = f", repeat: {top_repeat}" if top_repeat > 1 else ""
    return f"""\
kgraph: 1
blocks:
{DENSE}  stage:
    inputs: [x]
    layers:
      units: {{block: dense, repeat: {unit}, from: x}}
    outputs: units
  tower:
    inputs: [x]
    layers:
      stages: {{block: stage, repeat: {stage}, from: x}}
    outputs: stages
inputs: {{x: [2]}}
layers:
  body: {{block: tower{top}, from: x}}
outputs: [body]
"""


def only_model(spec: Spec) -> ModelSpec:
    (model,) = spec.models.values()
    return model


def diagnostics(path: Path) -> list[Diagnostic]:
    _, found = load_spec(path)
    return [d for d in found if d.is_error]


@pytest.fixture
def instances(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The block instances expanded: the names of the block nodes instantiated."""
    made: list[str] = []
    instantiate = blocks._Expander.instantiate

    def counting(self, node, *args):  # type: ignore[no-untyped-def]
        made.append(node.name)
        return instantiate(self, node, *args)

    monkeypatch.setattr(blocks._Expander, "instantiate", counting)
    return made


# -- the cap ------------------------------------------------------------------


def test_a_million_repetitions_are_refused_at_once_at_the_repeat(
    runner: CliRunner, write_spec, instances: list[str]
) -> None:
    path = write_spec(repeated(1_000_000))
    start = time.monotonic()
    result = runner.invoke(app, ["validate", "--no-build", str(path)])
    assert time.monotonic() - start < HANG_GUARD_S
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    # line 12: `  stack: {block: dense, repeat: 1000000, from: x}`, the value at col 33
    assert (
        f"{path}:12:33: error[too-many-nodes]: layers.stack.repeat: block node 'stack' would "
        "expand to 1,000,000 nodes (1,000,000 repetitions of block 'dense', 1 node each): a spec "
        "may expand to at most 100,000 nodes"
    ) in result.stderr
    assert "hint: lower `repeat`" in result.stderr
    assert result.stderr.count("error[") == 1  # no echo from the refs to `stack`
    assert instances == []  # refused before expanding anything


def test_nested_repeats_are_multiplied_before_expanding(write_spec, instances: list[str]) -> None:
    # 400 stages of 400 units: 160,000 nodes from a block node without `repeat:`.
    (error,) = diagnostics(write_spec(towers((400, 400))))
    assert error.code == "too-many-nodes"
    assert (error.location.line, error.location.col) == (20, 3)  # `body`, the block use
    assert error.path == "layers.body"
    assert error.message == (
        "block node 'body' would expand to 160,000 nodes (block 'tower' and the blocks it "
        "uses): a spec may expand to at most 100,000 nodes"
    )
    assert instances == []
    # Repeated at the top, the product is located at that repeat.
    (error,) = diagnostics(write_spec(towers((50, 50), top_repeat=50)))
    assert (error.location.line, error.location.col, error.path) == (20, 32, "layers.body.repeat")
    assert "125,000 nodes (50 repetitions of block 'tower', 2,500 nodes each)" in error.message
    assert instances == []


def test_the_cap_counts_the_whole_spec(monkeypatch: pytest.MonkeyPatch, write_spec) -> None:
    # Two block nodes of 60 each under a limit of 100: the second one passes it.
    monkeypatch.setattr(blocks, "MAX_EXPANDED_NODES", 100)
    extra = (
        "  more: {block: dense, repeat: 60, from: x}\n  both: {type: Add, from: [stack, more]}\n"
    )
    spec = repeated(60, extra).replace("outputs: [stack]", "outputs: [both]")
    (error,) = diagnostics(write_spec(spec))
    assert error.code == "too-many-nodes" and error.path == "layers.more.repeat"
    assert error.message == (
        "block node 'more' would expand to 60 nodes (60 repetitions of block 'dense', 1 node "
        "each), and the spec has 61 others: a spec may expand to at most 100 nodes"
    )


def test_a_repeat_given_by_a_param_is_counted_as_it_expands(write_spec) -> None:
    # The count before expanding sees `repeat: "${n}"` as 1; the nested node is
    # checked with its real repeat, and nothing of the refused node is kept.
    spec = (
        "kgraph: 1\ninputs: {x: [2]}\nblocks:\n" + DENSE + "  many:\n    params: [n]\n"
        "    inputs: [x]\n    layers:\n"
        "      first: {block: dense, repeat: 3, from: x}\n"
        '      rest: {block: dense, repeat: "${n}", from: first}\n'
        "    outputs: rest\n"
        "layers:\n  body: {block: many, args: {n: 500000}, from: x}\noutputs: [body]\n"
    )
    path = write_spec(spec)
    start = time.monotonic()
    spec_obj, found = load_spec(path)
    assert time.monotonic() - start < HANG_GUARD_S
    (error,) = [d for d in found if d.is_error]
    assert error.code == "too-many-nodes" and (error.location.line, error.path) == (
        17,
        "layers.body",
    )
    assert "would expand to at least 500,003 nodes" in error.message
    ((where, note),) = error.related
    assert where.line == 14  # `rest`, inside the block
    assert note == "block node 'rest' here would make 500,000 of them (500,000 repetitions of " \
        "block 'dense')"  # fmt: skip
    assert only_model(spec_obj).nodes == {}  # nothing of `body` is kept


def test_the_cap_is_exact(monkeypatch: pytest.MonkeyPatch, write_spec) -> None:
    monkeypatch.setattr(blocks, "MAX_EXPANDED_NODES", 50)
    # 49 repetitions and the written `head`: 50 nodes, the limit.
    extra = "  head: {type: Dense, units: 1, from: stack}\n"
    at_limit = repeated(49, extra).replace("outputs: [stack]", "outputs: [head]")
    spec, found = load_spec(write_spec(at_limit))
    assert not [d for d in found if d.is_error]
    assert len(only_model(spec).nodes) == 50
    (error,) = diagnostics(write_spec(at_limit.replace("repeat: 49", "repeat: 50")))
    assert error.message.startswith("block node 'stack' would expand to 50 nodes")
    assert "the spec has 1 others" in error.message and "at most 50 nodes" in error.message


def test_a_big_expansion_below_the_cap_validates(runner: CliRunner, write_spec) -> None:
    # 2,500 repetitions of 9 parallel Dense layers and their Add: 25,000
    # nodes, 5,000 layers deep (above the 20,000-node chain of test_deep.py).
    fan = "\n".join(f"      d{i}: {{type: Dense, units: 2, from: x}}" for i in range(9))
    adds = ", ".join(f"d{i}" for i in range(9))
    path = write_spec(
        "kgraph: 1\nname: wide\ninputs: {x: [2]}\nblocks:\n  fan:\n    inputs: [x]\n"
        f"    layers:\n{fan}\n      sum: {{type: Add, from: [{adds}]}}\n    outputs: sum\n"
        "layers:\n  top: {block: fan, repeat: 2500, from: x}\noutputs: [top]\n"
    )
    result = runner.invoke(app, ["validate", "--no-build", str(path)])
    assert result.exit_code == 0, result.output
    assert "structure valid (1 model(s): wide)" in result.stdout
    assert 25_000 < MAX_EXPANDED_NODES


# -- cycles -------------------------------------------------------------------


@pytest.mark.parametrize("uses", [1, 3])
def test_a_block_that_uses_itself_is_refused_at_once(write_spec, uses: int) -> None:
    # Three uses of itself per level used to mean 3**16 instances: a hang.
    layers = "".join(
        f"      u{i}: {{block: loop, from: {f'u{i - 1}' if i else 'x'}}}\n" for i in range(uses)
    )
    path = write_spec(
        "kgraph: 1\ninputs: {x: [2]}\nblocks:\n  loop:\n    inputs: [x]\n"
        f"    layers:\n{layers}    outputs: u{uses - 1}\n"
        "layers:\n  body: {block: loop, from: x}\noutputs: [body]\n"
    )
    start = time.monotonic()
    found = diagnostics(path)
    assert time.monotonic() - start < HANG_GUARD_S
    assert {(d.code, d.message) for d in found} == {
        ("block-cycle", "block 'loop' uses itself: loop -> loop")
    }
    assert len(found) == uses  # once for each use, no echo of the refs to them


def test_a_cycle_through_two_blocks_names_both(write_spec) -> None:
    path = write_spec(
        "kgraph: 1\ninputs: {x: [2]}\nblocks:\n"
        "  ping:\n    inputs: [x]\n    layers: {p: {block: pong, from: x}}\n    outputs: p\n"
        "  pong:\n    inputs: [x]\n    layers: {q: {block: ping, from: x}}\n    outputs: q\n"
        "layers:\n  body: {block: ping, from: x}\noutputs: [body]\n"
    )
    (error,) = diagnostics(path)
    assert error.code == "block-cycle" and error.location.line == 10
    assert error.message == "block 'ping' uses itself: ping -> pong -> ping"
    assert error.path == "blocks.pong.layers.q.block"


def test_a_block_given_itself_through_a_param_is_not_a_cycle(write_spec) -> None:
    # wrap(inner=wrap) uses wrap() with its default inner=dense: it ends.
    path = write_spec(
        "kgraph: 1\ninputs: {x: [2]}\nblocks:\n" + DENSE + "  wrap:\n    params: {inner: dense}\n"
        '    inputs: [x]\n    layers:\n      w: {block: "${inner}", from: x}\n    outputs: w\n'
        "layers:\n  top: {block: wrap, args: {inner: wrap}, from: x}\noutputs: [top]\n"
    )
    valid = validate_spec(path)
    assert list(valid.spec.model().nodes) == ["top_w_w_d"]


# -- one pass, right names ------------------------------------------------------


def test_nested_blocks_with_the_same_names_at_every_level(write_spec) -> None:
    # Sibling block nodes `a` and `b` at every level: the aliases of one level
    # were overwritten by the level below (error[undefined-ref] from 3 levels).
    valid = validate_spec(write_spec(nested(4)))
    model = valid.spec.model()
    assert len(model.nodes) == 16
    assert list(model.nodes)[:3] == ["top_a_a_a_a", "top_a_a_a_b", "top_a_a_b_a"]
    edges = valid.graphs["nested"].edges
    assert edges["top_a_a_a_a"][0].node == "x"
    assert edges["top_a_a_b_a"][0].node == "top_a_a_a_b"  # b reads a's output
    assert edges["top_b_a_a_a"][0].node == "top_a_b_b_b"  # across the top level
    assert valid.graphs["nested"].depth == 16


def test_errors_inside_nested_blocks_are_located_once(write_spec) -> None:
    spec = nested(3).replace(
        "      b: {type: Dense, units: 2, from: a}", "      b: {type: Dense, units: 2, from: c}"
    )
    with pytest.raises(SpecError) as raised:
        validate_spec(write_spec(spec))
    errors = [d for d in raised.value.diagnostics if d.is_error]
    assert [(d.code, d.location.line, d.message) for d in errors] == [
        ("undefined-ref", 10, "block 'b1' refers to 'c', which is neither one of its inputs "
         "nor one of its layers"),
    ]  # fmt: skip


@pytest.mark.parametrize("levels", [6, 10])
def test_expansion_rewrites_each_ref_once(
    monkeypatch: pytest.MonkeyPatch, write_spec, levels: int
) -> None:
    # The work per node made does not grow with the nesting: every layer's
    # `from:`, every block node's `from:` and every instance's outputs are
    # renamed once (the old expander renamed each node again at every level
    # and scanned every alias of the model for every instance).
    renamed: list[str] = []
    rename = blocks._Expander._rename

    def counting(self, scope, ref):  # type: ignore[no-untyped-def]
        renamed.append(ref.node)
        return rename(self, scope, ref)

    monkeypatch.setattr(blocks._Expander, "_rename", counting)
    spec, found = load_spec(write_spec(nested(levels)))
    assert not [d for d in found if d.is_error]
    layers = 2**levels
    uses = 2**levels - 1  # block nodes expanded, the top one included
    assert len(only_model(spec).nodes) == layers
    assert len(renamed) == layers + 2 * uses  # one `from:` each, and each instance's output


def test_a_nested_block_node_named_like_a_node_of_the_model(write_spec) -> None:
    # `top` makes the alias `top_a` (its block's block node `a`), which the
    # model also writes: refs to `top` used to reach the written node silently.
    path = write_spec(
        "kgraph: 1\ninputs: {x: [2]}\nblocks:\n" + DENSE + "  two:\n    inputs: [x]\n"
        "    layers: {a: {block: dense, from: x}}\n    outputs: a\n"
        "layers:\n  top: {block: two, from: x}\n  top_a: {type: Dense, units: 3, from: x}\n"
        "  out: {type: Add, from: [top, top_a]}\noutputs: [out]\n"
    )
    with pytest.raises(SpecError) as raised:
        validate_spec(path)
    assert [(d.code, d.location.line, d.message) for d in raised.value.diagnostics] == [
        ("duplicate-name", 14, "block node 'top' makes a node named 'top_a', which already exists")
    ]
