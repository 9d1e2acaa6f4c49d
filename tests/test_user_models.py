"""Seven specs written from the README alone (transformer encoder, U-Net, VAE,
seq2seq, wide & deep, multi-task CNN, MobileNet-like), each checked against
the same model written in plain Keras: parameter counts (total, trainable),
input and output shapes, and, with the spec model's weights copied into the
Keras one layer by layer (by name), the same predictions. For the transformer
and seq2seq, also that an upstream input really reaches the output. Last,
`kgraph train` runs each spec for one epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kgraph_cli import api
from tests.conftest import SPECS, invoke

pytestmark = pytest.mark.tf

VAE_PLUGIN = SPECS / "plugins" / "vae_layers.py"
PLUGINS = {"vae": [str(VAE_PLUGIN)]}
NAMES = [
    "transformer_encoder",
    "unet",
    "vae",
    "seq2seq",
    "wide_deep",
    "multitask_cnn",
    "mobilenet_like",
]


def spec_path(name: str) -> Path:
    return SPECS / f"{name}.yaml"


def build(name: str, model: str | None = None) -> Any:
    return api.build(spec_path(name), model=model, plugins=PLUGINS.get(name, []))


def trainable_count(model: Any) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def copy_weights(source: Any, target: Any) -> None:
    """Give every layer of `target` the weights of the layer of the same name in
    `source` (recursing into nested models): fails if a name is missing."""
    for layer in target.layers:
        if hasattr(layer, "layers"):  # a nested model
            copy_weights(source.get_layer(layer.name), layer)
        elif layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def random_inputs(model: Any, rng: np.random.Generator, batch: int = 2, steps: int = 5) -> list:
    arrays = []
    for tensor in model.inputs:
        shape = (batch, *(steps if d is None else d for d in tensor.shape[1:]))
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(0, 30, size=shape).astype("int32"))
        else:
            arrays.append(rng.random(shape).astype("float32"))
    return arrays


def outputs_of(model: Any, inputs: list) -> list[np.ndarray]:
    result = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    results = result if isinstance(result, (list, tuple)) else [result]
    return [np.asarray(r) for r in results]


def assert_same_model(spec_model: Any, keras_model: Any) -> None:
    assert spec_model.count_params() == keras_model.count_params()
    assert trainable_count(spec_model) == trainable_count(keras_model)
    assert [tuple(t.shape) for t in spec_model.inputs] == [
        tuple(t.shape) for t in keras_model.inputs
    ]
    assert [tuple(t.shape) for t in spec_model.outputs] == [
        tuple(t.shape) for t in keras_model.outputs
    ]
    assert sorted(tuple(w.shape) for w in spec_model.weights) == sorted(
        tuple(w.shape) for w in keras_model.weights
    )
    copy_weights(spec_model, keras_model)
    inputs = random_inputs(spec_model, np.random.default_rng(0))
    for ours, theirs in zip(
        outputs_of(spec_model, inputs), outputs_of(keras_model, inputs), strict=True
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


# -- the same models in plain Keras -------------------------------------------


def keras_transformer_encoder() -> Any:
    import keras
    from keras import layers, ops

    tokens = keras.Input((32,), dtype="int32", name="tokens")
    token_embedding = layers.Embedding(2000, 32, name="token_embedding")(tokens)
    positions = ops.cumsum(ops.ones_like(tokens), axis=1) - 1
    position_embedding = layers.Embedding(32, 32, name="position_embedding")(positions)
    x = layers.Add(name="embedded")([token_embedding, position_embedding])
    for i in (1, 2):
        attention = layers.MultiHeadAttention(
            num_heads=2, key_dim=32, name=f"encoder_{i}_attention"
        )
        h = layers.Dropout(0.1)(attention(query=x, value=x))
        norm_1 = layers.LayerNormalization(epsilon=1e-6, name=f"encoder_{i}_norm_1")(
            layers.Add()([x, h])
        )
        h = layers.Dense(32, activation="relu", name=f"encoder_{i}_ffn_1")(norm_1)
        h = layers.Dropout(0.1)(layers.Dense(32, name=f"encoder_{i}_ffn_2")(h))
        x = layers.LayerNormalization(epsilon=1e-6, name=f"encoder_{i}_norm_2")(
            layers.Add()([norm_1, h])
        )
    x = layers.Dropout(0.1)(layers.GlobalAveragePooling1D()(x))
    x = layers.Dropout(0.1)(layers.Dense(20, activation="relu", name="hidden")(x))
    probabilities = layers.Dense(2, activation="softmax", name="probabilities")(x)
    return keras.Model(tokens, probabilities)


def keras_unet() -> Any:
    import keras
    from keras import layers

    def double_conv(x: Any, filters: int, name: str) -> Any:
        for part in ("conv_a", "conv_b"):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_{part}")(
                x
            )
        return x

    image = keras.Input((32, 32, 1), name="image")
    down_1 = double_conv(image, 16, "down_1")
    down_2 = double_conv(layers.MaxPooling2D(2)(down_1), 32, "down_2")
    bottleneck = double_conv(layers.MaxPooling2D(2)(down_2), 64, "bottleneck")
    up_2 = layers.Conv2DTranspose(32, 2, strides=2, padding="same", name="up_2")(bottleneck)
    decode_2 = double_conv(layers.Concatenate()([up_2, down_2]), 32, "decode_2")
    up_1 = layers.Conv2DTranspose(16, 2, strides=2, padding="same", name="up_1")(decode_2)
    decode_1 = double_conv(layers.Concatenate()([up_1, down_1]), 16, "decode_1")
    mask = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(decode_1)
    return keras.Model(image, mask)


def keras_vae() -> tuple[Any, Any, Any]:
    """The keras.io VAE's encoder, decoder and the two chained."""
    import keras
    from keras import layers, ops

    class Sampling(layers.Layer):  # z_mean when not training, as the spec's plugin
        def call(self, inputs: Any, training: Any = None) -> Any:
            z_mean, z_log_var = inputs
            if not training:
                return z_mean
            epsilon = keras.random.normal(ops.shape(z_mean))
            return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    encoder_input = keras.Input((28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same", name="conv_1")(
        encoder_input
    )
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same", name="conv_2")(x)
    x = layers.Dense(16, activation="relu", name="dense")(layers.Flatten()(x))
    z_mean = layers.Dense(2, name="z_mean")(x)
    z_log_var = layers.Dense(2, name="z_log_var")(x)
    z = Sampling(name="z")([z_mean, z_log_var])
    encoder = keras.Model(encoder_input, [z_mean, z_log_var, z], name="encoder")

    latent = keras.Input((2,))
    x = layers.Dense(7 * 7 * 64, activation="relu", name="dense")(latent)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(
        64, 3, activation="relu", strides=2, padding="same", name="deconv_1"
    )(x)
    x = layers.Conv2DTranspose(
        32, 3, activation="relu", strides=2, padding="same", name="deconv_2"
    )(x)
    image = layers.Conv2DTranspose(
        1, 3, activation="sigmoid", padding="same", name="decoder_output"
    )(x)
    decoder = keras.Model(latent, image, name="decoder")

    vae_input = keras.Input((28, 28, 1))
    vae = keras.Model(vae_input, decoder(encoder(vae_input)[2]), name="vae")
    return encoder, decoder, vae


def keras_seq2seq() -> tuple[Any, Any]:
    """The keras.io character-level seq2seq model (latent 64) and its inference encoder."""
    import keras
    from keras import layers

    encoder_inputs = keras.Input((None, 71))
    decoder_inputs = keras.Input((None, 93))
    _, state_h, state_c = layers.LSTM(64, return_state=True, name="encoder")(encoder_inputs)
    decoder_lstm = layers.LSTM(64, return_sequences=True, return_state=True, name="decoder")
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=[state_h, state_c])
    outputs = layers.Dense(93, activation="softmax", name="decoder_dense")(decoder_outputs)
    model = keras.Model([encoder_inputs, decoder_inputs], outputs)
    return model, keras.Model(encoder_inputs, [state_h, state_c])


def keras_wide_deep() -> Any:
    import keras
    from keras import layers

    wide = keras.Input((100,))
    deep = keras.Input((13,))
    x = layers.Dense(64, activation="relu", name="deep_1")(deep)
    x = layers.Dense(32, activation="relu", name="deep_2")(x)
    x = layers.Concatenate()([wide, x])
    return keras.Model([wide, deep], layers.Dense(1, activation="sigmoid", name="probability")(x))


def keras_multitask_cnn() -> Any:
    import keras
    from keras import layers

    image = keras.Input((28, 28, 1))
    x = layers.Conv2D(16, 3, activation="relu", name="conv_1")(image)
    x = layers.Conv2D(32, 3, activation="relu", name="conv_2")(layers.MaxPooling2D(2)(x))
    x = layers.Flatten()(layers.MaxPooling2D(2)(x))
    x = layers.Dense(64, activation="relu", name="shared")(x)
    digit = layers.Dense(10, activation="softmax", name="digit")(x)
    thickness = layers.Dense(1, name="thickness")(x)
    return keras.Model(image, [digit, thickness])


def keras_mobilenet_like() -> Any:
    import keras
    from keras import layers

    image = keras.Input((32, 32, 3))
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem")(image)
    x = layers.ReLU(6.0)(layers.BatchNormalization(name="stem_bn")(x))
    for i, (filters, strides) in enumerate([(64, 1), (128, 2), (128, 1), (256, 2)], 1):
        x = layers.DepthwiseConv2D(
            3, strides=strides, padding="same", use_bias=False, name=f"stage_{i}_depthwise"
        )(x)
        x = layers.ReLU(6.0)(layers.BatchNormalization(name=f"stage_{i}_depthwise_bn")(x))
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"stage_{i}_pointwise")(x)
        x = layers.ReLU(6.0)(layers.BatchNormalization(name=f"stage_{i}_pointwise_bn")(x))
    x = layers.Dropout(0.2)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(image, layers.Dense(10, activation="softmax", name="probabilities")(x))


# (spec, the plain Keras model, total params, trainable params)
SINGLE: list[tuple[str, Callable[[], Any], int, int]] = [
    ("transformer_encoder", keras_transformer_encoder, 87_038, 87_038),
    ("unet", keras_unet, 116_753, 116_753),
    ("wide_deep", keras_wide_deep, 3_109, 3_109),
    ("multitask_cnn", keras_multitask_cnn, 56_779, 56_779),
    ("mobilenet_like", keras_mobilenet_like, 69_834, 67_914),
]


@pytest.mark.parametrize(
    ("name", "reference", "total", "trainable"), SINGLE, ids=[s[0] for s in SINGLE]
)
def test_spec_is_the_keras_model(
    name: str, reference: Callable[[], Any], total: int, trainable: int
) -> None:
    spec_model, keras_model = build(name), reference()
    assert_same_model(spec_model, keras_model)
    assert (spec_model.count_params(), trainable_count(spec_model)) == (total, trainable)


def test_every_spec_validates_without_warnings() -> None:
    for name in NAMES:
        check = api.validate(spec_path(name), plugins=PLUGINS.get(name, []))
        assert check.ok, (name, [d.message for d in check.diagnostics])
        assert not check.diagnostics, (name, [d.message for d in check.diagnostics])


def test_transformer_block_is_repeated_and_positions_are_real() -> None:
    model = build("transformer_encoder")
    names = [layer.name for layer in model.layers]
    for i in (1, 2):
        assert f"encoder_{i}_attention" in names and f"encoder_{i}_norm_2" in names
    # The second encoder layer attends over the first one's output (query and value).
    attention_2 = model.get_layer("encoder_2_attention")
    sources = {t._keras_history.operation.name for t in attention_2._inbound_nodes[0].input_tensors}
    assert sources == {"encoder_1_norm_2"}
    tokens = np.random.default_rng(1).integers(0, 2000, size=(2, 32)).astype("int32")
    before = outputs_of(model, [tokens])[0]
    changed = tokens.copy()
    changed[:, 3] = (changed[:, 3] + 1) % 2000
    assert not np.allclose(before, outputs_of(model, [changed])[0])
    # Without a position embedding, self-attention and average pooling would not
    # see the order: reversing the tokens changes the output only through it.
    assert not np.allclose(before, outputs_of(model, [tokens[:, ::-1].copy()])[0])


def test_seq2seq_and_its_inference_encoder() -> None:
    from kgraph_cli.build import ModelBuilder

    keras_model, keras_encoder = keras_seq2seq()
    assert_same_model(build("seq2seq"), keras_model)
    assert build("seq2seq").count_params() == 81_309
    encoder_view = build("seq2seq", "encoder_model")
    assert encoder_view.count_params() == keras_encoder.count_params() == 34_816
    assert [tuple(t.shape) for t in encoder_view.outputs] == [(None, 64), (None, 64)]
    assert list(encoder_view.output_names) == ["state_h", "state_c"]

    models = ModelBuilder(api.load_spec(spec_path("seq2seq"))).build_all()
    seq2seq, encoder_model = models["seq2seq"], models["encoder_model"]
    assert encoder_model.get_layer("encoder") is seq2seq.get_layer("encoder")  # shared
    rng = np.random.default_rng(2)
    source = rng.random((2, 7, 71)).astype("float32")
    target = rng.random((2, 5, 93)).astype("float32")
    probabilities = np.asarray(seq2seq([source, target]))
    # The decoder starts from the encoder's final states: the view's outputs.
    state_h, state_c = encoder_model(source)
    decoded, _, _ = seq2seq.get_layer("decoder")(target, initial_state=[state_h, state_c])
    by_hand = seq2seq.get_layer("decoder_dense")(decoded)
    np.testing.assert_allclose(probabilities, np.asarray(by_hand), rtol=1e-5, atol=1e-6)
    # ... so a change to the source sentence reaches the decoder's output.
    other = np.asarray(seq2seq([source[:, ::-1].copy(), target]))
    assert not np.allclose(probabilities, other)


def test_vae_is_the_keras_vae_and_adds_the_kl_loss() -> None:
    from kgraph_cli.build import ModelBuilder

    valid = api.load_spec(spec_path("vae"), plugins=PLUGINS["vae"])
    models = ModelBuilder(valid).build_all()
    keras_encoder, keras_decoder, keras_vae_model = keras_vae()
    for name, reference in (
        ("encoder", keras_encoder),
        ("decoder", keras_decoder),
        ("vae", keras_vae_model),
    ):
        ours = models[name]
        assert ours.count_params() == reference.count_params()
        assert trainable_count(ours) == trainable_count(reference)
        assert [tuple(t.shape) for t in ours.outputs] == [tuple(t.shape) for t in reference.outputs]
    assert [m.count_params() for m in models.values()] == [69_076, 65_089, 134_165]
    vae = models["vae"]
    assert [layer.name for layer in vae.layers] == ["image", "encoder", "decoder"]
    # Same weights, same predictions (Sampling gives z_mean outside training).
    assert_same_model(vae, keras_vae_model)
    rng = np.random.default_rng(3)
    images = rng.random((2, 28, 28, 1)).astype("float32")
    # In training, z is sampled (the decoder reads Sampling's output): two calls differ.
    first, second = (np.asarray(vae(images, training=True)) for _ in range(2))
    assert not np.allclose(first, second)
    # The plugin's Sampling adds KL(N(z_mean, exp(z_log_var)) || N(0, 1)) / 784.
    sampling = vae.get_layer("encoder").get_layer("z")
    assert type(sampling).__name__ == "Sampling" and type(sampling).__module__ == "vae_layers"
    outputs = vae.get_layer("encoder")(images)
    z_mean, z_log_var = (np.asarray(t, dtype="float64") for t in outputs[:2])
    vae(images, training=True)
    [kl_loss] = vae.losses
    kl = -0.5 * (1 + z_log_var - z_mean**2 - np.exp(z_log_var))
    assert float(kl_loss) == pytest.approx(kl.sum(axis=1).mean() * 0.0012755102, rel=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_train_one_epoch(name: str, tmp_path: Path) -> None:
    plugins = [arg for plugin in PLUGINS.get(name, []) for arg in ("--plugin", plugin)]
    out = tmp_path / name
    invoke(["train", spec_path(name), "--out", out, "--epochs", 1, "-q", *plugins])
    assert (out / "metrics.json").is_file()
    assert (out / "model.keras").is_file()


def test_the_seq2seq_inference_decoder_shares_the_trained_layers() -> None:
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.spec.validate import validate_spec

    models = ModelBuilder(validate_spec(SPECS / "seq2seq.yaml")).build_all()
    train, encoder, decoder = models["seq2seq"], models["encoder_model"], models["decoder_model"]
    for name in ("decoder", "decoder_dense"):
        assert decoder.get_layer(name) is train.get_layer(name)
    rng = np.random.default_rng(3)
    enc_in = rng.normal(size=(2, 5, 71)).astype("float32")
    dec_in = rng.normal(size=(2, 4, 93)).astype("float32")
    # One pass of the inference pair is the training model's teacher-forced pass.
    h, c = encoder.predict(enc_in, verbose=0)  # outputs state_h, state_c
    stepped = decoder.predict([dec_in, h, c], verbose=0)[0]  # decoder_outputs first
    np.testing.assert_allclose(stepped, train.predict([enc_in, dec_in], verbose=0), atol=1e-5)
