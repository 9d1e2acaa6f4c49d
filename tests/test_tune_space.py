"""The `tune:` section and `--tune PATH=EXPRESSION` read into a TuneSpec
(kgraph_cli/spec/tune.py): every expression kind, every located error, the
settings, durations, directions and the flow text a value is written back as.
Pure Python: no TensorFlow here."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgraph_cli.errors import Location
from kgraph_cli.spec.loader import parse_yaml
from kgraph_cli.spec.tune import (
    EXPRESSION_HINT,
    MAX_TRIALS,
    TUNE_FILE,
    Param,
    TuneSpec,
    flow,
    infer_direction,
    parse_duration,
    parse_tune,
)

FILE = "s.yaml"
EXPR_COL = len("    a.b: ") + 1  # where `a.b`'s expression starts in `space_of`'s text


def space_of(*lines: str) -> str:
    """A spec text whose `tune.space` is `lines` (each indented under it)."""
    return "tune:\n  space:\n" + "".join(f"    {line}\n" for line in lines)


def parse(text: str, entries: tuple[str, ...] = ()):
    data = parse_yaml(text, FILE)
    return parse_tune(data["tune"], list(entries), FILE, data.value_loc("tune"))


def cli(*entries: str):
    return parse_tune(None, list(entries), FILE)


def only(diagnostics):
    assert len(diagnostics) == 1, [d.message for d in diagnostics]
    return diagnostics[0]


def at(loc: Location) -> tuple:
    return (loc.file, loc.line, loc.col, loc.length)


# -- the expressions -------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "kind", "choices", "low", "high", "step", "log", "written"),
    [
        ("choice(32, 64, 128)", "choice", (32, 64, 128), None, None, None, False,
         "choice(32, 64, 128)"),
        ("choice(relu, tanh)", "choice", ("relu", "tanh"), None, None, None, False,
         "choice(relu, tanh)"),
        ("choice([3, 3], [5, 5])", "choice", ([3, 3], [5, 5]), None, None, None, False,
         "choice([3, 3], [5, 5])"),
        ("'choice({type: Adam}, {type: SGD})'", "choice", ({"type": "Adam"}, {"type": "SGD"}),
         None, None, None, False, 'choice({"type": "Adam"}, {"type": "SGD"})'),
        ("choice(true, 1.5, x)", "choice", (True, 1.5, "x"), None, None, None, False,
         "choice(true, 1.5, x)"),
        ("int(1, 8, step=2)", "int", (), 1, 8, 2, False, "int(1, 8, step=2)"),
        ("int(1, 10, log)", "int", (), 1, 10, None, True, "int(1, 10, log)"),
        ("int(3,3)", "int", (), 3, 3, None, False, "int(3, 3)"),
        ("float(0.0001, 0.01, log)", "float", (), 0.0001, 0.01, None, True,
         "float(0.0001, 0.01, log)"),
        ("float(1e-5, 1e-2, log)", "float", (), 1e-05, 0.01, None, True,
         "float(1e-05, 0.01, log)"),
        ("float(0.0, 1.0, step=0.25)", "float", (), 0.0, 1.0, 0.25, False,
         "float(0.0, 1.0, step=0.25)"),
        ("float(1, 2, step = 1)", "float", (), 1.0, 2.0, 1.0, False, "float(1.0, 2.0, step=1.0)"),
        ("bool", "bool", (), None, None, None, False, "bool"),
    ],
)  # fmt: skip
def test_each_expression_kind_is_read_into_its_param(
    expression, kind, choices, low, high, step, log, written
):
    tune, diagnostics = parse(space_of(f"a.b: {expression}"))
    assert diagnostics == []
    (param,) = tune.space
    assert (param.path, param.keys, param.kind) == ("a.b", ["a", "b"], kind)
    assert (param.choices, param.low, param.high, param.step, param.log) == (
        choices, low, high, step, log,
    )  # fmt: skip
    if kind == "float":  # float() bounds and steps are floats even when written as integers
        assert all(isinstance(v, float) for v in (param.low, param.high))
        assert param.step is None or isinstance(param.step, float)
    if kind == "int":
        assert all(type(v) is int for v in (param.low, param.high))
    assert param.when is None
    assert param.expression() == written
    assert at(param.loc) == (FILE, 3, EXPR_COL, len(expression))
    assert at(param.key_loc) == (FILE, 3, 5, 3)


@pytest.mark.parametrize(
    ("expression", "corners", "grid"),
    [
        ("choice(32, 64, 128)", [32, 64, 128], [32, 64, 128]),
        ("choice([3, 3], [5, 5])", [[3, 3], [5, 5]], [[3, 3], [5, 5]]),
        ("'choice({type: Adam}, {type: SGD})'", [{"type": "Adam"}, {"type": "SGD"}],
         [{"type": "Adam"}, {"type": "SGD"}]),
        ("bool", [False, True], [False, True]),
        ("int(2, 5)", [2, 5], [2, 3, 4, 5]),
        ("int(1, 8, step=2)", [1, 7], [1, 3, 5, 7]),  # the last value a step reaches
        ("int(1, 10, log)", [1, 10], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        ("int(3, 3)", [3], [3]),
        ("float(0, 1)", [0.0, 1.0], None),
        ("float(0.0001, 0.01, log)", [0.0001, 0.01], None),
        ("float(0.0, 1.0, step=0.25)", [0.0, 1.0], [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("float(0.1, 0.3, step=0.1)", [0.1, 0.3], [0.1, 0.2, 0.3]),  # 0.1 + 2 * 0.1 rounded
        ("float(0.5, 0.5)", [0.5], None),
    ],
)  # fmt: skip
def test_corners_and_grid_of_each_kind(expression, corners, grid):
    tune, diagnostics = parse(space_of(f"a.b: {expression}"))
    assert diagnostics == []
    (param,) = tune.space
    assert param.corners() == corners
    assert param.grid() == grid


def test_a_spec_without_tune_and_without_entries_searches_nothing():
    tune, diagnostics = parse_tune(None, [], FILE)
    assert diagnostics == []
    assert tune == TuneSpec()
    assert (tune.trials, tune.sampler, tune.pruner, tune.seed, tune.timeout) == (
        20, "tpe", "median", 0, None,
    )  # fmt: skip


# -- the errors of an expression, located at it ----------------------------
@pytest.mark.parametrize(
    ("expression", "message", "hint"),
    [
        ("choise(1, 2)", "unknown search expression 'choise'", "did you mean 'choice'?"),
        ("foo(1)", "unknown search expression 'foo'", EXPRESSION_HINT),
        ("int(5, 1)", "the low bound 5 is above the high bound 1", "write int(1, 5)"),
        ("float(0.5, 0.1)", "the low bound 0.5 is above the high bound 0.1",
         "write float(0.1, 0.5)"),
        ("int(1.5, 3)", "int() takes two integer bounds, got 1.5, 3", "e.g. int(1, 8)"),
        ("int(true, 3)", "int() takes two integer bounds, got true, 3", "e.g. int(1, 8)"),
        ("int(1)", "int() takes two integer bounds, got 1", "e.g. int(1, 8)"),
        ("int(1, 2, 3)", "int() takes two integer bounds, got 1, 2, 3", "e.g. int(1, 8)"),
        ("int(log)", "int() takes two integer bounds, got none", "e.g. int(1, 8)"),
        ("float(a, 1)", "float() takes two number bounds, got a, 1",
         "e.g. float(0.0001, 0.1, log)"),
        ("float(0, 1, log)", "a log scale needs a low bound above 0, got 0", ""),
        ("int(-1, 4, log)", "a log scale needs a low bound above 0, got -1", ""),
        ("float(0.1, 1, log, step=0.1)", "float() cannot take both `log` and a step",
         "a log scale has no fixed step: drop one of them"),
        ("int(1, 4, step=2, log)", "int() cannot take both `log` and a step",
         "a log scale has no fixed step: drop one of them"),
        ("int(1, 4, steps=2)", "unknown option 'steps=2' of int()",
         "the options are `log` and step=N (a positive integer)"),
        ("int(1, 4, step=0)", "unknown option 'step=0' of int()",
         "the options are `log` and step=N (a positive integer)"),
        ("int(1, 4, step=1.5)", "unknown option 'step=1.5' of int()",
         "the options are `log` and step=N (a positive integer)"),
        ("float(0, 1, step=-0.1)", "unknown option 'step=-0.1' of float()",
         "the options are `log` and step=N (a positive number)"),
        ("bool(1)", "bool takes no arguments", "write `bool`"),
        ("choice()", "choice() needs at least one value", "e.g. choice(32, 64, 128)"),
        ("choice(1, 2, 1)", "choice() lists 1 twice", "list each value once"),
        ("choice([3, 3], [3, 3])", "choice() lists [3, 3] twice", "list each value once"),
        ("choice(a, b", "expected a search expression, got string 'choice(a, b'",
         EXPRESSION_HINT),
        ("3", "expected a search expression, got int 3", EXPRESSION_HINT),
        ("choice(.inf, 1)", "cannot read the arguments '.inf, 1'",
         "separate values with commas; quote strings that contain ':' or '#'"),
    ],
)  # fmt: skip
def test_a_bad_expression_is_a_search_space_error_located_at_it(expression, message, hint):
    tune, diagnostics = parse(space_of(f"a.b: {expression}"))
    assert tune.space == ()
    diag = only(diagnostics)
    assert (diag.code, diag.message, diag.hint, diag.path) == (
        "search-space", message, hint, "tune.space.a.b",
    )  # fmt: skip
    assert diag.is_error
    assert at(diag.location) == (FILE, 3, EXPR_COL, len(expression))


def test_a_duplicated_mapping_choice_is_found_whatever_its_key_order():
    tune, diagnostics = cli("a=choice({a: 1, b: 2}, {b: 2, a: 1})")
    assert tune.space == ()
    assert only(diagnostics).message == 'choice() lists {"b": 2, "a": 1} twice'


def test_each_bad_entry_is_reported_and_the_good_ones_kept():
    tune, diagnostics = parse(space_of("a: int(5, 1)", "b: choice(x, y)", "c: bool(2)"))
    assert [p.path for p in tune.space] == ["b"]
    assert [(d.message, d.location.line) for d in diagnostics] == [
        ("the low bound 5 is above the high bound 1", 3),
        ("bool takes no arguments", 5),
    ]


def test_a_path_with_an_empty_key_is_located_at_the_path():
    tune, diagnostics = parse(space_of("a..b: int(1, 2)"))
    diag = only(diagnostics)
    assert (diag.code, diag.message, diag.path) == (
        "search-space", "'a..b' is not a KEY.PATH", "tune.space.a..b",
    )  # fmt: skip
    assert "layers.hidden1.units" in diag.hint
    assert at(diag.location) == (FILE, 3, 5, 4)


# -- entries with `values` and `when` --------------------------------------
def test_a_conditional_entry_names_a_value_of_a_param_searched_before_it():
    text = space_of(
        "opt: choice(Adam, SGD)",
        "mom:",
        "  values: float(0.5, 0.95)",
        "  when: opt=SGD",
    )
    tune, diagnostics = parse(text)
    assert diagnostics == []
    opt, mom = tune.space
    assert (mom.kind, mom.low, mom.high, mom.when) == ("float", 0.5, 0.95, ("opt", "SGD"))
    assert at(mom.loc) == (FILE, 5, 15, len("float(0.5, 0.95)"))
    assert at(mom.key_loc) == (FILE, 4, 5, 3)
    assert at(mom.when_loc) == (FILE, 6, 13, len("opt=SGD"))
    assert opt.when is None
    assert tune.param("mom") is mom and tune.param("nope") is None


@pytest.mark.parametrize(
    ("searched", "when", "value"),
    [
        ("choice(1, 2, 3)", "c=1, 2", [1, 2]),  # any of several values
        ("choice([3, 3], [5, 5])", "c=[[3, 3]]", [[3, 3]]),  # a list value: one of a list
        ("int(1, 5)", "c=5", 5),
        ("float(0.0, 1.0)", "c=0.5", 0.5),
        ("bool", "c=true", True),
    ],
)
def test_when_may_name_any_value_the_other_param_takes(searched, when, value):
    tune, diagnostics = parse(space_of(f"c: {searched}", "d:", "  values: bool", f"  when: {when}"))
    assert diagnostics == []
    assert tune.param("d").when == ("c", value)


def test_an_entry_without_values_is_missing_at_the_entry():
    tune, diagnostics = parse(space_of("a.b:", "  when: x=1"))
    assert tune.space == ()
    diag = only(diagnostics)
    assert (diag.code, diag.message, diag.path) == (
        "missing", "the entry has no `values`", "tune.space.a.b",
    )  # fmt: skip
    assert diag.hint.startswith("e.g. `values: int(1, 4)`; ")
    assert (diag.location.line, diag.location.col) == (4, 7)


@pytest.mark.parametrize(
    ("when", "message", "length"),
    [
        ("3", "when must be PATH=VALUE, got int 3", 1),
        ("[x]", "when must be PATH=VALUE, got a list", 3),
    ],
)
def test_a_when_that_is_not_a_string_is_a_type_error_at_it(when, message, length):
    tune, diagnostics = parse(space_of("a.b:", "  values: int(1, 2)", f"  when: {when}"))
    assert tune.space == ()
    diag = only(diagnostics)
    assert (diag.code, diag.message, diag.path) == ("type", message, "tune.space.a.b.when")
    assert at(diag.location) == (FILE, 5, 13, length)


def test_a_when_without_a_value_is_located_at_it():
    tune, diagnostics = parse(space_of("c: choice(1, 2)", "a:", "  values: bool", "  when: c"))
    assert [p.path for p in tune.space] == ["c"]
    diag = only(diagnostics)
    assert (diag.code, diag.message, diag.path) == (
        "search-space", "when must be PATH=VALUE, got 'c'", "tune.space.a",
    )  # fmt: skip
    assert diag.hint == "e.g. when: train.compile.optimizer.type=SGD"
    assert at(diag.location) == (FILE, 6, 13, 1)


def test_a_when_naming_a_param_not_searched_is_located_at_it():
    tune, diagnostics = parse(space_of("a.b:", "  values: int(1, 2)", "  when: x=1"))
    diag = only(diagnostics)
    assert (diag.code, diag.message, diag.path) == (
        "search-space", "when names 'x', which is not searched", "tune.space.a.b",
    )  # fmt: skip
    assert diag.hint == "search 'x' too, e.g. x: choice(...)"
    assert at(diag.location) == (FILE, 5, 13, 3)


def test_a_when_naming_a_param_searched_after_it_says_before_it():
    text = space_of("a.b:", "  values: int(1, 2)", "  when: c=1", "c: choice(1, 2)")
    tune, diagnostics = parse(text)
    assert [p.path for p in tune.space] == ["a.b", "c"]
    diag = only(diagnostics)
    assert diag.message == "when names 'c', which is not searched before it"
    assert diag.hint == "list the value it depends on first"
    assert at(diag.location) == (FILE, 5, 13, 3)


@pytest.mark.parametrize(
    ("searched", "when", "message"),
    [
        ("choice(1, 2)", "c=3", "when c=3, but 'c' is choice(1, 2)"),
        ("int(1, 5)", "c=9", "when c=9, but 'c' is int(1, 5)"),
        ("float(0.0, 1.0)", "c=x", "when c=x, but 'c' is float(0.0, 1.0)"),
        ("bool", "c=yes", "when c=yes, but 'c' is bool"),
    ],
)
def test_a_when_naming_a_value_the_other_param_cannot_take(searched, when, message):
    tune, diagnostics = parse(space_of(f"c: {searched}", "d:", "  values: bool", f"  when: {when}"))
    diag = only(diagnostics)
    assert (diag.code, diag.message, diag.path) == ("search-space", message, "tune.space.d")
    assert diag.hint == "name a value the other param can take"
    assert at(diag.location) == (FILE, 6, 13, len(when))


def test_an_unknown_key_of_an_entry_has_a_did_you_mean():
    tune, diagnostics = parse(space_of("c: choice(1, 2)", "a:", "  values: bool", "  wen: c=1"))
    assert [p.path for p in tune.space] == ["c", "a"]
    diag = only(diagnostics)
    assert (diag.code, diag.message, diag.path, diag.hint) == (
        "unknown-key", "unknown key 'wen' in a space entry", "tune.space.a.wen",
        "did you mean 'when'?",
    )  # fmt: skip
    assert at(diag.location) == (FILE, 6, 7, 3)


# -- the settings ----------------------------------------------------------
def test_the_settings_are_read_with_their_locations():
    text = (
        "tune:\n  trials: 100000\n  seed: 3\n  timeout: 10m\n  objective: val_auc\n"
        "  direction: minimize\n  sampler: grid\n  pruner: none\n"
    )
    tune, diagnostics = parse(text)
    assert diagnostics == []
    assert (tune.trials, tune.seed, tune.timeout) == (MAX_TRIALS, 3, 600.0)
    assert tune.objective == "val_auc"
    assert (tune.direction, tune.sampler, tune.pruner) == ("minimize", "grid", "none")
    assert at(tune.locs["trials"]) == (FILE, 2, 11, 6)
    assert at(tune.locs["timeout"]) == (FILE, 4, 12, 3)
    assert at(tune.locs["objective"]) == (FILE, 5, 14, 7)
    assert tune.direction_of("val_accuracy") == "minimize"  # written beats inferred


def test_the_objective_and_direction_default_by_the_data():
    tune = TuneSpec()
    assert (tune.objective_name(True), tune.objective_name(False)) == ("val_loss", "loss")
    assert tune.direction_of("val_accuracy") == "maximize"
    assert tune.direction_of("val_loss") == "minimize"


@pytest.mark.parametrize(
    ("setting", "code", "message", "col", "length"),
    [
        ("trials: 0", "type", "trials must be an integer >= 1, got int 0", 11, 1),
        ("trials: 2.5", "type", "trials must be an integer >= 1, got float 2.5", 11, 3),
        ("trials: true", "type", "trials must be an integer >= 1, got boolean true", 11, 4),
        (f"trials: {MAX_TRIALS + 1}", "type", "tune.trials is at most 100,000, got 100,001", 11, 6),
        ("seed: -1", "type", "seed must be an integer >= 0, got int -1", 9, 2),
        ("sampler: tp", "unknown-value",
         "tune.sampler must be one of tpe, random, grid, cmaes, got 'tp'", 12, 2),
        ("pruner: medain", "unknown-value",
         "tune.pruner must be one of median, hyperband, none, got 'medain'", 11, 6),
        ("direction: up", "unknown-value",
         "tune.direction must be one of minimize, maximize, got 'up'", 14, 2),
        ("timeout: ten", "type",
         "tune.timeout must be a positive number of seconds, or 90s, 10m, 2h, got string 'ten'",
         12, 3),
        ("timeout: 5d", "type",
         "tune.timeout must be a positive number of seconds, or 90s, 10m, 2h, got string '5d'",
         12, 2),
        ("timeout: 0", "type",
         "tune.timeout must be a positive number of seconds, or 90s, 10m, 2h, got int 0", 12, 1),
        ("objective: 3", "type", "objective must be a string, got int 3", 14, 1),
        ("trails: 3", "unknown-key", "unknown key 'trails' in tune", 3, 6),
        ("space: [1]", "type",
         "tune.space must be a mapping of KEY.PATH to an expression, got a list", 10, 3),
    ],
)  # fmt: skip
def test_a_bad_setting_is_located_at_it(setting, code, message, col, length):
    key = setting.split(":")[0]
    tune, diagnostics = parse(f"tune:\n  {setting}\n")
    diag = only(diagnostics)
    assert (diag.code, diag.message) == (code, message)
    assert diag.path == f"tune.{key}"
    assert at(diag.location) == (FILE, 2, col, length)
    assert tune == TuneSpec()  # the bad value is not kept: the default stands


def test_an_unknown_tune_key_suggests_the_close_one():
    _, diagnostics = parse("tune:\n  trails: 3\n")
    assert only(diagnostics).hint == "did you mean 'trials'?"


def test_tune_that_is_not_a_mapping_is_a_type_error():
    tune, diagnostics = parse("tune: [1, 2]\n")
    diag = only(diagnostics)
    assert (diag.code, diag.path) == ("type", "tune")
    assert diag.message == "tune must be a mapping, got a list"
    assert diag.hint == "e.g. `tune: {space: {layers.hidden1.units: choice(32, 64)}}`"
    assert at(diag.location) == (FILE, 1, 7, 6)
    assert tune == TuneSpec()


def test_a_scalar_tune_is_located_at_its_value():
    _, diagnostics = parse("tune: 3\n")
    diag = only(diagnostics)
    assert diag.message == "tune must be a mapping, got int 3"
    assert (diag.location.line, diag.location.col) == (1, 7)


@pytest.mark.parametrize("key", ["sampler", "pruner", "direction"])
def test_an_empty_setting_is_an_unknown_value(key):
    _, diagnostics = parse(f'tune:\n  {key}: ""\n')
    assert only(diagnostics).code == "unknown-value"


# -- --tune entries ----------------------------------------------------------
def test_tune_entries_are_located_in_their_argument():
    tune, diagnostics = cli("a.b=choice(1, 2)", "layers.h.units=int(8, 64, step=8)")
    assert diagnostics == []
    first, second = tune.space
    assert (first.path, first.choices) == ("a.b", (1, 2))
    assert at(first.loc) == (TUNE_FILE, 1, 5, len("choice(1, 2)"))
    assert at(first.key_loc) == (TUNE_FILE, 1, 1, 3)
    assert (second.path, second.low, second.high, second.step) == ("layers.h.units", 8, 64, 8)
    assert at(second.loc) == (TUNE_FILE, 2, 16, len("int(8, 64, step=8)"))
    assert at(second.key_loc) == (TUNE_FILE, 2, 1, len("layers.h.units"))


def test_an_error_in_a_tune_entry_is_at_its_line_and_column():
    tune, diagnostics = cli("x=int(1, 2)", "a.b=int(5, 1)")
    assert [p.path for p in tune.space] == ["x"]
    diag = only(diagnostics)
    assert (diag.code, diag.message, diag.path) == (
        "search-space", "the low bound 5 is above the high bound 1", "a.b",
    )  # fmt: skip
    assert at(diag.location) == (TUNE_FILE, 2, 5, len("int(5, 1)"))


def test_an_unknown_expression_in_a_tune_entry_suggests_choice():
    _, diagnostics = cli("a.b=choise(1)")
    diag = only(diagnostics)
    assert (diag.message, diag.hint) == (
        "unknown search expression 'choise'",
        "did you mean 'choice'?",
    )
    assert at(diag.location) == (TUNE_FILE, 1, 5, len("choise(1)"))


def test_a_tune_entry_with_a_condition():
    tune, diagnostics = cli("opt=choice(Adam, SGD)", "mom=float(0.5, 0.95) when opt=SGD")
    assert diagnostics == []
    mom = tune.param("mom")
    assert (mom.kind, mom.low, mom.high, mom.when) == ("float", 0.5, 0.95, ("opt", "SGD"))
    assert at(mom.loc) == (TUNE_FILE, 2, 5, len("float(0.5, 0.95)"))
    col = len("mom=float(0.5, 0.95) when ") + 1
    assert at(mom.when_loc) == (TUNE_FILE, 2, col, len("opt=SGD"))


def test_a_tune_entry_condition_on_a_value_not_searched_is_at_the_condition():
    _, diagnostics = cli("opt=choice(Adam, SGD)", "mom=float(0.5, 0.95) when opt=Adagrad")
    diag = only(diagnostics)
    assert (diag.code, diag.message, diag.path) == (
        "search-space", "when opt=Adagrad, but 'opt' is choice(Adam, SGD)", "tune.space.mom",
    )  # fmt: skip
    col = len("mom=float(0.5, 0.95) when ") + 1
    assert at(diag.location) == (TUNE_FILE, 2, col, len("opt=Adagrad"))


def test_a_tune_entry_condition_on_a_later_entry_says_before_it():
    _, diagnostics = cli("mom=float(0.5, 0.95) when opt=SGD", "opt=choice(Adam, SGD)")
    diag = only(diagnostics)
    assert diag.message == "when names 'opt', which is not searched before it"
    assert (diag.location.file, diag.location.line) == (TUNE_FILE, 1)


def test_a_tune_entry_without_a_condition_value_is_at_the_condition():
    _, diagnostics = cli("a=choice(1, 2)", "m=int(1, 2) when a")
    diag = only(diagnostics)
    assert diag.message == "when must be PATH=VALUE, got 'a'"
    assert at(diag.location) == (TUNE_FILE, 2, len("m=int(1, 2) when ") + 1, 1)


def test_a_tune_entry_replaces_the_sections_entry_at_its_path():
    text = space_of("a: choice(1, 2)", "b: int(1, 2)")
    tune, diagnostics = parse(text, ("a=choice(3, 4)", "c=bool"))
    assert diagnostics == []
    assert sorted(p.path for p in tune.space) == ["a", "b", "c"]
    a = tune.param("a")
    assert a.choices == (3, 4)
    assert at(a.loc) == (TUNE_FILE, 1, 3, len("choice(3, 4)"))
    assert at(tune.param("b").loc) == (FILE, 4, 8, len("int(1, 2)"))


def test_a_tune_entry_replacing_a_section_entry_keeps_its_place():
    text = space_of(
        "opt: choice(Adam, SGD)", "mom:", "  values: float(0.5, 0.95)", "  when: opt=SGD"
    )
    tune, diagnostics = parse(text, ("opt=choice(SGD, RMSprop)",))
    assert [d.message for d in diagnostics] == []
    assert [p.path for p in tune.space] == ["opt", "mom"]


def test_a_quoted_choice_value_containing_when_is_not_a_condition():
    tune, diagnostics = cli('a=choice("go when ready", stop)')
    assert diagnostics == []
    assert tune.param("a").choices == ("go when ready", "stop")


@pytest.mark.parametrize(
    ("entry", "length"),
    [("units", 5), ("a.b=", 3), ("=int(1, 2)", 1), ("a.b=   ", 3)],
)
def test_a_malformed_tune_entry_is_a_search_space_error(entry, length):
    tune, diagnostics = cli("x=bool", entry)
    assert [p.path for p in tune.space] == ["x"]
    diag = only(diagnostics)
    assert (diag.code, diag.message) == (
        "search-space",
        f"expected KEY.PATH=EXPRESSION, got '{entry}'",
    )
    assert diag.hint == "e.g. --tune 'layers.hidden1.units=choice(32, 64, 128)'"
    assert at(diag.location) == (TUNE_FILE, 2, 1, length)


def test_a_tune_entry_with_an_empty_key_is_located_at_the_path():
    _, diagnostics = cli("a..b=int(1, 2)")
    diag = only(diagnostics)
    assert (diag.code, diag.message) == ("search-space", "'a..b' is not a KEY.PATH")
    assert at(diag.location) == (TUNE_FILE, 1, 1, 4)


# -- durations and directions ------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (2.5, 2.5), ("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("2h", 7200.0),
     ("1.5m", 90.0), (" 5 m ", 300.0)],
)  # fmt: skip
def test_parse_duration_reads_seconds_minutes_and_hours(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-3", "ten", "5d", "", "1e3", 0, -3, True, None, "0s"])
def test_parse_duration_refuses_what_is_not_a_positive_duration(text):
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("val_loss", "minimize"),
        ("loss", "minimize"),
        ("mse", "minimize"),
        ("val_mae", "minimize"),
        ("mean_absolute_error", "minimize"),
        ("val_root_mean_squared_error", "minimize"),
        ("binary_crossentropy", "minimize"),
        ("val_kl_divergence", "minimize"),
        ("squared_hinge", "minimize"),
        ("VAL_LOSS", "minimize"),
        ("val_accuracy", "maximize"),
        ("accuracy", "maximize"),
        ("auc", "maximize"),
        ("val_auc", "maximize"),
        ("precision", "maximize"),
        ("recall", "maximize"),
        ("val_sparse_categorical_accuracy", "maximize"),
    ],
)
def test_infer_direction_by_the_metric_name(metric, direction):
    assert infer_direction(metric) == direction


@pytest.mark.parametrize("metric", ["mape", "val_msle", "val_poisson"])
def test_error_metrics_named_by_their_short_keras_names_are_minimized(metric):
    assert infer_direction(metric) == "minimize"


# -- flow: a value as --set takes it back ----------------------------------
def read_back(value):
    return parse_yaml("value: " + flow(value), "x")["value"]


@pytest.mark.parametrize(
    "value",
    [3, -7, 0, 1.5, 2.0, 1e-05, 1e16, -0.0, True, False, None, "relu", "a/b.c-d", "_x",
     "a: b", "yes", "no", "on", "~", "", " x", "#x", "a b", "a,b", "1", "1.5", "1e3", "x=1",
     "2001-01-01", "it's", 'q"q', "a\\b", "\u00e9t\u00e9", "nan", ".inf",
     [1, "a: b", [2]], [], {}, {"type": "Adam", "k": [3, 3]}, {"a b": 1}],
)  # fmt: skip
def test_flow_round_trips_through_yaml(value):
    back = read_back(value)
    assert back == value
    assert type(back) is type(value) or isinstance(value, list | dict)


def test_flow_writes_one_line():
    assert flow(1e-05) == "1e-05"
    assert flow("a: b") == '"a: b"'
    assert flow({"type": "Adam"}) == '{"type": "Adam"}'
    assert flow([3, 3]) == "[3, 3]"
    assert "\n" not in flow("a\nb") and read_back("a\nb") == "a\nb"


@pytest.mark.parametrize("value", ["true", "False", "null", "NULL"])
def test_flow_quotes_strings_that_yaml_reads_as_booleans_or_null(value):
    assert read_back(value) == value


def test_a_float_step_grid_stays_within_its_bounds():
    param = Param("a", "float", low=0.0, high=1.0, step=0.6)
    assert param.grid() == [0.0, 0.6]


# -- property: a param's expression reads back as the same param -------------
# Any word, the ones YAML reads as booleans or null and ' when ' included.
_RESERVED: set[str] = set()
_words = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8),
).filter(lambda s: s not in _RESERVED)
_paths = st.from_regex(r"[a-z][a-z0-9_]{0,5}(\.[a-z0-9_]{1,5}){0,3}", fullmatch=True)
_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def params(draw) -> Param:
    path = draw(_paths)
    kind = draw(st.sampled_from(["choice", "int", "float", "bool"]))
    if kind == "bool":
        return Param(path, "bool")
    if kind == "choice":
        values = st.one_of(st.integers(-1000, 1000), _words)
        choices = draw(st.lists(values, min_size=1, max_size=6, unique_by=json.dumps))
        return Param(path, "choice", choices=tuple(choices))
    option = draw(st.sampled_from(["none", "step", "log"]))
    if kind == "int":
        low = draw(st.integers(1 if option == "log" else -1000, 1000))
        high = low + draw(st.integers(0, 1000))
        step = draw(st.integers(1, 50)) if option == "step" else None
    else:
        low = draw(_floats.filter(lambda v: v > 0) if option == "log" else _floats)
        high = draw(st.floats(min_value=low, allow_nan=False, allow_infinity=False))
        step = draw(st.floats(min_value=1e-6, max_value=1e6)) if option == "step" else None
    return Param(path, kind, low=low, high=high, step=step, log=option == "log")


@settings(max_examples=60, deadline=None, database=None)
@given(param=params())
def test_a_params_expression_reads_back_as_the_same_param(param):
    tune, diagnostics = parse_tune(None, [f"{param.path}={param.expression()}"], "x")
    assert [d.message for d in diagnostics] == []
    (back,) = tune.space
    assert back.path == param.path
    assert (back.kind, back.choices, back.low, back.high, back.step, back.log) == (
        param.kind, param.choices, param.low, param.high, param.step, param.log,
    )  # fmt: skip
    assert back.expression() == param.expression()


def test_the_corner_rounds_cover_every_value_in_few_validations():
    from kgraph_cli.tune.corners import MAX_ROUNDS, holds, rounds

    text = space_of(
        "a: choice(1, 2, 3)",
        "b: bool",
        "opt: choice(Adam, SGD)",
        "mom:",
        "  values: float(0.5, 0.95)",
        "  when: opt=SGD",
        "big: int(0, 999, step=1)",
        "many: choice(" + ", ".join(str(i) for i in range(40)) + ")",
    )
    tune, diagnostics = parse(text)
    assert diagnostics == []
    plans = rounds(tune)
    assert len(plans) == MAX_ROUNDS  # the 40 choices spread; mom within SGD's rounds
    for param in tune.space:
        seen = {json.dumps(v) for plan in plans for p, v in plan if p.path == param.path}
        corners = param.corners()
        if len(corners) <= MAX_ROUNDS:
            assert seen == {json.dumps(c) for c in corners}, param.path
        else:
            assert {json.dumps(corners[0]), json.dumps(corners[-1])} <= seen
            assert len(seen) == MAX_ROUNDS
    for plan in plans:
        chosen = {p.path: v for p, v in plan}
        assert all(holds(p, chosen) for p, _ in plan)
