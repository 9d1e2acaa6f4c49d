"""What a tf.distribute strategy costs on one machine: `kgraph train
specs/digits.yaml` (5 epochs) as whole processes under each strategy, the
training throughput (`samples_per_second` of `--json`: training samples x
epochs / seconds of fit) of each, in turn within every repetition:

- **default**: kgraph's default (several steps per call into TensorFlow);
- **default, spe 1**: `steps_per_execution` 1, as every strategy runs;
- **multi_worker x1**: `--strategy multi_worker`, a cluster of one worker;
- **multi_worker x2**: two local worker processes (free localhost ports),
  the chief's figure;
- **mirrored x2**: `--strategy mirrored` over 2 logical CPU devices.

The ratios are against `default, spe 1` (the fair floor: the strategies run
one step per call). On a 2-core machine two workers cannot scale: the figure
documents the overhead. Goal: multi_worker x1 within 10% of it.

Run from the repository root::

    .venv/bin/python benchmarks/distribute_speed.py           # 3 repetitions
    .venv/bin/python benchmarks/distribute_speed.py --quick   # 1 repetition

A table goes to stdout; machine-readable results to
``benchmarks/results/distribute_speed.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "specs" / "digits.yaml"
RESULTS = Path(__file__).resolve().parent / "results" / "distribute_speed.json"
EPOCHS = 5
FLOOR = "default, spe 1"
KGRAPH = [sys.executable, "-c", "from kgraph_cli.cli import main; main()"]
VARIANTS = ["default", FLOOR, "multi_worker x1", "multi_worker x2", "mirrored x2"]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def launches(variant: str, out: Path) -> list[tuple[list[str], dict[str, str]]]:
    """The processes of one variant (command, extra environment); the first
    one's JSON is the figure."""
    base = [*KGRAPH, "train", str(SPEC), "--out", str(out), "--epochs", str(EPOCHS)]
    base += ["--json", "-q"]
    if variant == "default":
        return [(base, {})]
    if variant == FLOOR:
        return [([*base, "--set", "train.fit.steps_per_execution=1"], {})]
    if variant == "mirrored x2":
        mirrored = ["--strategy", "mirrored", "--set", "train.distribute.cpu_devices=2"]
        return [([*base, *mirrored], {})]
    workers = 1 if variant == "multi_worker x1" else 2
    ports = free_ports(workers)
    command = [*base, "--strategy", "multi_worker"]
    return [(command, {"TF_CONFIG": tf_config(ports, i)}) for i in range(workers)]


def run_variant(variant: str, work: Path) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(dir=work)) / "run"  # new every time: never resumed
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(work)}
    processes = [
        subprocess.Popen(
            command,
            env={**env, **extra},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for command, extra in launches(variant, out)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"{variant} failed ({process.returncode}):\n{stderr[-2000:]}")
    result = json.loads(outputs[0][0])
    return {
        "samples_per_second": result["samples_per_second"],
        "test_accuracy": result["metrics"]["test"]["accuracy"],
    }


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    medians = {
        v: statistics.median(r["samples_per_second"] for r in rows) for v, rows in runs.items()
    }
    return {
        variant: {
            "samples_per_second": round(medians[variant], 1),
            "vs_floor": round(medians[variant] / medians[FLOOR], 3),
            "test_accuracy": round(statistics.median(r["test_accuracy"] for r in rows), 4),
        }
        for variant, rows in runs.items()
    }


def format_report(results: dict[str, Any]) -> str:
    lines = [
        f"distribute: digits, {EPOCHS} epochs, {results['reps']} repetition(s), "
        f"{results['date']}, {results['machine']['cpus']} CPUs",
        f"  {'variant':16} {'samples/s':>10} {'vs ' + FLOOR:>18} {'test accuracy':>14}",
    ]
    for variant, row in results["variants"].items():
        lines.append(
            f"  {variant:16} {row['samples_per_second']:10,.0f} {row['vs_floor']:17.2f}x "
            f"{row['test_accuracy']:14.4f}"
        )
    one = results["variants"]["multi_worker x1"]["vs_floor"]
    lines.append(
        f"  multi_worker x1 overhead: {100 * (1 - one):.0f}% (goal: within 10%: "
        f"{'met' if one >= 0.9 else 'not met'})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 repetition")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    reps = 1 if args.quick else args.reps
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            shift = rep % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                runs[variant].append(run_variant(variant, Path(tmp)))
    results = {
        "date": datetime.date.today().isoformat(),
        "reps": reps,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load": round(os.getloadavg()[0], 2),
        },
        "variants": summarise({v: runs[v] for v in VARIANTS}),
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(format_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
