"""The Python API as a notebook user calls it: paths and plain values in,
typed results out, errors as exceptions, no printing but the plain reporter."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kgraph_cli import api
from kgraph_cli.errors import SpecError, UsageError
from tests.conftest import REPO, SPECS

TINY = """\
kgraph: 1
name: tiny
inputs:
  x: {shape: [4]}
layers:
  hidden: {type: Dense, units: 8, activation: relu, from: x}
  logits: {type: Dense, units: 3, from: hidden}
outputs: [logits]
train:
  data:
    source: {generated: 64}
  compile:
    optimizer: adam
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
    metrics: [accuracy]
  fit: {batch_size: 16, epochs: 2, validation: 0.25, seed: 2}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_importing_the_api_does_not_import_tensorflow() -> None:
    code = "import sys, kgraph_cli.api; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_validate_returns_diagnostics_as_data(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TINY.replace("type: Dense, units: 8", "type: Dens, units: 8"))
    result = api.validate(broken, build=False)
    assert not result.ok
    assert [d.code for d in result.diagnostics] == ["unknown-layer"]
    assert result.diagnostics[0].location is not None
    assert result.diagnostics[0].location.line == 6
    with pytest.raises(SpecError) as raised:
        api.load_spec(broken)
    assert raised.value.diagnostics[0].hint == "did you mean 'Dense'?"


@pytest.mark.tf
def test_build_summarize_and_an_unknown_model(tiny: Path) -> None:
    model = api.build(tiny)
    assert model.count_params() == 4 * 8 + 8 + 8 * 3 + 3
    summary = api.summarize(tiny)
    assert summary.total_params == model.count_params()
    assert [row.name for row in summary.layers] == ["x", "hidden", "logits"]
    with pytest.raises(UsageError, match="no model 'nope'"):
        api.build(tiny, model="nope")


@pytest.mark.tf
def test_train_evaluate_predict_save_inspect_import(tiny: Path, tmp_path: Path) -> None:
    lines = io.StringIO()
    run = api.train(tiny, out=tmp_path / "run", epochs=3, reporter=api.PlainReporter(lines))
    assert run.epochs == 3 and run.run_dir == tmp_path / "run"
    assert [line.split(" - ")[0] for line in lines.getvalue().splitlines()[1:]] == [
        "epoch 1/3",
        "epoch 2/3",
        "epoch 3/3",
    ]
    assert set(run.metrics) == {"train", "validation", "test"}

    evaluation = api.evaluate(run.run_dir)
    assert evaluation.trained
    assert evaluation.metrics["accuracy"] == pytest.approx(
        run.metrics["test"]["accuracy"], abs=1e-6
    )
    assert not api.evaluate(tiny).trained

    predictions = api.predict(run.run_dir, tmp_path / "p.npy")
    assert predictions.shapes == {"logits": (evaluation.samples, 3)}
    assert np.load(tmp_path / "p.npy").shape == (evaluation.samples, 3)

    saved = api.save(tiny, tmp_path / "m.keras", weights=run.run_dir)
    assert saved.format == "keras" and saved.spec_embedded
    info = api.inspect(tmp_path / "m.keras", check=True)
    assert info.summary.total_params == 4 * 8 + 8 + 8 * 3 + 3
    assert info.check is not None and info.spec is not None

    imported = api.import_model(tmp_path / "m.keras", tmp_path / "again.yaml", weights=True)
    assert imported.params == info.summary.total_params
    assert imported.weights == tmp_path / "again.weights.h5"
    assert api.validate(tmp_path / "again.yaml").ok


@pytest.mark.tf
def test_plot_returns_text_formats(tiny: Path) -> None:
    result = api.plot(tiny, format="mmd")
    assert result.text is not None and result.text.startswith("flowchart")
    assert "hidden" in result.text


def test_schema_is_a_draft_07_document() -> None:
    schema = api.schema()
    assert schema["$schema"].startswith("http://json-schema.org/draft-07")
    assert "layers" in schema["properties"]


def test_the_public_names_exist() -> None:
    for name in api.__all__:
        assert hasattr(api, name), name
    assert SPECS.is_dir()
