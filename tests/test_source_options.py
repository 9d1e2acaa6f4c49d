"""Data-source option values are checked by `kgraph validate` (structural, no
TensorFlow, no data), located at the value, with what was received and the valid
values; the data readers run the same checks before they read.

tests/invalid/59-61 hold the golden cases of color_mode, image_size and delimiter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kgraph_cli.check import check_spec_file
from kgraph_cli.data.sources import read_source
from kgraph_cli.data.sources.keras_datasets import _DATASET_FILES
from kgraph_cli.errors import Diagnostic, SpecError
from kgraph_cli.spec.loader import parse_yaml
from kgraph_cli.spec.train import DATASETS, SOURCE_KINDS, SourceSpec
from kgraph_cli.spec.values import describe

SPEC = """\
kgraph: 1
name: clf
inputs:
  x: {shape: [4]}
layers:
  y: {type: Dense, units: 3, from: x}
outputs: [y]
train:
  data:
    source: SOURCE
  compile:
    loss: {type: SparseCategoricalCrossentropy, from_logits: true}
"""
SOURCE_LINE = 10  # the line of `source:` in SPEC


def problems(source: str, tmp_path: Path, overrides: tuple[str, ...] = ()) -> list[Diagnostic]:
    """What `kgraph validate --no-build` says about a spec with this source."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("SOURCE", source))
    return check_spec_file(spec, list(overrides), [], build=False).diagnostics


def one_problem(source: str, tmp_path: Path) -> Diagnostic:
    found = problems(source, tmp_path)
    assert len(found) == 1, found
    return found[0]


def column(source: str, value: str) -> int:
    """The 1-based column of `value` in the `source:` line of SPEC."""
    return len("    source: ") + source.index(value) + 1


@pytest.mark.parametrize(
    ("source", "value", "path", "message", "hint"),
    [
        (
            "{dataset: imdb, num_words: 0}",
            "0",
            "num_words",
            "num_words must be an integer >= 1, got int 0",
            "e.g. num_words: 10000",
        ),
        (
            "{dataset: reuters, maxlen: ten}",
            "ten",
            "maxlen",
            "maxlen must be an integer >= 1, got string 'ten'",
            "e.g. maxlen: 200",
        ),
        (
            "{dataset: imdb, skip_top: -1}",
            "-1",
            "skip_top",
            "skip_top must be an integer >= 0, got int -1",
            "e.g. skip_top: 20",
        ),
        (
            "{dataset: cifar100, label_mode: coarsee}",
            "coarsee",
            "label_mode",
            "label_mode must be fine or coarse, got string 'coarsee'",
            "did you mean 'coarse'? fine: the 100 classes; coarse: the 20 superclasses",
        ),
        (
            "{generated: 0}",
            "0",
            "generated",
            "generated must be an integer >= 1, got int 0",
            "",
        ),
        (
            "{generated: 64, seed: 1.5}",
            "1.5",
            "seed",
            "seed must be an integer >= 0, got float 1.5",
            "the same seed gives the same data",
        ),
        (
            "{generated: 64, sequence_length: 0}",
            "0}",
            "sequence_length",
            "sequence_length must be an integer >= 1, got int 0",
            "variable-length (null) dimensions",
        ),
        (
            "{generated: 64, test_samples: null}",
            "null",
            "test_samples",
            "test_samples must be an integer >= 1, got null",
            "e.g. 64",
        ),
        (
            "{npz: ''}",
            "''",
            "npz",
            "npz must be a path, got string ''",
            "relative to the spec's folder",
        ),
        (
            "{npy: x.npy}",
            "x.npy",
            "npy",
            "npy must be a mapping of field name to .npy file, got string 'x.npy'",
            "e.g. npy: {x: x.npy, y: y.npy}",
        ),
        (
            "{npy: {x: 3}}",
            "3",
            "npy.x",
            "x must be a path, got int 3",
            "relative to the spec's folder",
        ),
        (
            "{images: [a, b]}",
            "[a, b]",
            "images",
            "images must be a path, got a list",
            "",
        ),
        (
            "{images: pics, color_mode: gray}",
            "gray",
            "color_mode",
            "color_mode must be rgb, grayscale or rgba, got string 'gray'",
            "rgb: 3 channels, grayscale: 1 channel, rgba: 4 channels",
        ),
        (
            "{images: pics, image_size: 64}",
            "64",
            "image_size",
            "image_size must be [height, width] (two positive integers), got int 64",
            "e.g. image_size: [64, 64]",
        ),
        (
            "{csv: d.csv, delimiter: 0}",
            "0",
            "delimiter",
            "delimiter must be one character, got int 0",
            "in double quotes",
        ),
        (
            "{tfrecord: d.tfr, features: {x: {}}, compression: gzipp}",
            "gzipp",
            "compression",
            "compression must be GZIP or ZLIB, got string 'gzipp'",
            "did you mean 'GZIP'? leave it out for uncompressed files",
        ),
        (
            "{tfrecord: d.tfr, features: {x: {}}, compression: LZ4}",
            "LZ4",
            "compression",
            "compression must be GZIP or ZLIB, got string 'LZ4'",
            "leave it out for uncompressed files",
        ),
        (
            "{tfrecord: [a.tfr, 7], features: {x: {}}}",
            "7",
            "tfrecord[1]",
            "tfrecord[1] must be a path, got int 7",
            "",
        ),
        (
            "{tfrecord: [], features: {x: {}}}",
            "[]",
            "tfrecord",
            "tfrecord must be a file or a list of files, got an empty list",
            "[part-0.tfrecord, part-1.tfrecord]",
        ),
        (
            "{tfrecord: d.tfr, features: {}}",
            "{}",
            "features",
            "a tfrecord source needs `features`: a mapping of field name to {shape, dtype}",
            "e.g. features: {x: {shape: [784], dtype: float32}",
        ),
        (
            "{tfrecord: d.tfr, features: {x: {shape: [-1]}}}",
            "[-1]",
            "features.x.shape",
            "the shape of feature 'x' must be a list of integers >= 0, got [-1]",
            "[] for a scalar",
        ),
    ],
)
def test_option_values_are_checked_by_validate(
    source: str, value: str, path: str, message: str, hint: str, tmp_path: Path
) -> None:
    diagnostic = one_problem(source, tmp_path)
    assert diagnostic.is_error
    assert diagnostic.code == "type"
    assert diagnostic.path == f"train.data.source.{path}"
    assert diagnostic.message == message
    assert hint in diagnostic.hint
    assert diagnostic.location is not None
    where = (diagnostic.location.line, diagnostic.location.col)
    assert where == (SOURCE_LINE, column(source, value))


@pytest.mark.parametrize(
    ("source", "option", "hint"),
    [
        ("{dataset: mnist, maxlen: 100}", "maxlen", "maxlen is for imdb and reuters"),
        ("{dataset: digits, label_mode: fine}", "label_mode", "label_mode is for cifar100"),
        ("{dataset: imdb, label_mode: fine}", "label_mode", "label_mode is for cifar100"),
    ],
)
def test_options_of_other_datasets_are_pointed_out(
    source: str, option: str, hint: str, tmp_path: Path
) -> None:
    diagnostic = one_problem(source, tmp_path)
    assert diagnostic.code == "unknown-key"
    assert f"option '{option}' does not apply to dataset" in diagnostic.message
    assert diagnostic.hint == hint
    assert diagnostic.location is not None
    assert diagnostic.location.col == column(source, option)  # the key, not its value


@pytest.mark.parametrize(
    "source",
    [
        "{dataset: imdb, num_words: 10000, skip_top: 0, maxlen: 200, split: test}",
        "{dataset: imdb, num_words: null, maxlen: null}",  # null: Keras's default
        "{dataset: cifar100, label_mode: coarse}",
        "{dataset: digits}",
        "{npy: {x: x.npy, y: data/y.npy}}",
        '{csv: d.tsv, delimiter: "\\t"}',  # a tab, in YAML's double quotes
        "{csv: d.csv, delimiter: null}",
        "{images: pics, image_size: [28, 32], color_mode: grayscale}",
        "{images: pics, color_mode: rgba}",
        "{tfrecord: [a.tfr, 'b-*.tfr'], features: {x: {shape: [3]}, y: {dtype: int64}}}",
        "{tfrecord: d.tfr, features: {x: {}}, compression: gzip}",
        "{tfrecord: d.tfr, features: {x: {}}, compression: ZLIB}",
        "{tfrecord: d.tfr, features: {x: {}}, compression: none}",
        "{tfrecord: d.tfr, features: {x: {}}, compression: null}",
        "{generated: 8, seed: 0, sequence_length: 3, test_samples: 2}",
    ],
)
def test_valid_option_values_pass(source: str, tmp_path: Path) -> None:
    assert problems(source, tmp_path) == []


def test_every_bad_value_of_a_source_is_reported_at_once(tmp_path: Path) -> None:
    source = "{images: pics, image_size: [0, 5], color_mode: rgbx}"
    found = problems(source, tmp_path)
    assert [d.path.rsplit(".", 1)[-1] for d in found] == ["image_size", "color_mode"]


def test_test_and_validation_sources_are_checked_too(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    text = SPEC.replace("SOURCE", "{generated: 64}").replace(
        "  compile:",
        "    test: {source: {csv: t.csv, delimiter: ';;'}}\n"
        "  fit:\n"
        "    validation: {source: {images: v, color_mode: rbg}}\n"
        "  compile:",
    )
    spec.write_text(text)
    found = check_spec_file(spec, [], [], build=False).diagnostics
    assert {d.path: d.hint.split("?")[0] for d in found} == {
        "train.data.test.source.delimiter": "e.g. ',' ';' or '\\t' (in double quotes: \"\\t\")",
        "train.fit.validation.source.color_mode": "did you mean 'rgb'",
    }


def test_a_value_set_on_the_command_line_is_located_at_its_argument(tmp_path: Path) -> None:
    (diagnostic,) = problems("{images: pics}", tmp_path, ("train.data.source.color_mode=rgbx",))
    assert diagnostic.location is not None
    assert diagnostic.location.file == "--set"
    assert diagnostic.path == "train.data.source.color_mode"


def test_the_readers_run_the_same_checks_first(tmp_path: Path) -> None:
    # No file exists: the option's value is what is wrong, as validate says.
    text = "source: {csv: missing.csv, delimiter: ';;'}\n"
    body = parse_yaml(text, "spec.yaml")["source"]
    kind = next(k for k in SOURCE_KINDS if k in body)
    with pytest.raises(SpecError) as info:
        read_source(SourceSpec(kind, body, body.loc, "train.data.source"), tmp_path)
    (diagnostic,) = info.value.diagnostics
    (validated,) = problems("{csv: missing.csv, delimiter: ';;'}", tmp_path)
    assert (diagnostic.code, diagnostic.message, diagnostic.hint) == (
        validated.code,
        validated.message,
        validated.hint,
    )
    assert diagnostic.location is not None
    assert diagnostic.location.col == text.index("';;'") + 1


def test_one_list_of_dataset_names() -> None:
    # Every dataset kgraph validates has files to read, and no other: digits ships inside.
    assert [*_DATASET_FILES, "digits"] == list(DATASETS)


def test_describe_shows_short_number_lists_when_asked() -> None:
    assert describe([0, 5]) == "a list"
    assert describe([0, 5], lists=True) == "[0, 5]"
    assert describe([], lists=True) == "an empty list"
    assert describe({}, lists=True) == "an empty mapping"
    assert describe(["a"], lists=True) == "a list"
    assert describe(list(range(9)), lists=True) == "a list"
    assert describe("rgbx", lists=True) == "string 'rgbx'"


def test_generated_data_runs_the_same_checks_first() -> None:
    from kgraph_cli.data.generated import generate
    from kgraph_cli.data.pipeline import ModelIO

    body = parse_yaml("source: {generated: 8, seed: x}\n", "spec.yaml")["source"]
    io = ModelIO({"x": ((4,), "float32")}, {"y": (3,)}, {"y": None})
    with pytest.raises(SpecError) as info:
        generate(SourceSpec("generated", body, body.loc, "train.data.source"), io)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == "seed must be an integer >= 0, got string 'x'"


def _generate(text: str, io: Any) -> dict[str, Any]:
    from kgraph_cli.data.generated import generate

    body = parse_yaml(text, "spec.yaml")["source"]
    return generate(SourceSpec("generated", body, body.loc, "train.data.source"), io).splits


def test_generated_targets_of_an_autoencoder_are_its_inputs() -> None:
    from kgraph_cli.data.pipeline import ModelIO

    io = ModelIO({"img": ((6, 6), "float32")}, {"decoded": (6, 6)}, {"decoded": "mse"})
    train = _generate("source: {generated: 8}\n", io)["train"]
    np.testing.assert_array_equal(train["decoded"], train["img"])
    # A sigmoid reconstruction (binary cross-entropy) gets pixels in [0, 1].
    io.losses["decoded"] = "BinaryCrossentropy"
    train = _generate("source: {generated: 8}\n", io)["train"]
    np.testing.assert_array_equal(train["decoded"], train["img"])
    assert train["img"].min() >= 0 and train["img"].max() <= 1
    # A classifier's targets stay labels.
    io = ModelIO({"x": ((3,), "float32")}, {"y": (3,)}, {"y": "CategoricalCrossentropy"})
    train = _generate("source: {generated: 8}\n", io)["train"]
    assert set(np.unique(train["y"])) <= {0.0, 1.0}


def test_generated_positions_count_along_the_last_axis() -> None:
    from kgraph_cli.data.pipeline import ModelIO

    io = ModelIO(
        {"tokens": ((5,), "int32"), "pos": ((5,), "int32")},
        {"y": (2,)},
        {"y": "SparseCategoricalCrossentropy"},
        {"tokens": 100, "pos": 5},
    )
    train = _generate("source: {generated: 4, positions: [pos]}\n", io)["train"]
    np.testing.assert_array_equal(train["pos"], np.tile(np.arange(5), (4, 1)))
    assert train["tokens"].max() > 4  # still random ids
    with pytest.raises(SpecError) as info:
        _generate("source: {generated: 4, positions: [poss]}\n", io)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == "positions: 'poss' is not an input of the model"
    assert diagnostic.hint == "did you mean 'pos'?"
