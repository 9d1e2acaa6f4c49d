"""Deep graphs: every command on a 5,000-layer Dense chain, structural checks
on 20,000 nodes, and a located error past the deepest graph kgraph builds.

Python's default recursion limit (1,000 frames) used to end these in a
RecursionError at about 970 layers; see kgraph_cli/deep.py for where Keras
recurses and why kgraph raises the limit in the calling thread.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from kgraph_cli.cli import app
from kgraph_cli.deep import MAX_DEPTH, ModelTooDeepError, deep_recursion

DEPTH = 5_000
PARAMS = DEPTH * (2 * 2 + 2)  # Dense(2) on 2 features: a 2x2 kernel and 2 biases
TRAIN = """\
train:
  data: {source: {generated: 64}}
  compile: {optimizer: sgd, loss: mse}
  fit: {batch_size: 64, epochs: 1}
"""


def chain_spec(layers: int, train: bool = False) -> str:
    """A plain chain: input x, then d0 .. d{layers-1}, each a Dense(2) of the one before."""
    lines = ["kgraph: 1", f"name: chain{layers}", "inputs:", "  x: {shape: [2]}", "layers:"]
    previous = "x"
    for i in range(layers):
        lines.append(f"  d{i}: {{type: Dense, units: 2, from: {previous}}}")
        previous = f"d{i}"
    lines.append(f"outputs: [{previous}]")
    return "\n".join(lines) + "\n" + (TRAIN if train else "")


def invoke(runner: CliRunner, *args: str | Path) -> Result:
    """Run kgraph in-process; fail on a nonzero exit code or any traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "RecursionError" not in output, output[-2000:]
    assert result.exit_code == 0, (result.exception, output[-2000:])
    return result


# -- pure Python: no TensorFlow -------------------------------------------------


def test_structural_validation_of_a_20000_node_chain(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "chain.yaml"
    path.write_text(chain_spec(20_000), encoding="utf-8")
    result = invoke(runner, "validate", "--no-build", path)
    assert "structure valid (1 model(s): chain20000)" in result.stdout


def test_a_chain_deeper_than_kgraph_builds_is_a_located_error(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "chain.yaml"
    path.write_text(chain_spec(MAX_DEPTH + 1), encoding="utf-8")
    result = runner.invoke(app, ["validate", "--no-build", str(path)])
    assert result.exit_code == 1, result.output
    # The first node past the limit: line 6 holds d0.
    line = 6 + MAX_DEPTH
    assert f"{path}:{line}:3: error[too-deep]: layers.d{MAX_DEPTH}: " in result.stderr
    assert f"is {MAX_DEPTH + 1:,} layers deep" in result.stderr
    assert "Traceback" not in result.output
    assert result.stderr.count("error[") == 1


def test_a_long_chain_of_sharers_and_a_cycle_of_them(runner: CliRunner, tmp_path: Path) -> None:
    # s0 shares s1's layer, s1 shares s2's ... the last shares `base`: one
    # 3,000-step walk to the layer's owner (it used to be a recursion).
    count = 3_000
    lines = ["kgraph: 1", "inputs:", "  x: {shape: [2]}", "layers:"]
    lines.append("  base: {type: Dense, units: 2, from: x}")
    for i in range(count):
        owner = f"s{i + 1}" if i + 1 < count else "base"
        lines.append(f"  s{i}: {{share: {owner}, from: {f's{i - 1}' if i else 'base'}}}")
    lines.append(f"outputs: [s{count - 1}]")
    chain = tmp_path / "sharers.yaml"
    chain.write_text("\n".join(lines) + "\n", encoding="utf-8")
    invoke(runner, "validate", "--no-build", chain)

    cycle = tmp_path / "cycle.yaml"
    cycle.write_text(
        "kgraph: 1\ninputs:\n  x: {shape: [2]}\nlayers:\n"
        "  a: {share: b, from: x}\n  b: {share: a, from: x}\n"
        "  c: {type: Add, from: [a, b]}\noutputs: [c]\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["validate", "--no-build", str(cycle)])
    assert result.exit_code == 1, result.output
    assert f"{cycle}:5:14: error[cycle]: layers.a.share: shared layers in a cycle: a -> b -> a" in (
        result.stderr
    )
    assert result.stderr.count("error[") == 1  # one cycle, reported once
    assert "Traceback" not in result.output


def test_models_calling_models_many_levels_deep(runner: CliRunner, tmp_path: Path) -> None:
    # m0 calls m1, which calls m2 ... : the model order is a 1,500-level walk.
    count = 1_500
    lines = ["kgraph: 1", "default: m0", "models:"]
    for i in range(count):
        lines += [f"  m{i}:", "    inputs: {x: [2]}"]
        if i + 1 < count:
            lines.append(f"    layers: {{inner: {{model: m{i + 1}, from: x}}}}")
        else:
            lines.append("    layers: {inner: {type: Dense, units: 2, from: x}}")
        lines.append("    outputs: [inner]")
    path = tmp_path / "nested.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke(runner, "validate", "--no-build", path)
    assert f"structure valid ({count} model(s)" in result.stdout


def _descend(levels: int) -> int:
    return 0 if levels == 0 else 1 + _descend(levels - 1)


def test_deep_recursion_makes_room_only_as_needed_and_turns_overflow_into_a_message() -> None:
    before = sys.getrecursionlimit()
    with deep_recursion(10):
        assert sys.getrecursionlimit() == before  # ordinary graphs: nothing changes
    with deep_recursion(5_000):
        assert _descend(5_000) == 5_000  # Keras's walk: one frame per layer
    assert sys.getrecursionlimit() == before
    with pytest.raises(ModelTooDeepError, match="supports graphs up to 20,000 layers deep"):
        with deep_recursion(100, what="model 'm'"):
            _descend(10**9)  # runs out of frames long before
    assert sys.getrecursionlimit() == before


# -- TensorFlow: every command on the 5,000-layer chain ----------------------------


@pytest.fixture(scope="module")
def deep_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("deep") / "chain.yaml"
    path.write_text(chain_spec(DEPTH, train=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def _built_models() -> dict[tuple[str, str], Any]:
    return {}


@pytest.fixture
def built_once(monkeypatch: pytest.MonkeyPatch, _built_models: dict[tuple[str, str], Any]) -> None:
    """Each spec model is built once for the tests that ask for this.

    Creating 5,000 Keras layers and their variables takes about 15 s, the
    same in every command; the first build runs Keras's recursive graph map
    (kgraph_cli/deep.py), later commands still run all of kgraph's own code
    on the model (`train` compiles and fits it: whatever runs after sees a
    trained model, which changes no assertion). `load` reads what `save` wrote.
    """
    from kgraph_cli.build import ModelBuilder

    build_model = ModelBuilder._build_model

    def build_once(self: ModelBuilder, name: str, instance_name: str | None = None) -> Any:
        if instance_name is not None:  # a nested instance: new layers every time
            return build_model(self, name, instance_name)
        key = (self.spec.file, name)
        if key not in _built_models:
            _built_models[key] = build_model(self, name)
        return _built_models[key]

    monkeypatch.setattr(ModelBuilder, "_build_model", build_once)


@pytest.fixture
def eager_functions() -> Iterator[None]:
    """Train without tracing: TensorFlow's graph optimizer spends about 8
    minutes on a 5,000-layer training step (README, Speed), none of it
    kgraph's; tracing itself needs no deep recursion (kgraph_cli/deep.py)."""
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


@pytest.mark.tf
def test_validate_and_summarize_a_5000_layer_chain(
    runner: CliRunner, deep_spec: Path, built_once: None
) -> None:
    result = invoke(runner, "validate", deep_spec)
    assert f"valid (1 model(s): chain{DEPTH})" in result.stdout

    facts = json.loads(invoke(runner, "summary", "--json", deep_spec).stdout)
    assert len(facts["layers"]) == DEPTH + 1  # and the InputLayer
    assert facts["total_params"] == PARAMS
    assert facts["layers"][-1]["name"] == f"d{DEPTH - 1}"
    assert facts["layers"][-1]["connected_to"] == [f"d{DEPTH - 2}"]

    table = invoke(runner, "summary", deep_spec).stdout
    assert f"Total params: {PARAMS:,}" in table
    assert f"d{DEPTH - 1}" in table


@pytest.mark.tf
def test_plot_a_5000_layer_chain(runner: CliRunner, deep_spec: Path, built_once: None) -> None:
    out = deep_spec.parent
    invoke(runner, "plot", deep_spec, "-o", out / "chain.dot")
    dot = (out / "chain.dot").read_text(encoding="utf-8")
    assert dot.count(" -> ") == DEPTH  # x -> d0, d0 -> d1, ...
    assert f'"d{DEPTH - 2}" -> "d{DEPTH - 1}";' in dot

    invoke(runner, "plot", deep_spec, "-o", out / "chain.mmd")
    mermaid = (out / "chain.mmd").read_text(encoding="utf-8")
    assert mermaid.count(" --> ") == DEPTH
    assert f"d{DEPTH - 2} --> d{DEPTH - 1}" in mermaid

    tree = invoke(runner, "plot", deep_spec, "--format", "tree").stdout
    assert f"d{DEPTH - 1}" in tree and f"\u2190 d{DEPTH - 2}" in tree


@pytest.mark.tf
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` is not installed")
def test_plot_a_5000_layer_chain_as_png(
    runner: CliRunner, deep_spec: Path, built_once: None
) -> None:
    picture = deep_spec.parent / "chain.png"
    invoke(runner, "plot", deep_spec, "-o", picture)
    assert picture.read_bytes().startswith(b"\x89PNG")


@pytest.mark.tf
def test_save_and_load_a_5000_layer_chain(
    runner: CliRunner, deep_spec: Path, built_once: None
) -> None:
    saved = deep_spec.parent / "chain.keras"
    invoke(runner, "save", deep_spec, "-o", saved)
    # Loading maps the graph again, in Keras: kgraph's build is not involved.
    info = json.loads(invoke(runner, "load", "--json", saved).stdout)
    assert len(info["summary"]["layers"]) == DEPTH + 1
    assert info["total_params"] == PARAMS
    assert info["summary"]["layers"][-1]["connected_to"] == [f"d{DEPTH - 2}"]


@pytest.mark.tf
def test_train_a_5000_layer_chain_one_step(
    runner: CliRunner, deep_spec: Path, built_once: None, eager_functions: None
) -> None:
    run = deep_spec.parent / "run"
    result = invoke(runner, "train", deep_spec, "-o", run, "--json", "--set", "train.fit.epochs=1")
    facts = json.loads(result.stdout)
    assert facts["epochs"] == 1
    assert len(facts["history"]["loss"]) == 1
    assert set(facts["metrics"]) == {"train", "test"}
    assert (run / "model.keras").is_file()


def test_a_model_too_large_for_the_legacy_h5_format_is_a_clear_error(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from kgraph_cli.export import H5_MAX_LAYERS, ExportError, save_model

    too_many = SimpleNamespace(layers=[object()] * (H5_MAX_LAYERS + 1))
    with pytest.raises(ExportError, match="at most 4,000 layers") as raised:
        save_model(too_many, tmp_path / "big.h5", "h5", None, force=False)
    assert ".keras" in raised.value.hint
    assert list(tmp_path.iterdir()) == []  # nothing half-written
