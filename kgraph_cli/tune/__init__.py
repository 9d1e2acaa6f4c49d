"""`kgraph tune`: hyperparameter search over any value of a spec, on Optuna.

    search.py   the loop: values asked of the study, a trial trained, its score told
    study.py    the Optuna study: storage, sampler, pruner, resume, counts
    sampler.py  the sampler seeded by each trial's place; the grid dealt out by place
    corners.py  the space checked at its corners before any trial runs
    results.py  trial records, tune.json, trials.csv, best.yaml
    pictures.py optimization history and parameter importances (PNG)

The space itself (the `tune:` section, --tune) is parsed in `spec/tune.py`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kgraph_cli.errors import UsageError
from kgraph_cli.spec.tune import (
    MAX_TRIALS,
    NAMED_SETTINGS,
    TuneSpec,
    parse_duration,
    tune_of,
)
from kgraph_cli.tune.results import TrialRecord, TuneResult
from kgraph_cli.tune.search import TuneInterrupted, TuneOptions, run_tune

__all__ = [
    "TrialRecord",
    "TuneInterrupted",
    "TuneOptions",
    "TuneResult",
    "run_tune",
    "tune_settings",
]


def tune_settings(data: Any, space: list[str], file: str, **flags: Any) -> TuneSpec:
    """The spec's `tune:` section with the --tune entries and the command's
    flags (those not None) replacing its settings."""
    tune = tune_of(data, space, file)
    given = {key: value for key, value in flags.items() if value is not None}
    for key, names in NAMED_SETTINGS.items():
        if key in given and given[key] not in names:
            raise UsageError(
                f"--{key} must be one of {', '.join(names)}, got '{given[key]}'",
            )
    if "trials" in given and not 1 <= given["trials"] <= MAX_TRIALS:
        raise UsageError(f"--trials must be from 1 to {MAX_TRIALS:,}, got {given['trials']:,}")
    if "objective" in given and not given["objective"].strip():
        raise UsageError("--objective is empty", "name a metric of the epoch logs: val_accuracy")
    if "timeout" in given:
        seconds = parse_duration(given["timeout"])
        if seconds is None:
            raise UsageError(
                f"--timeout must be a positive duration, got '{given['timeout']}'",
                "seconds, or 90s, 10m, 2h",
            )
        given["timeout"] = seconds
    locs = {key: loc for key, loc in tune.locs.items() if key not in given}
    return replace(tune, **given, locs=locs)
