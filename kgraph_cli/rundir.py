"""The files of a run directory (written by `train`, read by evaluate, predict and plot)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kgraph_cli.errors import KgraphError
from kgraph_cli.fileio import FolderKind, write_text_atomic

MODEL_FILE = "model.keras"
SPEC_FILE = "spec.yaml"
RUN_FILE = "run.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
BACKUP_DIR = "backup"
# Every file `train` itself writes in a run directory.
RUN_FILES = (
    MODEL_FILE,
    SPEC_FILE,
    RUN_FILE,
    HISTORY_JSON,
    HISTORY_CSV,
    METRICS_FILE,
    CURVES_FILE,
)
# What a path must end with to be taken as a spec rather than a saved model.
SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass
class RunInfo:
    """What a run directory needs to be evaluated later: recorded in run.json."""

    spec: str
    model: str
    data_dir: Path | None = None
    # Entries of the run directory that the spec's callbacks write (log_dir: logs).
    callback_files: list[str] = field(default_factory=list)


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    data = {
        "spec": str(Path(info.spec).resolve()),
        "model": info.model,
        "data_dir": str(info.data_dir.resolve()) if info.data_dir else None,
        "callback_files": info.callback_files,
    }
    write_text_atomic(run_dir / RUN_FILE, json.dumps(data, indent=2) + "\n", force=True)


def read_run_info(run_dir: Path) -> RunInfo | None:
    try:
        data = json.loads((run_dir / RUN_FILE).read_text())
        data_dir = Path(data["data_dir"]) if data.get("data_dir") else None
        files = [str(name) for name in data.get("callback_files") or []]
        return RunInfo(data["spec"], data["model"], data_dir, files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def read_history(run_dir: Path) -> dict[str, list[float]]:
    """The per-epoch history a run directory's history.json records."""
    path = run_dir / HISTORY_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise KgraphError(
            f"cannot read '{path}': {exc}", "was it written by `kgraph train`?"
        ) from None
    valid = isinstance(data, dict) and all(
        isinstance(v, list) and all(isinstance(x, int | float) for x in v) for v in data.values()
    )
    if not valid:
        raise KgraphError(
            f"'{path}' is not a training history",
            'expected {"loss": [per-epoch values], "val_loss": [...], ...}',
        )
    if not any(data.values()):
        raise KgraphError(f"'{path}' has no completed epoch yet", "train for one epoch or more")
    return data


def _run_entries(run_dir: Path) -> frozenset[str]:
    info = read_run_info(run_dir)
    return frozenset((*RUN_FILES, BACKUP_DIR, *(info.callback_files if info else ())))


RUN_DIRECTORY = FolderKind("run directory", RUN_FILE, _run_entries, example="run")
