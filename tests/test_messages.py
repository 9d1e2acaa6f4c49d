"""Messages a new user meets in the first hour: each points at what they typed
and says what to do (Keras module paths as layer types, a spec without
`train:`, a mistyped node in --set, a missing field set with --set, long name
lists, export-only model files).

Most run without TensorFlow: structural validation, the data pipeline driven
with a hand-made ModelIO, and the load refusal happen before any model is
built. The CLI runs of `train` build a model and are marked `tf`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from kgraph_cli.cli import app
from kgraph_cli.data.pipeline import ModelIO, prepare_data
from kgraph_cli.errors import Diagnostic, SpecError
from kgraph_cli.spec.loader import parse_yaml
from kgraph_cli.spec.overrides import OVERRIDE_FILE, apply_overrides
from kgraph_cli.spec.train import parse_train
from kgraph_cli.spec.validate import validate_spec
from kgraph_cli.suggest import did_you_mean, listed
from tests.conftest import SPECS

MLP = """\
kgraph: 1
name: mlp
inputs:
  pixels: {shape: [8]}
layers:
  hidden1: {type: Dense, units: 4, activation: relu, from: pixels}
  logits: {type: Dense, units: 3, from: hidden1}
outputs: [logits]
"""
MLP_IO = ModelIO(
    {"pixels": ((8,), "float32")}, {"logits": (3,)}, {"logits": "SparseCategoricalCrossentropy"}
)


def invoke(args: list[Any], exit_code: int) -> Any:
    """kgraph in-process; the exit code asserted and no traceback."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"kgraph crashed: {result.exception!r}\n{result.output}"
    assert result.exit_code == exit_code, f"exit {result.exit_code}:\n{result.output}"
    assert "Traceback" not in result.output
    return result


def diagnostics(args: list[Any]) -> list[dict[str, Any]]:
    """`kgraph ... --json` that fails with exit code 1: its diagnostics."""
    return json.loads(invoke([*args, "--json"], 1).stdout)


def data_problems(spec: Path, overrides: list[str], io: ModelIO = MLP_IO) -> list[Diagnostic]:
    """What the data checks before training say, without building the model."""
    valid = validate_spec(spec, overrides)
    train, problems = parse_train(valid.spec.train, valid.spec.models["mlp"], str(spec))
    assert not problems, problems
    with pytest.raises(SpecError) as info:
        prepare_data(train, io, spec.parent, None, str(spec))
    return info.value.diagnostics


# -- item 2: `type: keras.layers.Dense` --------------------------------------------


@pytest.mark.parametrize(
    ("written", "hint"),
    [
        ("keras.layers.Dense", "write `Dense`: a spec names Keras layers without 'keras.layers.'"),
        ("tf.keras.layers.Dense", "write `Dense`"),
        ("tensorflow.keras.layers.Dense", "write `Dense`"),
        ("keras.layers.Conv2D", "write `Conv2D`"),
        ("keras.Dense", "write `Dense`"),
        ("keras.layers.Dens", "did you mean 'Dense'?"),
        ("keras.layers.Frobnicator", "Keras has no layer 'Frobnicator'"),
    ],
)
def test_keras_module_paths_as_layer_types(written: str, hint: str, write_spec: Any) -> None:
    spec = write_spec(MLP.replace("type: Dense, units: 4", f"type: {written}, units: 4"))
    (diag,) = diagnostics(["validate", "--no-build", spec])
    assert diag["code"] == "unknown-layer"
    assert (diag["line"], diag["path"]) == (6, "layers.hidden1.type")
    assert diag["hint"].startswith(hint)
    assert "--plugin" not in diag["hint"]


def test_plugin_layers_still_ask_for_their_plugin(write_spec: Any) -> None:
    spec = write_spec(MLP.replace("type: Dense, units: 4", "type: my_layers.Dense, units: 4"))
    (diag,) = diagnostics(["validate", "--no-build", spec])
    assert "--plugin path/to/my_layers.py" in diag["hint"]


# -- item 3: `kgraph train` on a spec without `train:` -----------------------------


def test_no_train_section_points_at_the_spec_not_at_the_epochs_override(
    write_spec: Any,
) -> None:
    spec = write_spec(MLP)
    for overrides in ([], ["train.fit.epochs=3"], ["train.fit.epochs=3", "train.fit.batch_size=8"]):
        (diag,) = data_problems(spec, overrides)
        assert diag.location is not None and diag.location.file == str(spec)
        assert "no `train:` section" in diag.message
        assert "`train: {data: {source: {dataset: mnist}}}`" in diag.hint
        assert "--epochs and --batch-size only override" in diag.hint


def test_train_section_without_data_points_at_the_section(write_spec: Any) -> None:
    spec = write_spec(MLP + "train:\n  fit: {epochs: 2}\n")
    (diag,) = data_problems(spec, ["train.fit.epochs=3"])
    assert diag.location is not None
    assert (diag.location.file, diag.location.line) == (str(spec), 10)
    assert diag.message == "the spec's `train:` section has no `data:`"
    assert "under `train:`" in diag.hint


@pytest.mark.tf
def test_train_epochs_without_train_section_through_the_cli(write_spec: Any, tmp_path: Path):
    spec = write_spec(MLP)
    result = invoke(["train", spec, "--epochs", "3", "--out", tmp_path / "run"], 1)
    assert f"{spec}: error[missing]: train: the spec has no `train:` section" in result.stderr
    assert OVERRIDE_FILE not in result.stderr
    assert "train.fit.epochs=3" not in result.stderr
    assert not (tmp_path / "run").exists()


# -- item 4: --set on a node that does not exist -----------------------------------


def test_set_on_a_mistyped_node_says_which_node_was_meant() -> None:
    data = parse_yaml(MLP, "f.yaml")
    with pytest.raises(SpecError) as info:
        apply_overrides(data, ["name=x", "layers.hiddn1.units=5"])
    (diag,) = info.value.diagnostics
    assert diag.message == "no node 'hiddn1' to set `units` on"
    assert diag.hint == "did you mean 'hidden1'?"
    assert diag.location is not None
    loc = diag.location
    assert (loc.file, loc.line, loc.col, loc.length) == (OVERRIDE_FILE, 2, 8, 6)
    assert "hiddn1" not in data["layers"]


@pytest.mark.parametrize(
    ("override", "message", "hint"),
    [
        ("inputs.pixel.shape=[4]", "no input 'pixel' to set `shape` on", "did you mean 'pixels'?"),
        ("models.enc.name=x", "no model 'enc' to set `name` on", "set whole: --set 'models.enc="),
        ("blocks.res.params.f=3", "no block 'res' to set `params.f` on", "set whole"),
        ("layers.new.type=Dense", "no node 'new' to set `type` on", "--set 'layers.new={...}'"),
    ],
)
def test_partial_new_entries_of_named_sections_are_refused(
    override: str, message: str, hint: str
) -> None:
    data = parse_yaml(MLP, "f.yaml")
    with pytest.raises(SpecError) as info:
        apply_overrides(data, [override])
    (diag,) = info.value.diagnostics
    assert diag.message == message
    assert hint in diag.hint


def test_inside_a_model_of_models_too() -> None:
    text = "kgraph: 1\nmodels:\n  enc:\n    inputs: {img: [4]}\n    layers:\n" \
        "      code: {type: Dense, units: 2, from: img}\n    outputs: [code]\n"  # fmt: skip
    data = parse_yaml(text, "f.yaml")
    with pytest.raises(SpecError) as info:
        apply_overrides(data, ["models.enc.layers.cod.units=3"])
    (diag,) = info.value.diagnostics
    assert diag.message == "no node 'cod' to set `units` on"
    assert diag.hint == "did you mean 'code'?"
    assert diag.location is not None and diag.location.col == len("models.enc.layers.") + 1


def test_whole_new_entries_and_other_sections_are_still_created() -> None:
    data = parse_yaml(MLP, "f.yaml")
    apply_overrides(
        data,
        ["layers.extra={type: Dense, units: 3, from: hidden1}", "train.fit.epochs=5",
         "layers.hidden1.kernel_regularizer.type=L2"],
    )  # fmt: skip
    assert data["layers"]["extra"] == {"type": "Dense", "units": 3, "from": "hidden1"}
    assert data["train"] == {"fit": {"epochs": 5}}
    assert data["layers"]["hidden1"]["kernel_regularizer"] == {"type": "L2"}


def test_mistyped_node_through_the_cli(write_spec: Any) -> None:
    spec = write_spec(MLP)
    result = invoke(["validate", "--no-build", spec, "--set", "layers.hiddn1.units=5"], 1)
    assert "--set:1:8: error[override]: layers.hiddn1: no node 'hiddn1'" in result.stderr
    assert "did you mean 'hidden1'?" in result.stderr
    assert "says neither" not in result.stderr


# -- item 5: a missing field set with --set ----------------------------------------

FIELDS_TRAIN = """\
train:
  data:
    source: {npz: data.npz}
    inputs:
      pixels: {field: x, transforms: [{divide: 2}]}
    targets: {logits: y}
    test: 0.25
  fit: {validation: 0.25}
"""
FIELDS_SPEC = MLP + FIELDS_TRAIN


def write_npz(folder: Path, n: int = 40) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((n, 8)).astype("float32"), rng.integers(0, 3, n)
    np.savez(folder / "data.npz", x=x, y=y)


def test_missing_field_from_set_points_at_the_set_argument_once(write_spec: Any) -> None:
    spec = write_spec(FIELDS_SPEC)
    write_npz(spec.parent)
    (diag,) = data_problems(spec, ["train.data.inputs.pixels.field=X"])
    assert diag.message == "the source has no field 'X' (in its train split)"
    assert diag.hint == "did you mean 'x'?"
    assert diag.location is not None
    column = len("train.data.inputs.pixels.field=") + 1
    assert (diag.location.file, diag.location.line, diag.location.col) == (OVERRIDE_FILE, 1, column)


def test_missing_field_in_the_spec_points_at_the_field(write_spec: Any) -> None:
    spec = write_spec(FIELDS_SPEC.replace("{field: x,", "{field: z,"))
    write_npz(spec.parent)
    (diag,) = data_problems(spec, [])
    assert diag.location is not None
    line = spec.read_text().splitlines()[diag.location.line - 1]
    assert line[diag.location.col - 1 :].startswith("z,")


@pytest.mark.tf
def test_missing_field_from_set_through_the_cli(tmp_path: Path) -> None:
    """specs/digits.yaml has train, validation and test splits: one error."""
    args = ["train", SPECS / "digits.yaml", "--out", tmp_path / "run", "--json"]
    found = diagnostics([*args, "--set", "train.data.inputs.pixels.field=X"])
    assert [(d["file"], d["line"], d["col"]) for d in found] == [(OVERRIDE_FILE, 1, 32)]
    assert found[0]["message"] == "the source has no field 'X' (in its train split)"
    assert found[0]["hint"] == "did you mean 'x'?"


# -- item 6: long lists of names in hints ------------------------------------------


def test_listed_caps_long_lists() -> None:
    assert listed(["a", "b"]) == "a, b"
    assert listed([f"c{i}" for i in range(10)]) == ", ".join(f"c{i}" for i in range(10))
    names = [f"pixel{i}" for i in range(784)] + ["label"]
    assert listed(names) == ", ".join(names[:10]) + " and 775 more"
    assert listed(names, limit=3) == "pixel0, pixel1, pixel2 and 782 more"
    assert listed(f"n{i}" for i in range(1500)).endswith("and 1,490 more")


def test_did_you_mean_without_a_match_lists_few_names() -> None:
    hint = did_you_mean("zzz", [f"name{i}" for i in range(50)])
    assert hint.startswith("expected one of: name0, name1")
    assert hint.endswith("and 40 more")


def test_a_field_missing_from_a_wide_csv_lists_ten_columns(write_spec: Any) -> None:
    spec = write_spec(
        MLP + "train:\n  data:\n    source: {csv: wide.csv}\n"
        "    inputs: {pixels: {columns: [pixel0, pixel1, pixel2, pixel3, pixel4, pixel5, pixel6, "
        "hue]}}\n    targets: {logits: label}\n"
    )
    header = ["label"] + [f"pixel{i}" for i in range(784)]
    rows = [",".join(header)] + [",".join(["1"] + ["0"] * 784)] * 4
    (spec.parent / "wide.csv").write_text("\n".join(rows) + "\n")
    (diag,) = data_problems(spec, [])
    assert diag.message == "the source has no field 'hue' (in its train split)"
    assert diag.hint == f"fields: {', '.join(header[:10])} and 775 more"
    assert diag.location is not None
    line = spec.read_text().splitlines()[diag.location.line - 1]
    assert line[diag.location.col - 1 :].startswith("hue]")  # the column, not the feed


# -- item 7: export-only model files -----------------------------------------------


@pytest.mark.parametrize(("suffix", "runtime"), [(".tflite", "tf.lite"), (".onnx", "onnxruntime")])
@pytest.mark.parametrize("command", ["load", "summary", "evaluate"])
def test_export_only_formats_are_refused_by_kind(
    tmp_path: Path, suffix: str, runtime: str, command: str
) -> None:
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x00not a model at all\xff")  # refused before it is read
    result = invoke([command, path], 1)
    assert f"cannot load '{path}'" in result.stderr
    assert "kgraph writes" in result.stderr and "cannot load back" in result.stderr
    assert f"kgraph save -o model{suffix}" in result.stderr
    assert ".keras" in result.stderr and runtime in result.stderr
    assert "is it a complete" not in result.stderr


def test_a_suggester_scans_its_pool_for_a_bounded_number_of_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kgraph_cli.suggest as suggest

    scans: list[str] = []
    original = suggest.closest

    def counted(word: str, *args: Any, **options: Any) -> list[str]:
        scans.append(word)
        return original(word, *args, **options)

    monkeypatch.setattr(suggest, "closest", counted)
    hint = suggest.Suggester([f"node{i}" for i in range(2000)], "defined names: ...", limit=3)
    assert hint("nod7") == "did you mean 'node7'?"
    assert hint("nod7") == "did you mean 'node7'?"
    assert [hint(w) for w in ("zzz", "qqq", "node77x", "node8x")] == ["defined names: ..."] * 4
    assert scans == ["nod7", "zzz", "qqq"]


def test_thousands_of_unknown_refs_get_short_hints(write_spec: Any) -> None:
    nodes = "".join(f"  n{i}: {{type: Dense, units: 2, from: gone{i}}}\n" for i in range(2000))
    spec = write_spec(f"kgraph: 1\ninputs:\n  x: {{shape: [4]}}\nlayers:\n{nodes}outputs: [n0]\n")
    result = CliRunner().invoke(app, ["validate", "--no-build", "--json", str(spec)])
    assert result.exit_code == 1
    diagnostics = json.loads(result.stdout)
    refs = [d for d in diagnostics if d["code"] == "undefined-ref"]
    assert len(refs) == 2000
    assert refs[0]["hint"] == "defined names: x, n0, n1, n2, n3, n4, n5, n6, n7, n8 and 1,991 more"
    assert max(len(d["hint"]) for d in refs) < 100
