"""The published JSON Schema is current, valid, and accepts every example spec."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from kgraph_cli.spec.schema import spec_json_schema
from tests.conftest import REPO, SPECS

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
