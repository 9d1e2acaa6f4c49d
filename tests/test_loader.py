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


# -- hostile input (issue 12): every one a located error, never a traceback --


def only(text: str, file: str = "f.yaml"):
    """The one diagnostic parsing `text` gives."""
    with pytest.raises(SpecError) as info:
        parse_yaml(text, file)
    [diagnostic] = info.value.diagnostics
    return diagnostic


@pytest.mark.parametrize(
    "spelling", [".inf", ".Inf", ".INF", "+.inf", "+.Inf", "-.inf", "-.INF", ".nan", ".NaN", ".NAN"]
)
def test_special_floats_are_located_errors(spelling: str) -> None:
    diagnostic = only(f"kgraph: 1\nlayers:\n  d: {{rate: {spelling}}}\n")
    assert diagnostic.code == "number"
    assert f"'{spelling}'" in diagnostic.message and "finite" in diagnostic.message
    assert (diagnostic.location.line, diagnostic.location.col) == (3, 13)
    assert diagnostic.path == "layers.d.rate"
    assert "quote it" in diagnostic.hint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x: 1e400", "too large"),
        ("x: -1e400", "too large"),
        ("x: !!float abc", "is not a number"),
        ("x: !!int abc", "is not an integer"),
        ("x: !!int ''", "is not an integer"),
        ("x: !!int 1.5", "is not an integer"),
        ("x: 0x_", "is not an integer"),
        ("x: 18446744073709551616", "out of range"),
        ("x: -9223372036854775809", "out of range"),
        ("x: 0x" + "f" * 17, "out of range"),
        ("x: 0b" + "1" * 65, "out of range"),
        ("x: 1" + "0" * 5000, "out of range"),  # past Python's 4,300-digit int() limit
        ("x: " + "1:" * 3000 + "0", "out of range"),  # YAML 1.1 base 60
        ("x: 1" + "0" * 400 + ".5", "too large"),
        (".inf: key", "finite"),
        ("1" + "0" * 999 + ": key", "out of range"),  # a key is converted too
    ],
)
def test_numbers_a_spec_cannot_hold_are_located_errors(text: str, message: str) -> None:
    diagnostic = only(text + "\n")
    assert diagnostic.code == "number"
    assert message in diagnostic.message
    assert diagnostic.location.line == 1
    assert len(diagnostic.message) < 200  # a long literal is cut, not echoed whole


def test_numbers_at_the_limits_load() -> None:
    data = parse_yaml(
        "a: 9223372036854775807\nb: -9223372036854775808\nc: 0x7fffffffffffffff\n"
        "d: 1.7e308\ne: 1:30\nf: 1:30.5\ng: 0" + "0" * 5000 + "1\nh: 1_000\n",
        "f.yaml",
    )
    assert data["a"] == 2**63 - 1 and data["b"] == -(2**63) and data["c"] == 2**63 - 1
    assert data["d"] == 1.7e308 and data["e"] == 90 and data["f"] == 90.5
    assert data["g"] == 1 and data["h"] == 1000


def test_dates_and_explicit_tags_are_plain_values() -> None:
    data = parse_yaml("a: 2001-12-14\nb: '='\nc: =\nd: !!bool true\ne: !!null x\n", "f.yaml")
    assert data == {"a": "2001-12-14", "b": "=", "c": "=", "d": True, "e": None}
    assert only("x: !!bool maybe\n").code == "type"


def test_special_floats_and_huge_integers_in_set_values_are_located() -> None:
    from kgraph_cli.spec.overrides import OVERRIDE_FILE, apply_overrides

    data = parse_yaml("kgraph: 1\nname: a\n", "f.yaml")
    with pytest.raises(SpecError) as info:
        apply_overrides(data, ["name=.nan", "layers.d.units=[1, -.inf]", "x=1" + "0" * 5000])
    found = [
        (d.code, d.location.file, d.location.line, d.location.col) for d in info.value.diagnostics
    ]
    assert found == [
        ("number", OVERRIDE_FILE, 1, 6),
        ("number", OVERRIDE_FILE, 2, 20),
        ("number", OVERRIDE_FILE, 3, 3),
    ]


def test_validate_reports_special_floats_and_huge_integers_as_json_or_text(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from kgraph_cli.cli import app

    spec = tmp_path / "s.yaml"
    huge = "1" + "0" * 5_000  # past Python's 4,300-digit limit of int()
    spec.write_text(
        f"kgraph: 1\nname: .inf\ninputs: {{x: [.nan]}}\nlayers:\n  d: {{units: {huge}}}\n",
        encoding="utf-8",
    )

    def refuse(constant: str) -> None:
        raise AssertionError(f"--json printed {constant}, which is not JSON")

    for args in (
        ["validate", "--json", str(spec)],
        ["validate", "--json", str(spec), "--set", "name=-.inf"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        diagnostics = json.loads(result.stdout, parse_constant=refuse)
        assert [(d["code"], d["line"]) for d in diagnostics] == [
            ("number", 2),
            ("number", 3),
            ("number", 5),
        ]
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert ":5:14: error[number]:" in result.stderr and "(5,001 characters)" in result.stderr


NESTED = {
    "flow-list-500": "x: " + "[" * 500 + "]" * 500,
    "flow-map-500": "x: " + "{a: " * 500 + "}" * 500,
    "flow-unclosed-500": "x: " + "[" * 500,  # a syntax error too: parsed again in pure Python
    "block-map-500": "".join(" " * i + f"k{i}:\n" for i in range(500)) + " " * 500 + "v\n",
    "block-list-500": "x:\n"
    + "".join(" " * (2 * i + 1) + "-\n" for i in range(500))
    + " " * 1001
    + "v\n",
    "compact-list-1000000": "x:\n  " + "- " * 1_000_000 + "v\n",
    "through-aliases": "a0: &a0 "
    + "[" * 60
    + "]" * 60
    + "\n"
    + "".join(f"a{i}: &a{i} " + "[" * 60 + f"*a{i - 1}" + "]" * 60 + "\n" for i in range(1, 40)),
}


@pytest.mark.parametrize("text", NESTED.values(), ids=NESTED.keys())
@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
def test_deep_nesting_is_refused_before_anything_recurses(
    text: str, libyaml: bool, monkeypatch
) -> None:
    from kgraph_cli.spec import loader

    if not libyaml:
        monkeypatch.setattr(loader, "_FastComposer", None)
    diagnostic = only(text)
    assert diagnostic.code == "nesting"
    assert "more than 100 levels" in diagnostic.message
    assert diagnostic.location.line >= 1 and diagnostic.location.col >= 1


def test_deep_nesting_in_set_values_and_key_paths() -> None:
    from kgraph_cli.spec.overrides import apply_overrides

    data = parse_yaml("kgraph: 1\nname: a\n", "f.yaml")
    deep_path = ".".join(["train"] + ["k"] * 200) + "=1"
    with pytest.raises(SpecError) as info:
        apply_overrides(data, ["name=" + "[" * 500 + "]" * 500, "name=" + "{a: " * 300, deep_path])
    assert [(d.code, d.location.line) for d in info.value.diagnostics] == [
        ("nesting", 1),
        ("nesting", 2),
        ("nesting", 3),
    ]
    apply_overrides(data, ["name=" + "[" * 99 + "]" * 99])  # as deep as a spec may go: fine


def bomb(levels: int, width: int = 10) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text",
    [
        bomb(9),  # the billion laughs: 10**9 values from 700 bytes
        bomb(30, width=2),  # 2**30, deeper and narrower
        "a: &a {k: [1, 2, 3, 4, 5, 6, 7, 8]}\n"  # through merge keys
        + "".join(
            f"b{i}: &b{i} {{<<: [" + ", ".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 9) + "]}\n"
            for i in range(12)
        ),
    ],
    ids=["billion-laughs", "binary", "merge-keys"],
)
def test_alias_bombs_are_refused_at_once(text: str) -> None:
    import time

    from kgraph_cli.spec.loader import MAX_VALUES

    start = time.perf_counter()
    diagnostic = only(text)
    elapsed = time.perf_counter() - start
    assert diagnostic.code == "too-large"
    assert f"past {MAX_VALUES:,} values" in diagnostic.message and "alias" in diagnostic.message
    assert diagnostic.location.line >= 2  # at the alias that goes past the limit
    assert elapsed < 2, f"took {elapsed:.1f} s: the aliases were expanded"  # a hang guard


def test_a_document_with_too_many_values_is_refused_where_it_passes_the_limit(monkeypatch) -> None:
    from kgraph_cli.spec import loader

    monkeypatch.setattr(loader, "MAX_VALUES", 1_000)
    diagnostic = only("x:\n" + "- \n" * 2_000)
    assert diagnostic.code == "too-large" and "more than 1,000 values" in diagnostic.message
    assert diagnostic.location.line == 999  # the 1,001st value: after the root, x, the list


@pytest.mark.parametrize(
    "text",
    [
        "kgraph: 1\n" + "\n" * 2_000_000,
        "kgraph: 1\n" + "#\n" * 1_000_000,
        "kgraph: 1\n" + "  \r\n" * 500_000,
        "\n" * 2_000_000 + "kgraph: 1\nx: [\n",  # a syntax error: libyaml's message, not re-parsed
        "kgraph: 1\nx:\n" + "- \n" * 700_000,  # blank scalars, past MAX_VALUES
    ],
    ids=["newlines", "comments", "blank-lines", "syntax-error", "blank-scalars"],
)
def test_two_megabytes_of_nothing_load_or_fail_fast(text: str) -> None:
    import time

    start = time.perf_counter()
    try:
        parse_yaml(text, "big.yaml")
    except SpecError as exc:
        assert exc.diagnostics[0].location.line >= 1
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"took {elapsed:.1f} s"  # a hang guard, not a benchmark


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        ("kgraph: 1\nname: a\x07b\n", (2, 8), "remove the control character U+0007"),
        ("kgraph: 1\r\nname: a\x1bb\r\n", (2, 8), "U+001B"),
        ("kgraph: 1\rname: \x00\r", (2, 7), "binary data"),
        ("kgraph: 1\nname: '\x7f'\n", (2, 8), "U+007F"),
        ("kgraph: 1\nname: \ufffe\n", (2, 7), "U+FFFE"),
        ("kgraph: 1\nname: a\udc80\n", (2, 8), "UTF-8"),  # an undecodable byte from argv
    ],
)
def test_control_characters_are_located_with_a_hint(text: str, where, hint: str) -> None:
    diagnostic = only(text)
    assert diagnostic.code == "encoding"
    assert (diagnostic.location.line, diagnostic.location.col) == where
    assert hint in diagnostic.hint or hint in diagnostic.message


def test_utf16_and_binary_files_are_named_as_such(tmp_path) -> None:
    text = "kgraph: 1\nname: x\n"
    cases = {
        "utf16-no-bom": (text.encode("utf-16-le"), "encoding", (1, 2), "UTF-16"),
        "utf16-bom": (text.encode("utf-16"), "encoding", (1, 1), "UTF-16"),
        "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "encoding", (1, 1), "binary"),
        "zeros": (b"\x00" * 64, "encoding", (1, 1), "binary"),
    }
    for name, (raw, code, where, hint) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(raw)
        with pytest.raises(SpecError) as info:
            load_yaml_file(path)
        [diagnostic] = info.value.diagnostics
        assert diagnostic.code == code, name
        assert (diagnostic.location.line, diagnostic.location.col) == where, name
        assert hint in diagnostic.hint, (name, diagnostic.hint)


def _load_without_hanging(path, seconds: float = 10):
    """load_yaml_file(path) in a thread: a read that blocks fails the test instead
    of hanging it (the thread is a daemon, so pytest still exits)."""
    import threading

    outcome: list = []

    def run() -> None:
        try:
            outcome.append(load_yaml_file(path))
        except SpecError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"reading {path} blocked"
    return outcome[0]


def test_special_files_are_refused_before_reading(tmp_path) -> None:
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # no writer: open() would block
    (tmp_path / "folder.yaml").mkdir()
    paths = {fifo: "a FIFO (named pipe)", tmp_path / "folder.yaml": "directory"}
    for special in ("/dev/zero", "/dev/null", "/dev/stdin"):
        if os.path.exists(special):
            paths[special] = "not a regular file"
    for path, what in paths.items():
        error = _load_without_hanging(path)
        assert isinstance(error, SpecError), path
        [diagnostic] = error.diagnostics
        assert diagnostic.code == "file" and what in diagnostic.message, (path, diagnostic)
        assert diagnostic.location.file == str(path) and diagnostic.hint


def test_includes_of_special_files_are_refused_at_the_include(tmp_path) -> None:
    import os

    from kgraph_cli.spec.assemble import load_spec

    os.mkfifo(tmp_path / "pipe.yaml")
    spec = tmp_path / "spec.yaml"
    spec.write_text("kgraph: 1\ninclude: [pipe.yaml, /dev/zero]\n", encoding="utf-8")
    import threading

    found: list = []
    thread = threading.Thread(target=lambda: found.append(load_spec(spec)[1]), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "an include blocked"
    includes = [d for d in found[0] if d.code == "include"]
    assert [(d.location.line, d.location.col) for d in includes] == [(2, 11), (2, 22)]
    assert "FIFO" in includes[0].message and "character device" in includes[1].message


def test_the_read_itself_is_bounded(tmp_path, monkeypatch) -> None:
    from kgraph_cli.spec import loader

    path = tmp_path / "big.yaml"
    path.write_text("kgraph: 1\n" + "#" * 5_000 + "\n", encoding="utf-8")
    assert len(loader.read_regular_file(path, 100)) == 101  # never more, whatever the size says
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 100)
    diagnostic = _load_without_hanging(path).diagnostics[0]
    assert diagnostic.code == "too-large" and "over 100 bytes" in diagnostic.message


@pytest.mark.parametrize("escape", ["\\x00", "\\0", "\\ud800", "\\x07", "\\e", "\\uFFFF"])
def test_escapes_cannot_make_what_the_text_cannot_hold(escape: str) -> None:
    diagnostic = only(f'kgraph: 1\nname: "a{escape}b"\n')
    assert diagnostic.code == "encoding" and "escape" in diagnostic.hint
    assert (diagnostic.location.line, diagnostic.location.col) == (2, 7)
    assert (
        parse_yaml('a: "tab\\there\\nnewline \\u00e9"\n', "f.yaml")["a"] == "tab\there\nnewline é"
    )


def test_an_include_path_with_a_nul_is_a_located_error(tmp_path) -> None:
    from kgraph_cli.spec.assemble import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text('kgraph: 1\ninclude: "a\\x00b.yaml"\n', encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    [diagnostic] = info.value.diagnostics
    assert diagnostic.code == "encoding" and diagnostic.location.line == 2
