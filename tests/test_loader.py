"""YAML loading: locations, duplicate keys, tags, limits, encodings."""

from __future__ import annotations

import pytest

from kgraph_cli.errors import SpecError
from kgraph_cli.spec.loader import YamlList, YamlMap, load_yaml_file, parse_yaml


def codes(exc: SpecError) -> list[str]:
    return [d.code for d in exc.diagnostics]


def test_locations_of_keys_and_values():
    data = parse_yaml("a: 1\nb:\n  c: [x, yy]\n", "f.yaml")
    assert isinstance(data, YamlMap)
    assert (data.key_loc("b").line, data.key_loc("b").col) == (2, 1)
    inner = data["b"]
    assert (inner.value_loc("c").line, inner.value_loc("c").col) == (3, 6)
    items = inner["c"]
    assert isinstance(items, YamlList)
    second = items.item_loc(1)
    assert (second.line, second.col, second.length) == (3, 10, 2)


def test_yaml_12_scalars():
    data = parse_yaml("lr: 1e-3\nbig: 2E+5\nflag: on\nyes_: no\nok: true\n", "f.yaml")
    assert data["lr"] == pytest.approx(0.001)
    assert isinstance(data["big"], float)
    assert data["flag"] == "on" and data["yes_"] == "no"
    assert data["ok"] is True


def test_duplicate_key_is_an_error_with_both_places():
    with pytest.raises(SpecError) as info:
        parse_yaml("layers:\n  a: 1\n  b: 2\n  a: 3\n", "f.yaml")
    (diag,) = info.value.diagnostics
    assert diag.code == "duplicate-key"
    assert (diag.location.line, diag.location.col) == (4, 3)
    assert diag.path == "layers.a"
    assert diag.related[0][0].line == 2


def test_unsafe_tag_is_refused():
    with pytest.raises(SpecError) as info:
        parse_yaml("x: !!python/object/apply:os.system [echo hi]\n", "f.yaml")
    assert codes(info.value) == ["unsafe-tag"]
    assert "python/object/apply" in info.value.diagnostics[0].message


def test_merge_keys_work_and_explicit_keys_win():
    data = parse_yaml("base: &b {units: 8, activation: relu}\nd: {<<: *b, units: 4}\n", "f.yaml")
    assert data["d"] == {"units": 4, "activation": "relu"}


def test_syntax_error_has_parser_location():
    with pytest.raises(SpecError) as info:
        parse_yaml("inputs: {x: {shape: [4]}\nlayers: [\n", "f.yaml")
    (diag,) = info.value.diagnostics
    assert diag.code == "yaml"
    assert diag.location.line == 2
    # the mapping that was left open is shown too
    assert diag.related[0][0].line == 1


@pytest.mark.parametrize(
    ("text", "code"),
    [("", "empty"), ("   \n# only a comment\n", "empty"), ("- a\n- b\n", "not-a-mapping")],
)
def test_documents_that_are_not_specs(text, code):
    with pytest.raises(SpecError) as info:
        parse_yaml(text, "f.yaml")
    assert codes(info.value) == [code]


def test_recursive_alias_is_refused():
    with pytest.raises(SpecError) as info:
        parse_yaml("a: &a [1, *a]\n", "f.yaml")
    assert "recursive" in info.value.diagnostics[0].message


def test_alias_bomb_is_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(SpecError) as info:
        parse_yaml("\n".join(lines) + "\n", "f.yaml")
    assert codes(info.value) == ["too-large"]


def test_not_utf8_reports_line_and_column(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("kgraph: 1\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError) as info:
        load_yaml_file(path)
    (diag,) = info.value.diagnostics
    assert diag.code == "encoding"
    assert (diag.location.line, diag.location.col) == (2, 10)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load_yaml_file(tmp_path / "nope.yaml")
    assert codes(info.value) == ["file"]


@pytest.mark.parametrize(
    "text",
    [
        "x: " + "[" * 150 + "]" * 150,  # kgraph's own limit
        "x: " + "[" * 50_000 + "]" * 50_000,  # beyond libyaml's
        "".join(" " * i + f"k{i}:\n" for i in range(3_000)) + " " * 3_000 + "v\n",  # block style
    ],
    ids=["flow-150", "flow-50000", "block-3000"],
)
def test_deep_nesting_is_a_located_error_not_a_crash(text: str) -> None:
    from kgraph_cli.spec.loader import MAX_NESTING

    with pytest.raises(SpecError) as raised:
        parse_yaml(text, "deep.yaml")
    [diagnostic] = raised.value.diagnostics
    assert diagnostic.code == "nesting"
    assert f"more than {MAX_NESTING} levels" in diagnostic.message
    assert diagnostic.location is not None and diagnostic.location.line >= 1
