"""The example specs of specs/: each validates and builds cleanly, and each
tutorial model has the parameter count (and inputs, outputs, shapes) that the
functional-API tutorials in ../shared/seeds/ publish.

Models are built once per spec for the whole module (see `built`); nothing is
trained.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from kgraph_cli.errors import SpecError
from kgraph_cli.spec.validate import ValidSpec, validate_spec
from tests.conftest import SPEC_PLUGINS

# The repo root, computed here (tests/conftest.py belongs to another suite).
REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
PLUGIN = SPECS / "plugins" / "my_layers.py"
SCHEMA = REPO / "schema" / "kgraph.schema.json"
SCHEMA_PREFIX = "# yaml-language-server: $schema="

# Every spec, the included parts too (they are specs themselves).
SPEC_FILES = sorted(SPECS.glob("*.yaml")) + sorted(SPECS.glob("parts/*.yaml"))
# Specs whose layers come from a plugin module: spec name -> plugins to load.
NEEDS_PLUGIN = SPEC_PLUGINS


def spec_id(path: Path) -> str:
    return path.relative_to(SPECS).with_suffix("").as_posix()


def spec_path(name: str) -> Path:
    return SPECS / f"{name}.yaml"


def plugins_for(name: str) -> list[str]:
    return NEEDS_PLUGIN.get(name, [])


def validate(name: str) -> ValidSpec:
    return validate_spec(spec_path(name), (), plugins_for(name))


def layer_types(model: Any) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def input_names(model: Any) -> list[str]:
    return [tensor.name for tensor in model.inputs]


def output_shapes(model: Any) -> list[tuple]:
    return [tuple(tensor.shape) for tensor in model.outputs]


# -- without TensorFlow ------------------------------------------------------


def test_the_examples_are_there() -> None:
    names = {spec_id(p) for p in SPEC_FILES}
    assert set(PUBLISHED_NAMES) <= names
    assert PLUGIN.is_file()


@pytest.mark.parametrize("path", SPEC_FILES, ids=spec_id)
def test_header_and_description(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith(SCHEMA_PREFIX), "first line: the yaml-language-server schema"
    schema = (path.parent / lines[0][len(SCHEMA_PREFIX) :]).resolve()
    assert schema == SCHEMA.resolve(), f"the schema comment points at {schema}"
    assert lines[1] == "kgraph: 1"
    assert any(line.startswith("description:") for line in lines), "a `description:` is missing"


@pytest.mark.parametrize(
    "path", [p for p in SPEC_FILES if spec_id(p) not in NEEDS_PLUGIN], ids=spec_id
)
def test_validates_structurally(path: Path) -> None:
    valid = validate_spec(path)
    assert valid.warnings == []
    assert valid.spec.description.strip()
    assert valid.spec.default in valid.spec.models


def test_structural_validation_imports_no_tensorflow() -> None:
    paths = [str(p) for p in SPEC_FILES if spec_id(p) not in NEEDS_PLUGIN]
    code = (
        "import sys\n"
        "from kgraph_cli.spec.validate import validate_spec\n"
        "for path in sys.argv[1:]:\n"
        "    assert validate_spec(path).warnings == [], path\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "assert not heavy, heavy[:5]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *paths], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr


def test_plugin_layer_without_plugin_says_which_plugin_to_load() -> None:
    with pytest.raises(SpecError) as info:
        validate_spec(spec_path("custom_dense"))
    [problem] = info.value.diagnostics
    assert problem.code == "unknown-layer"
    assert "my_layers.CustomDense" in problem.message
    assert "--plugin" in problem.hint


def test_include_brings_in_the_encoder() -> None:
    valid = validate_spec(spec_path("autoencoder_include"))
    assert set(valid.spec.models) == {"encoder", "decoder", "autoencoder"}
    assert valid.spec.default == "autoencoder"
    encoder = valid.spec.models["encoder"]
    assert Path(encoder.loc.file).name == "encoder.yaml"


# -- building (TensorFlow) ---------------------------------------------------


class Built:
    """Each spec validated and built once (every model of it), on demand."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[ValidSpec, dict[str, Any], list]] = {}

    def _load(self, name: str) -> tuple[ValidSpec, dict[str, Any], list]:
        if name not in self._cache:
            from kgraph_cli.build import ModelBuilder

            valid = validate(name)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                models = ModelBuilder(valid).build_all()
            self._cache[name] = (valid, models, caught)
        return self._cache[name]

    def valid(self, name: str) -> ValidSpec:
        return self._load(name)[0]

    def models(self, name: str) -> dict[str, Any]:
        return self._load(name)[1]

    def warnings(self, name: str) -> list:
        return self._load(name)[2]

    def model(self, name: str, model: str | None = None) -> Any:
        valid, models, _ = self._load(name)
        return models[model or valid.spec.default]


@pytest.fixture(scope="module")
def built() -> Built:
    return Built()


@pytest.mark.tf
@pytest.mark.parametrize("path", SPEC_FILES, ids=spec_id)
def test_builds_without_problems(path: Path, built: Built) -> None:
    name = spec_id(path)
    valid = built.valid(name)
    assert valid.warnings == []
    models = built.models(name)  # SpecError (with every diagnostic) on failure
    assert set(models) == set(valid.spec.models)
    user_warnings = [w for w in built.warnings(name) if issubclass(w.category, UserWarning)]
    assert not user_warnings, [str(w.message) for w in user_warnings]


# (spec, model or None for the spec's default, total params the tutorial publishes)
PUBLISHED = [
    ("mnist", "mnist_model", 55_050),
    ("autoencoder_shared", "encoder", 18_672),
    ("autoencoder_shared", "autoencoder", 28_241),
    ("autoencoder_nested", "encoder", 18_672),
    ("autoencoder_nested", "decoder", 9_569),
    ("autoencoder_nested", "autoencoder", 28_241),
    ("autoencoder_include", "encoder", 18_672),
    ("autoencoder_include", "decoder", 9_569),
    ("autoencoder_include", "autoencoder", 28_241),
    ("parts/encoder", "encoder", 18_672),
    ("ensemble", "ensemble_model", 387),
    ("ensemble", "get_model", 129),
    ("ticket_router", None, 1_392_097),
    ("toy_resnet", "toy_resnet", 223_242),
    ("toy_resnet_blocks", "toy_resnet", 223_242),
    ("shared_embedding", None, 128_000),
    ("siamese", None, 82_305),
    ("main_aux", None, 5_200_610),
    ("inception", None, 140_160),
    ("residual_conv", None, 84),
    ("video_mlp", None, 55_050),
    ("video_mlp", "mnist_mlp", 55_050),
    ("custom_dense", None, 50),
    # Not from a tutorial: the counts Keras gives for these examples.
    ("feature_extraction", None, 93_248),  # 896 + 18,496 + 2 x 36,928
    ("bidirectional", None, 2_757_761),  # keras.io's "Bidirectional LSTM on IMDB"
]
PUBLISHED_NAMES = sorted({spec for spec, _, _ in PUBLISHED})


@pytest.mark.tf
@pytest.mark.parametrize(
    ("spec", "model", "params"), PUBLISHED, ids=[f"{s}-{m or 'default'}" for s, m, _ in PUBLISHED]
)
def test_parameter_count(spec: str, model: str | None, params: int, built: Built) -> None:
    keras_model = built.model(spec, model)
    assert keras_model.count_params() == params
    assert not keras_model.non_trainable_weights


# (spec, model, input names, {output name: output shape})
INTERFACES: list[tuple[str, str | None, list[str], dict[str, tuple]]] = [
    ("mnist", None, ["pixels"], {"logits": (None, 10)}),
    ("autoencoder_shared", "encoder", ["img"], {"encoder_output": (None, 16)}),
    ("autoencoder_shared", "autoencoder", ["img"], {"decoder_output": (None, 28, 28, 1)}),
    ("autoencoder_nested", "encoder", ["original_img"], {"encoder_output": (None, 16)}),
    ("autoencoder_nested", "decoder", ["encoded_img"], {"decoder_output": (None, 28, 28, 1)}),
    ("autoencoder_nested", "autoencoder", ["img"], {"decoder": (None, 28, 28, 1)}),
    ("autoencoder_include", "autoencoder", ["img"], {"decoder": (None, 28, 28, 1)}),
    ("ensemble", None, ["inputs"], {"average": (None, 1)}),
    (
        "ticket_router",
        None,
        ["title", "body", "tags"],
        {"priority": (None, 1), "department": (None, 4)},
    ),
    ("toy_resnet", None, ["img"], {"logits": (None, 10)}),
    ("toy_resnet_blocks", None, ["img"], {"logits": (None, 10)}),
    (
        "shared_embedding",
        None,
        ["text_input_a", "text_input_b"],
        {"encoded_input_a": (None, None, 128), "encoded_input_b": (None, None, 128)},
    ),
    ("siamese", None, ["tweet_a", "tweet_b"], {"predictions": (None, 1)}),
    (
        "main_aux",
        None,
        ["main_input", "aux_input"],
        {"main_output": (None, 1), "aux_output": (None, 1)},
    ),
    # axis=1 as in the docs: the towers are stacked along the height.
    ("inception", None, ["input_img"], {"output": (None, 768, 256, 64)}),
    ("residual_conv", None, ["x"], {"output": (None, 256, 256, 3)}),
    ("video_mlp", None, ["input_sequences"], {"processed_sequences": (None, 20, 10)}),
    ("custom_dense", None, ["inputs"], {"outputs": (None, 10)}),
    (
        "feature_extraction",
        None,
        ["img"],
        {
            "conv1": (None, 30, 30, 32),
            "conv2": (None, 28, 28, 64),
            "block_1_output": (None, 9, 9, 64),
            "conv3": (None, 9, 9, 64),
            "conv4": (None, 9, 9, 64),
            "block_2_output": (None, 9, 9, 64),
        },
    ),
    ("bidirectional", None, ["words"], {"sentiment": (None, 1)}),
]


@pytest.mark.tf
@pytest.mark.parametrize(
    ("spec", "model", "inputs", "outputs"),
    INTERFACES,
    ids=[f"{s}-{m or 'default'}" for s, m, _, _ in INTERFACES],
)
def test_inputs_and_outputs(
    spec: str, model: str | None, inputs: list[str], outputs: dict[str, tuple], built: Built
) -> None:
    keras_model = built.model(spec, model)
    assert input_names(keras_model) == inputs
    assert list(keras_model.output_names) == list(outputs)
    assert output_shapes(keras_model) == list(outputs.values())


@pytest.mark.tf
def test_model_names(built: Built) -> None:
    assert built.model("mnist").name == "mnist_model"
    assert built.model("toy_resnet").name == "toy_resnet"
    assert built.model("autoencoder_shared", "encoder").name == "encoder"
    assert built.model("autoencoder_nested").name == "autoencoder"


@pytest.mark.tf
def test_blocks_resnet_is_the_plain_resnet(built: Built) -> None:
    plain = built.model("toy_resnet")
    blocks = built.model("toy_resnet_blocks")
    assert blocks.count_params() == plain.count_params() == 223_242
    assert layer_types(blocks) == layer_types(plain)
    assert [tuple(w.shape) for w in blocks.weights] == [tuple(w.shape) for w in plain.weights]
    names = [layer.name for layer in blocks.layers]
    for i in (1, 2):
        for part in ("conv_a", "conv_b", "add"):
            assert f"stage_{i}_{part}" in names
    # Each repetition adds its own input: the second Add reads the first one's output.
    add_2 = blocks.get_layer("stage_2_add")
    add_2_inputs = {t._keras_history.operation.name for t in add_2.input}
    assert add_2_inputs == {"stage_2_conv_b", "stage_1_add"}


@pytest.mark.tf
def test_shared_embedding_is_one_layer_called_twice(built: Built) -> None:
    model = built.model("shared_embedding")
    embeddings = [layer for layer in model.layers if type(layer).__name__ == "Embedding"]
    assert len(embeddings) == 1
    assert len(embeddings[0]._inbound_nodes) == 2
    assert [tensor.dtype for tensor in model.inputs] == ["int32", "int32"]


@pytest.mark.tf
def test_siamese_lstm_is_shared(built: Built) -> None:
    model = built.model("siamese")
    lstms = [layer for layer in model.layers if type(layer).__name__ == "LSTM"]
    assert len(lstms) == 1
    assert len(lstms[0]._inbound_nodes) == 2
    assert lstms[0].units == 64


@pytest.mark.tf
def test_autoencoder_views_and_nesting(built: Built) -> None:
    shared = built.model("autoencoder_shared", "autoencoder")
    encoder_view = built.model("autoencoder_shared", "encoder")
    # The encoder is the first layers of the autoencoder's graph.
    assert layer_types(encoder_view) == layer_types(shared)[: len(encoder_view.layers)]
    # ... and the very same layer objects: training the autoencoder trains it.
    for layer in encoder_view.layers:
        assert shared.get_layer(layer.name) is layer
    for spec in ("autoencoder_nested", "autoencoder_include"):
        nested = built.model(spec, "autoencoder")
        assert layer_types(nested) == ["InputLayer", "Functional", "Functional"]
        assert [layer.name for layer in nested.layers[1:]] == ["encoder", "decoder"]
        # Flattened, the nested autoencoder has the shared one's layers.
        inner = [t for layer in nested.layers[1:] for t in layer_types(layer)[1:]]
        assert inner == layer_types(shared)[1:]


@pytest.mark.tf
def test_ensemble_members_have_their_own_weights(built: Built) -> None:
    model = built.model("ensemble")
    members = [layer for layer in model.layers if type(layer).__name__ == "Functional"]
    assert [m.name for m in members] == ["model1", "model2", "model3"]
    weights = [w for member in members for w in member.weights]
    assert len(weights) == 6
    assert len({id(w) for w in weights}) == 6
    assert type(model.layers[-1]).__name__ == "Average"


@pytest.mark.tf
def test_main_aux_embedding(built: Built) -> None:
    model = built.model("main_aux")
    embedding = model.get_layer("embedding")
    assert (embedding.input_dim, embedding.output_dim) == (10_000, 512)
    assert "input_length" not in embedding.get_config()
    assert model.inputs[0].dtype == "int32"
    assert [model.get_layer(f"dense{i}").units for i in (1, 2, 3)] == [64, 64, 64]


@pytest.mark.tf
def test_inception_keeps_the_docs_axis(built: Built) -> None:
    model = built.model("inception")
    assert model.get_layer("output").axis == 1
    assert [model.get_layer(n).kernel_size for n in ("tower_1", "tower_2", "tower_3")] == [
        (3, 3),
        (5, 5),
        (1, 1),
    ]


@pytest.mark.tf
def test_video_mlp_wraps_the_mnist_mlp(built: Built) -> None:
    model = built.model("video_mlp")
    wrapper = model.get_layer("processed_sequences")
    assert type(wrapper).__name__ == "TimeDistributed"
    inner = wrapper.layer
    assert type(inner).__name__ == "Functional"
    assert inner.count_params() == 55_050
    assert inner.layers[-1].get_config()["activation"] == "softmax"


@pytest.mark.tf
def test_custom_dense_is_the_plugin_class(built: Built) -> None:
    model = built.model("custom_dense")
    layer = model.get_layer("outputs")
    assert type(layer).__name__ == "CustomDense"
    assert type(layer).__module__ == "my_layers"
    assert layer.get_config()["units"] == 10
    assert [tuple(w.shape) for w in layer.weights] == [(4, 10), (10,)]


@pytest.mark.tf
def test_feature_extraction_returns_intermediate_nodes(built: Built) -> None:
    model = built.model("feature_extraction")
    assert len(model.outputs) == 6
    # Every output is a layer of the graph, not a copy added at the end.
    assert list(model.output_names) == [layer.name for layer in model.layers[1:]]


@pytest.mark.tf
def test_bidirectional_wraps_lstms(built: Built) -> None:
    model = built.model("bidirectional")
    first, second = model.get_layer("bi_lstm_1"), model.get_layer("bi_lstm_2")
    assert type(first.forward_layer).__name__ == "LSTM"
    assert first.forward_layer.units == 64 and first.forward_layer.return_sequences
    assert not second.forward_layer.return_sequences
    assert output_shapes(model) == [(None, 1)]
