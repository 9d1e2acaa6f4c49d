"""With --json, stdout carries exactly one JSON document, whatever libraries
print meanwhile: a plugin layer that prints from Python (as Keras's download
messages do) and writes to file descriptor 1 directly (as C++ logs do)
stands in for them. Errors are JSON of the diagnostics' shape too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GENERATED_TRAIN, REPO, invoke

pytestmark = pytest.mark.tf

NOISY_PLUGIN = """\
import os

import keras

print("CHATTER: plugin imported")
os.write(1, b"CHATTER: written to fd 1\\n")


class Noisy(keras.layers.Layer):
    def call(self, x):
        print("CHATTER: Noisy.call")
        os.write(1, b"CHATTER: fd 1 from call\\n")
        return x
"""

SPEC = (
    """\
kgraph: 1
name: noisy_model
inputs:
  x: {shape: [4]}
layers:
  noise: {type: noisy.Noisy, from: x}
  logits: {type: Dense, units: 2, from: noise}
outputs: [logits]
"""
    + GENERATED_TRAIN
)


@pytest.fixture
def noisy(tmp_path: Path) -> tuple[Path, Path]:
    plugin = tmp_path / "noisy.py"
    plugin.write_text(NOISY_PLUGIN)
    spec = tmp_path / "noisy.yaml"
    spec.write_text(SPEC)
    return spec, plugin


def one_document(stdout: str) -> Any:
    """stdout parses as one JSON document and holds nothing else."""
    assert "CHATTER" not in stdout, stdout
    return json.loads(stdout)


def test_stdout_is_pure_json_at_the_file_descriptor_level(noisy: tuple[Path, Path]) -> None:
    spec, plugin = noisy
    done = subprocess.run(
        [sys.executable, "-m", "kgraph_cli.cli", "validate", "--json", str(spec)]
        + ["--plugin", str(plugin)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert one_document(done.stdout) == []
    # what the libraries printed is not lost: it went to stderr
    assert "CHATTER: written to fd 1" in done.stderr
    assert "CHATTER: plugin imported" in done.stderr


def test_every_command_prints_one_json_document(noisy: tuple[Path, Path], tmp_path: Path) -> None:
    spec, plugin = noisy
    p = ["--plugin", plugin]
    run = tmp_path / "run"
    trained = one_document(invoke(["train", spec, "--out", run, "--json", *p]).stdout)
    assert trained["epochs"] == 1 and Path(trained["run_dir"]) == run
    model = run / "model.keras"
    outputs = {
        "validate": one_document(invoke(["validate", spec, "--json", *p]).stdout),
        "summary": one_document(invoke(["summary", spec, "--json", *p]).stdout),
        "evaluate": one_document(invoke(["evaluate", run, "--json", *p]).stdout),
        "predict": one_document(
            invoke(["predict", run, "-o", tmp_path / "p.npy", "--json", *p]).stdout
        ),
        "save": one_document(invoke(["save", spec, "-o", tmp_path / "m.h5", "--json", *p]).stdout),
        "load": one_document(invoke(["load", model, "--json", *p]).stdout),
        "plot": one_document(invoke(["plot", spec, "-o", tmp_path / "g.dot", "--json", *p]).stdout),
        "tree": one_document(invoke(["plot", spec, "--format", "tree", "--json", *p]).stdout),
        "import": one_document(
            invoke(["import", model, "-o", tmp_path / "i.yaml", "--json", *p]).stdout
        ),
    }
    assert outputs["validate"] == []
    assert outputs["summary"]["total_params"] == 10
    assert set(outputs["evaluate"]["metrics"]) >= {"loss"}
    assert outputs["predict"]["outputs"] == {"logits": [outputs["predict"]["samples"], 2]}
    assert outputs["save"]["format"] == "h5"
    assert outputs["load"]["total_params"] == 10
    assert outputs["plot"]["format"] == "dot"
    assert [n["id"] for n in outputs["tree"]["nodes"]] == ["x", "noise", "logits"]
    assert outputs["import"]["params"] == 10


@pytest.mark.parametrize(
    "args, code",
    [
        (["summary", "{spec}", "--model", "nope"], "usage"),
        (["save", "{spec}", "-o", "{tmp}/m.xyz"], "usage"),
        (["train", "{spec}", "--out", "{tmp}/notes.txt"], "usage"),
        (["summary", "{spec}", "--set", "layers.logits.units=0"], None),
    ],
    ids=["unknown-model", "unknown-format", "out-is-a-file", "spec-error"],
)
def test_errors_are_one_json_list_of_diagnostics(
    noisy: tuple[Path, Path], tmp_path: Path, args: list[str], code: str | None
) -> None:
    spec, plugin = noisy
    (tmp_path / "notes.txt").write_text("mine")
    words = [a.format(spec=spec, tmp=tmp_path) for a in args]
    result = invoke([*words, "--json", "--plugin", plugin], exit_code=2 if code else 1)
    diagnostics = one_document(result.stdout)
    assert isinstance(diagnostics, list) and diagnostics
    keys = {"severity", "code", "file", "line", "col", "path", "message", "hint", "related"}
    for diagnostic in diagnostics:
        assert set(diagnostic) == keys
    if code:
        assert diagnostics[0]["code"] == code and diagnostics[0]["severity"] == "error"


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["validate", "--json"], "Missing argument 'specs'.", "see 'kgraph validate --help'"),
        (["validate", "--json", "--bogus", "x.yaml"], "No such option: --bogus", "validate"),
        (["train", "--json", "--epochs", "many", "x.yaml"], "Invalid value for '--epochs'", "tr"),
        (["--bogus", "--json"], "No such option: --bogus", "see 'kgraph --help'"),
        (["validate", "--json", "missing.yaml"], "file 'missing.yaml' does not exist", "validate"),
    ],
    ids=["missing-argument", "unknown-option", "bad-value", "group-option", "missing-file"],
)
def test_usage_errors_are_json_under_json(args: list[str], message: str, hint: str) -> None:
    """typer's own usage errors, found before a command runs, are JSON too."""
    result = invoke(args, exit_code=2)
    (diagnostic,) = one_document(result.stdout)
    assert diagnostic["code"] == "usage" and diagnostic["severity"] == "error"
    assert message in diagnostic["message"]
    assert hint in diagnostic["hint"]


def test_usage_errors_without_json_stay_text() -> None:
    result = invoke(["validate", "--bogus", "--", "--json"], exit_code=2)
    assert "No such option: --bogus" in result.output
    assert not result.stdout.lstrip().startswith("[")
