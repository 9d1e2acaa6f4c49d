"""`op:` nodes (keras.ops functions on tensors) and keyword inputs that are
lists of refs: how inputs and constants bind, and that the built model is the
one hand-written Keras makes (parameters, predictions, save and load)."""

from __future__ import annotations

import numpy as np
import pytest

from kgraph_cli import api
from kgraph_cli.ops_catalog import Constant, Tensor, Tensors, bind, ops_catalog
from tests.conftest import invoke

OPS_SPEC = """\
kgraph: 1
name: opsnet
inputs:
  x: [8]
  tokens: {shape: [6], dtype: int32}
layers:
  h: {type: Dense, units: 4, from: x}
  # hard-swish as MobileNetV3 writes it: x * relu6(x + 3) / 6
  plus3: {op: add, from: h, x2: 3.0}
  gate: {op: relu6, from: plus3}
  gated: {op: multiply, from: [h, gate]}
  hswish: {op: multiply, from: gated, x2: 0.16666667}
  # positions 0..N-1 made from the tokens themselves
  ones: {op: ones_like, from: tokens}
  cum: {op: cumsum, from: ones, axis: 1}
  positions: {op: subtract, from: cum, x2: 1}
  pos_emb: {type: Embedding, input_dim: 6, output_dim: 4, from: positions}
  tok_emb: {type: Embedding, input_dim: 50, output_dim: 4, from: tokens}
  emb: {type: Add, from: [tok_emb, pos_emb]}
  pooled: {type: GlobalAveragePooling1D, from: emb}
  cat: {op: concatenate, from: {xs: [hswish, pooled]}, axis: -1}
  out: {type: Dense, units: 2, from: cat}
outputs: [out]
"""


def _keras_opsnet():
    import keras
    from keras import ops

    x = keras.Input((8,), name="x")
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    h = keras.layers.Dense(4)(x)
    hswish = h * ops.relu6(h + 3.0) * 0.16666667
    positions = ops.cumsum(ops.ones_like(tokens), axis=1) - 1
    emb = keras.layers.Add()(
        [keras.layers.Embedding(50, 4)(tokens), keras.layers.Embedding(6, 4)(positions)]
    )
    pooled = keras.layers.GlobalAveragePooling1D()(emb)
    out = keras.layers.Dense(2)(ops.concatenate([hswish, pooled], axis=-1))
    return keras.Model([x, tokens], out)


@pytest.fixture(scope="module")
def opsnet(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("ops") / "opsnet.yaml"
    path.write_text(OPS_SPEC)
    return path, api.build(path)


def _inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(3, 8)).astype("float32"), rng.integers(0, 50, (3, 6), dtype="int32")]


def test_op_nodes_build_the_model_keras_code_builds(opsnet) -> None:
    _, model = opsnet
    reference = _keras_opsnet()
    assert model.count_params() == reference.count_params() == 36 + 200 + 24 + 18
    # The same weights give the same predictions: the ops compute what Keras's do.
    by_kind = {type(layer).__name__: [] for layer in reference.layers}
    for layer in reference.layers:
        by_kind[type(layer).__name__].append(layer)
    order = ["h", "tok_emb", "pos_emb", "out"]
    theirs = [by_kind["Dense"][0], by_kind["Embedding"][0], by_kind["Embedding"][1]]
    theirs.append(by_kind["Dense"][1])
    for name, layer in zip(order, theirs, strict=True):
        layer.set_weights(model.get_layer(name).get_weights())
    ours = model.predict(_inputs(), verbose=0)
    expected = reference.predict(_inputs(), verbose=0)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_op_nodes_are_named_after_their_node(opsnet) -> None:
    _, model = opsnet
    names = [op.name for op in model.operations]
    assert {"plus3", "gate", "gated", "hswish", "ones", "cum", "positions", "cat"} <= set(names)


def test_positions_made_from_the_input_count_from_zero(opsnet) -> None:
    import keras

    _, model = opsnet
    positions = keras.Model(model.inputs, model.get_layer("pos_emb").input)
    got = keras.ops.convert_to_numpy(positions(_inputs()))
    np.testing.assert_array_equal(got, np.tile(np.arange(6), (3, 1)))


def test_summary_shows_op_nodes_as_rows(opsnet) -> None:
    path, _ = opsnet
    rows = {row.name: row for row in api.summarize(path).layers}
    assert rows["hswish"].type == "ops.multiply"
    assert rows["cat"].type == "ops.concatenate"
    assert rows["cat"].connected_to == ["hswish", "pooled"]
    assert rows["cat"].output_shape == "(None, 8)"
    assert rows["positions"].params == 0


def test_plot_draws_op_nodes(opsnet, tmp_path) -> None:
    path, _ = opsnet
    out = tmp_path / "ops.mmd"
    invoke(["plot", path, "-o", out])
    text = out.read_text()
    assert 'hswish("<b>hswish</b><br>ops.multiply")' in text
    assert "gate --> gated" in text


def test_a_model_with_op_nodes_saves_and_loads(opsnet, tmp_path) -> None:
    import keras

    _, model = opsnet
    path = tmp_path / "opsnet.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(
        again.predict(_inputs(), verbose=0), model.predict(_inputs(), verbose=0), rtol=1e-6
    )


SEQ2SEQ = """\
kgraph: 1
name: seq2seq
inputs:
  enc_in: [null, 7]
  dec_in: [null, 9]
layers:
  encoder: {type: LSTM, units: 16, return_state: true, from: enc_in}
  decoder:
    type: LSTM
    units: 16
    return_sequences: true
    from: {sequences: dec_in, initial_state: [encoder.1, encoder.2]}
  probs: {type: Dense, units: 9, activation: softmax, from: decoder}
outputs: [probs]
"""


def test_a_list_of_refs_as_a_keyword_input_feeds_the_encoder_states(write_spec) -> None:
    import keras

    model = api.build(write_spec(SEQ2SEQ))
    enc_in, dec_in = keras.Input((None, 7)), keras.Input((None, 9))
    _, h, c = keras.layers.LSTM(16, return_state=True)(enc_in)
    dec = keras.layers.LSTM(16, return_sequences=True)(dec_in, initial_state=[h, c])
    reference = keras.Model([enc_in, dec_in], keras.layers.Dense(9, activation="softmax")(dec))
    assert model.count_params() == reference.count_params()
    # The decoder's outputs depend on the encoder: its states are really fed.
    rng = np.random.default_rng(1)
    enc = rng.normal(size=(2, 5, 7)).astype("float32")
    dec = rng.normal(size=(2, 4, 9)).astype("float32")
    first = model.predict([enc, dec], verbose=0)
    second = model.predict([enc * 3 + 1, dec], verbose=0)
    assert not np.allclose(first, second)
    rows = {row.name: row for row in api.summarize(write_spec(SEQ2SEQ)).layers}
    assert sorted(rows["decoder"].connected_to) == ["dec_in", "encoder[0][1]", "encoder[0][2]"]


# -- binding ---------------------------------------------------------------
def test_refs_fill_the_positional_parameters_no_constant_names() -> None:
    call, problems = bind(ops_catalog()["multiply"], 1, {}, ["x2"])
    assert not problems
    assert call is not None and call.positional == [Tensor(0), Constant("x2")]


def test_constants_before_the_inputs_leave_them_to_the_variadic_parameter() -> None:
    call, problems = bind(ops_catalog()["einsum"], 2, {}, ["subscripts"])
    assert not problems
    assert call is not None
    assert call.positional == [Constant("subscripts"), Tensor(0), Tensor(1)]


def test_a_parameter_left_to_its_default_sends_the_later_ones_by_name() -> None:
    # sum(x, axis=None, keepdims=False): axis left out, keepdims must go by name.
    call, problems = bind(ops_catalog()["sum"], 1, {}, ["keepdims"])
    assert not problems and call is not None
    assert call.positional == [Tensor(0)]
    assert call.keywords == {"keepdims": Constant("keepdims")}


def test_a_required_parameter_nothing_fills_is_a_problem() -> None:
    call, problems = bind(ops_catalog()["multiply"], 1, {}, [])
    assert call is None
    assert [(p.code, p.message) for p in problems] == [("missing-arg", "op 'multiply' needs 'x2'")]


def test_a_keyword_list_input_is_passed_as_one_list() -> None:
    call, problems = bind(ops_catalog()["concatenate"], 0, {"xs": [0, 1, 2]}, ["axis"])
    assert not problems and call is not None
    assert call.positional == [Tensors((0, 1, 2)), Constant("axis")]


def test_functions_that_take_python_code_are_not_in_the_catalog() -> None:
    catalog = ops_catalog()
    assert {"add", "concatenate", "cumsum", "image.resize", "hard_silu"} <= set(catalog)
    code = {"cond", "while_loop", "scan", "map", "fori_loop", "vectorized_map", "vectorize", "jvp"}
    assert not code & set(catalog)


MOBILENET_STAGE = """\
kgraph: 1
blocks:
  dw:
    params: {filters: null, strides: 1}
    inputs: [x]
    layers:
      depthwise: {type: DepthwiseConv2D, kernel_size: 3, strides: "${strides}", padding: same,
                  use_bias: false, from: x}
      pointwise: {type: Conv2D, filters: "${filters}", kernel_size: 1, use_bias: false,
                  from: depthwise}
    outputs: pointwise
inputs:
  img: [32, 32, 3]
layers:
  stage: {block: dw, from: img,
          args: [{filters: 64}, {filters: 128, strides: 2},
                 {filters: 128}, {filters: 256, strides: 2}]}
outputs: [stage]
"""


def test_argument_sets_vary_a_repeated_block_per_repetition(write_spec) -> None:
    import keras

    model = api.build(write_spec(MOBILENET_STAGE))
    x = inputs = keras.Input((32, 32, 3))
    for filters, strides in ((64, 1), (128, 2), (128, 1), (256, 2)):
        x = keras.layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)(x)
        x = keras.layers.Conv2D(filters, 1, use_bias=False)(x)
    reference = keras.Model(inputs, x)
    assert model.count_params() == reference.count_params()
    assert model.output.shape == (None, 8, 8, 256)
    assert model.get_layer("stage_2_depthwise").strides == (2, 2)
    assert model.get_layer("stage_4_pointwise").filters == 256
