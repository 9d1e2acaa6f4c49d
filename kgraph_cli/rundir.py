"""The files of a run directory (written by `train`, read by evaluate, predict and plot)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kgraph_cli.errors import KgraphError
from kgraph_cli.fileio import FolderKind, write_file_with, write_text_atomic

MODEL_FILE = "model.keras"
SPEC_FILE = "spec.yaml"
RUN_FILE = "run.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
BACKUP_DIR = "backup"
# In backup/: the epoch to resume at and the weights file to resume with.
BACKUP_STATE = "state.json"
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
    # Output name -> the name of each class index, from the training data (an
    # `images:` source's class sub-folders), for `predict --image`.
    classes: dict[str, list[str]] = field(default_factory=dict)


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    data = {
        "spec": str(Path(info.spec).resolve()),
        "model": info.model,
        "data_dir": str(info.data_dir.resolve()) if info.data_dir else None,
        "callback_files": info.callback_files,
        "classes": info.classes,
    }
    write_text_atomic(run_dir / RUN_FILE, json.dumps(data, indent=2) + "\n", force=True)


def read_run_info(run_dir: Path) -> RunInfo | None:
    try:
        data = json.loads((run_dir / RUN_FILE).read_text())
        data_dir = Path(data["data_dir"]) if data.get("data_dir") else None
        files = [str(name) for name in data.get("callback_files") or []]
        return RunInfo(data["spec"], data["model"], data_dir, files, _classes(data.get("classes")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _classes(value: object) -> dict[str, list[str]]:
    """run.json's `classes` (absent in older runs; anything malformed is ignored)."""
    if not isinstance(value, dict):
        return {}
    return {
        str(output): [str(name) for name in names]
        for output, names in value.items()
        if isinstance(names, list) and all(isinstance(name, str) for name in names)
    }


def read_history(run_dir: Path, completed: bool = True) -> dict[str, list[float]]:
    """The per-epoch history a run directory's history.json records (with at
    least one epoch, unless not `completed`)."""
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
    if completed and not any(data.values()):
        raise KgraphError(f"'{path}' has no completed epoch yet", "train for one epoch or more")
    return data


@dataclass(frozen=True)
class RunDirectory:
    """Writes the files of one run directory (the README's table), so that
    training itself only compiles, fits and evaluates."""

    path: Path

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def backup(self) -> Path:
        """What --resume continues from while the run is incomplete."""
        return self.path / BACKUP_DIR

    def write_spec(self, text: str) -> None:
        write_text_atomic(self.path / SPEC_FILE, text, force=True)

    def write_info(self, info: RunInfo) -> None:
        write_run_info(self.path, info)

    def recorded_history(self) -> dict[str, list[float]]:
        """The epochs an interrupted run recorded ({} when there are none)."""
        path = self.path / HISTORY_JSON
        return read_history(self.path, completed=False) if path.exists() else {}

    def begin(self) -> None:
        """The run is incomplete (resumable) from now until finish(): its
        backup folder exists, at first empty (resuming starts at epoch 1)."""
        self.backup.mkdir(exist_ok=True)

    def backup_state(self) -> tuple[int, Path] | None:
        """The completed epochs the backup holds and its weights file (None:
        nothing completed yet, so resuming starts at the beginning)."""
        path = self.backup / BACKUP_STATE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            epoch, weights = int(state["epoch"]), self.backup / str(state["weights"])
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise KgraphError(
                f"cannot resume from '{path}': {exc}",
                "it was changed by hand; start the run again with --force",
            ) from None
        if not weights.is_file():
            raise KgraphError(
                f"cannot resume: the backup's weights '{weights}' are missing",
                "they were removed by hand; start the run again with --force",
            )
        return epoch, weights

    def write_backup(self, epoch: int, write_weights: Callable[[Path], None]) -> None:
        """Back up the run after `epoch` completed epochs, so that a process
        killed at any instant leaves a whole backup, this one or the last: the
        weights go to a new file, then state.json names it (each written under
        a temporary name and renamed), and only then is the older file removed."""
        name = f"epoch-{epoch}.weights.h5"
        self.backup.mkdir(exist_ok=True)
        write_file_with(self.backup / name, write_weights, ".weights.h5")
        state = json.dumps({"epoch": epoch, "weights": name}) + "\n"
        write_text_atomic(self.backup / BACKUP_STATE, state, force=True)
        for old in self.backup.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def write_history(self, history: dict[str, list[float]]) -> None:
        write_text_atomic(
            self.path / HISTORY_JSON, json.dumps(history, indent=2) + "\n", force=True
        )
        write_text_atomic(self.path / HISTORY_CSV, history_csv(history), force=True)

    def write_metrics(self, metrics: dict[str, dict[str, float]]) -> None:
        write_text_atomic(
            self.path / METRICS_FILE, json.dumps(metrics, indent=2) + "\n", force=True
        )

    def write_curves(self, history: dict[str, list[float]], title: str) -> None:
        from kgraph_cli.curves import plot_history  # matplotlib: only when a run ends

        write_file_with(
            self.path / CURVES_FILE, lambda tmp: plot_history(history, tmp, title=title), ".png"
        )

    def finish(self) -> None:
        """The run is complete: nothing is left to resume."""
        shutil.rmtree(self.backup, ignore_errors=True)

    def files(self) -> dict[str, str]:
        return {name: str(self.path / name) for name in RUN_FILES}


def history_csv(history: dict[str, list[float]]) -> str:
    """history.csv: a row per epoch, a column per loss and metric."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(history)
    writer.writerow(["epoch", *names])
    for epoch in range(max((len(v) for v in history.values()), default=0)):
        writer.writerow([epoch + 1, *(_cell(history[n], epoch) for n in names)])
    return out.getvalue()


def _cell(values: list[float], index: int) -> str:
    return repr(values[index]) if index < len(values) else ""


def _run_entries(run_dir: Path) -> frozenset[str]:
    info = read_run_info(run_dir)
    return frozenset((*RUN_FILES, BACKUP_DIR, *(info.callback_files if info else ())))


RUN_DIRECTORY = FolderKind("run directory", RUN_FILE, _run_entries, example="run")
