"""The allowed import directions of the README's module map, checked on the
code: the face (cli, options, session, console, progress) sits on the API, the
API on the core, the core never reaches back up; spec/ stays free of numpy,
TensorFlow and the screen; Keras comes in through tf.py. Imports are read
with `ast`, wherever they stand (module level, inside functions, under
TYPE_CHECKING).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "kgraph_cli"
# The typer layer: the commands, the options they share, their session.
TYPER_USERS = {"kgraph_cli.cli", "kgraph_cli.options", "kgraph_cli.session"}
FACE = TYPER_USERS | {"kgraph_cli.console", "kgraph_cli.progress"}
API = "kgraph_cli.api"
# What spec/ may build on: diagnostics, suggestions, the layer catalog.
SPEC_MAY_IMPORT = {
    "kgraph_cli.errors",
    "kgraph_cli.suggest",
    "kgraph_cli.layers",
    "kgraph_cli.keras_classes",
    "kgraph_cli.deep",  # the documented depth limit
    "kgraph_cli.ops_catalog",  # the keras.ops functions op nodes may call
}
# Renderers that build rich objects (plot's terminal tree) for the face to print.
RICH_RENDERERS = {"kgraph_cli.plot.tree"}
# Keras's graph internals: only kgraph_cli/keras_graph.py reads them.
KERAS_PRIVATE = {
    "_keras_history",
    "_inbound_nodes",
    "_nodes_by_depth",
    "_functional",
    "_operations",
    "_initial_epoch",
}
# The modules that read them: the graph adapter, the legacy .h5 loader, and the
# redirection of keras.applications' downloads (keras.src.utils.file_utils).
ADAPTERS = {"kgraph_cli.keras_graph", "kgraph_cli.keras_legacy", "kgraph_cli.keras_cache"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module `path` imports, as written (absolute names)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = {module_name(path): imported(path) for path in sorted(PACKAGE.rglob("*.py"))}


def within(names: set[str], prefixes: set[str]) -> set[str]:
    return {n for n in names if any(n == p or n.startswith(f"{p}.") for p in prefixes)}


def test_the_package_is_read() -> None:
    assert {"kgraph_cli.cli", "kgraph_cli.api", "kgraph_cli.spec.parse"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(set(MODULES) - FACE - {API}))
def test_the_core_never_imports_the_face_or_the_api(module: str) -> None:
    assert not within(MODULES[module], FACE | {API}), module


def test_the_api_does_not_import_the_face() -> None:
    assert not within(MODULES[API], FACE)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_typer_and_rich_belong_to_the_face(module: str) -> None:
    if module not in TYPER_USERS:
        assert not within(MODULES[module], {"typer"}), module
    if module not in FACE | RICH_RENDERERS:
        assert not within(MODULES[module], {"rich"}), module


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("kgraph_cli.spec")))
def test_spec_builds_only_on_errors_suggestions_and_the_catalog(module: str) -> None:
    ours = within(MODULES[module], {"kgraph_cli"})
    allowed = within(ours, SPEC_MAY_IMPORT | {"kgraph_cli.spec"})
    assert ours == allowed, f"{module} imports {sorted(ours - allowed)}"
    heavy = within(MODULES[module], {"numpy", "tensorflow", "keras", "rich", "typer"})
    assert not heavy, f"{module} imports {sorted(heavy)}"


@pytest.mark.parametrize("module", sorted(set(MODULES) - {"kgraph_cli.tf"} - ADAPTERS))
def test_keras_comes_in_through_tf_py(module: str) -> None:
    keras = within(MODULES[module], {"keras"})
    assert not keras, f"{module} imports {sorted(keras)}: use kgraph_cli.tf.import_keras()"


def keras_internals(path: Path) -> set[str]:
    """The private Keras attributes and `keras.src` modules the code uses
    (docstrings and comments aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    used = {name for name in imported(path) if name.startswith("keras.src")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in KERAS_PRIVATE:
            used.add(node.attr)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and "keras.src" in node.value
        ):
            used.add(node.value)
    return used


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=module_name)
def test_only_the_adapter_reads_keras_internals(path: Path) -> None:
    module = module_name(path)
    if module in ADAPTERS:
        return
    used = keras_internals(path)
    assert not used, f"{module} reads {sorted(used)}: add what it needs to keras_graph.py"


def test_the_adapter_is_where_the_internals_are() -> None:
    assert keras_internals(PACKAGE / "keras_graph.py") >= {"_keras_history", "_inbound_nodes"}
