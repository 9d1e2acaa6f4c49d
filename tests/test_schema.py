"""The published JSON Schema is current, valid, and accepts every example spec."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from kgraph_cli.spec.schema import spec_json_schema
from tests.conftest import REPO, SPECS
from tests.golden import cases, expected_path

SCHEMA_FILE = REPO / "schema" / "kgraph.schema.json"


def test_committed_schema_is_current():
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == spec_json_schema(), "run `make schema` and commit the result"


def test_schema_is_valid_draft7():
    jsonschema.Draft7Validator.check_schema(spec_json_schema())


@pytest.mark.parametrize("path", sorted(SPECS.glob("**/*.yaml")), ids=lambda p: p.name)
def test_every_example_spec_matches_the_schema(path):
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("# yaml-language-server: $schema="), "editors need the modeline"
    schema_ref = first_line.split("$schema=", 1)[1].strip()
    assert (path.parent / schema_ref).resolve() == SCHEMA_FILE.resolve()
    data = yaml.safe_load(path.read_text())
    jsonschema.validate(data, spec_json_schema())


@pytest.mark.parametrize(
    "broken",
    [
        {"kgraph": 1, "layer": {}},  # misspelled top-level key
        {"kgraph": 1, "layers": {"d": {"type": "Dense", "unit": 3, "from": "x"}}},
        {"kgraph": 1, "layers": {"d": {"type": "Dense", "from": "x"}}},  # units missing
        {"kgraph": 1, "layers": {"d": {"type": "Dense", "share": "e", "units": 1, "from": "x"}}},
        {"kgraph": 2},
    ],
)
def test_schema_rejects_what_validation_rejects(broken):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, spec_json_schema())


# Diagnostic codes of problems a JSON Schema can express: where validation
# reports one of these, the schema must reject the spec too.
SCHEMA_CODES = {
    "unknown-key",
    "version",
    "not-a-mapping",
    "unknown-layer",
    "unknown-arg",
    "missing-arg",
    "name",
    "unknown-dataset",
    "unknown-transform",
    "unknown-value",
}
# What only the validator can know: the params of the spec's own blocks (and
# how many argument sets `repeat` needs), and whether a module.Class layer's
# plugin is loaded (--plugin is no part of the file), and what a search space's
# values do where they go (the spec with a trial's values set).
BEYOND_A_SCHEMA = {
    "29_block_unknown_arg",
    "36_plugin_without_flag",
    "79_block_arg_sets",
    "105_tune_corners",
}
# Problems of the YAML text itself, which the schema never sees.
UNPARSEABLE = {"yaml", "duplicate-key", "encoding", "unsafe-tag", "empty"}


@pytest.mark.parametrize("case", cases(), ids=lambda p: p.stem)
def test_schema_and_validator_agree_on_every_golden_case(case):
    codes = set(re.findall(r"error\[([a-z-]+)\]", expected_path(case).read_text()))
    if codes & UNPARSEABLE:
        pytest.skip(f"{sorted(codes & UNPARSEABLE)}: not YAML a schema can see")
    data = yaml.safe_load(case.read_text(encoding="utf-8"))
    errors = [e.message for e in jsonschema.Draft7Validator(spec_json_schema()).iter_errors(data)]
    if not codes:  # the validator accepts it (warnings at most): so must the schema
        assert errors == [], errors
    elif codes & SCHEMA_CODES and case.stem not in BEYOND_A_SCHEMA:
        assert errors, f"validate reports {sorted(codes)}; the schema accepts the spec"


def test_the_train_schema_has_the_parser_keys():
    from kgraph_cli.spec.train import COMPILE_KEYS, DATA_KEYS, FIT_KEYS, SOURCE_KINDS, TRAIN_KEYS

    schema = spec_json_schema()
    train = schema["properties"]["train"]
    assert set(train["properties"]) == set(TRAIN_KEYS)
    assert set(train["properties"]["fit"]["properties"]) == set(FIT_KEYS)
    assert set(train["properties"]["compile"]["properties"]) == set(COMPILE_KEYS)
    assert set(train["properties"]["data"]["properties"]) == set(DATA_KEYS)
    kinds = schema["definitions"]["train_source"]["oneOf"]
    assert [k["required"] for k in kinds] == [[kind] for kind in SOURCE_KINDS]


@pytest.mark.parametrize(
    "train",
    [
        {"fit": {"epoch": 3}},
        {"fit": {"batch_size": 0}},
        {"data": {"source": {"dataset": "mnits"}}},
        {"data": {"source": {"images": "pics", "color_mode": "rgbx"}}},
        {"data": {"source": {"csv": "a.csv", "delimiter": ";;"}}},
        {"compile": {"optimizer": {"type": "Adam", "learning_rat": 0.1}}},
        {"callbacks": [{"type": "EarlyStopping", "patience": 3, "restore_best": True}]},
    ],
)
def test_the_schema_rejects_a_broken_train_section(train):
    spec = {"kgraph": 1, "inputs": {"x": [4]}, "layers": {}, "train": train}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, spec_json_schema())
