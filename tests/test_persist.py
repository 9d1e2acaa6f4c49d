"""save / load: exact round trips, every format, atomic writes, safe and clear loading."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kgraph_cli.cli import app
from tests.conftest import SPEC_PLUGINS, SPECS

pytestmark = pytest.mark.tf

PLUGIN = str(SPECS / "plugins" / "my_layers.py")
EXAMPLES = sorted(p for p in SPECS.glob("*.yaml"))

TINY = """\
kgraph: 1
name: tiny
inputs: {x: [6]}
layers:
  h: {type: Dense, units: 8, activation: relu, from: x}
  out: {type: Dense, units: 3, from: h}
outputs: [out]
train:
  data:
    source: {generated: 96, seed: 3}
  compile:
    optimizer: {type: Adam, learning_rate: 0.01}
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  fit: {batch_size: 16, epochs: 4, shuffle: false, seed: 5}
"""


def invoke(runner: Any, args: list[Any], exit_code: int = 0) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    return result


def random_inputs(model: Any, batch: int = 3) -> Any:
    rng = np.random.default_rng(0)
    arrays = []
    for tensor in model.inputs:
        dims = (batch, *(7 if d is None else d for d in tensor.shape[1:]))
        if str(tensor.dtype).startswith("int"):
            arrays.append(rng.integers(0, 10, size=dims).astype(str(tensor.dtype)))
        else:
            arrays.append(rng.standard_normal(dims).astype("float32"))
    return arrays[0] if len(arrays) == 1 else arrays


def as_list(outputs: Any) -> list[np.ndarray]:
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_save_load_predict_is_bitwise_identical(spec: Path, tmp_path: Path) -> None:
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.export import save_model
    from kgraph_cli.persist import load_keras_model
    from kgraph_cli.spec.validate import validate_spec

    valid = validate_spec(spec, plugins=SPEC_PLUGINS.get(spec.stem, []))
    model = ModelBuilder(valid).build()
    path = tmp_path / "model.keras"
    save_model(model, path, "keras", "kgraph: 1\n", force=False)
    loaded = load_keras_model(path)
    inputs = random_inputs(model)
    before = as_list(model.predict(inputs, verbose=0))
    after = as_list(loaded.predict(inputs, verbose=0))
    assert len(before) == len(after)
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a, b)


def test_cli_save_embeds_the_spec_and_load_shows_it(runner, tmp_path: Path) -> None:
    out = tmp_path / "mnist.keras"
    invoke(runner, ["save", SPECS / "mnist.yaml", "-o", out, "--set", "layers.hidden1.units=32"])
    with zipfile.ZipFile(out) as archive:
        embedded = archive.read("kgraph/spec.yaml").decode()
    assert "units: 32" in embedded  # the spec as built, --set applied
    info = json.loads(invoke(runner, ["load", out, "--json", "--check"]).stdout)
    assert info["name"] == "mnist_model"
    assert info["total_params"] == 784 * 32 + 32 + 32 * 64 + 64 + 64 * 10 + 10
    assert info["inputs"] == [{"name": "pixels", "shape": [None, 784], "dtype": "float32"}]
    assert info["spec"] == embedded
    assert info["compiled"] is False
    assert info["check"] == {"ok": True, "outputs": {"logits": [2, 10]}}
    human = invoke(runner, ["load", out, "--spec"]).stdout
    assert "hidden1 (Dense)" in human and "units: 32" in human


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.parametrize(
    ("name", "fmt"),
    [("m.h5", "h5"), ("m.weights.h5", "weights"), ("saved", "savedmodel"), ("m.tflite", "tflite")],
)
def test_every_format_is_written_and_usable(runner, tmp_path: Path, name: str, fmt: str) -> None:
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.persist import embedded_spec
    from kgraph_cli.spec.validate import validate_spec

    out = tmp_path / name
    result = json.loads(invoke(runner, ["save", SPECS / "mnist.yaml", "-o", out, "--json"]).stdout)
    assert result["format"] == fmt and result["bytes"] > 10_000
    if fmt != "tflite":
        assert "mnist_model" in (embedded_spec(out) or "")
    x = np.random.default_rng(1).standard_normal((4, 784)).astype("float32")
    if fmt == "weights":  # weights alone: into the spec's model again
        model = ModelBuilder(validate_spec(SPECS / "mnist.yaml")).build()
        model.load_weights(out)
        assert model.predict(x, verbose=0).shape == (4, 10)
    elif fmt == "tflite":
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_path=str(out))
        interpreter.allocate_tensors()
        (entry,) = interpreter.get_input_details()
        interpreter.resize_tensor_input(entry["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(entry["index"], x)
        interpreter.invoke()
        assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).shape == (4, 10)
    else:
        info = json.loads(invoke(runner, ["load", out, "--json", "--check"]).stdout)
        assert info["check"]["ok"]


def test_onnx_export_gives_the_same_predictions(runner, tmp_path: Path) -> None:
    pytest.importorskip("tf2onnx", reason="the onnx extra is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    out = tmp_path / "m.onnx"
    weights = tmp_path / "w.keras"
    invoke(runner, ["save", SPECS / "mnist.yaml", "-o", weights])
    invoke(runner, ["save", SPECS / "mnist.yaml", "-o", out, "--weights", weights])
    from kgraph_cli.persist import load_keras_model

    model = load_keras_model(weights)
    x = np.random.default_rng(2).standard_normal((5, 784)).astype("float32")
    session = ort.InferenceSession(str(out))
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(onnx_out, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_onnx_without_the_extra_says_how_to_install(runner, tmp_path: Path, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_tf2onnx(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "tf2onnx":
            raise ImportError("No module named 'tf2onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tf2onnx)
    result = invoke(runner, ["save", SPECS / "mnist.yaml", "-o", tmp_path / "m.onnx"], 1)
    assert "kgraph[onnx]" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_weights_from_a_trained_model_and_a_mismatch(runner, tmp_path: Path, write_spec) -> None:
    spec = write_spec(TINY)
    run = tmp_path / "run"
    invoke(runner, ["train", spec, "--out", run, "-q"])
    out = tmp_path / "copy.keras"
    invoke(runner, ["save", spec, "-o", out, "--weights", run])
    from kgraph_cli.persist import load_keras_model

    trained, copy = load_keras_model(run / "model.keras"), load_keras_model(out)
    for a, b in zip(trained.get_weights(), copy.get_weights(), strict=True):
        assert np.array_equal(a, b)
    other = invoke(
        runner,
        ["save", SPECS / "mnist.yaml", "-o", tmp_path / "x.keras", "--weights", run],
        exit_code=1,
    )
    assert "do not match" in other.stderr
    assert not (tmp_path / "x.keras").exists()


def test_training_on_from_a_saved_model_ends_where_an_uninterrupted_run_ends(
    runner, tmp_path: Path, write_spec
) -> None:
    spec = write_spec(TINY)
    whole = json.loads(
        invoke(runner, ["train", spec, "--out", tmp_path / "whole", "--json"]).stdout
    )
    invoke(runner, ["train", spec, "--out", tmp_path / "half", "--epochs", "2", "-q"])
    # The saved model carries its optimizer state (Adam's moments and step count).
    info = json.loads(invoke(runner, ["load", tmp_path / "half", "--json"]).stdout)
    assert info["compiled"] and info["optimizer"] == "Adam" and info["optimizer_steps"] == 12
    rest = json.loads(
        invoke(
            runner,
            ["train", tmp_path / "half", "--out", tmp_path / "rest", "--epochs", "2", "--json"],
        ).stdout
    )
    np.testing.assert_allclose(rest["history"]["loss"], whole["history"]["loss"][2:], rtol=1e-5)
    from kgraph_cli.persist import load_keras_model

    end_a = load_keras_model(tmp_path / "whole" / "model.keras").get_weights()
    end_b = load_keras_model(tmp_path / "rest" / "model.keras").get_weights()
    for a, b in zip(end_a, end_b, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_save_is_atomic_and_never_overwrites_without_force(
    runner, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "m.keras"
    out.write_bytes(b"precious")
    refused = invoke(runner, ["save", SPECS / "mnist.yaml", "-o", out], exit_code=2)
    assert "--force" in refused.stderr and out.read_bytes() == b"precious"

    import kgraph_cli.export as export

    def broken_save(model: Any, path: Path, spec_text: str | None) -> None:
        path.write_bytes(b"half a fi")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(export._WRITERS, "keras", broken_save)
    runner.invoke(app, ["save", str(SPECS / "mnist.yaml"), "-o", str(out), "--force"])
    assert out.read_bytes() == b"precious"  # the old file survives a failed save
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no temporary left over


def test_lambda_models_are_refused_unless_unsafe(runner, tmp_path: Path) -> None:
    from kgraph_cli.tf import import_keras

    keras = import_keras()
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    refused = invoke(runner, ["load", path], exit_code=1)
    assert "--unsafe" in refused.stderr
    assert "lambda.keras" in refused.stderr
    invoke(runner, ["load", path, "--unsafe", "--check"])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("truncated.keras", None),
        ("random.keras", bytes(range(256)) * 8),
        ("text.keras", b"kgraph: 1\n"),
        ("notamodel.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64),
        ("empty.h5", b""),
    ],
)
def test_broken_model_files_are_clear_errors(
    runner, tmp_path: Path, name: str, content: bytes | None
) -> None:
    path = tmp_path / name
    if content is None:
        good = tmp_path / "good.keras"
        invoke(runner, ["save", SPECS / "mnist.yaml", "-o", good])
        content = good.read_bytes()[:4000]
    path.write_bytes(content)
    for command in (["load", path], ["summary", path], ["evaluate", path]):
        result = invoke(runner, command, exit_code=1)
        assert "cannot load model" in result.stderr, result.stderr


def test_unknown_format_and_weights_name(runner, tmp_path: Path) -> None:
    result = invoke(runner, ["save", SPECS / "mnist.yaml", "-o", tmp_path / "m.pkl"], exit_code=2)
    assert ".keras" in result.stderr
    bad = invoke(
        runner,
        ["save", SPECS / "mnist.yaml", "-o", tmp_path / "m.h5", "--format", "weights"],
        exit_code=2,
    )
    assert ".weights.h5" in bad.stderr


def test_summary_and_predict_accept_a_saved_model(runner, tmp_path: Path) -> None:
    out = tmp_path / "m.keras"
    invoke(runner, ["save", SPECS / "digits.yaml", "-o", out])
    facts = json.loads(invoke(runner, ["summary", out, "--json"]).stdout)
    assert facts["name"] == "digits_mlp" and facts["total_params"] == 17_226
    # The embedded spec says how to read the data: predict on its test split.
    written = tmp_path / "p.npy"
    invoke(runner, ["predict", out, "-o", written, "-q"])
    assert np.load(written).shape[1] == 10
