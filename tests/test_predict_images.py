"""`kgraph predict --image`: image files as a model's input, the top classes
with their names (the spec's `classes:`, the class folders recorded in
run.json, ImageNet's for 1000 classes, else `class N`), logits read through a
softmax, and `--node`: one node's activations. In-process, on a tiny folder of
coloured squares made here; never the network."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kgraph_cli import api
from kgraph_cli.errors import KgraphError, UsageError
from tests.conftest import invoke

pytestmark = pytest.mark.tf

COLOURS = {"blue": (20, 20, 230), "green": (20, 220, 20), "red": (230, 20, 20)}

# Trained on an `images:` folder: the run records its class folders.
COLOUR_SPEC = """\
kgraph: 1
name: colours
inputs:
  image: {shape: [16, 16, 3]}
layers:
  pool: {type: GlobalAveragePooling2D, from: image}
  probs: {type: Dense, units: 3, activation: softmax, from: pool}
outputs: [probs]
train:
  data:
    source: {images: pics, image_size: [16, 16]}
    inputs:
      image: {field: x, transforms: [{divide: 255}]}
  compile:
    optimizer: {type: Adam, learning_rate: 0.5}
    loss: sparse_categorical_crossentropy
  fit: {batch_size: 4, epochs: 2, seed: 1}
"""


def save_image(path: Path, colour: tuple[int, ...], size: tuple[int, int] = (16, 16)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash((path.name, colour))) % 2**32)
    noise = rng.integers(-15, 15, (*size, len(colour)))
    pixels = np.clip(np.array(colour)[None, None, :] + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels.squeeze()).save(path)
    return path


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A folder per colour (8 images each), new images to predict (other sizes,
    .png and .jpg), and a run trained 2 epochs on the folders."""
    root = tmp_path_factory.mktemp("colours")
    for name, colour in COLOURS.items():
        for i in range(8):
            save_image(root / "pics" / name / f"{i}.png", colour)
    new = root / "new"
    save_image(new / "a_red.png", COLOURS["red"], (20, 24))
    save_image(new / "b_blue.jpg", COLOURS["blue"], (30, 10))
    (new / "notes.txt").write_text("not an image")  # a folder's other files are skipped
    save_image(new / "deeper" / "c.png", COLOURS["green"])  # not recursive
    spec = root / "colours.yaml"
    spec.write_text(COLOUR_SPEC)
    run = root / "run"
    invoke(["train", spec, "--out", run, "-q"])
    return {"root": root, "spec": spec, "run": run, "new": new, "red": new / "a_red.png"}


def predict_json(args: list[Any], exit_code: int = 0) -> Any:
    return json.loads(invoke(["predict", *args, "--json"], exit_code=exit_code).stdout)


def write_spec(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def one_output_spec(head: str, shape: str = "[8, 8, 3]") -> str:
    return f"""\
kgraph: 1
inputs:
  image: {{shape: {shape}}}
layers:
  flat: {{type: Flatten, from: image}}
  {head}
outputs: [head]
"""


# -- the class folders recorded by training ------------------------------------------


def test_training_records_the_class_folders_in_run_json(colours: dict[str, Path]) -> None:
    info = json.loads((colours["run"] / "run.json").read_text())
    assert info["classes"] == {"probs": ["blue", "green", "red"]}
    assert api.load(colours["run"]).class_names == {"probs": ["blue", "green", "red"]}


def test_predict_images_prints_the_class_folder_names(colours: dict[str, Path]) -> None:
    result = invoke(
        [
            "predict",
            colours["run"],
            "--image",
            colours["red"],
            "--image",
            colours["new"],
            "--top",
            2,
        ]
    )
    out = result.stdout
    assert "colours: probs, top 2 of 3 classes (probabilities)" in out
    for column in ("image", "rank", "class", "probability"):
        assert column in out
    rows = [line for line in out.splitlines() if "│" in line]
    # the file, then the folder's two images (sorted; notes.txt and deeper/ left out)
    named = [cells[0] for line in rows if (cells := _cells(line))[0]]
    assert named == [str(colours["red"]), str(colours["red"]), str(colours["new"] / "b_blue.jpg")]
    assert len(rows) == 3 * 2
    firsts = [_cells(line)[2] for line in rows if _cells(line)[1] == "1"]
    assert firsts == ["red", "red", "blue"]  # two epochs tell the colours apart


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def test_predict_images_json(colours: dict[str, Path]) -> None:
    result = predict_json([colours["run"], "--image", colours["new"], "--top", 2])
    assert result["model"] == "colours"
    assert result["samples"] == 2 and result["output"] is None and result["node"] is None
    assert result["top"] == 2
    assert result["outputs"] == {"probs": [2, 3]}
    assert result["classes"] == {
        "probs": {
            "classes": 3,
            "softmax": False,
            "binary": False,
            "independent": False,
            "names": "run",
        }
    }
    assert [image["path"] for image in result["images"]] == [
        str(colours["new"] / "a_red.png"),
        str(colours["new"] / "b_blue.jpg"),
    ]
    names = ["blue", "green", "red"]
    for image in result["images"]:
        probs = image["outputs"]["probs"]
        assert probs["softmax"] is False
        top = probs["top"]
        assert len(top) == 2
        assert [entry["class"] for entry in top] == [names[entry["index"]] for entry in top]
        values = [entry["probability"] for entry in top]
        assert values == sorted(values, reverse=True)
        assert all(0 <= v <= 1 for v in values) and sum(values) <= 1 + 1e-6
    assert result["images"][0]["outputs"]["probs"]["top"][0]["class"] == "red"
    assert result["notes"] == []


def test_predict_images_with_output_also_writes_the_file(
    colours: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "p.npy"
    result = invoke(["predict", colours["run"], "--image", colours["new"], "-o", out])
    assert "colours: probs" in result.stdout
    assert f"wrote {out}: 2 samples" in result.stdout
    written = np.load(out)
    assert written.shape == (2, 3)
    np.testing.assert_allclose(written.sum(axis=1), 1.0, rtol=1e-5)
    assert predict_json([colours["run"], "--image", colours["red"], "-o", out, "--force"])[
        "output"
    ] == str(out)


def test_the_default_is_the_top_five_or_every_class(colours: dict[str, Path]) -> None:
    result = predict_json([colours["run"], "--image", colours["red"]])
    assert result["top"] == 5
    assert len(result["images"][0]["outputs"]["probs"]["top"]) == 3


def test_the_spec_input_transforms_are_applied(colours: dict[str, Path], tmp_path: Path) -> None:
    """{divide: 255} in training, so at prediction: the same probabilities as the
    model on the divided pixels."""
    from kgraph_cli.image_predict import ImageInput, load_images

    result = api.predict(colours["run"], images=[colours["red"]])
    pixels = load_images([colours["red"]], ImageInput("image", (16, 16), "rgb"))
    assert pixels.dtype == np.float32 and pixels.max() > 1  # raw values 0..255
    model = api.load(colours["run"]).model
    expected = model.predict(pixels / 255, verbose=0)[0]
    top = result.ranking.outputs["probs"].top[0][0]
    assert top.probability == pytest.approx(float(expected.max()), rel=1e-5)


def test_standardize_uses_the_training_split_statistics(colours: dict[str, Path]) -> None:
    from PIL import Image

    spec = colours["root"] / "standardized.yaml"
    spec.write_text(COLOUR_SPEC.replace("{divide: 255}", "{standardize: true}"))
    result = api.predict(
        spec, colours["root"] / "pool.npy", images=[colours["red"]], node="pool", force=True
    )
    files = sorted((colours["root"] / "pics").glob("*/*.png"))
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB"), np.float64) for f in files])
    mean, std = pixels.mean(axis=0), pixels.std(axis=0)
    red = np.asarray(Image.open(colours["red"]).convert("RGB").resize((16, 16), Image.BILINEAR))
    expected = ((red - mean) / np.where(std == 0, 1, std)).mean(axis=(0, 1))
    assert result.shapes == {"pool": (1, 3)}
    np.testing.assert_allclose(np.load(colours["root"] / "pool.npy")[0], expected, rtol=1e-4)


# -- class names: the spec's, ImageNet's, indices -------------------------------------


# The parser of `outputs: {name: {from: ..., classes: [...]}}` (spec/parse.py) is
# the other engineer's work; this test goes through it, as users write it.
def test_the_spec_classes_name_the_output(tmp_path: Path) -> None:
    save_image(tmp_path / "x.png", COLOURS["green"])
    spec = write_spec(
        tmp_path,
        """\
kgraph: 1
inputs:
  image: {shape: [8, 8, 3]}
layers:
  flat: {type: Flatten, from: image}
  head: {type: Dense, units: 3, activation: softmax, from: flat}
outputs:
  probs: {from: head, classes: [cat, dog, eel]}
""",
    )
    assert api.load(spec).class_names == {"probs": ["cat", "dog", "eel"]}
    result = predict_json([spec, "--image", tmp_path / "x.png", "--top", 3])
    assert result["classes"]["probs"]["names"] == "spec"
    top = result["images"][0]["outputs"]["probs"]["top"]
    assert sorted(entry["class"] for entry in top) == ["cat", "dog", "eel"]


def test_class_names_that_do_not_match_the_output_are_an_error(tmp_path: Path) -> None:
    """A Target built by hand, as a run.json naming the wrong number of classes
    would make it (the spec's own `classes:` count is checked by validation)."""
    save_image(tmp_path / "x.png", COLOURS["green"])
    spec = write_spec(tmp_path, one_output_spec("head: {type: Dense, units: 5, from: flat}"))
    target = api.load(spec)
    target.class_names["head"] = ["cat", "dog", "eel"]
    target.class_origins["head"] = "run"
    with pytest.raises(KgraphError) as caught:
        api.predict(target, images=[tmp_path / "x.png"])
    assert not isinstance(caught.value, UsageError)  # exit code 1: the model's files disagree
    assert "gives 5 class scores but run.json" in str(caught.value)
    assert "names 3 classes" in str(caught.value)


def test_a_thousand_classes_get_imagenet_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kgraph_cli.keras_cache as keras_cache

    asked: list[Any] = []

    def names(data_dir: Path | None) -> list[str]:
        asked.append(data_dir)
        return [f"imagenet_{i}" for i in range(1000)]

    monkeypatch.setattr(keras_cache, "imagenet_class_names", names)
    save_image(tmp_path / "x.png", COLOURS["red"])
    spec = write_spec(
        tmp_path,
        one_output_spec("head: {type: Dense, units: 1000, activation: softmax, from: flat}"),
    )
    data_dir = tmp_path / "keras-files"
    result = predict_json([spec, "--image", tmp_path / "x.png", "--data-dir", data_dir])
    assert asked == [data_dir]
    assert result["classes"]["head"]["names"] == "imagenet"
    for entry in result["images"][0]["outputs"]["head"]["top"]:
        assert entry["class"] == f"imagenet_{entry['index']}"


def test_without_the_imagenet_index_the_classes_are_numbered_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kgraph_cli.keras_cache as keras_cache

    def missing(data_dir: Path | None) -> list[str]:
        raise keras_cache.KerasFileMissing(
            "ImageNet class index 'imagenet_class_index.json' is not available offline",
            "put imagenet_class_index.json in --data-dir DIR",
        )

    monkeypatch.setattr(keras_cache, "imagenet_class_names", missing)
    save_image(tmp_path / "x.png", COLOURS["red"])
    spec = write_spec(tmp_path, one_output_spec("head: {type: Dense, units: 1000, from: flat}"))
    result = invoke(["predict", spec, "--image", tmp_path / "x.png", "--top", 2])
    assert "note:" in result.stderr and "imagenet_class_index.json" in result.stderr
    assert "put imagenet_class_index.json in --data-dir DIR" in result.stderr
    assert re.search(r"│ class \d+ +│", result.stdout)
    as_json = predict_json([spec, "--image", tmp_path / "x.png"])
    assert as_json["classes"]["head"]["names"] == "index"
    assert any("imagenet_class_index.json" in note for note in as_json["notes"])
    top = as_json["images"][0]["outputs"]["head"]["top"][0]
    assert top["class"] == f"class {top['index']}"


# -- logits, binary and other outputs ------------------------------------------------


def test_logits_are_read_through_a_softmax(tmp_path: Path) -> None:
    save_image(tmp_path / "x.png", COLOURS["red"])
    spec = write_spec(tmp_path, one_output_spec("head: {type: Dense, units: 4, from: flat}"))
    result = invoke(["predict", spec, "--image", tmp_path / "x.png", "--top", 4])
    assert "(softmax of the logits)" in result.stdout
    as_json = predict_json([spec, "--image", tmp_path / "x.png", "--top", 4])
    assert as_json["classes"]["head"]["softmax"] is True
    output = as_json["images"][0]["outputs"]["head"]
    assert output["softmax"] is True
    assert sum(entry["probability"] for entry in output["top"]) == pytest.approx(1.0, abs=1e-6)
    assert [entry["class"] for entry in output["top"]][0].startswith("class ")


def test_a_sigmoid_unit_is_a_binary_classifier(tmp_path: Path) -> None:
    save_image(tmp_path / "x.png", COLOURS["red"])
    spec = write_spec(
        tmp_path, one_output_spec("head: {type: Dense, units: 1, activation: sigmoid, from: flat}")
    )
    result = predict_json([spec, "--image", tmp_path / "x.png"])
    assert result["classes"]["head"]["binary"] is True
    assert result["classes"]["head"]["classes"] == 2
    top = result["images"][0]["outputs"]["head"]["top"]
    assert sorted(entry["index"] for entry in top) == [0, 1]
    assert sum(entry["probability"] for entry in top) == pytest.approx(1.0)


def test_outputs_that_are_not_class_scores_are_noted_and_need_o(tmp_path: Path) -> None:
    save_image(tmp_path / "x.png", COLOURS["red"])
    spec = write_spec(
        tmp_path,
        """\
kgraph: 1
inputs:
  image: {shape: [8, 8, 3]}
layers:
  seg: {type: Conv2D, filters: 2, kernel_size: 1, from: image}
outputs: [seg]
""",
    )
    result = invoke(["predict", spec, "--image", tmp_path / "x.png"], exit_code=2)
    assert "no class score output" in result.stderr and "seg (None, 8, 8, 2)" in result.stderr
    assert "-o FILE" in result.stderr
    out = tmp_path / "seg.npy"
    written = invoke(["predict", spec, "--image", tmp_path / "x.png", "-o", out])
    assert "not a class score vector" in written.stderr
    assert np.load(out).shape == (1, 8, 8, 2)


def test_grayscale_inputs_load_one_channel(tmp_path: Path) -> None:
    save_image(tmp_path / "x.png", COLOURS["red"], (40, 40))
    spec = write_spec(
        tmp_path, one_output_spec("head: {type: Dense, units: 3, from: flat}", "[28, 28, 1]")
    )
    out = tmp_path / "flat.npy"
    invoke(["predict", spec, "--image", tmp_path / "x.png", "--node", "flat", "-o", out, "-q"])
    flat = np.load(out)
    assert flat.shape == (1, 28 * 28)
    assert 0 < flat.mean() < 255  # a grey level of the red square, 0..255


def test_a_flat_input_follows_its_images_source_and_reshape(colours: dict[str, Path]) -> None:
    """An MLP on 8x8 greys: the images: source's image_size and color_mode, then
    the spec's reshape to (64,)."""
    spec = colours["root"] / "flat.yaml"
    spec.write_text(
        """\
kgraph: 1
inputs:
  pixels: {shape: [64]}
layers:
  head: {type: Dense, units: 3, activation: softmax, from: pixels}
outputs: [head]
train:
  data:
    source: {images: pics, image_size: [8, 8], color_mode: grayscale}
    inputs:
      pixels: {field: x, transforms: [{reshape: [64]}, {divide: 255}]}
"""
    )
    out = colours["root"] / "flat.npy"
    result = api.predict(spec, out, images=[colours["red"]], node="pixels", force=True)
    assert result.shapes == {"pixels": (1, 64)}
    assert 0 < np.load(out).max() <= 1


# -- --node ------------------------------------------------------------------------


def test_node_on_a_run_dir_with_images_and_with_data(
    colours: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "pool.npy"
    result = predict_json([colours["run"], "--image", colours["new"], "--node", "pool", "-o", out])
    assert result["node"] == "pool" and result["outputs"] == {"pool": [2, 3]}
    assert "classes" not in result or result["classes"] == {}
    pooled = np.load(out)
    assert pooled.shape == (2, 3)
    assert pooled[0].argmax() == 0 and pooled[1].argmax() == 2  # red, then blue (divided)
    assert pooled.max() <= 1  # the spec's {divide: 255} came first
    npz = tmp_path / "pool.npz"
    invoke(["predict", colours["run"], "--data", "train", "--node", "pool", "-o", npz, "-q"])
    with np.load(npz) as arrays:
        assert list(arrays) == ["pool"] and arrays["pool"].shape == (24, 3)


def test_node_on_a_spec_and_a_node_with_several_outputs(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        """\
kgraph: 1
inputs:
  seq: {shape: [5, 3]}
layers:
  lstm: {type: LSTM, units: 4, return_state: true, from: seq}
  head: {type: Dense, units: 2, from: lstm.0}
outputs: [head]
""",
    )
    data = tmp_path / "seq.npz"
    np.savez(data, seq=np.random.default_rng(0).normal(size=(6, 5, 3)).astype(np.float32))
    refused = invoke(
        ["predict", spec, "--data", data, "--node", "lstm", "-o", tmp_path / "l.npy"], exit_code=2
    )
    assert "node 'lstm' has 3 outputs" in refused.stderr and ".npz" in refused.stderr
    out = tmp_path / "l.npz"
    result = predict_json([spec, "--data", data, "--node", "lstm", "-o", out])
    assert result["outputs"] == {"lstm.0": [6, 4], "lstm.1": [6, 4], "lstm.2": [6, 4]}
    with np.load(out) as arrays:
        assert sorted(arrays) == ["lstm.0", "lstm.1", "lstm.2"]
        np.testing.assert_allclose(arrays["lstm.0"], arrays["lstm.1"])  # output = last h


def test_an_unknown_node_suggests_one(colours: dict[str, Path], tmp_path: Path) -> None:
    args = ["predict", colours["run"], "--image", colours["red"], "--node", "pol"]
    result = invoke([*args, "-o", tmp_path / "f.npy"], exit_code=2)
    assert "has no node 'pol'" in result.stderr
    assert "did you mean 'pool'?" in result.stderr and "nodes: image, pool, probs" in result.stderr
    assert not (tmp_path / "f.npy").exists()
    diagnostics = predict_json([*args[1:], "-o", tmp_path / "f.npy"], exit_code=2)
    assert diagnostics[0]["code"] == "usage"


def test_node_needs_an_output_file(colours: dict[str, Path]) -> None:
    result = invoke(
        ["predict", colours["run"], "--image", colours["red"], "--node", "pool"], exit_code=2
    )
    assert "--node writes the node's activations: pass -o FILE" in result.stderr


# -- errors: clear, the README's exit codes, no traceback ------------------------------


def test_a_model_without_an_image_input_is_a_usage_error(tmp_path: Path) -> None:
    save_image(tmp_path / "x.png", COLOURS["red"])
    mlp = write_spec(
        tmp_path,
        """\
kgraph: 1
inputs:
  pixels: {shape: [784]}
layers:
  logits: {type: Dense, units: 10, from: pixels}
outputs: [logits]
""",
    )
    result = invoke(["predict", mlp, "--image", tmp_path / "x.png"], exit_code=2)
    assert "needs a model whose input takes images" in result.stderr
    assert "input 'pixels' of 'spec' is (None, 784)" in result.stderr
    two = write_spec(
        tmp_path,
        """\
kgraph: 1
inputs:
  a: {shape: [8, 8, 3]}
  b: {shape: [8, 8, 3]}
layers:
  sum: {type: Add, from: [a, b]}
outputs: [sum]
""",
        "two.yaml",
    )
    result = invoke(["predict", two, "--image", tmp_path / "x.png"], exit_code=2)
    assert "one image input; 'two' has 2 inputs (a, b)" in result.stderr


def test_image_files_that_cannot_be_read(colours: dict[str, Path], tmp_path: Path) -> None:
    run = colours["run"]
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    result = invoke(["predict", run, "--image", not_image], exit_code=1)
    assert f"cannot read image '{not_image}' (not an image format Pillow reads)" in result.stderr
    truncated = tmp_path / "cut.png"
    save_image(tmp_path / "whole.png", COLOURS["red"], (64, 64))
    truncated.write_bytes((tmp_path / "whole.png").read_bytes()[:2000])
    result = invoke(["predict", run, "--image", truncated], exit_code=1)
    assert "cannot read image" in result.stderr and "truncated" in result.stderr
    result = invoke(["predict", run, "--image", tmp_path / "absent.png"], exit_code=2)
    assert "absent.png' does not exist" in result.stderr
    (tmp_path / "empty").mkdir()
    result = invoke(["predict", run, "--image", tmp_path / "empty"], exit_code=2)
    assert "holds no image files" in result.stderr and ".jpg" in result.stderr


def test_a_transform_that_does_not_fit_the_images_is_located(tmp_path: Path) -> None:
    save_image(tmp_path / "x.png", COLOURS["red"])
    spec = write_spec(
        tmp_path,
        one_output_spec("head: {type: Dense, units: 3, from: flat}", "[16, 16, 3]")
        + """\
train:
  data:
    source: {npz: unused.npz}
    inputs:
      image: {field: x, transforms: [{divide: 255}, {reshape: [16, 16, 1]}]}
""",
    )
    result = invoke(["predict", spec, "--image", tmp_path / "x.png"], exit_code=1)
    located = f"{spec}:12:54: error[data]: train.data.inputs.image: reshape:"
    assert located in result.stderr and "error[data]" in result.stderr
    assert "cannot reshape samples of shape (16, 16, 3) to (16, 16, 1)" in result.stderr


def test_options_that_do_not_go_together(colours: dict[str, Path], tmp_path: Path) -> None:
    run = colours["run"]
    result = invoke(["predict", run, "--top", 2, "-o", tmp_path / "p.npy"], exit_code=2)
    assert "--top ranks the classes of --image predictions" in result.stderr
    result = invoke(["predict", run, "--image", colours["red"], "--data", "train"], exit_code=2)
    assert "--image and --data" in result.stderr
    result = invoke(["predict", run], exit_code=2)
    assert "predict needs -o FILE" in result.stderr
    result = invoke(["predict", run, "--image", colours["red"], "--top", 0], exit_code=2)


def test_the_python_api(colours: dict[str, Path]) -> None:
    result = api.predict(colours["run"], images=[colours["new"]], top=1)
    assert result.images == [colours["new"] / "a_red.png", colours["new"] / "b_blue.jpg"]
    assert result.output is None
    ranked = result.ranking.outputs["probs"]
    assert ranked.names == "run" and not ranked.softmax
    assert [top[0].name for top in ranked.top] == ["red", "blue"]
