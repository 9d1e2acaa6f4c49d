"""Diagnostic codes are one enumeration (errors.Code): the code uses no code
that is not in it, every code is used somewhere, and the golden corpus's
codes are all known. Read from the code with `ast`: the first argument of
`Diagnostic(...)`, `SpecError.at(...)`, `BindProblem(...)` and of the
collectors' `error(...)`/`warn(...)`/`at_node(...)`, the code argument of the
builder's `_fail(...)`, `code=` arguments and defaults, and KgraphError
classes' `code = ...`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from kgraph_cli.errors import Code
from tests.conftest import REPO
from tests.golden import cases, expected_path

PACKAGE = REPO / "kgraph_cli"
# Calls whose first argument is a code.
CODE_FIRST = {"Diagnostic", "BindProblem", "at", "at_node", "error", "_error", "warn", "warning"}
# `f"unknown-{singular}"` in spec/train/parse.py, for each kind of Keras object.
OBJECT_CODES = {
    f"unknown-{kind}" for kind in ("optimizer", "loss", "metric", "callback", "schedule")
}


def _strings(node: ast.AST) -> set[str]:
    """A code expression's possible values: a string, either branch of `a if c else b`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        return OBJECT_CODES if text == "unknown-" else {f"<f-string {ast.unparse(node)}>"}
    return set()


def codes_used(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in CODE_FIRST and node.args:
                found |= _strings(node.args[0])
            if name == "_fail" and len(node.args) >= 3:  # build.py: (model, node, code, ...)
                found |= _strings(node.args[2])
            for keyword in node.keywords:
                if keyword.arg == "code":
                    found |= _strings(keyword.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = args.args[len(args.args) - len(args.defaults) :]
            for arg, default in (
                *zip(positional, args.defaults, strict=True),
                *zip(args.kwonlyargs, args.kw_defaults, strict=True),
            ):
                if arg.arg == "code" and default is not None:
                    found |= _strings(default)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "code" for t in node.targets
        ):
            found |= _strings(node.value)
    return found


USED = {code for path in sorted(PACKAGE.rglob("*.py")) for code in codes_used(path)}


def test_the_code_uses_only_known_codes() -> None:
    unknown = USED - {code.value for code in Code}
    assert not unknown, f"add these to kgraph_cli.errors.Code: {sorted(unknown)}"


def test_every_known_code_is_used() -> None:
    unused = {code.value for code in Code} - USED
    assert not unused, f"Code lists codes nothing reports: {sorted(unused)}"


def test_the_golden_corpus_reports_known_codes() -> None:
    golden = {
        code
        for case in cases()
        for code in re.findall(r"(?:error|warning)\[([a-z-]+)\]", expected_path(case).read_text())
    }
    assert golden, "the golden corpus has cases"
    assert golden <= {code.value for code in Code}, golden - {code.value for code in Code}


# Codes no golden case can show: `kgraph validate FILE` alone never reports
# them (they need another argument, a huge file, data, or training), so
# other tests cover them.
BEYOND_THE_GOLDEN_CORPUS = {
    "file": "a missing or unreadable spec file (test_loader.py)",
    "too-large": "a file over 20 MB or an alias bomb (test_loader.py)",
    "too-deep": "a graph over 20,000 layers: a 1 MB spec (test_deep.py)",
    "plugin": "a --plugin that does not import (test_cli.py)",
    "callback": "a callback Keras refuses at train time (test_train.py)",
    "data": "the data checks of train, evaluate and predict (test_train.py, test_sources.py)",
    "data-missing": "a source field the data does not have (test_sources.py)",
    "label-range": "labels outside an output's classes (test_train.py)",
    "error": "an error of no particular kind (test_json_output.py)",
    "usage": "a command-line usage error (test_json_output.py)",
    "missing-dependency": "TensorFlow, Graphviz or an extra not installed (test_plot.py)",
    "write": "a write that fails part-way (test_outputs.py)",
    "training": "Keras refusing to train (test_train.py)",
    "interrupted": "Ctrl-C during training (test_train.py)",
    "peer-lost": "a multi-worker run that lost a worker (test_distribute.py)",
    "distribute": "a strategy TF_CONFIG or this machine cannot provide (test_distribute.py)",
}


def test_every_code_of_validate_has_a_golden_case() -> None:
    golden = {
        code
        for case in cases()
        for code in re.findall(r"(?:error|warning)\[([a-z-]+)\]", expected_path(case).read_text())
    }
    known = {code.value for code in Code}
    assert set(BEYOND_THE_GOLDEN_CORPUS) <= known
    missing = known - golden - set(BEYOND_THE_GOLDEN_CORPUS)
    assert not missing, f"add a case to tests/invalid/ for {sorted(missing)}"
    assert not golden & set(BEYOND_THE_GOLDEN_CORPUS), "a golden case shows it: drop it above"
