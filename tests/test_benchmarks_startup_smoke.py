"""Smoke test of benchmarks/startup_speed.py: what it times, its medians and
ratios, and its report, on made-up figures (no timing in the test suite)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import benchmark_module


@pytest.fixture(scope="module")
def bench():
    yield from benchmark_module("startup_speed")


def test_it_times_evaluate_and_predict_against_import_keras(bench, tmp_path: Path) -> None:
    timed = bench.commands(tmp_path / "run", tmp_path)
    assert list(timed) == ["import keras", "evaluate", "predict", "help"]
    assert timed["import keras"] == [sys.executable, "-c", "import keras"]
    assert timed["evaluate"][-3:] == ["evaluate", str(tmp_path / "run"), "--json"]
    assert "predict" in timed["predict"] and "--force" in timed["predict"]
    assert bench.rotated(list(timed), 1) == ["evaluate", "predict", "help", "import keras"]


def test_medians_ratios_and_the_report(bench) -> None:
    times = {
        "import keras": [2.0, 2.2, 1.8],
        "evaluate": [2.4, 2.6, 2.5],
        "predict": [2.7, 2.6, 3.0],
        "help": [0.3, 0.31, 0.29],
    }
    summary = bench.summarise(times)
    assert summary["import keras"] == {"median_s": 2.0, "min_s": 1.8, "max_s": 2.2, "ratio": 1.0}
    assert summary["evaluate"]["ratio"] == 1.25 and summary["predict"]["ratio"] == 1.35
    results = {
        "date": "2026-12-02",
        "reps": 3,
        "machine": {"cpus": 2, "load": 1.5},
        "commands": summary,
    }
    report = bench.format_report(results)
    assert "evaluate            2.50    2.40    2.60            1.25x" in report
    assert report.endswith("target: evaluate and predict <= 1.25x import keras: not met")
