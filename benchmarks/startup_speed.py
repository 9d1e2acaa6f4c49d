"""How long `kgraph evaluate RUN_DIR` and `kgraph predict RUN_DIR` take as whole
processes, against the floor they stand on: `python -c "import keras"`
(TensorFlow's import is most of any command that touches a tensor).

A run directory is trained first (``specs/digits.yaml``, 2 epochs, seeded);
then, `--reps` times, in turn (rotated, so that none always runs first):

- **import keras**: ``python -c "import keras"``;
- **evaluate**: ``kgraph evaluate RUN --json``;
- **predict**: ``kgraph predict RUN -o predictions.npy --force -q``;
- **help**: ``kgraph --help`` (no TensorFlow: it must stay instant).

Each figure is the median wall time over the repetitions, and the ratio is
each command's median against `import keras`'s. Target: evaluate and
predict within 1.25x of it.

Run from the repository root::

    .venv/bin/python benchmarks/startup_speed.py            # 7 repetitions
    .venv/bin/python benchmarks/startup_speed.py --quick    # 2 repetitions

A table goes to stdout; machine-readable results to
``benchmarks/results/startup_speed.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "specs" / "digits.yaml"
RESULTS = Path(__file__).resolve().parent / "results" / "startup_speed.json"
TARGET_RATIO = 1.25
KGRAPH = [sys.executable, "-c", "from kgraph_cli.cli import main; main()"]


def commands(run_dir: Path, work: Path) -> dict[str, list[str]]:
    """What is timed, by name; `import keras` is the floor."""
    return {
        "import keras": [sys.executable, "-c", "import keras"],
        "evaluate": [*KGRAPH, "evaluate", str(run_dir), "--json"],
        "predict": [*KGRAPH, "predict", str(run_dir), "-o", str(work / "p.npy"), "--force", "-q"],
        "help": [*KGRAPH, "--help"],
    }


def environment_variables(work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TMPDIR": str(work),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def wall_seconds(command: list[str], env: dict[str, str]) -> float:
    """The wall time of one run of `command`, which must succeed."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def rotated(names: list[str], rep: int) -> list[str]:
    shift = rep % len(names)
    return names[shift:] + names[:shift]


def summarise(times: dict[str, list[float]], floor: str = "import keras") -> dict[str, Any]:
    """Medians and the ratio of each median to the floor's."""
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        name: {
            "median_s": round(medians[name], 3),
            "min_s": round(min(values), 3),
            "max_s": round(max(values), 3),
            "ratio": round(medians[name] / medians[floor], 3),
        }
        for name, values in times.items()
    }


def format_report(results: dict[str, Any]) -> str:
    lines = [
        f"startup: {results['reps']} repetitions, {results['date']}, "
        f"{results['machine']['cpus']} CPUs, load {results['machine']['load']}",
        f"  {'command':14} {'median s':>9} {'min s':>7} {'max s':>7} {'vs import keras':>16}",
    ]
    for name, row in results["commands"].items():
        lines.append(
            f"  {name:14} {row['median_s']:9.2f} {row['min_s']:7.2f} {row['max_s']:7.2f} "
            f"{row['ratio']:15.2f}x"
        )
    worst = max(results["commands"][name]["ratio"] for name in ("evaluate", "predict"))
    verdict = "met" if worst <= TARGET_RATIO else "not met"
    lines.append(f"  target: evaluate and predict <= {TARGET_RATIO}x import keras: {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2 repetitions")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    reps = 2 if args.quick else args.reps
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = environment_variables(work)
        run_dir = work / "run"
        train = [*KGRAPH, "train", str(SPEC), "--out", str(run_dir), "--epochs", "2", "-q"]
        wall_seconds(train, env)
        timed = commands(run_dir, work)
        for command in timed.values():  # a warm-up: the files in the page cache
            wall_seconds(command, env)
        times: dict[str, list[float]] = {name: [] for name in timed}
        for rep in range(reps):
            for name in rotated(list(timed), rep):
                times[name].append(wall_seconds(timed[name], env))
    import keras
    import tensorflow as tf

    results = {
        "date": datetime.date.today().isoformat(),
        "reps": reps,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": round(os.getloadavg()[0], 2),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "commands": summarise(times),
        "times": {name: [round(t, 3) for t in values] for name, values in times.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(format_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
