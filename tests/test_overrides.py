"""--set KEY.PATH=VALUE applied to the data before validation."""

from __future__ import annotations

import pytest

from kgraph_cli.errors import SpecError
from kgraph_cli.spec.loader import parse_yaml
from kgraph_cli.spec.overrides import OVERRIDE_FILE, apply_overrides

SPEC = "kgraph: 1\nlayers:\n  h: {type: Dense, units: 8, from: x}\noutputs: [h]\n"


def test_values_are_yaml_typed():
    data = parse_yaml(SPEC, "f.yaml")
    apply_overrides(
        data,
        ["layers.h.units=32", "layers.h.activation=relu", "layers.h.kernel_size=[3, 3]",
         "layers.h.use_bias=false"],
    )  # fmt: skip
    assert data["layers"]["h"]["units"] == 32
    assert data["layers"]["h"]["activation"] == "relu"
    assert data["layers"]["h"]["kernel_size"] == [3, 3]
    assert data["layers"]["h"]["use_bias"] is False


def test_location_points_at_the_override():
    data = parse_yaml(SPEC, "f.yaml")
    apply_overrides(data, ["name=a", "layers.h.units=32"])
    loc = data["layers"]["h"].value_loc("units")
    assert (loc.file, loc.line, loc.col) == (OVERRIDE_FILE, 2, 16)


def test_missing_mappings_are_created_and_lists_indexed():
    data = parse_yaml(SPEC, "f.yaml")
    apply_overrides(data, ["train.fit.epochs=5", "outputs.0=g"])
    assert data["train"] == {"fit": {"epochs": 5}}
    assert data["outputs"] == ["g"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("no_equals_sign", "expected KEY.PATH=VALUE"),
        ("outputs.3=x", "out of range"),
        ("kgraph.sub=1", "cannot set a key inside"),
        ("name=[unclosed", "cannot parse the value"),
    ],
)
def test_bad_overrides_are_located_errors(override, message):
    data = parse_yaml(SPEC, "f.yaml")
    with pytest.raises(SpecError) as info:
        apply_overrides(data, [override])
    (diag,) = info.value.diagnostics
    assert message in diag.message
    assert diag.location.file == OVERRIDE_FILE
