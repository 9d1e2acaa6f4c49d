"""`application:` nodes (keras.applications models as nodes), their
preprocessing in the graph, weights from a file or found offline, freezing,
and `train.fine_tune`. Nothing is downloaded: "pretrained" weights are saved
here from `weights=None` models, under the names Keras gives ImageNet's."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import SPECS, interrupt_training, invoke

pytestmark = pytest.mark.tf

SHAPES = SPECS / "data" / "shapes"
TRANSFER = SPECS / "transfer_mobilenet.yaml"
# The weights Keras fetches for the transfer spec's backbone at 32x32 (it
# loads the 224 ones for sizes it has none for).
MOBILENET_V2_NO_TOP = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
SMALL = ["--set", "inputs.image.shape=[32,32,3]", "--set", "train.data.source.image_size=[32,32]"]
# The seed's list (../shared/seeds/002, "Applications"), with the smallest
# input each takes (all 13 with and without the top: about 2 minutes).
SEED_APPLICATIONS = {
    "MobileNet": 32,
    "MobileNetV2": 32,
    "ResNet50": 32,
    "NASNetMobile": 32,
    "DenseNet121": 32,
    "Xception": 71,
    "VGG16": 32,
    "VGG19": 32,
    "InceptionV3": 75,
    "InceptionResNetV2": 75,
    "DenseNet169": 32,
    "DenseNet201": 32,
    "NASNetLarge": 32,
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No downloads, and an empty Keras cache of the test's own."""
    monkeypatch.setenv("KGRAPH_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("KGRAPH_DATA_DIR", raising=False)


def app_spec(name: str, size: int, extra: str = "", top: bool = False) -> str:
    head = "" if top else "include_top: false, pooling: avg, "
    return f"""\
kgraph: 1
name: m
inputs:
  image: [{size}, {size}, 3]
layers:
  backbone: {{application: {name}, weights: null, {head}from: image{extra}}}
outputs: [backbone]
"""


def keras_count(name: str, size: int, top: bool = False, **kwargs: Any) -> int:
    import keras

    if not top:
        kwargs.update(include_top=False, pooling="avg")
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), **kwargs)
    return model.count_params()


def save_legacy_weights(model: Any, path: Path) -> Path:
    """Weights in the legacy .h5 layout Keras's ImageNet files have."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def shape_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    images, labels = [], []
    for index, folder in enumerate(sorted(p for p in SHAPES.iterdir() if p.is_dir())):
        for file in sorted(folder.glob("*.png")):
            image = Image.open(file).convert("RGB").resize((size, size))
            images.append(np.asarray(image, dtype="float32"))
            labels.append(index)
    return np.stack(images), np.array(labels)


# -- the language: parameter counts, weights, preprocessing --------------------


@pytest.mark.parametrize("name", list(SEED_APPLICATIONS))
def test_every_seed_application_with_and_without_its_top_and_a_weights_file(
    name, write_spec, tmp_path
):
    """Each seed model as a node: no top at its smallest size, the ImageNet
    top at its default size, and its weights loaded from a file."""
    import keras

    from kgraph_cli import api

    size = SEED_APPLICATIONS[name]
    assert api.build(write_spec(app_spec(name, size))).count_params() == keras_count(name, size)
    reference = getattr(keras.applications, name)(weights=None)
    default = reference.input_shape[1]
    top = api.build(write_spec(app_spec(name, default, top=True), "top.yaml"))
    assert top.count_params() == reference.count_params()
    file = tmp_path / "weights.weights.h5"
    reference.save_weights(file)
    loaded = api.build(
        write_spec(app_spec(name, default, top=True).replace("null", str(file)), "file.yaml")
    )
    for mine, theirs in zip(loaded.get_layer("backbone").weights, reference.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def test_weights_file_is_loaded(write_spec, tmp_path):
    import keras

    from kgraph_cli import api

    keras.utils.set_random_seed(5)
    reference = keras.applications.MobileNet(
        weights=None, include_top=False, alpha=0.25, input_shape=(32, 32, 3), pooling="avg"
    )
    file = tmp_path / "mobilenet.weights.h5"
    reference.save_weights(file)
    text = app_spec("MobileNet", 32, ", alpha: 0.25").replace("weights: null", "weights: w.h5")
    spec = write_spec(text.replace("w.h5", "mobilenet.weights.h5"))
    loaded = api.build(spec).get_layer("backbone")
    for mine, theirs in zip(loaded.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    fresh = api.build(write_spec(app_spec("MobileNet", 32, ", alpha: 0.25"), "fresh.yaml"))
    assert not np.array_equal(
        np.asarray(fresh.get_layer("backbone").weights[0]), np.asarray(reference.weights[0])
    )


def test_weights_file_of_another_model_is_a_located_error(write_spec, tmp_path):
    import keras

    other = keras.applications.MobileNet(
        weights=None, include_top=False, alpha=0.25, input_shape=(32, 32, 3)
    )
    other.save_weights(tmp_path / "other.weights.h5")
    text = app_spec("MobileNetV2", 32).replace("weights: null", "weights: other.weights.h5")
    result = invoke(["save", write_spec(text), "-o", tmp_path / "m.keras"], exit_code=1)
    assert "error[weights]" in result.stderr
    assert "cannot load" in result.stderr and "other.weights.h5" in result.stderr
    assert "spec.yaml:6:" in result.stderr


def test_every_application_preprocess_input_is_an_affine_map():
    """All 40 families: the probed map equals preprocess_input on any pixels."""
    from kgraph_cli.applications import preprocessing_of
    from kgraph_cli.spec.applications import applications_catalog

    pixels = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3))
    modes = {}
    for name, entry in applications_catalog().items():
        prep = preprocessing_of(name)
        module = importlib.import_module(entry["module"])
        expected = np.asarray(module.preprocess_input(pixels.copy()), dtype="float64")
        moved = pixels[..., list(prep.order)] if prep.order else pixels
        np.testing.assert_allclose(moved * prep.scale + prep.offset, expected, atol=1e-4)
        modes[name] = prep
    assert modes["ResNet50"].order == (2, 1, 0)  # caffe: BGR, means subtracted
    assert modes["VGG16"].order == (2, 1, 0)
    assert np.allclose(modes["MobileNetV2"].scale, 1 / 127.5)  # tf: to [-1, 1]
    assert np.allclose(modes["DenseNet121"].scale, 1 / (255 * np.array([0.229, 0.224, 0.225])))
    assert modes["EfficientNetB0"].identity and modes["ConvNeXtTiny"].identity  # built in


@pytest.mark.parametrize("name", ["ResNet50", "DenseNet121", "MobileNetV2"])
def test_preprocessing_in_the_graph_equals_preprocess_input(name, write_spec):
    """caffe, torch and tf modes: the layers kgraph adds give Keras's numbers."""
    import keras

    from kgraph_cli import api

    model = api.build(write_spec(app_spec(name, 32)))
    prep = keras.Model(model.input, model.get_layer("backbone_preprocess").output)
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    module = importlib.import_module(getattr(keras.applications, name).__module__)
    expected = module.preprocess_input(pixels.copy())
    np.testing.assert_allclose(prep.predict(pixels, verbose=0), expected, rtol=1e-5, atol=1e-3)


def test_preprocess_false_feeds_the_model_directly(write_spec):
    from kgraph_cli import api

    model = api.build(write_spec(app_spec("MobileNetV2", 32, ", preprocess: false")))
    assert [layer.name for layer in model.layers] == ["image", "backbone"]


def test_saved_model_takes_raw_pixels_and_loads_in_plain_keras(write_spec, tmp_path):
    import keras

    from kgraph_cli import api

    spec = write_spec(app_spec("ResNet50", 32))
    invoke(["save", spec, "-o", tmp_path / "m.keras"])
    reloaded = keras.models.load_model(tmp_path / "m.keras")  # no kgraph involved
    built = api.build(spec)
    built.set_weights(reloaded.get_weights())
    pixels = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        reloaded.predict(pixels, verbose=0), built.predict(pixels, verbose=0), atol=1e-5
    )


def test_frozen_application_counts_and_expanded_summary(write_spec):
    spec = write_spec(
        app_spec("MobileNetV2", 32, ", alpha: 0.35, trainable: false").replace(
            "outputs: [backbone]",
            "  probs: {type: Dense, units: 3, activation: softmax, from: backbone}\n"
            "outputs: [probs]",
        )
    )
    summary = json.loads(invoke(["summary", spec, "--json"]).stdout)
    assert summary["trainable_params"] == 1280 * 3 + 3  # the head only
    assert summary["non_trainable_params"] == keras_count("MobileNetV2", 32, alpha=0.35)
    expanded = invoke(["summary", spec, "--expand"]).stdout
    assert "block_16_project" in expanded and "backbone_preprocess" in expanded


# -- ImageNet weights offline ---------------------------------------------------


def test_imagenet_weights_offline_say_which_file_to_put_where(write_spec, tmp_path):
    text = app_spec("MobileNetV2", 32, ", alpha: 0.35").replace(
        "weights: null", "weights: imagenet"
    )
    spec = write_spec(text)
    # validate and summary only check what the weights need: nothing is fetched
    assert invoke(["validate", spec]).exit_code == 0
    invoke(["summary", spec])
    result = invoke(["save", spec, "-o", tmp_path / "m.keras"], exit_code=1)
    assert "error[weights]" in result.stderr
    assert f"ImageNet weights '{MOBILENET_V2_NO_TOP}' are not available offline" in result.stderr
    assert f"put {MOBILENET_V2_NO_TOP} (from https://" in result.stderr
    assert "--data-dir DIR, $KGRAPH_DATA_DIR" in result.stderr
    assert not (tmp_path / "m.keras").exists()


def test_imagenet_top_needs_its_input_size_and_1000_classes(write_spec):
    spec = write_spec(app_spec("MobileNetV2", 64, top=True).replace("null", "imagenet"))
    result = invoke(["validate", spec], exit_code=1)
    assert "error[layer-args]" in result.stderr and "(224, 224, 3)" in result.stderr


def test_imagenet_weights_from_the_data_dir(write_spec, tmp_path):
    """A file under Keras's name in --data-dir is used as ImageNet's (MobileNetV2's
    weights have no hash in Keras to check)."""
    import keras

    keras.utils.set_random_seed(4)
    reference = keras.applications.MobileNetV2(
        weights=None, include_top=False, alpha=0.35, input_shape=(32, 32, 3), pooling="avg"
    )
    save_legacy_weights(reference, tmp_path / "data" / MOBILENET_V2_NO_TOP)
    text = app_spec("MobileNetV2", 32, ", alpha: 0.35").replace(
        "weights: null", "weights: imagenet"
    )
    image = SHAPES / "circle" / "00.png"
    features = tmp_path / "f.npy"
    args = ["predict", write_spec(text), "--data-dir", tmp_path / "data", "--image", image]
    invoke([*args, "--node", "backbone", "-o", features])
    pixels, _ = shape_images(32)
    expected = reference.predict(pixels[:1] / 127.5 - 1, verbose=0)
    np.testing.assert_allclose(np.load(features), expected, rtol=1e-4, atol=1e-4)


# -- transfer learning: frozen backbone, new head, fine-tuning -------------------


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MobileNetV2 backbone trained on the shapes (for want of ImageNet), its
    BatchNormalization statistics those of the data, saved under the name of
    Keras's ImageNet file: the transfer spec finds it with --data-dir."""
    import keras

    keras.utils.set_random_seed(0)
    images, labels = shape_images(32)
    base = keras.applications.MobileNetV2(
        weights=None, include_top=False, pooling="avg", alpha=0.35, input_shape=(32, 32, 3)
    )
    pixels = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(1 / 127.5, -1)(pixels)
    head = keras.layers.Dense(3, activation="softmax")(base(scaled))
    model = keras.Model(pixels, head)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=15, batch_size=16, verbose=0)
    for layer in base.layers:  # moving statistics = the data's, in one pass
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    base(images / 127.5 - 1, training=True)
    folder = tmp_path_factory.mktemp("pretrained")
    save_legacy_weights(base, folder / MOBILENET_V2_NO_TOP)
    return folder


def test_transfer_learning_beats_the_untrained_head_and_fine_tunes(pretrained_dir, tmp_path):
    import keras

    args = [TRANSFER, *SMALL, "--data-dir", pretrained_dir]
    before = json.loads(invoke(["evaluate", *args, "--json"]).stdout)["metrics"]["accuracy"]
    out = tmp_path / "run"
    result = invoke(["train", *args, "--out", out, "--json"])
    trained = json.loads(result.stdout)
    assert trained["epochs"] == 9  # fit's 6, then fine_tune's 3
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 9
    assert trained["metrics"]["test"]["accuracy"] > before
    assert "fine-tuning: unfroze" in result.output
    model = keras.models.load_model(out / "model.keras")
    backbone = model.get_layer("backbone")
    layers = backbone.layers
    assert not any(layer.trainable for layer in layers[:-30] if layer.weights)
    assert all(
        layer.trainable != isinstance(layer, keras.layers.BatchNormalization)
        for layer in layers[-30:]
        if layer.weights
    )
    # BatchNormalization stayed frozen through both phases: its statistics are
    # the pretrained ones
    reference = keras.applications.MobileNetV2(
        weights=None, include_top=False, pooling="avg", alpha=0.35, input_shape=(32, 32, 3)
    )
    reference.load_weights(pretrained_dir / MOBILENET_V2_NO_TOP)
    bn = [x for x in reference.layers if isinstance(x, keras.layers.BatchNormalization)][-1]
    np.testing.assert_array_equal(
        np.asarray(backbone.get_layer(bn.name).moving_mean), np.asarray(bn.moving_mean)
    )


def test_fine_tune_resumes_in_its_own_phase(pretrained_dir, tmp_path, monkeypatch):
    fired = interrupt_training(monkeypatch, after_epoch=2)  # the first fine-tuning epoch
    short = ["--set", "train.fit.epochs=2", "--set", "train.fine_tune.epochs=2"]
    out = tmp_path / "run"
    args = ["train", TRANSFER, *SMALL, *short, "--data-dir", pretrained_dir, "--out", out]
    invoke(args, exit_code=130)
    assert fired == [2]
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 3
    resumed = invoke([*args, "--resume"])
    assert "fine-tuning: unfroze" in resumed.output
    assert "epoch 4/4" in resumed.output and "epoch 3/4" not in resumed.output
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 4
    assert not (out / "backup").exists()


def test_fine_tune_from_a_layer_name_and_unknown_layer(pretrained_dir, tmp_path):
    base = ["train", TRANSFER, *SMALL, "--data-dir", pretrained_dir, "--set", "train.fit.epochs=1"]
    base += ["--set", "train.fine_tune.epochs=1", "--set", "train.fine_tune.layers=null"]
    named = ["--set", "train.fine_tune.from_layer=block_16_expand", "--out", tmp_path / "a"]
    assert "fine-tuning: unfroze" in invoke([*base, *named]).output
    misspelt = ["--set", "train.fine_tune.from_layer=block_16_expnd", "--out", tmp_path / "b"]
    bad = invoke([*base, *misspelt], exit_code=1)
    assert "'backbone' has no layer 'block_16_expnd'" in bad.output
    assert "did you mean 'block_16_expand'" in bad.output


def test_predict_image_top_3_with_imagenet_class_names(write_spec, tmp_path, monkeypatch):
    """An application's 1000-class head, its weights from a local file: the
    top 3 are named from ImageNet's class index, found in --data-dir."""
    import hashlib

    import keras

    from kgraph_cli import keras_cache

    keras.utils.set_random_seed(6)
    reference = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    reference.save_weights(tmp_path / "head.weights.h5")
    data = tmp_path / "data"
    data.mkdir()
    index = {str(i): [f"n{i:08d}", f"imagenet_class_{i}"] for i in range(1000)}
    (data / "imagenet_class_index.json").write_text(json.dumps(index))
    md5 = hashlib.md5((data / "imagenet_class_index.json").read_bytes()).hexdigest()
    monkeypatch.setattr(keras_cache, "CLASS_INDEX_MD5", md5)
    spec = write_spec(
        app_spec("MobileNetV2", 96, ", alpha: 0.35", top=True).replace(
            "weights: null", "weights: head.weights.h5"
        )
    )
    image = SHAPES / "square" / "03.png"
    args = ["predict", spec, "--image", image, "--top", "3", "--data-dir", data]
    shown = invoke(args).output
    result = json.loads(invoke([*args, "--json"]).stdout)
    pixels = keras.utils.img_to_array(keras.utils.load_img(image, target_size=(96, 96)))
    scores = reference.predict(pixels[None] / 127.5 - 1, verbose=0)[0]
    (output,) = result["images"][0]["outputs"].values()
    assert [entry["index"] for entry in output["top"]] == list(np.argsort(-scores)[:3])
    assert [entry["class"] for entry in output["top"]] == [
        f"imagenet_class_{i}" for i in np.argsort(-scores)[:3]
    ]
    (names,) = result["classes"].values()
    assert names["names"] == "imagenet"
    for entry in output["top"]:
        assert entry["class"] in shown
        assert entry["probability"] == pytest.approx(float(scores[entry["index"]]), abs=1e-4)


@pytest.mark.parametrize(
    ("spec", "total", "trainable"),
    [("resnet50_imagenet", 25_636_712, 25_583_592), ("transfer_mobilenet", 414_051, 3_843)],
)
def test_shipped_pretrained_specs(spec, total, trainable):
    """Their structure (the ImageNet weights are not here to load)."""
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.spec.validate import validate_spec

    model = ModelBuilder(validate_spec(SPECS / f"{spec}.yaml")).build()
    counted = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (model.count_params(), counted) == (total, trainable)
