"""`kgraph import`: Keras model -> spec -> Keras model gives the same
architecture (configuration graph, layers, parameters) and, with the weights
file, the same predictions.

The round trips run on architectures nobody here wrote (keras.applications,
built with weights=None: no download) and on every example spec. Each
application is built once for the module; inputs are small, since parameter
counts do not depend on the image size when the top is `GlobalAveragePooling
+ Dense(classes)` (or 1x1 convolutions), which is what include_top=True gives them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kgraph_cli.cli import app
from kgraph_cli.spec.writer import spec_yaml
from tests.conftest import SPEC_PLUGINS

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
PLUGIN = SPECS / "plugins" / "my_layers.py"
SPEC_FILES = sorted(SPECS.glob("*.yaml")) + sorted(SPECS.glob("parts/*.yaml"))
NEEDS_PLUGIN = SPEC_PLUGINS

# keras.applications, each with include_top=True and classes=10 (the head is
# GlobalAveragePooling2D + Dense(10), or 1x1 convolutions after the pooling,
# so the counts below hold for any input size) on the smallest input each
# accepts without pretrained weights.
APPLICATIONS = {
    "ResNet50": ((32, 32, 3), 23_608_202),
    "MobileNetV2": ((32, 32, 3), 2_270_794),
    "DenseNet121": ((32, 32, 3), 7_047_754),
    "InceptionV3": ((75, 75, 3), 21_823_274),  # InceptionV3's minimum size
    "EfficientNetB0": ((32, 32, 3), 4_062_381),
    "MobileNetV3Small": ((32, 32, 3), 1_540_218),  # hard-swish written with keras.ops
    "EfficientNetV2B0": ((32, 32, 3), 5_932_122),  # a Constant bias initializer
    "ConvNeXtTiny": ((32, 32, 3), 27_827_818),  # LayerScale; nested Sequential models
}


def keras_module() -> Any:
    from kgraph_cli.tf import import_keras

    return import_keras()


# -- comparing two models ------------------------------------------------------


def functional(model: Any) -> Any:
    """A Sequential model's functional equivalent (what the spec describes)."""
    keras = keras_module()
    return model._functional if type(model) is keras.Sequential else model


def identifier(name: str) -> str:
    """What the importer makes of a name that is not an identifier."""
    text = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return f"_{text}" if not text or text[0].isdigit() else text


def strip_config(value: Any) -> Any:
    """A model's get_config() without what a spec does not pin down: the names
    inside layer configs (a wrapped layer's, a nested model instance's), and
    tuples versus lists."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "config" and isinstance(item, dict):
                out[key] = {k: strip_config(v) for k, v in item.items() if k != "name"}
            elif key not in ("build_config", "compile_config"):
                out[key] = strip_config(item)
        return out
    if isinstance(value, (list, tuple)):
        return [strip_config(v) for v in value]
    return value


def config_graph(model: Any) -> dict:
    """The configuration graph; a nested model's entry without its own graph,
    which `assert_same_model` compares on its own (a nested Sequential model is
    rebuilt as the functional model it is: its graph is compared with that)."""
    config = strip_config(functional(model).get_config())
    config.pop("name")
    for entry in config["layers"]:
        if entry.get("class_name") in ("Functional", "Sequential"):
            entry.update(class_name="Model", module=None, registered_name=None)
            entry["config"] = {"trainable": entry["config"].get("trainable", True)}
    return rename(config, op_names(model))


def layer_list(model: Any) -> list[tuple[str, str]]:
    """(class, name) of each layer; a nested Sequential model counts as the
    functional model it is rebuilt as."""
    keras = keras_module()
    return [
        ("Functional" if type(layer) is keras.Sequential else type(layer).__name__, layer.name)
        for layer in functional(model).layers
    ]


def op_names(model: Any) -> dict[str, str]:
    """Names Keras generates for the operations that are not layers (the
    `not_equal` of Embedding(mask_zero=True)): numbered per session, so
    compared without their number."""
    keras = keras_module()
    return {
        op.name: re.sub(r"_\d+$", "", op.name)
        for op in functional(model).operations
        if not isinstance(op, keras.layers.Layer)
    }


def rename(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: rename(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [rename(v, names) for v in value]
    return names.get(value, value) if isinstance(value, str) else value


def edges(model: Any) -> list[tuple[str, str]]:
    """(producer, consumer) names, for every call of every layer."""
    found = []
    names = op_names(model)
    for layer in functional(model).get_config()["layers"]:
        for node in layer["inbound_nodes"]:
            for tensor in _history(node):
                found.append(
                    (names.get(tensor[0], tensor[0]), names.get(layer["name"], layer["name"]))
                )
    return sorted(found)


def _history(value: Any) -> list:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"]]
        return [h for v in value.values() for h in _history(v)]
    if isinstance(value, (list, tuple)):
        return [h for v in value for h in _history(v)]
    return []


def sample_inputs(model: Any, seed: int = 0) -> list[np.ndarray]:
    """A fixed random batch of 2 for every input (None dimensions: 6 steps).
    Values are below 10, so that they are valid ids for Embedding inputs."""
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = (2, *(6 if d is None else d for d in tensor.shape[1:]))
        values = rng.random(shape) * 10
        arrays.append(values.astype(str(tensor.dtype)))
    return arrays


def outputs_of(model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    result = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    result = result if isinstance(result, (list, tuple)) else [result]
    return [np.asarray(r) for r in result]


def rebuild(spec: Path, plugins: list[str] | None = None) -> Any:
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.spec.validate import validate_spec

    return ModelBuilder(validate_spec(spec, (), plugins or [])).build()


def round_trip(
    model: Any, folder: Path, name: str, plugins: list[str] | None = None
) -> tuple[Any, Path]:
    """Import `model` with its weights; return a fresh rebuild that loaded them."""
    from kgraph_cli.importer import import_model

    spec = folder / f"{name}.yaml"
    weights = folder / f"{name}.weights.h5"
    import_model(model, spec, weights, plugins=plugins or [])
    rebuilt = rebuild(spec, plugins)
    rebuilt.load_weights(weights)
    return rebuilt, spec


def assert_same_model(
    original: Any, rebuilt: Any, exact: bool = True, predictions: bool = True
) -> None:
    """Same parameters, layers (class and name, in order), edges, per-layer
    configs (nested models': each compared the same way) and predictions; with
    `exact`, the same configuration graph (which differs by design for names
    that are not identifiers)."""
    keras = keras_module()
    assert rebuilt.count_params() == original.count_params()
    expected = [(cls, identifier(name)) for cls, name in layer_list(original)]
    assert layer_list(rebuilt) == expected
    assert edges(rebuilt) == sorted((identifier(a), identifier(b)) for a, b in edges(original))
    if exact:
        assert config_graph(rebuilt) == config_graph(original)
    for before, after in zip(functional(original).layers, rebuilt.layers, strict=True):
        if isinstance(before, keras.Model):
            assert_same_model(before, after, exact, predictions=False)
        elif not isinstance(getattr(before, "layer", None), keras.Sequential):
            assert strip_config({"config": after.get_config()}) == strip_config(
                {"config": before.get_config()}
            ), before.name
    if not predictions:
        return
    inputs = sample_inputs(original)
    for want, got in zip(outputs_of(original, inputs), outputs_of(rebuilt, inputs), strict=True):
        assert np.array_equal(want, got)


# -- keras.applications ----------------------------------------------------------


@pytest.fixture(scope="module", params=list(APPLICATIONS))
def application(request: pytest.FixtureRequest) -> tuple[str, Any]:
    name = request.param
    shape, _ = APPLICATIONS[name]
    builder = getattr(keras_module().applications, name)
    return name, builder(weights=None, input_shape=shape, include_top=True, classes=10)


@pytest.mark.tf
def test_application_round_trip(application, tmp_path: Path) -> None:
    name, model = application
    assert model.count_params() == APPLICATIONS[name][1]
    rebuilt, spec = round_trip(model, tmp_path, name)
    assert_same_model(model, rebuilt)
    text = spec.read_text()
    assert "name:" not in re.sub(r"^name: .*$", "", text, flags=re.M)  # no layer names
    assert "trainable" not in text and "dtype" not in text  # defaults left out
    assert "glorot_uniform" not in text  # so is Dense's default initializer


# -- every keras.applications constructor: `make test-apps` -------------------------

# All of them (test_the_sweep_lists_every_application checks the list against
# the installed Keras), each on the smallest input it accepts without weights
# (32x32 unless listed), with include_top=True and classes=10, and without the
# top, pooled.
ALL_APPLICATIONS = [
    *(f"ConvNeXt{size}" for size in ("Tiny", "Small", "Base", "Large", "XLarge")),
    "DenseNet121",
    "DenseNet169",
    "DenseNet201",
    *(f"EfficientNetB{i}" for i in range(8)),
    *(f"EfficientNetV2{size}" for size in ("B0", "B1", "B2", "B3", "S", "M", "L")),
    "InceptionResNetV2",
    "InceptionV3",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Small",
    "MobileNetV3Large",
    "NASNetMobile",
    "NASNetLarge",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "ResNet50V2",
    "ResNet101V2",
    "ResNet152V2",
    "VGG16",
    "VGG19",
    "Xception",
]
SMALLEST_INPUT = {"InceptionResNetV2": 75, "InceptionV3": 75, "Xception": 71}
APPLICATION_VARIANTS = {
    "top": {"include_top": True, "classes": 10},
    "notop-avg": {"include_top": False, "pooling": "avg"},
}


@pytest.mark.tf
def test_the_sweep_lists_every_application() -> None:
    applications = keras_module().applications
    found = [n for n in dir(applications) if n[:1].isupper() and callable(getattr(applications, n))]
    assert sorted(found) == sorted(ALL_APPLICATIONS)


@pytest.mark.apps
@pytest.mark.tf
@pytest.mark.parametrize("variant", list(APPLICATION_VARIANTS))
@pytest.mark.parametrize("name", ALL_APPLICATIONS)
def test_every_application_round_trip(name: str, variant: str, request) -> None:
    import tempfile

    keras = keras_module()
    size = SMALLEST_INPUT.get(name, 32)
    builder = getattr(keras.applications, name)
    model = builder(weights=None, input_shape=(size, size, 3), **APPLICATION_VARIANTS[variant])
    # Not tmp_path: the weights files of the largest (1.4 GB) go at once.
    with tempfile.TemporaryDirectory(prefix="kgraph-apps-") as folder:
        rebuilt, _ = round_trip(model, Path(folder), name)
        assert_same_model(model, rebuilt)
    keras.backend.clear_session()


# -- the example specs ----------------------------------------------------------


def spec_models() -> list[tuple[Path, str]]:
    """Every model of every example spec (views and nested models included);
    read without plugins, so that collecting the tests imports no TensorFlow."""
    from kgraph_cli.spec.assemble import load_spec

    return [(path, name) for path in SPEC_FILES for name in load_spec(path)[0].models]


@pytest.mark.tf
@pytest.mark.parametrize(
    ("path", "model_name"),
    spec_models(),
    ids=lambda v: v.relative_to(SPECS).with_suffix("").as_posix() if isinstance(v, Path) else v,
)
def test_example_spec_round_trip(path: Path, model_name: str, tmp_path: Path) -> None:
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.spec.validate import validate_spec

    plugins = NEEDS_PLUGIN.get(path.stem, [])
    model = ModelBuilder(validate_spec(path, (), plugins)).build(model_name)
    rebuilt, _ = round_trip(model, tmp_path, model_name, plugins)
    assert_same_model(model, rebuilt)


@pytest.mark.tf
def test_example_import_reads_like_the_example(tmp_path: Path) -> None:
    """The nested autoencoder comes back essentially as written."""
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.importer import model_to_spec
    from kgraph_cli.spec.validate import validate_spec

    model = ModelBuilder(validate_spec(SPECS / "autoencoder_nested.yaml")).build()
    data = model_to_spec(model)
    assert data["default"] == "autoencoder" and list(data["models"]) == ["encoder", "decoder"]
    assert data["layers"] == {
        "encoder": {"model": "encoder", "from": "img"},
        "decoder": {"model": "decoder", "from": "encoder"},
    }
    encoder = data["models"]["encoder"]["layers"]
    assert encoder["conv1"] == {
        "type": "Conv2D",
        "filters": 16,
        "kernel_size": 3,
        "activation": "relu",
        "from": "original_img",
    }
    assert encoder["pool"] == {"type": "MaxPooling2D", "pool_size": 3, "from": "conv2"}
    text = spec_yaml(data)
    assert (
        "      conv1: {type: Conv2D, filters: 16, kernel_size: 3, activation: relu, "
        "from: original_img}\n" in text
    )


# -- models written here: Sequential, shared, nested, multi-output ----------------


@pytest.mark.tf
def test_sequential_model(tmp_path: Path) -> None:
    keras = keras_module()
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dropout(0.1, name="drop"),
            keras.layers.Dense(2, name="logits"),
        ],
        name="seq",
    )
    rebuilt, spec = round_trip(model, tmp_path, "seq")
    assert_same_model(model, rebuilt)
    assert "  drop: {type: Dropout, rate: 0.1, from: hidden}\n" in spec.read_text()


@pytest.mark.tf
def test_shared_layer_becomes_share_nodes(tmp_path: Path) -> None:
    keras = keras_module()
    x = keras.Input((8,), name="x")
    y = keras.Input((8,), name="y")
    dense = keras.layers.Dense(8, name="dense")
    twice = dense(dense(x))  # called at two depths
    other = dense(y)
    merged = keras.layers.Add(name="add")([twice, other])
    model = keras.Model([x, y], [merged, twice], name="shared")
    rebuilt, spec = round_trip(model, tmp_path, "shared")
    assert_same_model(model, rebuilt)
    from kgraph_cli.importer import model_to_spec

    data = model_to_spec(model)
    layers = data["layers"]
    assert layers["dense"]["type"] == "Dense"
    shares = {k: v for k, v in layers.items() if "share" in v}
    assert shares == {
        "dense_2": {"share": "dense", "from": "dense"},
        "dense_3": {"share": "dense", "from": "y"},
    }
    # The later call's output keeps the layer's name: no Identity layer is added.
    assert data["outputs"] == {"add": "add", "dense": "dense_2"}
    assert len(rebuilt.layers) == len(model.layers)


@pytest.mark.tf
def test_nested_models_and_multi_output_layers(tmp_path: Path) -> None:
    keras = keras_module()
    code_in = keras.Input((4,), name="code_in")
    encoder = keras.Model(
        code_in,
        [
            keras.layers.Dense(3, name="mean")(code_in),
            keras.layers.Dense(3, name="spread")(code_in),
        ],
        name="encoder",
    )
    step_in = keras.Input((6,), name="step")
    head = keras.Model(step_in, keras.layers.Dense(2, name="out")(step_in), name="head")
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    mean_a, spread_a = encoder(a)
    mean_b, _ = encoder(b)  # the same instance again: shared
    both = keras.layers.Concatenate(name="both")([mean_a, spread_a])
    seq = keras.Input((5, 6), name="seq")
    per_step = keras.layers.TimeDistributed(head, name="per_step")(seq)
    lstm_out, state_h, _ = keras.layers.LSTM(3, return_state=True, name="lstm")(per_step)
    joined = keras.layers.Concatenate(name="joined")([both, mean_b, lstm_out, state_h])
    model = keras.Model([a, b, seq], joined, name="outer")

    rebuilt, spec = round_trip(model, tmp_path, "outer")
    assert_same_model(model, rebuilt)
    from kgraph_cli.importer import model_to_spec

    data = model_to_spec(model)
    assert data["default"] == "outer"
    assert set(data["models"]) == {"encoder", "head"}
    assert data["models"]["encoder"]["outputs"] == ["mean", "spread"]
    layers = data["layers"]
    assert layers["encoder"] == {"model": "encoder", "from": "a"}
    assert layers["encoder_2"] == {"share": "encoder", "from": "b"}
    assert layers["both"]["from"] == ["encoder.0", "encoder.1"]
    assert layers["per_step"]["layer"] == {"model": "head"}
    assert layers["joined"]["from"] == ["both", "encoder_2.0", "lstm.0", "lstm.1"]


@pytest.mark.tf
def test_nested_sequential_model(tmp_path: Path) -> None:
    keras = keras_module()
    block = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="inner"), keras.layers.ReLU(name="act")],
        name="block",
    )
    x = keras.Input((4,), name="x")
    y = keras.layers.Dense(2, name="out")(block(x))
    model = keras.Model(x, y, name="with_block")
    rebuilt, _ = round_trip(model, tmp_path, "with_block")
    assert_same_model(model, rebuilt, exact=False)
    nested = rebuilt.get_layer("block")
    assert [type(layer).__name__ for layer in nested.layers] == ["InputLayer", "Dense", "ReLU"]
    from kgraph_cli.importer import model_to_spec

    data = model_to_spec(model)
    assert data["models"]["block"]["layers"]["act"] == {"type": "ReLU", "from": "inner"}


@pytest.mark.tf
def test_masks_and_call_arguments(tmp_path: Path) -> None:
    """Keras's own masks (mask_zero) are not written; training=False is."""
    keras = keras_module()
    words = keras.Input((None,), dtype="int32", name="words")
    embedded = keras.layers.Embedding(50, 8, mask_zero=True, name="embedded")(words)
    encoded = keras.layers.LSTM(4, name="encoded")(embedded)
    frozen = keras.layers.BatchNormalization(name="frozen")(encoded, training=False)
    model = keras.Model(words, frozen, name="masked")
    rebuilt, _ = round_trip(model, tmp_path, "masked")
    assert_same_model(model, rebuilt)
    from kgraph_cli.importer import model_to_spec

    layers = model_to_spec(model)["layers"]
    assert layers["encoded"] == {"type": "LSTM", "units": 4, "from": "embedded"}
    assert layers["frozen"] == {
        "type": "BatchNormalization",
        "from": "encoded",
        "call": {"training": False},
    }


@pytest.mark.tf
def test_keyword_inputs_keep_each_layer_its_weights(tmp_path: Path) -> None:
    """MultiHeadAttention called positionally becomes `from: {query, value,
    key}`; Keras then orders the three projections differently (keyword
    inputs go by name), so the weights are matched by layer name, not order."""
    keras = keras_module()
    x = keras.Input((4, 6), name="x")
    query = keras.layers.Dense(6, name="query_proj")(x)
    value = keras.layers.Dense(6, name="value_proj")(x)
    key = keras.layers.Dense(6, name="key_proj")(x)
    attended = keras.layers.MultiHeadAttention(2, 3, name="attention")(query, value, key)
    model = keras.Model(x, attended, name="attend")
    rebuilt, spec = round_trip(model, tmp_path, "attend")
    assert "from: {query: query_proj, value: value_proj, key: key_proj}" in spec.read_text()
    assert rebuilt.count_params() == model.count_params()
    assert sorted(layer_list(rebuilt)) == sorted(layer_list(model))
    assert edges(rebuilt) == edges(model)
    inputs = sample_inputs(model)
    assert np.array_equal(outputs_of(model, inputs)[0], outputs_of(rebuilt, inputs)[0])


@pytest.mark.tf
def test_layer_valued_arguments_are_a_clear_error() -> None:
    from kgraph_cli.importer import ModelImportError, model_to_spec

    keras = keras_module()
    x = keras.Input((5, 3))
    model = keras.Model(x, keras.layers.RNN(keras.layers.LSTMCell(4), name="rnn")(x))
    with pytest.raises(ModelImportError, match="layer 'rnn'.*argument 'cell' is a layer"):
        model_to_spec(model)


@pytest.mark.tf
def test_non_default_arguments_and_keras_objects(tmp_path: Path) -> None:
    keras = keras_module()
    x = keras.Input((6, 6, 3), name="x")
    y = keras.layers.Conv2D(
        4,
        3,
        strides=2,
        padding="same",
        kernel_initializer=keras.initializers.VarianceScaling(2.0, mode="fan_out"),
        bias_initializer="ones",
        kernel_regularizer=keras.regularizers.L2(1e-4),
        name="conv",
    )(x)
    y = keras.layers.MaxPooling2D(3, padding="same", name="pool")(y)
    y = keras.layers.Dense(2, trainable=False, dtype="float64", name="head")(y)
    model = keras.Model(x, y, name="objects")
    rebuilt, _ = round_trip(model, tmp_path, "objects")
    assert_same_model(model, rebuilt)
    from kgraph_cli.importer import model_to_spec

    layers = model_to_spec(model)["layers"]
    assert layers["conv"] == {
        "type": "Conv2D",
        "filters": 4,
        "kernel_size": 3,
        "strides": 2,
        "padding": "same",
        "kernel_initializer": {"type": "VarianceScaling", "scale": 2.0, "mode": "fan_out"},
        "bias_initializer": "ones",
        "kernel_regularizer": {"type": "L2", "l2": 1e-4},
        "from": "x",
    }
    # strides default to pool_size: not written
    assert layers["pool"] == {
        "type": "MaxPooling2D",
        "pool_size": 3,
        "padding": "same",
        "from": "conv",
    }
    assert layers["head"] == {
        "type": "Dense",
        "units": 2,
        "trainable": False,
        "dtype": "float64",
        "from": "pool",
    }


@pytest.mark.tf
def test_names_that_are_not_identifiers(tmp_path: Path) -> None:
    keras = keras_module()
    x = keras.Input((4,), name="in-put")
    y = keras.layers.Dense(3, name="dense.1")(x)
    y = keras.layers.Dense(2, name="2nd")(y)
    model = keras.Model(x, y, name="my-model")
    rebuilt, spec = round_trip(model, tmp_path, "renamed")
    assert_same_model(model, rebuilt, exact=False)
    text = spec.read_text()
    assert "name: my_model\n" in text
    assert "  in_put: [4]  # Keras name: 'in-put'\n" in text
    assert "  dense_1: {type: Dense, units: 3, from: in_put}  # Keras name: 'dense.1'\n" in text
    assert "  _2nd: {type: Dense, units: 2, from: dense_1}  # Keras name: '2nd'\n" in text


# -- what a spec cannot say ---------------------------------------------------------


@pytest.mark.tf
def test_lambda_layer_is_a_clear_error() -> None:
    from kgraph_cli.importer import ModelImportError, model_to_spec

    keras = keras_module()
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Lambda(lambda t: t * 2, name="double")(x))
    with pytest.raises(ModelImportError, match="'double'.*Lambda"):
        model_to_spec(model)


@pytest.mark.tf
def test_subclassed_model_is_a_clear_error() -> None:
    from kgraph_cli.importer import ModelImportError, model_to_spec

    keras = keras_module()

    class Doubler(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs) * 2

    subclassed = Doubler()
    subclassed(np.zeros((1, 3), "float32"))
    with pytest.raises(ModelImportError, match="subclassed model"):
        model_to_spec(subclassed)


@pytest.mark.tf
def test_custom_layer_needs_its_plugin(tmp_path: Path) -> None:
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.importer import ModelImportError, model_to_spec
    from kgraph_cli.spec.validate import validate_spec

    spec = SPECS / "custom_dense.yaml"
    model = ModelBuilder(validate_spec(spec, (), [str(PLUGIN)])).build()
    with pytest.raises(ModelImportError, match="custom layer") as caught:
        model_to_spec(model)
    assert "--plugin" in caught.value.hint
    data = model_to_spec(model, [str(PLUGIN)])
    assert data["layers"]["outputs"] == {
        "type": "my_layers.CustomDense",
        "units": 10,
        "from": "inputs",
    }


# -- keras.ops operations: `op:` nodes -------------------------------------------------


def named(tensor: Any, name: str) -> Any:
    """`tensor`, its operation renamed (Keras numbers op names per session)."""
    from kgraph_cli import keras_graph

    keras_graph.producer(tensor).name = name
    return tensor


def ops_model() -> Any:
    """MobileNetV3's hard-swish, a concatenation and positions 0..N-1 made from
    an int input, written with keras.ops as Python code writes them."""
    keras = keras_module()
    ops = keras.ops
    x = keras.Input((8,), name="x")
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    h = keras.layers.Dense(4, name="h")(x)
    plus3 = named(h + 3.0, "plus3")
    gate = named(ops.relu6(plus3), "gate")
    gated = named(h * gate, "gated")
    hswish = named(gated * (1 / 6), "hswish")
    cat = named(ops.concatenate([h, hswish], axis=-1), "cat")
    ones = named(ops.ones_like(tokens), "ones")
    cum = named(ops.cumsum(ones, axis=1), "cum")
    positions = named(cum - 1, "positions")
    flipped = named(1 - h, "flipped")  # the tensor in the second parameter
    out = keras.layers.Dense(2, name="out")(cat)
    return keras.Model([x, tokens], [out, positions, flipped], name="opsnet")


OPS_NODES = [
    "  plus3: {op: add, from: h, x2: 3.0}\n",
    "  gate: {op: relu6, from: plus3}\n",
    "  gated: {op: multiply, from: [h, gate]}\n",
    "  hswish: {op: multiply, from: gated, x2: 0.16666666666666666}\n",
    "  cat: {op: concatenate, from: {xs: [h, hswish]}, axis: -1}\n",
    "  ones: {op: ones_like, from: tokens}\n",  # its `dtype: null` left out
    "  cum: {op: cumsum, from: ones, axis: 1}\n",
    "  positions: {op: subtract, from: cum, x2: 1}\n",
    "  flipped: {op: subtract, from: h, x1: 1}\n",
]


@pytest.mark.tf
def test_keras_ops_become_op_nodes(tmp_path: Path) -> None:
    model = ops_model()
    rebuilt, spec = round_trip(model, tmp_path, "opsnet")
    text = spec.read_text()
    for line in OPS_NODES:
        assert line in text
    assert text.endswith("outputs: [out, positions, flipped]\n")
    assert_same_model(model, rebuilt)
    inputs = sample_inputs(model)
    for want, got in zip(outputs_of(model, inputs), outputs_of(rebuilt, inputs), strict=True):
        assert np.allclose(want, got)
    positions = outputs_of(rebuilt, inputs)[1]
    assert np.array_equal(positions, np.tile(np.arange(6), (2, 1)))


@pytest.mark.tf
def test_op_nodes_in_nested_models_and_ops_with_several_outputs(tmp_path: Path) -> None:
    keras = keras_module()
    i = keras.Input((4,), name="i")
    inner = keras.Model(i, named(keras.layers.Dense(3, name="d")(i) * 0.5, "scaled"), name="inner")
    x = keras.Input((4,), name="x")
    thirds = keras.ops.split(inner(x), 3, axis=-1)
    named(thirds[0], "thirds")
    ends = named(thirds[0] + thirds[2], "ends")
    model = keras.Model(x, [ends, inner(named(x + 1.0, "shifted"))], name="outer")
    rebuilt, spec = round_trip(model, tmp_path, "outer")
    assert_same_model(model, rebuilt)
    text = spec.read_text()
    assert "      scaled: {op: multiply, from: d, x2: 0.5}\n" in text
    assert "  thirds: {op: split, from: inner, indices_or_sections: 3, axis: -1}\n" in text
    assert "  ends: {op: add, from: [thirds.0, thirds.2]}\n" in text
    assert "  inner_2: {share: inner, from: shifted}\n" in text


@pytest.mark.tf
def test_cli_imports_op_nodes_from_a_model_file(runner, tmp_path: Path) -> None:
    """Loaded from a file, the operations' constants come from its config."""
    from kgraph_cli.persist import load_keras_model

    path = tmp_path / "opsnet.keras"
    ops_model().save(path)
    spec = tmp_path / "opsnet.yaml"
    result = runner.invoke(app, ["import", str(path), "-o", str(spec), "--weights"])
    assert result.exit_code == 0, result.output
    text = spec.read_text()
    for line in OPS_NODES:
        assert line in text
    original = load_keras_model(path)
    rebuilt = rebuild(spec)
    rebuilt.load_weights(tmp_path / "opsnet.weights.h5")
    assert rebuilt.count_params() == original.count_params()
    inputs = sample_inputs(original)
    for want, got in zip(outputs_of(original, inputs), outputs_of(rebuilt, inputs), strict=True):
        assert np.allclose(want, got)


@pytest.mark.tf
def test_cli_import_of_slicing_exits_1_naming_the_node(runner, tmp_path: Path) -> None:
    keras = keras_module()
    x = keras.Input((8,), name="x")
    first = named(x[:, 0], "first")
    model = keras.Model(x, keras.layers.Dense(2, name="d")(keras.ops.expand_dims(first, -1)))
    path = tmp_path / "sliced.keras"
    model.save(path)
    spec = tmp_path / "sliced.yaml"
    result = runner.invoke(app, ["import", str(path), "-o", str(spec)])
    assert result.exit_code == 1
    assert "'first'" in result.stderr and "GetItem" in result.stderr
    assert "'key' holds a slice" in result.stderr and "ops.take" in result.stderr
    assert "Traceback" not in result.output and not spec.exists()


@pytest.mark.tf
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda ops, x: ops.map(lambda t: t * 2, x), r"'m' .*\(Map\).*Python functions"),
        (lambda ops, x: x + np.ones(8, "float32"), r"'m' .*\(Add\).*'x2' is an array"),
    ],
    ids=["python-function", "array-constant"],
)
def test_ops_a_spec_cannot_write_are_clear_errors(make: Any, message: str) -> None:
    from kgraph_cli.importer import ModelImportError, model_to_spec

    keras = keras_module()
    x = keras.Input((8,), name="x")
    with pytest.raises(ModelImportError, match=message):
        model_to_spec(keras.Model(x, named(make(keras.ops, x), "m")))


@pytest.mark.tf
def test_rebuild_check_compares_the_operations(tmp_path: Path) -> None:
    """An op node that builds another operation than the original's (here a
    changed constant, which parameter counts cannot see) is an import bug."""
    from kgraph_cli import keras_graph
    from kgraph_cli.importer import ModelImportError
    from kgraph_cli.importer.command import check_operations, rebuild

    keras = keras_module()
    x = keras.Input((4,), name="x")
    doubled = named(x * 2.0, "double")
    original = keras.Model(x, doubled)
    names = {id(keras_graph.producer(doubled)): "double"}
    text = (
        "kgraph: 1\nname: m\ninputs:\n  x: [4]\n"
        "layers:\n  double: {op: multiply, from: x, x2: %s}\noutputs: [double]\n"
    )
    output = tmp_path / "m.yaml"
    check_operations(original, rebuild(text % "2.0", output, [], original), names)
    with pytest.raises(ModelImportError, match="'double' does not rebuild"):
        check_operations(original, rebuild(text % "3.0", output, [], original), names)


# -- the command ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keras = keras_module()
    folder = tmp_path_factory.mktemp("models")
    x = keras.Input((5,), name="features")
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(x)
    out = keras.layers.Dense(2, name="scores")(hidden)
    model = keras.Model(x, out, name="small")
    path = folder / "small.keras"
    model.save(path)
    model.save(folder / "small.h5")
    return path


@pytest.mark.tf
def test_cli_import_writes_spec_and_weights(runner, small_model_file: Path, tmp_path: Path):
    from kgraph_cli.persist import load_keras_model

    spec = tmp_path / "small.yaml"
    result = runner.invoke(
        app, ["import", str(small_model_file), "-o", str(spec), "--weights", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    weights = tmp_path / "small.weights.h5"
    assert report["spec"] == str(spec) and report["weights"] == str(weights)
    assert report["layers"] == 2 and report["params"] == 5 * 4 + 4 + 4 * 2 + 2
    assert spec.read_text() == (
        "kgraph: 1\n"
        "name: small\n"
        "description: Imported by `kgraph import` from small.keras.\n"
        "inputs:\n"
        "  features: [5]\n"
        "layers:\n"
        "  hidden: {type: Dense, units: 4, activation: relu, from: features}\n"
        "  scores: {type: Dense, units: 2, from: hidden}\n"
        "outputs: [scores]\n"
    )
    original = load_keras_model(small_model_file)
    rebuilt = rebuild(spec)
    rebuilt.load_weights(weights)
    inputs = sample_inputs(original)
    assert np.array_equal(outputs_of(original, inputs)[0], outputs_of(rebuilt, inputs)[0])
    assert runner.invoke(app, ["validate", str(spec)]).exit_code == 0


@pytest.mark.tf
def test_cli_import_refuses_to_overwrite(runner, small_model_file: Path, tmp_path: Path):
    spec = tmp_path / "small.yaml"
    spec.write_text("mine\n")
    result = runner.invoke(app, ["import", str(small_model_file), "-o", str(spec)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert spec.read_text() == "mine\n"
    # The weights file is checked before anything is written, too.
    other = tmp_path / "other.yaml"
    weights = tmp_path / "w.weights.h5"
    weights.write_text("old")
    result = runner.invoke(
        app, ["import", str(small_model_file), "-o", str(other), "--weights-file", str(weights)]
    )
    assert result.exit_code == 2 and not other.exists() and weights.read_text() == "old"
    result = runner.invoke(
        app,
        ["import", str(small_model_file), "-o", str(spec), "--weights-file", str(weights)]
        + ["--force"],
    )
    assert result.exit_code == 0, result.output
    assert spec.read_text().startswith("kgraph: 1\n") and weights.stat().st_size > 100
    assert "wrote" in result.stdout


@pytest.mark.tf
def test_cli_import_h5_model(runner, small_model_file: Path, tmp_path: Path):
    spec = tmp_path / "from_h5.yaml"
    h5 = small_model_file.with_suffix(".h5")
    result = runner.invoke(app, ["import", str(h5), "-o", str(spec)])
    assert result.exit_code == 0, result.output
    assert "  scores: {type: Dense, units: 2, from: hidden}\n" in spec.read_text()


def import_h5_and_compare(runner, original: Any, h5: Path, folder: Path) -> tuple[str, Any]:
    """`kgraph import H5 --weights --json`; the spec's text and the import's
    report, after checking that the rebuilt model predicts what `original` does."""
    spec = folder / "from_h5.yaml"
    result = runner.invoke(app, ["import", str(h5), "-o", str(spec), "--weights", "--json"])
    assert result.exit_code == 0, result.output
    rebuilt = rebuild(spec)
    rebuilt.load_weights(folder / "from_h5.weights.h5")
    assert rebuilt.count_params() == original.count_params()
    inputs = sample_inputs(original)
    for want, got in zip(outputs_of(original, inputs), outputs_of(rebuilt, inputs), strict=True):
        assert np.array_equal(want, got)
    return spec.read_text(), json.loads(result.stdout)


@pytest.mark.tf
def test_cli_import_legacy_h5_with_keras_ops(runner, tmp_path: Path) -> None:
    """An .h5 that Keras 3 writes drops the module of its keras.ops operations:
    keras.saving.load_model then reads MobileNetV3's `x + 3.0` as an Add layer
    and fails; kgraph import loads it as the operation it is."""
    keras = keras_module()
    model = keras.applications.MobileNetV3Small(
        weights=None, input_shape=(32, 32, 3), include_top=True, classes=10
    )
    h5 = tmp_path / "mobilenet.h5"
    model.save(h5)
    text, _ = import_h5_and_compare(runner, model, h5, tmp_path)
    assert "{op: add, from: " in text and "x2: 3.0}" in text


@pytest.mark.apps
@pytest.mark.tf
def test_application_sample_imports_from_h5(application, runner, request, tmp_path: Path) -> None:
    """The sample of keras.applications, saved as legacy .h5 files (part of the sweep)."""
    name, model = application
    h5 = tmp_path / f"{name}.h5"
    model.save(h5)
    import_h5_and_compare(runner, model, h5, tmp_path)


def keras2_h5(model: Any, path: Path) -> None:
    """`model` saved as Keras 2 (tf.keras) writes an .h5, as far as Keras 3
    reads it differently: the version; nodes as `[[layer, node, tensor, kwargs]]`;
    a nested model's calls counted from 1; `x + 3.0` a TFOpLambda layer called
    `[x..., {"y": 3.0}]`; `/` in the names of Keras's applications; DepthwiseConv2D
    with `groups: 1`. (What tf_keras 2.21 writes for keras.applications.)"""
    import h5py

    model.save(path)
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        names = {"block1_dw": "block1/dw", "plus3": "tf.__operators__.add"}
        nested = {layer.name for layer in model.layers if isinstance(layer, keras_module().Model)}

        def ref(history: list) -> list:
            name, node, index = history
            return [names.get(name, name), node + (name in nested), index]

        def legacy_node(node: dict) -> list:
            tensors = _history(node["args"])
            return [[*ref(h), {}] for h in tensors]

        for layer in config["config"]["layers"]:
            name = layer["name"]
            if layer["class_name"] == "Add" and "trainable" not in layer["config"]:
                (source,) = _history(layer["inbound_nodes"][0]["args"])
                layer.update(
                    class_name="TFOpLambda",
                    config={"name": names[name], "trainable": True, "dtype": "float32"}
                    | {"function": "__operators__.add"},
                    inbound_nodes=[[*ref(source), {"y": 3.0, "name": None}]],
                )
            else:
                layer["inbound_nodes"] = [legacy_node(n) for n in layer["inbound_nodes"]]
            if layer["class_name"] == "DepthwiseConv2D":
                layer["config"]["groups"] = 1
            layer["name"] = layer["config"]["name"] = names.get(name, name)
        for key in ("input_layers", "output_layers"):
            found = config["config"][key]
            config["config"][key] = [
                ref(h) for h in ([found] if isinstance(found[0], str) else found)
            ]
        handle.attrs["model_config"] = json.dumps(config)
        handle.attrs["keras_version"] = "2.15.0"


@pytest.mark.tf
def test_cli_import_keras2_h5(runner, tmp_path: Path) -> None:
    """Keras 2 files: TFOpLambda layers become op nodes, `/` names are made
    loadable (a note says so), a nested model's calls and Keras 2's arguments
    are read as Keras 2 meant them."""
    keras = keras_module()
    x = keras.Input((8, 8, 3), name="img")
    stem = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same", name="stem_conv")],
        name="stem",
    )
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="block1_dw")(stem(x))
    y = keras.layers.ReLU(6.0, name="relu6")(named(y + 3.0, "plus3"))
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    model = keras.Model(x, keras.layers.Dense(2, name="out")(y), name="keras2")
    h5 = tmp_path / "keras2.h5"
    keras2_h5(model, h5)
    text, report = import_h5_and_compare(runner, model, h5, tmp_path)
    assert "  tf_operators_add: {op: add, from: block1_dw, x2: 3.0}\n" in text
    assert "  block1_dw: {type: DepthwiseConv2D, kernel_size: 3, padding: same, from: stem}" in text
    assert report["notes"] == [
        "1 layer names with '/' (which Keras 3 does not allow) had '/' made '_' to load: "
        "'block1/dw' -> 'block1_dw'",
        "1 TensorFlow-function layers of Keras 2 (TFOpLambda) are the keras.ops operations "
        "they compute, named as identifiers: 'tf.__operators__.add' -> 'tf_operators_add'",
    ]


@pytest.mark.tf
def test_cli_import_lambda_model_exits_1_without_traceback(runner, tmp_path: Path):
    keras = keras_module()
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Lambda(lambda t: t + 1, name="plus_one")(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    spec = tmp_path / "lambda.yaml"
    result = runner.invoke(app, ["import", str(path), "-o", str(spec)])
    assert result.exit_code == 1
    assert "Lambda" in result.stderr and "Traceback" not in result.output
    assert not spec.exists()


def test_rebuild_validates_the_spec_text_in_memory(tmp_path: Path) -> None:
    """The spec is checked before anything is written: from its text, named by
    the path it is to be written at."""
    from kgraph_cli.importer import ModelImportError
    from kgraph_cli.importer.command import rebuild

    output = tmp_path / "out" / "broken.yaml"
    text = "kgraph: 1\nname: m\ninputs:\n  x: [4]\nlayers:\n  d: {type: Dens, from: x}\n"
    with pytest.raises(ModelImportError, match=r"does not build \(layers\.d\.type\)") as caught:
        rebuild(text + "outputs: [d]\n", output, [], original=None)
    assert "kgraph bug" in caught.value.hint
    cause = caught.value.__cause__
    assert [str(d.location) for d in cause.diagnostics] == [f"{output}:6:13"]
    assert not output.parent.exists()


def test_cli_import_bad_output_names_are_usage_errors(runner, tmp_path: Path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"not read")
    result = runner.invoke(app, ["import", str(model), "-o", str(tmp_path / "spec.txt")])
    assert result.exit_code == 2 and ".yaml" in result.stderr
    result = runner.invoke(
        app,
        ["import", str(model), "-o", str(tmp_path / "s.yaml"), "--weights-file", "w.h5"],
    )
    assert result.exit_code == 2 and ".weights.h5" in result.stderr


# -- YAML, without TensorFlow ------------------------------------------------------------


def test_spec_yaml_flow_lines_block_nodes_and_quoting() -> None:
    data = {
        "kgraph": 1,
        "name": "m",
        "inputs": {"x": [4], "ids": {"shape": [None], "dtype": "int32"}},
        "layers": {
            "short": {"type": "Dense", "units": 2, "from": "x"},
            "long": {
                "type": "Conv1D",
                "filters": 64,
                "kernel_size": 3,
                "padding": "same",
                "kernel_initializer": {"type": "VarianceScaling", "scale": 2.0, "mode": "fan_out"},
                "from": "ids",
            },
            "odd": {"type": "Activation", "activation": "1e-3", "from": ["a, b", "null"]},
        },
        "outputs": {"short": "short", "long": "long"},
    }
    text = spec_yaml(data)
    assert text.startswith("kgraph: 1\nname: m\ninputs:\n  x: [4]\n")
    assert "  ids: {shape: [null], dtype: int32}\n" in text
    assert "  short: {type: Dense, units: 2, from: x}\n" in text
    assert "  long:\n    type: Conv1D\n    filters: 64\n" in text
    assert "    from: ids\n" in text
    assert text.endswith("outputs: {short: short, long: long}\n")
    # Strings kgraph's YAML would read as something else stay strings.
    assert "'1e-3'" in text and "'a, b'" in text and "'null'" in text
    from kgraph_cli.spec.loader import parse_yaml

    loaded = parse_yaml(text, "spec.yaml")
    assert json.loads(json.dumps(loaded)) == json.loads(json.dumps(data))


def test_spec_yaml_writes_op_nodes_op_first() -> None:
    data = {
        "kgraph": 1,
        "name": "m",
        "inputs": {"x": [4]},
        "layers": {"plus3": {"x2": 3.0, "from": "x", "op": "add"}},
        "outputs": ["plus3"],
    }
    assert "  plus3: {op: add, from: x, x2: 3.0}\n" in spec_yaml(data)
