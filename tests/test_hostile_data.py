"""Hostile data files and data options (issue 12, causes 6-8): each is a located
diagnostic with a hint and exit 1 before TensorFlow sees the data, never a
traceback, a numpy warning, an unpickled object or an allocation that the file
cannot back.

6. `columns:` that is empty, lists a column twice or names a non-string:
   `kgraph validate` (structural, no data); columns of different shapes: train.
7. Sources and splits without samples (npz, npy, CSV, images, TFRecord, a split
   of a file, fractions that leave one side empty, `predict --data`).
8. Dtypes no feed takes (records, Python objects, complex, datetime64,
   timedelta64, raw bytes, text for numbers, bytes that are not UTF-8, values
   beyond the model's dtype), pickles, corrupt files, and headers or archives
   that claim more data than the file holds or the data limit allows.

Models are one Dense layer on a few samples; data errors stop `train` before
any epoch.
"""

from __future__ import annotations

import ast
import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import REPO, invoke

pytestmark = pytest.mark.tf

# Two float features -> two classes; SOURCE and DATA are replaced per test.
SPEC = """\
kgraph: 1
name: tab
inputs:
  x: {shape: [2]}
layers:
  logits: {type: Dense, units: 2, from: x}
outputs: [logits]
train:
  data:
    source: SOURCE
DATA
  compile:
    optimizer: sgd
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  fit: {batch_size: 4, epochs: 1, seed: 1FIT}
"""
SOURCE_LINE = 10  # `    source: ...`
FEED_LINE = 11  # the first DATA line
FIT_LINE = 15  # `  fit: ...` (with one DATA line)

# A text input: StringLookup over a fixed vocabulary.
TEXT_SPEC = """\
kgraph: 1
name: words
inputs:
  x: {shape: [1], dtype: string}
layers:
  ids: {type: StringLookup, vocabulary: [a, b, c], from: x}
  emb: {type: Embedding, input_dim: 5, output_dim: 2, from: ids}
  flat: {type: Flatten, from: emb}
  logits: {type: Dense, units: 2, from: flat}
outputs: [logits]
train:
  data:
    source: {npz: data.npz}
    inputs: {x: {field: x, transforms: [{reshape: [1]}]}}
  compile:
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
"""
TEXT_FIELD = (14, 25)  # where `x` of `field: x` is


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGRAPH_OFFLINE", "1")
    monkeypatch.delenv("KGRAPH_DATA_DIR", raising=False)
    monkeypatch.delenv("KGRAPH_MAX_DATA_GB", raising=False)


def write_spec(tmp_path: Path, source: str, data: str = "", fit: str = "") -> Path:
    spec = tmp_path / "spec.yaml"
    text = SPEC.replace("SOURCE", source).replace("FIT", fit)
    spec.write_text(text.replace("DATA\n", data + "\n" if data else ""))
    return spec


def labels(n: int) -> np.ndarray:
    return (np.arange(n) % 2).astype(np.int64)


def run(args: list[Any], exit_code: int = 1) -> Any:
    """`kgraph ARGS` in-process with every warning recorded: a data problem
    must not show as a numpy warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke(args, exit_code=exit_code)
    numpy_warnings = [w for w in caught if "numpy" in w.filename or "kgraph" in w.filename]
    assert not numpy_warnings, [str(w.message) for w in numpy_warnings]
    assert "Warning" not in result.output
    return result


def error(args: list[Any]) -> dict[str, Any]:
    """The one error diagnostic of a command that exits 1 (--json)."""
    result = run([*args, "--json"])
    found = [d for d in json.loads(result.stdout) if d["severity"] == "error"]
    assert len(found) == 1, found
    return found[0]


def train_error(spec: Path) -> dict[str, Any]:
    out = spec.parent / "run"
    diagnostic = error(["train", spec, "--out", out])
    assert not out.exists()  # nothing trained, no run directory
    return diagnostic


def at(diagnostic: dict[str, Any]) -> tuple[int, int]:
    return diagnostic["line"], diagnostic["col"]


def column_of(spec: Path, line: int, text: str) -> int:
    """The 1-based column of `text` on `line` of the spec file."""
    return spec.read_text().splitlines()[line - 1].index(text) + 1


def npy_member(shape: tuple[int, ...], descr: str = "<f8", data: bytes = b"") -> bytes:
    """An .npy file's bytes: a header claiming `shape`, then `data`."""
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


# -- 6. columns: --------------------------------------------------------------------

COLUMNS_PROBLEMS = [
    # (columns as written, code, message, hint fragment, the text the error points at)
    (
        "[]",
        "type",
        "columns must be a list of one or more column names, got an empty list",
        "{field: a} feeds one",
        "[]",
    ),
    (
        "[a, b, a]",
        "duplicate-name",
        "column 'a' is listed twice in columns (columns[0] and columns[2])",
        "list it once",
        "a]",
    ),
    ("[a, 1]", "type", "columns[1] must be a column name, got int 1", "quote names", "1]"),
    ("[a, null]", "type", "columns[1] must be a column name, got null", "'null'", "null"),
    ("a", "type", "got string 'a'", "{columns: [a, b, c]}", "a}"),
]


@pytest.mark.parametrize(
    ("columns", "code", "message", "hint", "points_at"),
    COLUMNS_PROBLEMS,
    ids=["empty", "duplicate", "number", "null", "not-a-list"],
)
def test_bad_columns_are_located_by_validate(
    tmp_path: Path, columns: str, code: str, message: str, hint: str, points_at: str
) -> None:
    # no data file exists: the check is structural
    spec = write_spec(tmp_path, "{csv: table.csv}", f"    inputs: {{x: {{columns: {columns}}}}}")
    for command in (["validate", "--no-build", spec], ["validate", spec]):
        diagnostic = error(command)
        assert diagnostic["code"] == code
        assert message in diagnostic["message"]
        assert hint in diagnostic["hint"]
        assert diagnostic["path"].startswith("train.data.inputs.x.columns")
        assert at(diagnostic) == (FEED_LINE, column_of(spec, FEED_LINE, points_at))
    # train reports the same before it reads anything
    assert train_error(spec)["message"] == diagnostic["message"]


def test_empty_columns_from_set_point_at_the_argument(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "{csv: table.csv}", "    inputs: {x: {columns: [a, b]}}")
    diagnostic = error(["validate", "--no-build", spec, "--set", "train.data.inputs.x.columns=[]"])
    assert diagnostic["file"] == "--set" and diagnostic["code"] == "type"
    assert "got an empty list" in diagnostic["message"]


def test_field_that_is_not_a_name(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "{csv: table.csv}", "    inputs: {x: {field: 12}}")
    diagnostic = error(["validate", "--no-build", spec])
    assert diagnostic["message"] == "field must be a name, got int 12"
    assert "quote names" in diagnostic["hint"]
    assert at(diagnostic) == (FEED_LINE, column_of(spec, FEED_LINE, "12"))


def test_one_column_is_valid_and_trains(tmp_path: Path) -> None:
    (tmp_path / "table.csv").write_text("a,label\n1,0\n2,1\n3,0\n4,1\n")
    spec = write_spec(
        tmp_path,
        "{csv: table.csv}",
        "    inputs: {x: {columns: [a], transforms: [{reshape: [1]}]}}\n"
        "    targets: {logits: label}",
    )
    spec.write_text(spec.read_text().replace("shape: [2]", "shape: [1]"))
    run(["train", spec, "--out", tmp_path / "run", "-q"], exit_code=0)


def test_columns_of_different_shapes(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", a=np.zeros((4, 2)), b=np.zeros(4), y=labels(4))
    spec = write_spec(tmp_path, "{npz: d.npz}", "    inputs: {x: {columns: [a, b]}}")
    diagnostic = train_error(spec)
    assert diagnostic["code"] == "data"
    assert diagnostic["message"] == (
        "the columns of 'x' have different shapes: a (None, 2), b (None,)"
    )
    assert "inputs of their own" in diagnostic["hint"]
    assert diagnostic["line"] == FEED_LINE


# -- 7. no samples --------------------------------------------------------------------


def test_npz_without_samples(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((0, 2), np.float32), y=np.zeros(0, np.int64))
    spec = write_spec(tmp_path, "{npz: d.npz}")
    diagnostic = train_error(spec)
    assert diagnostic["code"] == "data"
    assert diagnostic["message"] == (
        f"{tmp_path / 'd.npz'} holds no samples: its train split (x, y) has 0 entries on axis 0"
    )
    assert "sample axis" in diagnostic["hint"]
    assert at(diagnostic) == (SOURCE_LINE, column_of(spec, SOURCE_LINE, "d.npz"))
    assert diagnostic["path"] == "train.data.source.npz"


def test_npz_with_an_empty_test_split(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "d.npz",
        x_train=np.zeros((4, 2)),
        y_train=labels(4),
        x_test=np.zeros((0, 2)),
        y_test=np.zeros(0, np.int64),
    )
    diagnostic = train_error(write_spec(tmp_path, "{npz: d.npz}"))
    assert "holds no samples: its test split (x, y)" in diagnostic["message"]
    assert "leave the split's keys out" in diagnostic["hint"]


def test_npy_without_samples_points_at_its_field(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((0, 2), np.float32))
    np.save(tmp_path / "y.npy", np.zeros(0, np.int64))
    spec = write_spec(tmp_path, "{npy: {x: x.npy, y: y.npy}}")
    diagnostic = train_error(spec)
    assert diagnostic["message"] == (
        f"{tmp_path / 'x.npy'} holds no samples: its array (0, 2) has 0 entries on axis 0"
    )
    assert diagnostic["path"] == "train.data.source.npy.x"
    assert at(diagnostic) == (SOURCE_LINE, column_of(spec, SOURCE_LINE, "x.npy"))


def test_csv_with_only_a_header(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,label\n")
    spec = write_spec(
        tmp_path, "{csv: t.csv}", "    inputs: {x: {columns: [a, b]}}\n    targets: {logits: label}"
    )
    diagnostic = train_error(spec)
    assert diagnostic["message"] == f"{tmp_path / 't.csv'} has a header row but no data rows"
    assert diagnostic["line"] == SOURCE_LINE


def test_images_folder_with_empty_class_folders(tmp_path: Path) -> None:
    for name in ("cats", "dogs"):
        (tmp_path / "images" / name).mkdir(parents=True)
    spec = write_spec(tmp_path, "{images: images, image_size: [2, 2]}")
    spec.write_text(spec.read_text().replace("shape: [2]", "shape: [2, 2, 3]"))
    diagnostic = train_error(spec)
    assert diagnostic["message"] == f"the class sub-folders of {tmp_path / 'images'} hold no images"
    assert at(diagnostic) == (SOURCE_LINE, column_of(spec, SOURCE_LINE, "images,"))


def test_tfrecord_without_records(tmp_path: Path) -> None:
    (tmp_path / "r.tfrecord").write_bytes(b"")
    features = "features: {x: {shape: [2]}, y: {shape: [], dtype: int64}}"
    spec = write_spec(tmp_path, f"{{tfrecord: r.tfrecord, {features}}}")
    diagnostic = train_error(spec)
    assert diagnostic["message"] == f"{tmp_path / 'r.tfrecord'} holds no records"
    assert diagnostic["line"] == SOURCE_LINE


@pytest.mark.parametrize(
    ("data", "fit", "key", "message"),
    [
        (
            "",
            ", validation: 0.1",
            "train.fit.validation",
            "a validation fraction of 0.1 leaves 3 training and 0 validation samples out of 3",
        ),
        (
            "    test: 0.9",
            "",
            "train.data.test",
            "a test fraction of 0.9 leaves 0 training and 3 test samples out of 3",
        ),
        (
            "    take: 1\n    test: 0.5",
            "",
            "train.data.test",
            "a test fraction of 0.5 leaves 1 training and 0 test samples out of 1",
        ),
    ],
    ids=["validation", "test", "take-then-test"],
)
def test_fractions_that_leave_a_split_empty(
    tmp_path: Path, data: str, fit: str, key: str, message: str
) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2), np.float32), y=labels(3))
    diagnostic = train_error(write_spec(tmp_path, "{npz: d.npz}", data, fit))
    assert diagnostic["message"] == message
    assert diagnostic["path"] == key
    assert diagnostic["line"] > SOURCE_LINE
    assert "sample" in diagnostic["hint"]


def test_a_fraction_that_keeps_one_sample_each_side_trains(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2), np.float32), y=labels(3))
    spec = write_spec(tmp_path, "{npz: d.npz}", fit=", validation: 0.2")
    result = run(["train", spec, "--out", tmp_path / "run"], exit_code=0)
    assert "training on 2 samples, validating on 1" in result.stdout


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of SPEC on 8 good samples, for evaluate/predict --data."""
    folder = tmp_path_factory.mktemp("run")
    np.savez(folder / "d.npz", x=np.ones((8, 2), np.float32), y=labels(8))
    spec = write_spec(folder, "{npz: d.npz}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KGRAPH_OFFLINE", "1")
        invoke(["train", spec, "--out", folder / "run", "-q"])
    return folder / "run"


def test_predict_and_evaluate_data_without_samples(trained_run: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.npz"
    np.savez(empty, x=np.zeros((0, 2), np.float32), y=np.zeros(0, np.int64))
    out = tmp_path / "p.npy"
    for command in (
        ["predict", trained_run, "--data", empty, "-o", out],
        ["evaluate", trained_run, "--data", empty],
    ):
        diagnostic = error(command)
        assert diagnostic["file"] == "--data"
        assert diagnostic["message"].startswith(f"{empty} holds no samples")
    assert not out.exists()


# -- 8. dtypes, pickles, damaged and oversized files ------------------------------------


def _pickled_complex() -> np.ndarray:
    evil = np.empty(8, dtype=object)
    evil[:] = [complex(1, 2)] * 8
    return evil


def _dicts() -> np.ndarray:
    objects = np.empty(8, dtype=object)
    objects[:] = [{"a": 1}] * 8
    return objects


def _ragged() -> np.ndarray:
    sequences = np.empty(8, dtype=object)
    sequences[:] = [[1, 2], [3]] * 4
    return sequences


BAD_X = [
    # (id, the x array, message after "field 'x' ", a hint fragment)
    (
        "record",
        np.zeros(8, dtype=[("a", "f4"), ("b", "f4")]),
        "holds records with fields a, b (a structured array), not numbers",
        "numpy.savez(path, a=x['a'], ...)",
    ),
    ("objects", _dicts(), "holds Python objects, not numbers (sample 0 is a dict)", "save numbers"),
    ("ragged", _ragged(), "holds variable-length sequences", "pad_sequences"),
    ("complex64", np.ones((8, 2), np.complex64), "holds complex numbers (complex64)", "numpy.real"),
    ("complex128", np.ones((8, 2), np.complex128), "holds complex numbers (complex128)", "imag"),
    (
        "datetime64",
        np.zeros((8, 2), "datetime64[D]"),
        "holds dates and times (datetime64[D]), not numbers",
        "x.astype('int64')",
    ),
    (
        "timedelta64",
        np.zeros((8, 2), "timedelta64[s]"),
        "holds time spans (timedelta64[s]), not numbers",
        "astype('int64')",
    ),
    ("bytes", np.array([[b"a", b"b"]] * 8), "holds text, not numbers", "dtype: string"),
    ("str", np.array([["a", "b"]] * 8), "holds text, not numbers", "dtype: string"),
    ("void", np.zeros((8, 2), "V4"), "holds raw bytes (|V4), not numbers", "bool, integer"),
]


@pytest.mark.parametrize(
    ("x", "message", "hint"), [pytest.param(x, m, h, id=i) for i, x, m, h in BAD_X]
)
def test_dtypes_no_input_takes(tmp_path: Path, x: np.ndarray, message: str, hint: str) -> None:
    np.savez(tmp_path / "d.npz", x=x, y=labels(8))
    spec = write_spec(tmp_path, "{npz: d.npz}", "    inputs: {x: {field: x}}")
    diagnostic = train_error(spec)
    assert diagnostic["code"] == "data"
    assert diagnostic["message"] == f"field 'x' {message}"
    assert hint in diagnostic["hint"]
    assert diagnostic["path"] == "train.data.inputs.x"
    assert at(diagnostic) == (FEED_LINE, column_of(spec, FEED_LINE, "x}}"))


@pytest.mark.parametrize(
    "y",
    [np.ones(8, np.complex64), np.zeros(8, "datetime64[D]"), np.zeros(8, [("a", "i4")])],
    ids=["complex", "datetime", "record"],
)
def test_dtypes_no_target_takes(tmp_path: Path, y: np.ndarray) -> None:
    np.savez(tmp_path / "d.npz", x=np.ones((8, 2), np.float32), y=y)
    diagnostic = train_error(write_spec(tmp_path, "{npz: d.npz}"))
    assert diagnostic["message"].startswith("field 'y' holds ")
    assert diagnostic["path"] == "train.data.targets"


def test_real_dtypes_train(tmp_path: Path) -> None:
    numbers = np.empty((8, 2), dtype=object)
    numbers[:] = 1.5  # an object array of numbers, as an npz may pickle one
    for i, x in enumerate([np.ones((8, 2), bool), np.ones((8, 2), np.float16), numbers]):
        folder = tmp_path / str(i)
        folder.mkdir()
        np.savez(folder / "d.npz", x=x, y=labels(8))
        run(["train", write_spec(folder, "{npz: d.npz}"), "--out", folder / "run", "-q"], 0)


def test_pickled_objects_are_refused_without_unpickling(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=_pickled_complex(), y=labels(8))
    diagnostic = train_error(write_spec(tmp_path, "{npz: d.npz}"))
    assert diagnostic["message"].startswith(
        f"{tmp_path / 'd.npz'} holds Python objects in array 'x': object of shape (8,), "
        "which kgraph does not unpickle (refusing to load builtins.complex"
    )
    assert "numeric and text arrays" in diagnostic["hint"]

    np.save(tmp_path / "x.npy", _pickled_complex(), allow_pickle=True)
    np.save(tmp_path / "y.npy", labels(8))
    spec = write_spec(tmp_path, "{npy: {x: x.npy, y: y.npy}}")
    diagnostic = train_error(spec)
    assert diagnostic["message"] == (
        f"{tmp_path / 'x.npy'} holds Python objects (a pickled object array, object)"
    )
    assert "never unpickles" in diagnostic["hint"]
    assert diagnostic["path"] == "train.data.source.npy.x"


def test_numpy_files_are_never_loaded_with_pickles_allowed() -> None:
    # Every np.load in kgraph keeps numpy's allow_pickle=False, and nothing
    # unpickles but the restricted unpickler of data/sources/base.py.
    for path in sorted((REPO / "kgraph_cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name.endswith(("np.load", "numpy.load", "read_array")):
                for keyword in node.keywords:
                    if keyword.arg == "allow_pickle":
                        assert ast.literal_eval(keyword.value) is False, f"{path}: {name}"
            assert name not in ("pickle.load", "pickle.loads"), f"{path} unpickles"


def test_text_inputs_take_strings_and_utf8_bytes(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(TEXT_SPEC)
    for i, x in enumerate([np.array(["a", "b"] * 4), np.array([b"a", "é".encode()] * 4)]):
        np.savez(tmp_path / "data.npz", x=x, y=labels(8))
        run(["train", spec, "--out", tmp_path / f"run{i}", "-q"], exit_code=0)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (
            np.array([b"\xff\xfe", b"ok"] * 4),
            "field 'x' holds bytes that are not UTF-8 text (invalid start byte)",
        ),
        (
            np.array(["a", None] * 4, dtype=object),
            "field 'x' holds Python objects, not text (sample 1 is None)",
        ),
        (np.ones(8), "input 'x' takes text but the train data is float64"),
    ],
    ids=["not-utf8", "none", "numbers"],
)
def test_text_inputs_refuse_what_is_not_text(tmp_path: Path, x: np.ndarray, message: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(TEXT_SPEC)
    np.savez(tmp_path / "data.npz", x=x, y=labels(8))
    diagnostic = train_error(spec)
    assert diagnostic["message"] == message
    assert diagnostic["line"] == TEXT_FIELD[0]


@pytest.mark.parametrize(
    ("cells", "fragment"),
    [("1e999", "NaN or infinite"), ("nan", "NaN or infinite"), ("1e39", "NaN or infinite")],
)
def test_csv_cells_beyond_float32_or_nan(tmp_path: Path, cells: str, fragment: str) -> None:
    (tmp_path / "t.csv").write_text(f"a,b,label\n1,{cells},0\n3,4,1\n5,6,0\n")
    spec = write_spec(
        tmp_path, "{csv: t.csv}", "    inputs: {x: {columns: [a, b]}}\n    targets: {logits: label}"
    )
    diagnostic = train_error(spec)
    assert fragment in diagnostic["message"] and "column 'b'" in diagnostic["message"]
    assert "float32's range" in diagnostic["hint"]


def test_values_beyond_the_model_dtype(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.full((8, 2), 1e300), y=labels(8))
    diagnostic = train_error(write_spec(tmp_path, "{npz: d.npz}"))
    assert diagnostic["message"] == (
        "input 'x' takes float32 but the train data has values beyond float32's range "
        "(up to 1e+300; float32 reaches about 3.4e+38)"
    )

    np.savez(tmp_path / "d.npz", x=np.full((8, 2), 2**40), y=labels(8))
    spec = write_spec(tmp_path, "{npz: d.npz}")
    spec.write_text(spec.read_text().replace("shape: [2]}", "shape: [2], dtype: int32}"))
    diagnostic = train_error(spec)
    assert diagnostic["message"] == (
        "input 'x' takes int32 but the train data has values 1099511627776..1099511627776, "
        "outside int32's -2147483648..2147483647"
    )


def test_cast_transforms(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, "{npz: d.npz}", "    inputs: {x: {field: x, transforms: [{cast: complex64}]}}"
    )
    diagnostic = error(["validate", "--no-build", spec])
    assert diagnostic["message"].startswith("cast: data cannot be cast to complex64")
    assert "complex" not in diagnostic["hint"] and "float32" in diagnostic["hint"]
    assert at(diagnostic) == (FEED_LINE, column_of(spec, FEED_LINE, "complex64"))

    np.savez(tmp_path / "d.npz", x=np.full((8, 2), 300), y=labels(8))
    spec = write_spec(
        tmp_path, "{npz: d.npz}", "    inputs: {x: {field: x, transforms: [{cast: int8}]}}"
    )
    diagnostic = train_error(spec)
    assert diagnostic["message"] == "cast: the data has values 300..300, outside int8's -128..127"
    assert at(diagnostic) == (FEED_LINE, column_of(spec, FEED_LINE, "cast"))

    spec = write_spec(
        tmp_path, "{npz: d.npz}", "    inputs: {x: {field: x, transforms: [{cast: string}]}}"
    )
    diagnostic = train_error(spec)
    assert diagnostic["message"].startswith("input 'x' takes float32 but its transforms make")


def test_corrupt_npz_and_npy(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_bytes(b"not a zip at all")
    diagnostic = train_error(write_spec(tmp_path, "{npz: d.npz}"))
    assert diagnostic["message"] == (
        f"{tmp_path / 'd.npz'} is not a valid .npz file (File is not a zip file)"
    )
    archive = io.BytesIO()
    np.savez(archive, x=np.ones(3))
    (tmp_path / "x.npy").write_bytes(archive.getvalue())  # an npz under an .npy name
    np.save(tmp_path / "y.npy", labels(3))
    diagnostic = train_error(write_spec(tmp_path, "{npy: {x: x.npy, y: y.npy}}"))
    assert diagnostic["message"].endswith("x.npy is an .npz archive, not an .npy file")


def test_headers_that_claim_more_than_the_file_holds(tmp_path: Path) -> None:
    # 16 TB claimed by a 450-byte file: refused from the header, nothing allocated
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as archive:
        archive.writestr("x.npy", npy_member((10**12, 2)))
        archive.writestr("y.npy", npy_member((10**12,), "<i8"))
    diagnostic = train_error(write_spec(tmp_path, "{npz: d.npz}"))
    assert diagnostic["message"] == (
        f"{tmp_path / 'd.npz'} is truncated or damaged: the header of array 'x': float64 "
        "of shape (1000000000000, 2) says 16,000,000,000,000 bytes of data, the file holds 0"
    )
    (tmp_path / "x.npy").write_bytes(npy_member((10**12, 2), data=b"\0" * 64))
    np.save(tmp_path / "y.npy", labels(8))
    diagnostic = train_error(write_spec(tmp_path, "{npy: {x: x.npy, y: y.npy}}"))
    assert "says 16,000,000,000,000 bytes of data, the file holds 64" in diagnostic["message"]
    assert diagnostic["path"] == "train.data.source.npy.x"


def test_a_zip_bomb_is_refused_before_it_is_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 16 MB of zeros, deflated to a few KB; a limit of 1 MB stands for the 4 GB one
    monkeypatch.setenv("KGRAPH_MAX_DATA_GB", "0.001")
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", npy_member((1_000_000, 2), data=bytes(16_000_000)))
        archive.writestr("y.npy", npy_member((1_000_000,), "<i8", bytes(8_000_000)))
    assert path.stat().st_size < 100_000
    diagnostic = train_error(write_spec(tmp_path, "{npz: d.npz}"))
    assert diagnostic["message"] == (
        f"{path} holds 2 arrays, the largest 'x': float64 of shape (1000000, 2) "
        "(24,000,256 bytes), more than the data limit of 1,000,000 bytes"
    )
    assert "set KGRAPH_MAX_DATA_GB to raise the limit" in diagnostic["hint"]
    assert at(diagnostic) == (SOURCE_LINE, 19)

    monkeypatch.setenv("KGRAPH_MAX_DATA_GB", "lots")
    diagnostic = train_error(write_spec(tmp_path, "{npz: d.npz}"))
    assert "$KGRAPH_MAX_DATA_GB is 'lots', not a number of gigabytes" in diagnostic["message"]


def test_csv_files_count_against_the_data_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.csv").write_text("a,b,label\n" + "1,2,0\n" * 20_000)  # 120 KB
    spec = write_spec(
        tmp_path, "{csv: t.csv}", "    inputs: {x: {columns: [a, b]}}\n    targets: {logits: label}"
    )
    monkeypatch.setenv("KGRAPH_MAX_DATA_GB", "0.001")  # 1 MB: 16 x 120 KB is more
    diagnostic = train_error(spec)
    assert "bytes of CSV text, about 16 times as much in memory" in diagnostic["message"]
    assert "more than the data limit of 1,000,000 bytes" in diagnostic["message"]


def test_tfrecords_count_against_the_data_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(tmp_path / "r.tfrecord")) as writer:
        for i in range(50):
            feature = {
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, 2.0])),
                "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    features = "features: {x: {shape: [2]}, y: {shape: [], dtype: int64}}"
    spec = write_spec(tmp_path, f"{{tfrecord: r.tfrecord, {features}}}")
    monkeypatch.setenv("KGRAPH_MAX_DATA_GB", "0.0000001")  # 100 bytes
    diagnostic = train_error(spec)
    assert diagnostic["message"] == (
        f"{tmp_path / 'r.tfrecord'} holds records of x, y (800 bytes), more than the data "
        "limit of 100 bytes"
    )


def test_a_csv_cell_beyond_the_field_limit(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,label\n1," + "2" * 200_000 + ",0\n")
    spec = write_spec(
        tmp_path, "{csv: t.csv}", "    inputs: {x: {columns: [a, b]}}\n    targets: {logits: label}"
    )
    diagnostic = train_error(spec)
    assert "line 2: field larger than field limit (131072)" in diagnostic["message"]
    assert "a quote that is never closed" in diagnostic["hint"]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_not_a_data_file(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "{csv: /dev/zero}",
        "    inputs: {x: {columns: [a, b]}}\n    targets: {logits: label}",
    )
    diagnostic = train_error(spec)
    assert diagnostic["message"] == "/dev/zero is not a regular file (a device, pipe or socket)"
    assert at(diagnostic) == (SOURCE_LINE, column_of(spec, SOURCE_LINE, "/dev/zero"))
