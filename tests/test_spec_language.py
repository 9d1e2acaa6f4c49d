"""The spec language without TensorFlow: blocks, includes, views, refs, defaults."""

from __future__ import annotations

import pytest

from kgraph_cli.errors import SpecError
from kgraph_cli.spec.model import NodeKind
from kgraph_cli.spec.validate import validate_spec

BLOCKS = """\
kgraph: 1
name: net
blocks:
  dense_block:
    params: {units: 8, act: relu}
    inputs: [x]
    layers:
      d: {type: Dense, units: "${units}", activation: "${act}", from: x}
      out: {type: Dropout, rate: 0.1, from: d}
    outputs: out
  pair:
    params: [units]
    inputs: [x]
    layers:
      first: {block: dense_block, args: {units: "${units}"}, from: x}
      second: {block: dense_block, args: {units: "${units}", act: tanh}, from: first}
    outputs: second
inputs: {x: [4]}
layers:
  stack: {block: dense_block, args: {units: 16}, repeat: 3, from: x}
  nested: {block: pair, args: {units: 2}, from: stack}
  head: {type: Dense, units: 1, from: nested}
outputs: [head]
"""


def errors_of(path, **kwargs) -> list[tuple[str, int, str]]:
    with pytest.raises(SpecError) as info:
        validate_spec(path, **kwargs)
    return [(d.code, d.location.line, d.message) for d in info.value.diagnostics if d.is_error]


def test_blocks_expand_with_arguments_repeat_and_nesting(write_spec):
    valid = validate_spec(write_spec(BLOCKS))
    model = valid.spec.model()
    names = list(model.nodes)
    assert names[:6] == ["stack_1_d", "stack_1_out", "stack_2_d", "stack_2_out",
                         "stack_3_d", "stack_3_out"]  # fmt: skip
    assert "nested_first_d" in names and "nested_second_out" in names
    assert model.nodes["stack_2_d"].inputs[0].node == "stack_1_out"
    assert model.nodes["stack_1_d"].layer.args["units"] == 16  # typed, not "16"
    assert model.nodes["nested_second_d"].layer.args["activation"] == "tanh"
    # Block node names stand for their block's output:
    edges = valid.graphs["net"].edges
    assert edges["nested_first_d"][0].node == "stack_3_out"
    assert edges["head"][0].node == "nested_second_out"


def test_block_argument_errors(write_spec):
    spec = BLOCKS.replace("args: {units: 2}", "args: {unit: 2}")
    found = errors_of(write_spec(spec))
    assert ("unknown-arg", 21, "block 'pair' has no param 'unit'") in found
    # A misspelt required param is one mistake, reported once (as unknown).
    assert not any(code == "missing" for code, _, _ in found)
    found = errors_of(write_spec(BLOCKS.replace("args: {units: 2}", "args: {}")))
    assert any(code == "missing" and "needs the argument 'units'" in msg
               for code, _, msg in found)  # fmt: skip


def test_block_unknown_param_in_body(write_spec):
    spec = BLOCKS.replace('activation: "${act}"', 'activation: "${activation}"')
    found = errors_of(write_spec(spec))
    assert found[0][0] == "unknown-param" and found[0][1] == 8


def test_include_brings_models_and_blocks(write_spec):
    write_spec(
        "kgraph: 1\nname: encoder\ninputs: {x: [4]}\n"
        "layers: {code: {type: Dense, units: 2, from: x}}\noutputs: [code]\n"
        "blocks:\n  b: {inputs: [x], layers: {o: {type: Dense, units: 3, from: x}}, outputs: o}\n",
        "parts/encoder.yaml",
    )
    path = write_spec(
        "kgraph: 1\nname: main\ninclude: parts/encoder.yaml\ninputs: {x: [4]}\n"
        "layers:\n  e: {model: encoder, from: x}\n  t: {block: b, from: e}\noutputs: [t]\n"
    )
    spec = validate_spec(path).spec
    assert set(spec.models) == {"main", "encoder"}
    assert spec.default == "main"
    assert spec.models["encoder"].loc.file.endswith("parts/encoder.yaml")


def test_include_cycle_and_missing_include(write_spec):
    write_spec("kgraph: 1\ninclude: a.yaml\n", "b.yaml")
    path = write_spec("kgraph: 1\ninclude: [b.yaml, missing.yaml]\n", "a.yaml")
    codes = {code for code, _, _ in errors_of(path)}
    assert {"include-cycle", "include"} <= codes


def test_views_get_the_inputs_their_outputs_need(write_spec):
    path = write_spec(
        "kgraph: 1\nname: ae\ninputs: {img: [8], extra: [2]}\n"
        "layers:\n  code: {type: Dense, units: 2, from: img}\n"
        "  both: {type: Concatenate, from: [code, extra]}\noutputs: [both]\n"
        "models:\n  enc: {graph: ae, outputs: [code]}\n"
        "  bad: {graph: ae, inputs: [img], outputs: [both]}\n"
    )
    found = errors_of(path)
    assert found == [("unreachable", 10, "the outputs of model 'bad' depend on input 'extra' of "
                      "graph 'ae', which the model does not take")]  # fmt: skip
    fixed = path.read_text().replace("  bad: {graph: ae, inputs: [img], outputs: [both]}\n", "")
    path.write_text(fixed)
    enc = validate_spec(path).spec.models["enc"]
    assert [r.node for r in enc.view_inputs] == ["img"]


def test_default_model_rules(write_spec):
    two = (
        "kgraph: 1\nmodels:\n"
        "  a: {inputs: {x: [1]}, layers: {d: {type: Dense, units: 1, from: x}}, outputs: [d]}\n"
        "  b: {inputs: {x: [1]}, layers: {d: {type: Dense, units: 1, from: x}}, outputs: [d]}\n"
    )
    assert errors_of(write_spec(two))[0][0] == "missing"
    assert validate_spec(write_spec(two + "default: b\n")).spec.default == "b"
    found = errors_of(write_spec(two + "default: c\n"))
    assert found[0][0] == "undefined-ref"


def test_models_calling_each_other_is_a_cycle(write_spec):
    path = write_spec(
        "kgraph: 1\ndefault: a\nmodels:\n"
        "  a: {inputs: {x: [1]}, layers: {m: {model: b, from: x}}, outputs: [m]}\n"
        "  b: {inputs: {x: [1]}, layers: {m: {model: a, from: x}}, outputs: [m]}\n"
    )
    found = errors_of(path)
    assert [code for code, _, _ in found] == ["model-cycle"]
    assert "a -> b -> a" in found[0][2]


def test_model_call_input_count(write_spec):
    path = write_spec(
        "kgraph: 1\ndefault: top\nmodels:\n"
        "  two: {inputs: {a: [1], b: [1]}, layers: {s: {type: Add, from: [a, b]}}, outputs: [s]}\n"
        "  top: {inputs: {x: [1]}, layers: {m: {model: two, from: x}}, outputs: [m]}\n"
    )
    assert errors_of(path) == [
        ("model-inputs", 5, "model 'two' takes 2 input(s), node 'm' gives 1")
    ]


def test_cycle_is_reported_as_a_path_with_each_node(write_spec):
    path = write_spec(
        "kgraph: 1\ninputs: {x: [1]}\nlayers:\n"
        "  a: {type: Dense, units: 1, from: c}\n"
        "  b: {type: Dense, units: 1, from: a}\n"
        "  c: {type: Add, from: [b, x]}\noutputs: [c]\n"
    )
    with pytest.raises(SpecError) as info:
        validate_spec(path)
    (cycle,) = info.value.diagnostics
    assert cycle.code == "cycle"
    assert set(cycle.message.removeprefix("cycle: ").split(" -> ")) == {"a", "b", "c"}
    assert sorted(loc.line for loc, _ in cycle.related) == [4, 5, 6]


def test_unused_nodes_and_inputs_are_warnings(write_spec):
    path = write_spec(
        "kgraph: 1\ninputs: {x: [1], y: [1]}\nlayers:\n"
        "  a: {type: Dense, units: 1, from: x}\n  spare: {type: Dense, units: 1, from: x}\n"
        "outputs: [a]\n"
    )
    valid = validate_spec(path)
    assert sorted((w.code, w.path) for w in valid.warnings) == [
        ("unused", "inputs.y"), ("unused", "layers.spare")
    ]  # fmt: skip


def test_shared_layer_node(write_spec):
    path = write_spec(
        "kgraph: 1\ninputs: {a: [3], b: [3]}\nlayers:\n"
        "  enc_a: {type: Dense, units: 2, from: a}\n"
        "  enc_b: {share: enc_a, from: b}\n"
        "  enc_c: {share: enc_b, from: b}\n"  # sharing a sharer shares the original
        "  out: {type: Concatenate, from: [enc_a, enc_b, enc_c]}\noutputs: [out]\n"
    )
    model = validate_spec(path).spec.model()
    assert model.nodes["enc_c"].kind is NodeKind.SHARE
    assert model.nodes["enc_c"].target == "enc_a"


def test_plugin_layer_without_plugin_names_the_flag(write_spec):
    path = write_spec(
        "kgraph: 1\ninputs: {x: [4]}\n"
        "layers: {d: {type: my_layers.CustomDense, units: 3, from: x}}\noutputs: [d]\n"
    )
    with pytest.raises(SpecError) as info:
        validate_spec(path)
    (diag,) = info.value.diagnostics
    assert diag.code == "unknown-layer"
    assert "--plugin path/to/my_layers.py" in diag.hint


@pytest.mark.tf
def test_nested_blocks_build(write_spec):
    from kgraph_cli.build import ModelBuilder

    model = ModelBuilder(validate_spec(write_spec(BLOCKS))).build()
    names = [layer.name for layer in model.layers]
    assert names[:3] == ["x", "stack_1_d", "stack_1_out"]
    assert names[-1] == "head"
    # 3 x Dense(16) + 2 x Dense(2) + Dense(1): 4*16+16 + 2*(16+16) + 2*2+2+... computed by Keras
    expected = (4 * 16 + 16) + 2 * (16 * 16 + 16) + (16 * 2 + 2) + (2 * 2 + 2) + (2 * 1 + 1)
    assert model.count_params() == expected


def test_activation_and_initializer_names_are_checked(write_spec):
    path = write_spec(
        "kgraph: 1\ninputs: {x: [4]}\nlayers:\n"
        "  d: {type: Dense, units: 2, activation: Relu, kernel_initializer: glorot_unifrom,"
        " from: x}\noutputs: [d]\n"
    )
    with pytest.raises(SpecError) as info:
        validate_spec(path)
    found = {(d.path, d.hint) for d in info.value.diagnostics}
    assert found == {
        ("layers.d.activation", "did you mean 'relu'?"),
        ("layers.d.kernel_initializer", "did you mean 'glorot_uniform'?"),
    }


def test_keras_classes_outside_keras_layers_are_named_by_module(write_spec):
    from kgraph_cli import api

    path = write_spec(
        "kgraph: 1\ninputs: {x: [4, 4, 8]}\n"
        "layers:\n"
        "  scale: {type: keras.src.applications.convnext.LayerScale, init_values: 0.5,\n"
        "          projection_dim: 8, from: x}\n"
        "  scaled: {type: keras.src.applications.inception_resnet_v2.CustomScaleLayer,\n"
        "           scale: 0.17, from: [x, scale]}\n"
        "outputs: [scaled]\n"
    )
    model = api.build(path)
    assert type(model.get_layer("scale")).__name__ == "LayerScale"
    assert model.count_params() == 8
    # Only the classes the catalog lists: never an arbitrary module under keras.
    path.write_text(path.read_text().replace("convnext.LayerScale", "convnext.layers"))
    found = errors_of(path)
    assert found[0][0] == "unknown-layer"
