"""XLA (`train.compile.jit_compile`): a model XLA cannot compile trains
without it, saying which operation it refused; `jit_compile: true` that Keras
turns off (op determinism, from `fit.seed`) is said, not silent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import invoke

pytestmark = pytest.mark.tf

# A layer whose step runs Python (tf.numpy_function): XLA has no kernel for it.
PLUGIN = """\
import keras
import tensorflow as tf


class Echo(keras.layers.Layer):
    def call(self, x):
        echoed = tf.numpy_function(lambda a: a, [x], tf.float32)
        return tf.reshape(echoed, tf.shape(x))
"""

SPEC = """\
kgraph: 1
inputs: {x: {shape: [4]}}
layers:
  echo: {type: py_layers.Echo, from: x}
  out: {type: Dense, units: 2, from: echo}
outputs: [out]
train:
  data: {source: {generated: 64}}
  compile:
    optimizer: sgd
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
    jit_compile: true
  fit: {batch_size: 16, epochs: 2}
"""


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "py_layers.py"
    path.write_text(PLUGIN, encoding="utf-8")
    return path


def test_a_model_xla_cannot_compile_trains_without_it(
    tmp_path: Path, write_spec, plugin: Path
) -> None:
    spec = write_spec(SPEC)
    out = tmp_path / "run"
    result = invoke(["train", spec, "--plugin", plugin, "--out", out, "--json"])
    assert (
        "XLA cannot compile this model (unsupported operation PyFunc): training without "
        "jit_compile" in result.stderr
    )
    assert json.loads(result.stdout)["epochs"] == 2
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2  # once each


def test_jit_compile_that_the_seed_turns_off_is_said(tmp_path: Path, write_spec) -> None:
    spec = write_spec(
        SPEC.replace(
            "echo: {type: py_layers.Echo, from: x}", "echo: {type: Dense, units: 3, from: x}"
        ).replace("epochs: 2}", "epochs: 1, seed: 3}")
    )
    result = invoke(["train", spec, "--out", tmp_path / "run", "--json"])
    assert "jit_compile: true is off: train.fit.seed makes TensorFlow's ops deterministic" in (
        result.stderr
    )


RECURRENT = """\
kgraph: 1
inputs: {words: {shape: [6], dtype: int32}}
layers:
  embed: {type: Embedding, input_dim: 50, output_dim: 4, from: words}
  lstm: {type: LSTM, units: 3, from: embed}
  out: {type: Dense, units: 2, from: lstm}
outputs: [out]
train:
  data: {source: {generated: 64}}
  compile:
    optimizer: sgd
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  fit: {batch_size: 16, epochs: 1}
"""


def test_a_recurrent_model_trains_with_xla_by_default(tmp_path: Path, write_spec) -> None:
    from kgraph_cli import api
    from kgraph_cli.spec.train import checked_train
    from kgraph_cli.train import default_jit_compile

    spec = write_spec(RECURRENT)
    result = invoke(["train", spec, "--out", tmp_path / "run", "--json"])
    assert "XLA on (jit_compile): it trains recurrent layers faster" in result.stderr
    assert json.loads(result.stdout)["epochs"] == 1
    valid = api.load_spec(spec)
    model, train = api.build(spec), checked_train(valid.spec, valid.spec.default)
    assert default_jit_compile(model, train, distributed=False) is True
    assert default_jit_compile(model, train, distributed=True) == "auto"
    seeded = checked_train(api.load_spec(spec, ["train.fit.seed=1"]).spec, valid.spec.default)
    assert default_jit_compile(model, seeded, distributed=False) == "auto"
    mlp = api.build(write_spec(SPEC.replace("py_layers.Echo", "Dense, units: 3"), "mlp.yaml"))
    assert default_jit_compile(mlp, train, distributed=False) == "auto"
    off = invoke(
        ["train", spec, "--out", tmp_path / "off", "--set", "train.compile.jit_compile=false"]
    )
    assert "XLA on" not in off.output
