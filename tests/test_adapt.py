"""`adapt: true`: preprocessing layers learn their state from the training data
before training, and keep it in the run's saved model; without it (and without
the state as arguments) validation warns."""

from __future__ import annotations

import numpy as np

from tests.conftest import invoke

SPEC = """\
kgraph: 1
inputs:
  x: [3]
  word: {shape: [1], dtype: string}
layers:
  scaled: {type: Dense, units: 2, kernel_initializer: ones, use_bias: false, from: x}
  norm_in: {type: Normalization, adapt: true, from: x}
  norm_mid: {type: Normalization, adapt: true, from: scaled}
  ids: {type: StringLookup, adapt: true, output_mode: int, from: word}
  id_vec: {type: Embedding, input_dim: 5, output_dim: 2, from: ids}
  flat: {type: Flatten, from: id_vec}
  joined: {type: Concatenate, from: [norm_in, norm_mid, flat]}
  out: {type: Dense, units: 1, from: joined}
outputs: [out]
train:
  data:
    source: {npz: data.npz}
    inputs: {x: {field: x}, word: {field: word}}
    targets: {out: {field: y}}
  compile: {optimizer: sgd, loss: mse}
  fit: {epochs: 1, batch_size: 32, seed: 0}
"""


def test_adapted_layers_keep_the_statistics_of_the_training_data(tmp_path) -> None:
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(loc=[5.0, -2.0, 10.0], scale=[2.0, 0.5, 3.0], size=(400, 3))
    words = rng.choice(["cat", "dog", "bird"], size=(400, 1))
    np.savez(tmp_path / "data.npz", x=x.astype("float32"), word=words, y=x[:, :1])
    (tmp_path / "spec.yaml").write_text(SPEC)
    result = invoke(["train", tmp_path / "spec.yaml", "--out", tmp_path / "run"])
    assert "adapted norm_in (Normalization) on 400 samples" in result.output
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    norm_in = model.get_layer("norm_in")
    np.testing.assert_allclose(np.ravel(norm_in.mean), x.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(np.ravel(norm_in.variance), x.var(axis=0), rtol=1e-3)
    # Downstream of a layer: adapted on what the (untrained) Dense makes of x.
    sums = x.sum(axis=1)
    np.testing.assert_allclose(
        np.ravel(model.get_layer("norm_mid").mean), [sums.mean()] * 2, rtol=1e-4
    )
    assert sorted(model.get_layer("ids").get_vocabulary()) == ["[UNK]", "bird", "cat", "dog"]


def test_a_layer_that_needs_adapting_without_it_is_a_warning(write_spec) -> None:
    path = write_spec(
        "kgraph: 1\ninputs: {x: [3]}\n"
        "layers: {norm: {type: Normalization, from: x}, out: {type: Dense, units: 1, from: norm}}\n"
        "outputs: [out]\n"
    )
    result = invoke(["validate", path, "--no-build"])
    assert "warning[not-adapted]" in result.output
    assert "passes its input through unchanged" in result.output
    # Statistics given as arguments need no adapt.
    path.write_text(
        path.read_text().replace("Normalization,", "Normalization, mean: 0.0, variance: 1.0,")
    )
    assert "not-adapted" not in invoke(["validate", path, "--no-build"]).output


def test_adapt_on_a_layer_without_adapt_is_an_error(write_spec) -> None:
    path = write_spec(
        "kgraph: 1\ninputs: {x: [3]}\n"
        "layers: {out: {type: Dense, units: 1, adapt: true, from: x}}\n"
        "outputs: [out]\n"
    )
    result = invoke(["validate", path, "--no-build"], exit_code=1)
    assert "error[layer-arg]" in result.output and "Dense has no adapt()" in result.output
