"""The sampler of a study: Optuna's sampler, reseeded for each trial by the
trial's place in the search; with the grid sampler, the grid's points dealt
out by place.

A trial's place is its number less the retries numbered before it (a retry
runs an earlier trial's values again, and takes no place of its own). The
storage gives every trial of every process its own number, so no two trials
share a place: two processes never draw values from one seed, nor take one
point of the grid. A search resumed after Ctrl-C or a dead process places its
trials as the uninterrupted search did, and so draws the same values.

Imported only once Optuna is known to be installed (study.import_optuna).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from optuna.samplers import BaseSampler

from kgraph_cli.tune.study import RETRY_OF


class GridUsedUp(Exception):
    """Every point of the grid has a trial: another process took the last one
    while this one started its trial."""


def is_retry(trial: Any) -> bool:
    """A trial running the values of one stopped by Ctrl-C, or of one whose
    process died (Optuna's heartbeat retry)."""
    # "failed_trial": where Optuna's RetryFailedTrialCallback keeps the trial run again
    return RETRY_OF in trial.user_attrs or "failed_trial" in trial.system_attrs


def place_of(number: int, trials: Sequence[Any]) -> int:
    """The place in the search of the trial numbered `number` (not a retry:
    a retry's values are its first trial's, whatever its place)."""
    return number - sum(1 for t in trials if t.number < number and is_retry(t))


def places_taken(trials: Sequence[Any]) -> int:
    """How many places the study's trials hold (the place the next one takes)."""
    return sum(1 for t in trials if not is_retry(t))


class PlacedSampler(BaseSampler):
    """`make(seed)`'s sampler, made for each trial with the seed `seed +
    place`; with `grid`, each trial's values are the point of a shuffled grid
    at its place."""

    def __init__(
        self,
        make: Callable[[int], BaseSampler],
        seed: int,
        grid: list[dict[str, Any]] | None = None,
    ):
        self._make = make
        self._seed = seed
        self.grid = None if grid is None else random.Random(seed).sample(grid, len(grid))
        self._samplers: dict[int, BaseSampler] = {}  # trial number -> its sampler
        self._points: dict[int, dict[str, Any]] = {}  # trial number -> its grid point

    def _sampler(self, trial: Any) -> BaseSampler:
        if trial.number not in self._samplers:  # a trial this process did not start
            self._samplers[trial.number] = self._make(self._seed + trial.number)
        return self._samplers[trial.number]

    def before_trial(self, study: Any, trial: Any) -> None:
        place = place_of(trial.number, study.get_trials(deepcopy=False))
        self._samplers[trial.number] = self._make(self._seed + place)
        if self.grid is not None and place < len(self.grid) and not is_retry(trial):
            self._points[trial.number] = self.grid[place]
        self._sampler(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        if self.grid is not None:
            return {}
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict:
        if self.grid is not None:
            return {}
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Any, trial: Any, param_name: str, param_distribution: Any
    ) -> Any:
        if self.grid is None:
            sampler = self._sampler(trial)
            return sampler.sample_independent(study, trial, param_name, param_distribution)
        point = self._points.get(trial.number)
        if point is None:
            raise GridUsedUp
        return point[param_name]

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self._points.pop(trial.number, None)
        self._sampler(trial).after_trial(study, trial, state, values)
        self._samplers.pop(trial.number, None)

    def reseed_rng(self) -> None:
        for sampler in self._samplers.values():
            sampler.reseed_rng()
