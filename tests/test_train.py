"""`kgraph train`, `evaluate` and `predict` in-process: the example specs train,
the run directory, determinism, --resume after Ctrl-C, and data problems as
located diagnostics before any training.

Models and data are tiny (the machine has two cores); the real-MNIST test is
skipped when /work/shared/data is absent.
"""

from __future__ import annotations

import csv
import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import SHARED_DATA, SPECS, interrupt_training, invoke

pytestmark = pytest.mark.tf

RUN_FILES = ("model.keras", "spec.yaml", "history.json", "history.csv", "metrics.json")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DIGITS_TEST = 359  # round(0.2 * 1,797): the test fraction of specs/digits.yaml
DIGITS_TRAIN = 1_294  # what is left after the test and validation fractions

# A small classifier on generated data: seconds per run, with dropout and a
# validation split so that determinism covers shuffling, dropout and weights.
TINY = """\
kgraph: 1
name: tiny
inputs:
  x: {shape: [8]}
layers:
  hidden: {type: Dense, units: 16, activation: relu, from: x}
  dropout: {type: Dropout, rate: 0.2, from: hidden}
  logits: {type: Dense, units: 3, from: dropout}
outputs: [logits]
train:
  data:
    source: {generated: 96}
  compile:
    optimizer: adam
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
    metrics: [accuracy]
  fit: {batch_size: 16, epochs: 2, validation: 0.25, seed: 3}
"""

# 28x28 images in an npz, for a 784 input (the data errors below).
NPZ_SPEC = """\
kgraph: 1
name: clf
inputs:
  pixels: {shape: [784]}
layers:
  logits: {type: Dense, units: 10, from: pixels}
outputs: [logits]
train:
  data:
    source: {npz: data.npz}
    inputs:
      pixels: {field: FIELD, transforms: [TRANSFORMS]}
    targets:
      logits: labels
  compile:
    optimizer: OPTIMIZER
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
    metrics: [accuracy]
"""

TWO_OUTPUTS = """\
kgraph: 1
name: two
inputs:
  x: {shape: [8]}
layers:
  score: {type: Dense, units: 1, from: x}
  kind: {type: Dense, units: 3, from: x}
outputs: [score, kind]
train:
  data:
    source: {generated: 32}
  compile:
    loss: LOSS
"""


# -- helpers -------------------------------------------------------------------


def train_json(spec: Path, out: Path, *extra: Any) -> dict[str, Any]:
    result = invoke(["train", spec, "--out", out, "--json", *extra])
    return json.loads(result.stdout)


def history(run_dir: Path) -> dict[str, list[float]]:
    return json.loads((run_dir / "history.json").read_text())


def epochs_of(run_dir: Path) -> int:
    return len(history(run_dir)["loss"])


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 200 <= width <= 5000 and 150 <= height <= 5000, (width, height)
    assert 5_000 < len(data) < 2_000_000, len(data)
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"  # complete, not truncated


def write_npz(directory: Path, **arrays: np.ndarray) -> None:
    np.savez(directory / "data.npz", **arrays)


def npz_spec(
    tmp_path: Path,
    field: str = "images",
    transforms: str = "{reshape: [784]}, {divide: 255}",
    optimizer: str = "rmsprop",
) -> Path:
    text = (
        NPZ_SPEC.replace("FIELD", field)
        .replace("TRANSFORMS", transforms)
        .replace("OPTIMIZER", optimizer)
    )
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def images(n: int = 40, classes: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "images": rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
        "labels": rng.integers(0, classes, n).astype(np.int64),
    }


def assert_located_error(
    result: Any, spec: Path, code: str, *fragments: str, line: int | None = None
) -> None:
    """A `FILE:LINE:COL: error[CODE]` diagnostic with every fragment in stderr."""
    err = result.stderr
    head = f"{spec}:{line}:" if line else f"{spec}:"
    assert f"error[{code}]" in err, err
    assert any(row.startswith(head) and f"error[{code}]" in row for row in err.splitlines()), (
        f"no located {code} error at {head} in:\n{err}"
    )
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in:\n{err}"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGRAPH_OFFLINE", "1")
    monkeypatch.delenv("KGRAPH_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """specs/digits.yaml trained once (shipped data): for evaluate and predict."""
    out = tmp_path_factory.mktemp("digits") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGRAPH_OFFLINE", "1")
        result = train_json(SPECS / "digits.yaml", out)
    return out, result


@pytest.fixture(scope="module")
def ticket_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """specs/ticket_router.yaml (two inputs of variable length, two outputs), one epoch."""
    out = tmp_path_factory.mktemp("ticket") / "run"
    result = train_json(SPECS / "ticket_router.yaml", out)
    return out, result


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


# -- the example specs train ------------------------------------------------------


def test_mnist_trains_offline_on_the_shared_data(tmp_path: Path) -> None:
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"real MNIST not available: no {SHARED_DATA / 'mnist'}")
    out = tmp_path / "mnist"
    result = train_json(SPECS / "mnist.yaml", out, "--data-dir", SHARED_DATA)
    assert result["model"] == "mnist_model"
    assert result["epochs"] == 2
    assert result["metrics"]["test"]["accuracy"] >= 0.95, result["metrics"]
    assert "mnist" in result["data"]
    for name in RUN_FILES:
        assert (out / name).is_file(), name
        assert result["files"][name] == str(out / name)
    check_png(out / "curves.png")
    assert not (out / "backup").exists()

    hist = history(out)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(hist[key]) == 2, (key, hist)
        assert all(math.isfinite(v) for v in hist[key])
    assert hist["loss"][1] < hist["loss"][0]
    assert hist == result["history"]
    rows = list(csv.reader((out / "history.csv").open()))
    assert rows[0][0] == "epoch" and set(hist) <= set(rows[0])
    assert [r[0] for r in rows[1:]] == ["1", "2"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"train", "validation", "test"}
    assert metrics == result["metrics"]
    spec = (out / "spec.yaml").read_text()
    assert "mnist_model" in spec and "SparseCategoricalCrossentropy" in spec

    # evaluate the run directory: the test metrics of the run, within 1e-6
    # (run.json remembers --data-dir: it need not be given again)
    assert json.loads((out / "run.json").read_text())["data_dir"] == str(SHARED_DATA.resolve())
    evaluated = json.loads(invoke(["evaluate", out, "--json"]).stdout)
    assert evaluated["samples"] == 10_000
    assert abs(evaluated["metrics"]["accuracy"] - metrics["test"]["accuracy"]) <= 1e-6


def test_digits_reaches_095_test_accuracy(digits_run: tuple[Path, dict[str, Any]]) -> None:
    out, result = digits_run
    assert result["metrics"]["test"]["accuracy"] >= 0.95, result["metrics"]
    assert {"train", "validation", "test"} == set(result["metrics"])
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    check_png(out / "curves.png")


@pytest.mark.parametrize(
    ("spec", "losses"),
    [
        ("main_aux", ("main_output_loss", "aux_output_loss")),
        ("toy_resnet", ("val_loss", "acc")),
    ],
)
def test_example_specs_train_one_epoch_on_generated_data(
    spec: str, losses: tuple[str, ...], tmp_path: Path
) -> None:
    result = train_json(SPECS / f"{spec}.yaml", tmp_path / spec)
    hist = result["history"]
    assert result["epochs"] == 1
    assert "generated" in result["data"]
    for key in ("loss", *losses):
        assert len(hist[key]) == 1, (key, hist)
        assert math.isfinite(hist[key][0]), (key, hist)
    assert (tmp_path / spec / "model.keras").is_file()


def test_ticket_router_trains_with_a_loss_per_output(
    ticket_run: tuple[Path, dict[str, Any]],
) -> None:
    out, result = ticket_run
    hist = result["history"]
    assert result["epochs"] == 1
    for key in ("loss", "priority_loss", "department_loss"):
        assert len(hist[key]) == 1 and math.isfinite(hist[key][0]), hist
    # loss = priority_loss + 0.2 * department_loss (the weights of the spec)
    expected = hist["priority_loss"][0] + 0.2 * hist["department_loss"][0]
    assert hist["loss"][0] == pytest.approx(expected, rel=0.05)
    assert set(result["metrics"]["test"]) >= {"priority_loss", "department_loss"}


# -- runs: determinism, flags, resume, overwriting ------------------------------


def test_same_seed_same_history(tiny: Path, tmp_path: Path) -> None:
    first = train_json(tiny, tmp_path / "a")["history"]
    second = train_json(tiny, tmp_path / "b")["history"]
    assert len(first["loss"]) == 2
    assert first == second
    other = train_json(tiny, tmp_path / "c", "--set", "train.fit.seed=4")["history"]
    assert other["loss"] != first["loss"]


def test_epochs_batch_size_and_set_change_the_run(tiny: Path, tmp_path: Path) -> None:
    base = train_json(tiny, tmp_path / "base")
    assert base["epochs"] == 2
    assert train_json(tiny, tmp_path / "e1", "--epochs", "1")["epochs"] == 1
    smaller = train_json(tiny, tmp_path / "b8", "--batch-size", "8")
    # Same seed, same data: only the batch size differs, hence the losses.
    assert smaller["epochs"] == 2
    assert smaller["history"]["loss"] != base["history"]["loss"]
    result = train_json(tiny, tmp_path / "set3", "--set", "train.fit.epochs=3")
    assert result["epochs"] == 3 and epochs_of(tmp_path / "set3") == 3
    # the run's spec.yaml is the spec as trained, with the override applied
    import yaml

    assert (
        yaml.safe_load((tmp_path / "set3" / "spec.yaml").read_text())["train"]["fit"]["epochs"] == 3
    )


def test_resume_after_ctrl_c(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fired = interrupt_training(monkeypatch, after_epoch=1)  # Ctrl-C after the 2nd epoch
    out = tmp_path / "run"
    args = ["train", tiny, "--out", out, "--epochs", "4"]
    stopped = invoke(args, exit_code=130)
    assert fired == [1]
    assert "interrupted" in stopped.output
    # the hint is the command to type, not a template
    assert f"continue with: kgraph train {tiny} --epochs 4 --out {out} --resume" in stopped.stderr
    assert (out / "backup").is_dir()
    assert not (out / "model.keras").exists()
    kept = history(out)
    assert len(kept["loss"]) == 2

    # Resuming with other options (here without --epochs 4) is refused.
    changed = invoke(["train", tiny, "--out", out, "--resume"], exit_code=2)
    assert "differs from the one the run" in changed.stderr
    assert "train.fit.epochs changed" in changed.stderr
    assert len(history(out)["loss"]) == 2

    invoke([*args, "--resume"])
    resumed = history(out)
    assert len(resumed["loss"]) == 4, resumed  # 4 epochs in all, not 2 + 4
    for key, values in kept.items():
        assert resumed[key][:2] == values, key
    assert not (out / "backup").exists()
    assert (out / "model.keras").is_file()
    rows = list(csv.reader((out / "history.csv").open()))
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4"]


def test_resume_without_an_interrupted_run_is_a_usage_error(tiny: Path, tmp_path: Path) -> None:
    result = invoke(["train", tiny, "--out", tmp_path / "nothing", "--resume"], exit_code=2)
    assert "no interrupted run" in result.stderr


def test_existing_out_needs_force(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    result = invoke(["train", tiny, "--out", out], exit_code=2)
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "precious"

    # --force replaces runs only, never a folder of the user's (tests/test_outputs.py)
    result = invoke(["train", tiny, "--out", out, "--force", "-q"], exit_code=2)
    assert "keep.txt" in result.stderr
    assert (out / "keep.txt").read_text() == "precious"


# -- evaluate ------------------------------------------------------------------------


def test_evaluate_run_dir_matches_the_training_metrics(
    digits_run: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = digits_run
    metrics = json.loads((out / "metrics.json").read_text())
    result = json.loads(invoke(["evaluate", out, "--json"]).stdout)
    assert result["model"] == "digits_mlp"
    assert result["data"].startswith("test split")
    assert result["samples"] == DIGITS_TEST
    assert abs(result["metrics"]["accuracy"] - metrics["test"]["accuracy"]) <= 1e-6
    assert result["metrics"]["loss"] == pytest.approx(metrics["test"]["loss"], abs=1e-5)

    on_train = json.loads(invoke(["evaluate", out, "--data", "train", "--json"]).stdout)
    assert on_train["data"].startswith("train split")
    assert on_train["samples"] > result["samples"]
    assert on_train["metrics"]["accuracy"] >= 0.95
    # the run's final "train" figures are measured like this, not running averages
    assert on_train["samples"] == DIGITS_TRAIN
    assert on_train["metrics"]["accuracy"] == pytest.approx(metrics["train"]["accuracy"], abs=1e-6)
    assert on_train["metrics"]["loss"] == pytest.approx(metrics["train"]["loss"], abs=1e-5)


def test_evaluate_an_untrained_spec_says_so() -> None:
    result = invoke(["evaluate", SPECS / "digits.yaml"])
    assert "untrained" in result.stderr
    assert "accuracy" in result.stdout and "loss" in result.stdout
    data = json.loads(invoke(["evaluate", SPECS / "digits.yaml", "--json"]).stdout)
    assert data["metrics"]["accuracy"] < 0.5  # random weights on 10 classes


def test_evaluate_multi_output_gives_per_output_metrics(
    ticket_run: tuple[Path, dict[str, Any]],
) -> None:
    out, train_result = ticket_run
    result = json.loads(invoke(["evaluate", out, "--json"]).stdout)
    assert {"loss", "priority_loss", "department_loss"} <= set(result["metrics"])
    for key in ("priority_loss", "department_loss"):
        assert result["metrics"][key] == pytest.approx(
            train_result["metrics"]["test"][key], abs=1e-5
        )


# -- predict -------------------------------------------------------------------------


def test_predict_writes_npy_npz_and_csv(
    digits_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = digits_run
    npy = tmp_path / "out.npy"
    result = json.loads(invoke(["predict", out, "-o", npy, "--json"]).stdout)
    n = result["samples"]
    assert n == DIGITS_TEST
    assert result["outputs"] == {"logits": [n, 10]}
    assert np.load(npy).shape == (n, 10)

    npz = tmp_path / "out.npz"
    invoke(["predict", out, "-o", npz, "-q"])
    with np.load(npz) as arrays:
        assert list(arrays) == ["logits"]
        assert arrays["logits"].shape == (n, 10)
        np.testing.assert_allclose(arrays["logits"], np.load(npy), rtol=1e-6)

    table = tmp_path / "out.csv"
    invoke(["predict", out, "-o", table, "-q"])
    rows = list(csv.reader(table.open()))
    assert rows[0] == [f"logits_{i}" for i in range(10)]
    assert len(rows) == n + 1
    assert all(len(r) == 10 for r in rows[1:])
    np.testing.assert_allclose(np.array(rows[1:], dtype=float), np.load(npy), rtol=1e-5)


def test_predict_refuses_to_overwrite_without_force(
    digits_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = digits_run
    target = tmp_path / "out.npy"
    target.write_bytes(b"keep")
    result = invoke(["predict", out, "-o", target], exit_code=2)
    assert "--force" in result.stderr
    assert target.read_bytes() == b"keep"
    invoke(["predict", out, "-o", target, "--force", "-q"])
    assert np.load(target).shape == (DIGITS_TEST, 10)


def test_predict_two_outputs_to_npy_is_refused(
    ticket_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = ticket_run
    result = invoke(["predict", out, "-o", tmp_path / "p.npy"], exit_code=2)
    assert ".npz" in result.stderr
    assert not (tmp_path / "p.npy").exists()
    npz = tmp_path / "p.npz"
    invoke(["predict", out, "-o", npz, "-q"])
    with np.load(npz) as arrays:
        assert sorted(arrays) == ["department", "priority"]
        assert arrays["priority"].shape[1:] == (1,)
        assert arrays["department"].shape[1:] == (4,)


# -- data problems: located, exit 1, before training --------------------------------


def test_missing_npz_field_says_did_you_mean(tmp_path: Path) -> None:
    write_npz(tmp_path, **images())
    spec = npz_spec(tmp_path, field="image")
    result = invoke(["train", spec, "--out", tmp_path / "run"], exit_code=1)
    assert_located_error(
        result, spec, "data", "no field 'image'", "did you mean 'images'?", line=12
    )
    assert not (tmp_path / "run").exists()  # nothing trained, no run directory


def test_shape_mismatch_hints_reshape(tmp_path: Path) -> None:
    write_npz(tmp_path, **images())
    spec = npz_spec(tmp_path, transforms="{divide: 255}")
    result = invoke(["train", spec, "--out", tmp_path / "run"], exit_code=1)
    assert_located_error(
        result, spec, "data", "expects (None, 784)", "(None, 28, 28)", "reshape: [784]", line=12
    )
    assert "epoch" not in result.stdout
    assert not (tmp_path / "run").exists()


def test_labels_out_of_range_for_a_sparse_loss(tmp_path: Path) -> None:
    write_npz(tmp_path, **images(classes=12))
    spec = npz_spec(tmp_path)
    result = invoke(["train", spec, "--out", tmp_path / "run"], exit_code=1)
    assert_located_error(result, spec, "label-range", "10 classes", "0..9", line=14)
    assert not (tmp_path / "run").exists()


def test_the_npz_spec_trains_when_the_data_is_right(tmp_path: Path) -> None:
    # the control for the three tests above: the same spec and file, no problem
    write_npz(tmp_path, **images(n=32))
    result = train_json(npz_spec(tmp_path), tmp_path / "run")
    assert result["epochs"] == 1


def test_nan_in_a_csv_column(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b,label\n1,2,0\n3,,1\n5,6,0\n7,8,1\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "kgraph: 1\nname: tab\ninputs:\n  features: {shape: [2]}\nlayers:\n"
        "  logits: {type: Dense, units: 2, from: features}\noutputs: [logits]\n"
        "train:\n  data:\n    source: {csv: data.csv}\n"
        "    inputs:\n      features: {columns: [a, b]}\n"
        "    targets:\n      logits: label\n"
        "  compile:\n    loss: {type: SparseCategoricalCrossentropy, from_logits: true}\n"
    )
    result = invoke(["train", spec, "--out", tmp_path / "run"], exit_code=1)
    assert_located_error(result, spec, "data", "NaN", "column 'b'", line=12)
    assert not (tmp_path / "run").exists()


NPZ_TEXT = (
    NPZ_SPEC.replace("FIELD", "images")
    .replace("TRANSFORMS", "{divide: 255}")
    .replace("OPTIMIZER", "rmsprop")
)
SPEC_PROBLEMS = [
    # (id, spec file text, code, fragments of the message and hint)
    (
        "optimizer",
        NPZ_TEXT.replace("optimizer: rmsprop", "optimizer: rmsprob"),
        "unknown-optimizer",
        ("unknown optimizer 'rmsprob'", "did you mean 'rmsprop'?"),
    ),
    (
        "loss",
        NPZ_TEXT.replace(
            "{type: SparseCategoricalCrossentropy, from_logits: true}",
            "sparse_categorical_crossentropi",
        ),
        "unknown-loss",
        (
            "unknown loss 'sparse_categorical_crossentropi'",
            "did you mean 'sparse_categorical_crossentropy'?",
        ),
    ),
    (
        "metric",
        NPZ_TEXT.replace("metrics: [accuracy]", "metrics: [acuracy]"),
        "unknown-metric",
        ("unknown metric 'acuracy'", "did you mean 'accuracy'?"),
    ),
    (
        "callback",
        NPZ_TEXT + "  callbacks:\n    - {type: EarlyStoping, patience: 2}\n",
        "unknown-callback",
        ("unknown callback 'EarlyStoping'", "did you mean 'EarlyStopping'?"),
    ),
    (
        "loss-output",
        TWO_OUTPUTS.replace("LOSS", "{score: mse, kinds: categorical_crossentropy}"),
        "outputs",
        ("names output 'kinds'", "did you mean 'kind'?"),
    ),
    (
        "loss-list",
        TWO_OUTPUTS.replace("LOSS", "[mse, mse, mse]"),
        "outputs",
        ("loss has 3 entries", "2 output(s) (score, kind)", "one per output"),
    ),
    (
        "transform",
        NPZ_TEXT.replace("{divide: 255}", "{normalize: true}"),
        "unknown-transform",
        ("unknown transform 'normalize'", "standardize"),
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "fragments"),
    [pytest.param(t, c, f, id=i) for i, t, c, f in SPEC_PROBLEMS],
)
def test_train_section_problems_are_located_before_any_data(
    text: str, code: str, fragments: tuple[str, ...], tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    # no data.npz is written: the train section is checked before any data is read
    result = invoke(["train", spec, "--out", tmp_path / "run"], exit_code=1)
    assert_located_error(result, spec, code, *fragments)
    assert "no such file" not in result.stderr.lower()
    assert not (tmp_path / "run").exists()
    # and `kgraph validate` (without building, without data) reports the same
    checked = invoke(["validate", "--no-build", spec], exit_code=1)
    assert_located_error(checked, spec, code, *fragments)
    diagnostics = json.loads(invoke(["validate", "--json", spec], exit_code=1).stdout)
    assert [d["code"] for d in diagnostics if d["severity"] == "error"] == [code]
    assert all(d["line"] and d["path"].startswith("train.") for d in diagnostics)


def test_one_loss_in_a_list_for_a_single_output(tmp_path: Path) -> None:
    # Keras takes loss=[...] with one entry for a one-output model; so does kgraph.
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY.replace("loss: {type", "loss: [{type").replace("true}", "true}]"))
    assert train_json(spec, tmp_path / "run", "--epochs", "1")["epochs"] == 1
