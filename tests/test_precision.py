"""train.precision and --precision: Keras dtype policies for the model's
layers, the outputs kept in float32, loss scaling for float16, the summary
showing it, and Keras's global policy left as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgraph_cli import api
from tests.conftest import SPECS, invoke

pytestmark = pytest.mark.tf

DIGITS = SPECS / "digits.yaml"


@pytest.mark.parametrize(
    ("precision", "compute"), [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")]
)
def test_layers_compute_in_the_policy_and_outputs_stay_float32(
    precision: str, compute: str
) -> None:
    import keras

    model = api.build(DIGITS, overrides=[f"train.precision={precision}"])
    layers = {layer.name: layer for layer in model.layers}
    assert layers["hidden1"].dtype_policy.name == precision
    assert layers["hidden1"].compute_dtype == compute
    assert layers["hidden1"].variable_dtype == "float32"
    assert layers["logits"].dtype_policy.name == "float32"  # the output layer
    assert model.outputs[0].dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


def test_an_output_layer_that_names_its_dtype_keeps_it(write_spec) -> None:
    spec = write_spec(
        "kgraph: 1\ninputs: {x: {shape: [4]}}\n"
        "layers:\n  h: {type: Dense, units: 3, from: x}\n"
        "  out: {type: Dense, units: 2, dtype: mixed_bfloat16, from: h}\n"
        "outputs: [out]\ntrain: {precision: mixed_bfloat16}\n"
    )
    model = api.build(spec)
    assert model.outputs[0].dtype == "bfloat16"


def test_summary_shows_the_precision() -> None:
    result = invoke(["summary", DIGITS, "--set", "train.precision=mixed_bfloat16"])
    assert "Precision: mixed_bfloat16 (outputs: logits float32)" in result.output
    data = json.loads(
        invoke(["summary", DIGITS, "--json", "--set", "train.precision=mixed_bfloat16"]).stdout
    )
    assert data["precision"] == "mixed_bfloat16"
    assert data["outputs"][0]["dtype"] == "float32"
    plain = json.loads(invoke(["summary", DIGITS, "--json"]).stdout)
    assert plain["precision"] == "float32"
    assert "Precision" not in invoke(["summary", DIGITS]).output


def test_training_in_mixed_float16_scales_the_loss_and_records_the_precision(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    args = ["train", DIGITS, "--precision", "mixed_float16", "--epochs", "2", "--out", out]
    result = invoke([*args, "--json"])
    assert "warning: mixed_float16 is slower than float32 on a CPU" in result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["test"]["accuracy"] > 0.8  # it learns
    assert "precision: mixed_float16" in (out / "spec.yaml").read_text()


def test_fit_wraps_the_optimizer_for_loss_scaling() -> None:
    import keras

    from kgraph_cli.spec.train import checked_train
    from kgraph_cli.train import compile_model

    valid = api.load_spec(DIGITS, ["train.precision=mixed_float16"])
    model = api.build(DIGITS, overrides=["train.precision=mixed_float16"])
    compile_model(model, checked_train(valid.spec, valid.spec.default))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
