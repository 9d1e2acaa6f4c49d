"""The study's sampler without training: each trial is seeded by its place in
the search, so trials started at once (two processes on one study) never draw
alike and draw what one process would have; retries take no place; the grid
deals each point to one trial. Trials are asked and told by hand, in memory."""

from __future__ import annotations

from typing import Any

import pytest

from kgraph_cli.spec.tune import TuneSpec, parse_tune

optuna = pytest.importorskip("optuna", reason="the tune extra (optuna) is not installed")

from kgraph_cli.tune.sampler import GridUsedUp, is_retry, place_of  # noqa: E402
from kgraph_cli.tune.search import suggest  # noqa: E402
from kgraph_cli.tune.study import RETRY_OF, check_sampler, import_optuna, placed_sampler  # noqa: E402

SPACE = [
    "layers.h.units=int(4, 256)",
    "train.compile.optimizer.learning_rate=float(0.0001, 0.1, log)",
    "train.compile.optimizer.type=choice(Adam, SGD, RMSprop)",
]
GRID = ["layers.h.units=choice(4, 8, 16)", "layers.h.activation=choice(relu, tanh)"]


def space(entries: list[str], sampler: str) -> TuneSpec:
    import dataclasses

    tune, diagnostics = parse_tune(None, entries, "spec.yaml")
    assert not [d for d in diagnostics if d.is_error]
    return dataclasses.replace(tune, sampler=sampler, seed=3)


def new_study(tune: TuneSpec) -> Any:
    import_optuna()  # quiet
    return optuna.create_study(
        direction="maximize", sampler=placed_sampler(tune, check_sampler(tune))
    )


def serial(tune: TuneSpec, n: int) -> list[dict[str, Any]]:
    """The values of n trials run one after another."""
    study = new_study(tune)
    drawn = []
    for number in range(n):
        trial = study.ask()
        drawn.append(suggest(trial, tune.space))
        study.tell(trial, float(number))
    return drawn


@pytest.mark.parametrize("sampler", ["random", "tpe", "cmaes"])
def test_trials_started_at_once_draw_what_one_process_would_and_never_alike(sampler: str):
    tune = space(SPACE, sampler)
    study = new_study(tune)
    started = [study.ask() for _ in range(4)]  # four workers, none finished yet
    drawn = [suggest(trial, tune.space) for trial in started]
    if sampler != "cmaes":  # CMA-ES learns from each told trial: its later draws differ
        assert drawn == serial(tune, 4)  # TPE: its first trials are seeded random ones
    rates = [d["train.compile.optimizer.learning_rate"] for d in drawn]
    assert len(set(rates)) == 4


def test_a_retry_takes_no_place_so_the_search_draws_as_if_uninterrupted():
    tune = space(SPACE, "random")
    expected = serial(tune, 3)
    study = new_study(tune)
    first = study.ask()
    assert suggest(first, tune.space) == expected[0]
    study.tell(first, 0.0)
    stopped = study.ask()  # Ctrl-C: failed, its values run again
    values = suggest(stopped, tune.space)
    stopped.set_user_attr("interrupted", True)
    study.tell(stopped, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(study.trials[1].params, user_attrs={RETRY_OF: 1})
    retry = study.ask()
    assert suggest(retry, tune.space) == values == expected[1]
    study.tell(retry, 1.0)
    assert suggest(study.ask(), tune.space) == expected[2]
    trials = study.get_trials(deepcopy=False)
    fresh = [t for t in trials if not is_retry(t)]
    assert [t.number for t in fresh] == [0, 1, 3]
    assert [place_of(t.number, trials) for t in fresh] == [0, 1, 2]


def test_a_dead_process_trial_run_again_is_a_retry():
    died = optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, system_attrs={"failed_trial": 4}
    )
    assert is_retry(died)
    assert not is_retry(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING))


def test_the_grid_deals_each_point_to_one_trial_and_refuses_one_more():
    tune = space(GRID, "grid")
    study = new_study(tune)
    started = [study.ask() for _ in range(6)]  # every point, all at once
    points = [suggest(trial, tune.space) for trial in started]
    assert sorted(tuple(sorted(p.items())) for p in points) == sorted(
        (("layers.h.activation", a), ("layers.h.units", u))
        for u in (4, 8, 16)
        for a in ("relu", "tanh")
    )
    assert study.sampler.grid == [study.trials[n].params for n in range(6)]
    with pytest.raises(GridUsedUp):
        suggest(study.ask(), tune.space)
