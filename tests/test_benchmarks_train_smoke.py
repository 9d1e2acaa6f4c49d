"""Smoke test of benchmarks/train_speed.py on a slice of the real MNIST: kgraph and
the hand-written Keras both train, on the same number of samples, and reach a
finite accuracy. No timing assertions: timings belong to the benchmark, not to
the test suite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA, benchmark_module

TAKE = 2_500  # samples of the training file; validation_split 0.2 leaves 2,000 to train on
TRAIN_SAMPLES = 2_000

pytestmark = [
    pytest.mark.tf,
    pytest.mark.skipif(
        not (SHARED_DATA / "mnist" / "mnist.npz").is_file(),
        reason=f"needs the real MNIST in {SHARED_DATA / 'mnist' / 'mnist.npz'} (absent here)",
    ),
]


@pytest.fixture(scope="module")
def bench():
    """benchmarks/train_speed.py as a module."""
    yield from benchmark_module("train_speed")


def test_kgraph_and_handwritten_train_the_same_samples(bench):
    kgraph = bench.kgraph_train(SHARED_DATA, take=TAKE, epochs=1)
    hand = bench.handwritten_train(SHARED_DATA, take=TAKE, epochs=1)
    try:
        for run in (kgraph, hand):
            assert run.epochs == 1
            assert math.isfinite(run.test_accuracy) and 0.0 <= run.test_accuracy <= 1.0
            assert run.fit_s > 0 and run.wall_s >= run.fit_s
        assert kgraph.train_samples == hand.train_samples == TRAIN_SAMPLES
    finally:
        bench._set_op_determinism(False)  # kgraph turned it on process-wide


def test_main_writes_json(bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    output = tmp_path / "results" / "train_speed.json"
    argv = ["--take", str(TAKE), "--epochs", "1", "--quick", "--no-warmup", "--output", str(output)]
    try:
        assert bench.main(argv) == 0
    finally:
        bench._set_op_determinism(False)
    results = json.loads(output.read_text())["train"]
    assert results["reps"] == 1 and results["train_samples"] == TRAIN_SAMPLES
    assert set(results["runs"]) == {"kgraph", "hand-written"}
    assert "ratio kgraph / hand-written" in capsys.readouterr().out
