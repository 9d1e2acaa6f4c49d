"""What a search leaves: each trial as a record, the tune directory's files
(tune.json, trials.csv, best.yaml) and its pictures (optimization history,
parameter importances)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgraph_cli.fileio import FolderKind, write_text_atomic
from kgraph_cli.rundir import SPEC_FILE
from kgraph_cli.spec.tune import flow
from kgraph_cli.tune.study import STUDY_FILE

SUMMARY_FILE = "tune.json"
TRIALS_CSV = "trials.csv"
BEST_SPEC = "best.yaml"
HISTORY_PNG = "history.png"
IMPORTANCES_PNG = "importances.png"
TRIALS_DIR = "trials"
SUMMARY_FILES = (SUMMARY_FILE, TRIALS_CSV, BEST_SPEC, HISTORY_PNG, IMPORTANCES_PNG, TRIALS_DIR)


def _tune_entries(tune_dir: Path) -> frozenset[str]:
    # SQLite's journal files sit beside the study while it is open.
    sqlite = (STUDY_FILE, f"{STUDY_FILE}-journal", f"{STUDY_FILE}-wal", f"{STUDY_FILE}-shm")
    return frozenset((*SUMMARY_FILES, *sqlite))


TUNE_DIRECTORY = FolderKind("tune directory", SUMMARY_FILE, _tune_entries, example="tune")


def trial_dir(tune_dir: Path, number: int) -> Path:
    return tune_dir / TRIALS_DIR / f"{number:04d}"


@dataclass
class TrialRecord:
    """One trial: its values, its score, how it ended."""

    number: int
    state: str  # complete, pruned, failed, running, waiting
    params: dict[str, Any]
    value: float | None = None
    seconds: float | None = None
    epochs: int | None = None
    run_dir: str | None = None
    message: str = ""  # why it failed, or where it was pruned
    worker: str = ""  # the process that ran it: HOST:PID

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "params": self.params,
            "value": self.value,
            "seconds": self.seconds,
            "epochs": self.epochs,
            "run_dir": self.run_dir,
            "message": self.message,
            "worker": self.worker,
        }


@dataclass
class TuneResult:
    """A search as it stands: every trial of the study, the best, the files."""

    tune_dir: Path
    spec: str  # the spec file searched
    study: str
    storage: str
    objective: str
    direction: str
    trials: list[TrialRecord]
    best: TrialRecord | None
    stopped: str  # why this process stopped: the budget, the time, the grid...
    # How much of the objective's variation each param explains (PED-ANOVA), 0..1.
    importances: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for trial in self.trials:
            counts[trial.state] = counts.get(trial.state, 0) + 1
        return {
            "tune_dir": str(self.tune_dir),
            "spec": self.spec,
            "study": self.study,
            "storage": self.storage,
            "objective": self.objective,
            "direction": self.direction,
            "stopped": self.stopped,
            "counts": counts,
            "best": self.best.to_json() if self.best else None,
            "importances": self.importances,
            "trials": [t.to_json() for t in self.trials],
            "files": self.files,
        }


def write_results(result: TuneResult, space_paths: list[str], pictures: bool) -> None:
    """tune.json, trials.csv, best.yaml and (`pictures`) the PNGs, each written
    atomically; what was written goes into `result.files`."""
    tune_dir = result.tune_dir
    files = result.files
    write_text_atomic(tune_dir / TRIALS_CSV, trials_csv(result.trials, space_paths), force=True)
    files["trials"] = str(tune_dir / TRIALS_CSV)
    if result.best is not None and result.best.run_dir:
        spec = Path(result.best.run_dir) / SPEC_FILE
        if spec.is_file():
            text = best_spec_text(spec.read_text(encoding="utf-8"), result)
            write_text_atomic(tune_dir / BEST_SPEC, text, force=True)
            files["best_spec"] = str(tune_dir / BEST_SPEC)
    if pictures:
        from kgraph_cli.tune.pictures import plot_history, plot_importances

        finished = [t for t in result.trials if t.value is not None]
        if finished:
            plot_history(finished, result, tune_dir / HISTORY_PNG)
            files["history_plot"] = str(tune_dir / HISTORY_PNG)
        if result.importances:
            plot_importances(result.importances, tune_dir / IMPORTANCES_PNG)
            files["importances_plot"] = str(tune_dir / IMPORTANCES_PNG)
    files["summary"] = str(tune_dir / SUMMARY_FILE)
    write_text_atomic(tune_dir / SUMMARY_FILE, json.dumps(result.to_json(), indent=2), force=True)


def write_marker(tune_dir: Path, study: str, storage: str) -> None:
    """tune.json before the first trial: the folder is kgraph's from then on."""
    if not (tune_dir / SUMMARY_FILE).is_file():
        text = json.dumps({"tune_dir": str(tune_dir), "study": study, "storage": storage})
        write_text_atomic(tune_dir / SUMMARY_FILE, text, force=True)


def trials_csv(trials: list[TrialRecord], space_paths: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["number", "state", "value", "seconds", "epochs", *space_paths, "run_dir", "worker"]
    writer.writerow(header)
    for t in trials:
        params = [flow(t.params[p]) if p in t.params else "" for p in space_paths]
        writer.writerow(
            [t.number, t.state, _cell(t.value), _cell(t.seconds), t.epochs or "", *params]
            + [t.run_dir or "", t.worker]
        )
    return out.getvalue()


def _cell(value: float | None) -> str:
    return "" if value is None else repr(value)


def best_spec_text(trial_spec: str, result: TuneResult) -> str:
    """The best trial's spec (as it trained: the values filled in) without the
    `tune:` section, headed by where it comes from."""
    import yaml

    from kgraph_cli.spec.assemble import with_absolute_data_paths

    data = with_absolute_data_paths(yaml.safe_load(trial_spec), Path(result.spec).parent)
    data.pop("tune", None)
    best = result.best
    assert best is not None
    found = ", ".join(f"{path}={flow(value)}" for path, value in best.params.items())
    header = (
        f"# The best trial of kgraph tune's study '{result.study}': trial {best.number}, "
        f"{result.objective} {best.value:.6g} ({result.direction}).\n"
        f"# Its values: {found}\n"
        f"# `kgraph train` on this file trains it again (its run: {best.run_dir}).\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
