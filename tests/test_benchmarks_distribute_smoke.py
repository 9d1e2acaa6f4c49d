"""Smoke test of benchmarks/distribute_speed.py: the processes of each variant,
the medians and ratios, and the report, on made-up figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import benchmark_module


@pytest.fixture(scope="module")
def bench():
    yield from benchmark_module("distribute_speed")


def test_each_variant_launches_what_it_names(bench, tmp_path: Path) -> None:
    (floor,) = bench.launches(bench.FLOOR, tmp_path)
    assert "train.fit.steps_per_execution=1" in floor[0] and floor[1] == {}
    (mirrored,) = bench.launches("mirrored x2", tmp_path)
    assert "train.distribute.cpu_devices=2" in mirrored[0]
    workers = bench.launches("multi_worker x2", tmp_path)
    configs = [json.loads(extra["TF_CONFIG"]) for _, extra in workers]
    assert [c["task"]["index"] for c in configs] == [0, 1]
    assert configs[0]["cluster"] == configs[1]["cluster"]
    assert len(configs[0]["cluster"]["worker"]) == 2
    assert all("multi_worker" in command for command, _ in workers)


def test_ratios_and_the_report(bench) -> None:
    def rows(*speeds: float) -> list[dict[str, float]]:
        return [{"samples_per_second": s, "test_accuracy": 0.96} for s in speeds]

    runs = {
        "default": rows(3000, 3200, 3100),
        bench.FLOOR: rows(1000, 1100, 900),
        "multi_worker x1": rows(950, 850, 900),
        "multi_worker x2": rows(500, 600, 550),
        "mirrored x2": rows(700, 800, 750),
    }
    summary = bench.summarise(runs)
    assert summary["default"]["vs_floor"] == 3.1
    assert summary["multi_worker x1"] == {
        "samples_per_second": 900.0, "vs_floor": 0.9, "test_accuracy": 0.96
    }  # fmt: skip
    report = bench.format_report(
        {"reps": 3, "date": "2026-12-02", "machine": {"cpus": 2}, "variants": summary}
    )
    assert "multi_worker x2         550              0.55x         0.9600" in report
    assert report.endswith("multi_worker x1 overhead: 10% (goal: within 10%: met)")
