"""Smoke test of benchmarks/train_speed.py on a slice of the real MNIST and on a
few generated samples of the toy ResNet and the ticket router: kgraph and the
hand-written Keras both train, on the same number of samples, and reach a
finite accuracy where the labels are real. No timing assertions: timings belong
to the benchmark, not to the test suite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA, benchmark_module

TAKE = 2_500  # samples of the training file; validation_split 0.2 leaves 2,000 to train on
TRAIN_SAMPLES = 2_000

pytestmark = pytest.mark.tf
needs_mnist = pytest.mark.skipif(
    not (SHARED_DATA / "mnist" / "mnist.npz").is_file(),
    reason=f"needs the real MNIST in {SHARED_DATA / 'mnist' / 'mnist.npz'} (absent here)",
)


@pytest.fixture(scope="module")
def bench():
    """benchmarks/train_speed.py as a module."""
    yield from benchmark_module("train_speed")


@needs_mnist
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


@pytest.mark.parametrize("model", ["toy_resnet", "ticket_router"])
def test_generated_models_train_the_same_samples_both_ways(bench, model: str):
    """The toy ResNet and the ticket router: kgraph on `source: {generated: N}`, the
    guide's code on NumPy arrays of the same shapes; the same training samples."""
    workload = bench.WORKLOADS[model]
    try:
        kgraph = workload.kgraph(SHARED_DATA, 96, 1)
        hand = workload.hand(SHARED_DATA, 96, 1, "hand-written")
        spe = workload.hand(SHARED_DATA, 96, 1, "hand-spe", steps_per_execution=None)
    finally:
        bench._set_op_determinism(False)
    validation = 0.2 if model == "toy_resnet" else 0.0
    assert kgraph.train_samples == hand.train_samples == spe.train_samples
    assert hand.train_samples == math.ceil(96 * (1 - validation))
    for run in (kgraph, hand, spe):
        assert run.epochs == 1 and run.fit_s > 0 and run.wall_s >= run.fit_s
        assert math.isnan(run.test_accuracy)  # random labels: no accuracy is reported


@needs_mnist
def test_main_writes_json(bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    output = tmp_path / "results" / "train_speed.json"
    argv = ["--models", "mnist", "--take", str(TAKE), "--epochs", "1", "--quick"]
    argv += ["--no-warmup", "--variants", "no-prefetch", "--output", str(output)]
    try:
        assert bench.main(argv) == 0
    finally:
        bench._set_op_determinism(False)
    models = json.loads(output.read_text())["models"]
    assert set(models) == {"mnist"}
    results = models["mnist"]
    assert results["reps"] == 1 and results["train_samples"] == TRAIN_SAMPLES
    assert set(results["runs"]) == {"kgraph", "hand-written", "no-prefetch"}
    assert results["target_ratio"] == 2.5
    assert results["runs"]["no-prefetch"][0]["train_samples"] == TRAIN_SAMPLES
    out = capsys.readouterr().out
    assert "ratio kgraph / hand-written" in out and "target >= 2.5x" in out


def test_unknown_model_is_refused(bench, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--models", "mnist,resnet9000"])
    assert exit_info.value.code == 2
    assert "choose among mnist, toy_resnet, ticket_router" in capsys.readouterr().err
