"""The command line in-process: exit codes, --json, --set, --model, messages."""

from __future__ import annotations

import json

import pytest

from kgraph_cli import __version__
from kgraph_cli.cli import app

MLP = """\
kgraph: 1
name: mlp
inputs:
  pixels: {shape: [784]}
layers:
  hidden: {type: Dense, units: 64, activation: relu, from: pixels}
  logits: {type: Dense, units: 10, from: hidden}
outputs: [logits]
"""

BROKEN = """\
kgraph: 1
inputs:
  pixels: {shape: [784]}
layers:
  hidden: {type: Dens, units: 64, from: pixels}
  logits: {type: Dense, units: 10, from: hiden}
outputs: [logits]
"""


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"kgraph {__version__}"


def test_help_lists_commands(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("validate", "summary", "schema"):
        assert command in result.stdout


def test_validate_ok_structure_only(runner, write_spec):
    path = write_spec(MLP)
    result = runner.invoke(app, ["validate", "--no-build", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout and "structure valid" in result.stdout


def test_validate_reports_every_error_with_location(runner, write_spec):
    path = write_spec(BROKEN)
    result = runner.invoke(app, ["validate", "--no-build", str(path)])
    assert result.exit_code == 1
    assert f"{path}:5:18: error[unknown-layer]" in result.stderr
    assert "did you mean 'Dense'?" in result.stderr
    assert f"{path}:6:42: error[undefined-ref]" in result.stderr
    assert "did you mean 'hidden'?" in result.stderr
    assert "2 errors" in result.stderr
    assert "Traceback" not in result.output


def test_validate_json_is_a_list_of_diagnostics(runner, write_spec):
    path = write_spec(BROKEN)
    result = runner.invoke(app, ["validate", "--no-build", "--json", str(path)])
    assert result.exit_code == 1
    diagnostics = json.loads(result.stdout)
    assert [d["code"] for d in diagnostics] == ["unknown-layer", "undefined-ref"]
    first = diagnostics[0]
    assert (first["file"], first["line"], first["col"]) == (str(path), 5, 18)
    assert first["path"] == "layers.hidden.type"
    assert first["severity"] == "error"
    assert first["hint"] == "did you mean 'Dense'?"


def test_hundreds_of_problems_show_the_first_errors_and_a_count(runner, write_spec):
    from kgraph_cli.console import SHOWN_DIAGNOSTICS

    nodes = "".join(f"  n{i}: {{type: Dens, units: 2, from: x}}\n" for i in range(500))
    path = write_spec(f"kgraph: 1\ninputs:\n  x: {{shape: [4]}}\nlayers:\n{nodes}outputs: [n0]\n")
    result = runner.invoke(app, ["validate", "--no-build", str(path)])
    assert result.exit_code == 1
    assert result.stderr.count("error[unknown-layer]") == SHOWN_DIAGNOSTICS
    assert "warning[" not in result.stderr  # errors are shown first
    assert f"... and {999 - SHOWN_DIAGNOSTICS} more not shown (--json lists them all)" in (
        result.stderr
    )
    assert "500 errors, 499 warnings" in result.stderr
    assert len(result.stderr.splitlines()) < 100
    every = json.loads(runner.invoke(app, ["validate", "--no-build", "--json", str(path)]).stdout)
    assert len(every) == 999


def test_validate_json_empty_list_when_valid(runner, write_spec):
    result = runner.invoke(app, ["validate", "--no-build", "--json", str(write_spec(MLP))])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_validate_several_files_fails_if_any_fails(runner, write_spec):
    good, bad = write_spec(MLP, "good.yaml"), write_spec(BROKEN, "bad.yaml")
    result = runner.invoke(app, ["validate", "--no-build", str(good), str(bad)])
    assert result.exit_code == 1
    assert "ok" in result.stdout and str(good) in result.stdout
    assert str(bad) in result.stderr


def test_missing_file_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "Invalid value" in result.output


def test_unknown_option_is_a_usage_error(runner, write_spec):
    result = runner.invoke(app, ["validate", "--frobnicate", str(write_spec(MLP))])
    assert result.exit_code == 2


def test_set_error_points_at_the_override(runner, write_spec):
    path = write_spec(MLP)
    result = runner.invoke(
        app, ["validate", "--no-build", str(path), "--set", "layers.hidden.type=Dens"]
    )
    assert result.exit_code == 1
    assert "--set:1:" in result.stderr
    assert "layers.hidden.type=Dens" in result.stderr  # the excerpt is the override


@pytest.mark.tf
def test_validate_builds_and_finds_shape_errors(runner, write_spec):
    path = write_spec(
        "kgraph: 1\ninputs: {a: [8], b: [4]}\n"
        "layers:\n  s: {type: Add, from: [a, b]}\noutputs: [s]\n"
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4:3: error[shape]: layers.s: Add got shapes (None, 8) and (None, 4)" in (
        result.stderr
    )
    no_build = runner.invoke(app, ["validate", "--no-build", str(path)])
    assert no_build.exit_code == 0


@pytest.mark.tf
def test_summary_json_counts(runner, write_spec):
    result = runner.invoke(app, ["summary", "--json", str(write_spec(MLP))])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["name"] == "mlp"
    assert facts["total_params"] == 784 * 64 + 64 + 64 * 10 + 10
    assert facts["trainable_params"] == facts["total_params"]
    assert facts["total_bytes"] == facts["total_params"] * 4
    assert [row["name"] for row in facts["layers"]] == ["pixels", "hidden", "logits"]
    assert facts["layers"][2]["connected_to"] == ["hidden"]
    assert facts["outputs"] == [{"name": "logits", "shape": [None, 10], "dtype": "float32"}]


@pytest.mark.tf
def test_summary_set_changes_the_model(runner, write_spec):
    path = str(write_spec(MLP))
    result = runner.invoke(app, ["summary", "--json", path, "--set", "layers.hidden.units=8"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total_params"] == 784 * 8 + 8 + 8 * 10 + 10


@pytest.mark.tf
def test_summary_table(runner, write_spec):
    result = runner.invoke(app, ["summary", str(write_spec(MLP))])
    assert result.exit_code == 0, result.output
    assert "hidden (Dense)" in result.stdout
    assert "(None, 64)" in result.stdout
    assert "Total params: 50,890" in result.stdout


def test_summary_unknown_model_is_a_usage_error(runner, write_spec):
    result = runner.invoke(app, ["summary", str(write_spec(MLP)), "--model", "mpl"])
    assert result.exit_code == 2
    assert "no model 'mpl'" in result.stderr
    assert "did you mean 'mlp'?" in result.stderr


def test_summary_of_invalid_spec_exits_1_without_traceback(runner, write_spec):
    result = runner.invoke(app, ["summary", str(write_spec(BROKEN))])
    assert result.exit_code == 1
    assert "error[unknown-layer]" in result.stderr
    assert "Traceback" not in result.output


def test_schema_to_stdout_and_file(runner, tmp_path):
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["properties"]["kgraph"]["const"] == 1
    target = tmp_path / "schema.json"
    assert runner.invoke(app, ["schema", "-o", str(target)]).exit_code == 0
    assert json.loads(target.read_text()) == schema
    again = runner.invoke(app, ["schema", "-o", str(target)])
    assert again.exit_code == 2
    assert "--force" in again.stderr
    assert runner.invoke(app, ["schema", "-o", str(target), "--force"]).exit_code == 0


TUTORIAL_PLUGIN = """\
import keras


class CustomDense(keras.layers.Layer):
    def __init__(self, units=32):  # as in the tutorial: no **kwargs, no `name`
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal")

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.w) + self.b
"""

PLUGIN_SPEC = """\
kgraph: 1
inputs: {x: [4]}
layers: {dense: {type: tut_layers.CustomDense, units: 10, from: x}}
outputs: [dense]
"""


@pytest.mark.tf
def test_plugin_layer_from_a_file(runner, write_spec, tmp_path):
    (tmp_path / "tut_layers.py").write_text(TUTORIAL_PLUGIN)
    spec = str(write_spec(PLUGIN_SPEC))
    result = runner.invoke(
        app, ["summary", "--json", spec, "--plugin", str(tmp_path / "tut_layers.py")]
    )
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["total_params"] == 50
    assert facts["layers"][1]["name"] == "dense" and facts["layers"][1]["type"] == "CustomDense"


def test_plugin_problems(runner, write_spec, tmp_path):
    spec = str(write_spec(PLUGIN_SPEC))
    missing = runner.invoke(app, ["validate", spec, "--plugin", str(tmp_path / "nope.py")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr
    (tmp_path / "crashing.py").write_text("raise RuntimeError('boom')\n")
    crash = runner.invoke(app, ["validate", spec, "--plugin", str(tmp_path / "crashing.py")])
    assert crash.exit_code == 1
    assert "RuntimeError: boom" in crash.stderr
    assert "Traceback" not in crash.output
    unloaded = runner.invoke(app, ["validate", "--no-build", spec])
    assert unloaded.exit_code == 1
    assert "--plugin path/to/tut_layers.py" in unloaded.stderr
