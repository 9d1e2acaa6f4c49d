"""Smoke test of benchmarks/build_speed.py at a tiny size: the generated spec is
valid, and kgraph builds the same model as the hand-written Keras code. No
timing assertions: timings belong to the benchmark, not to the test suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import benchmark_module

NODES = 50


@pytest.fixture(scope="module")
def bench():
    """benchmarks/build_speed.py as a module."""
    yield from benchmark_module("build_speed")


@pytest.mark.parametrize("style", ["flat", "blocks"])
def test_generated_spec_validates(bench, tmp_path: Path, style: str):
    path = bench.write_spec(tmp_path, NODES, style)
    valid = bench.kgraph_validate(path)
    model = valid.spec.model()
    assert len(model.nodes) == NODES
    assert valid.warnings == []  # no unused nodes
    assert len(valid.graphs[model.name].order) == NODES

    row = bench.bench_validate(path, NODES, reps=1)
    assert row["nodes"] == NODES and row["reps"] == 1


@pytest.mark.tf
def test_kgraph_and_handwritten_models_match(bench, tmp_path: Path):
    path = bench.write_spec(tmp_path, NODES)
    kgraph_model, _, _ = bench.kgraph_build(path)
    hand_model = bench.handwritten_model(NODES)
    assert kgraph_model.count_params() == hand_model.count_params()
    assert len(kgraph_model.layers) == len(hand_model.layers) == NODES + 1  # + the Input
    assert [type(layer).__name__ for layer in kgraph_model.layers] == [
        type(layer).__name__ for layer in hand_model.layers
    ]

    result = bench.bench_build(path, NODES, reps=1)
    assert result["nodes"] == NODES
    assert result["keras_layers"] == NODES + 1
    assert result["params"] == hand_model.count_params()


@pytest.mark.tf
def test_main_writes_json(bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    output = tmp_path / "results" / "build_speed.json"
    argv = ["--nodes", str(NODES), "--scale", "30,60", "--reps", "1", "--output", str(output)]
    assert bench.main(argv) == 0
    results = json.loads(output.read_text())
    assert results["build"]["nodes"] == NODES
    assert [row["nodes"] for row in results["scaling"]["flat"]] == [30, 60]
    assert "ratio kgraph / hand-written" in capsys.readouterr().out
