"""The Optuna side of `kgraph tune`: the study (its storage, sampler and
pruner), opened or resumed, and the counts its budget is kept by.

Optuna is imported here only, inside functions, so that the rest of kgraph
(and `kgraph --help`) never pays for it; it comes with the `tune` extra.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgraph_cli.errors import Diagnostic, MissingDependencyError, SpecError, UsageError
from kgraph_cli.spec.tune import Param, TuneSpec, holds

STUDY_FILE = "study.db"
FINGERPRINT = "kgraph_fingerprint"  # the study's user attribute: what it searches
# A process that dies mid-trial stops its heartbeat; after the grace period
# another process marks that trial failed and runs its values again.
HEARTBEAT_SECONDS = 20
GRACE_SECONDS = 60
MAX_GRID_POINTS = 100_000
INTERRUPTED = "interrupted"  # the user attribute of a trial stopped by Ctrl-C
RETRY_OF = "retry_of"  # the user attribute of a trial that runs an interrupted one's values


def import_optuna() -> Any:
    """optuna, quiet, or a clear error when the `tune` extra is not installed."""
    try:
        import optuna
    except ImportError:
        raise MissingDependencyError(
            "kgraph tune needs Optuna, which is not installed",
            "pip install 'kgraph[tune]' (optuna, and cmaes for the cmaes sampler)",
        ) from None
    # kgraph reports each trial itself: Optuna's own log lines would repeat it.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


@dataclass(frozen=True)
class StudyPlan:
    """What a study is: its name, where it is stored, what it searches."""

    name: str
    storage: str  # an SQLAlchemy URL
    objective: str  # the metric of the epoch logs trials are scored by
    direction: str
    fingerprint: str


def default_storage(tune_dir: Path) -> str:
    return f"sqlite:///{(tune_dir / STUDY_FILE).resolve()}"


def fingerprint(spec_text: str, model: str, tune: TuneSpec, objective: str, direction: str) -> str:
    """A hash of what the trials are scored on: the spec as loaded (--set
    applied), the model trained, the space, the objective and its direction.
    The budget, the sampler and the pruner may change between runs of one study."""
    space = [[p.path, p.expression(), json.dumps(p.when)] for p in tune.space]
    text = json.dumps([spec_text, model, space, objective, direction])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def open_study(
    plan: StudyPlan, tune: TuneSpec, epochs: int, grid: list[dict[str, Any]] | None
) -> Any:
    """The study, created or (the same search) loaded to continue; `grid`:
    the grid sampler's points (check_sampler's)."""
    optuna = import_optuna()
    storage = _storage(optuna, plan.storage)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=plan.name,
            direction=plan.direction,
            sampler=placed_sampler(tune, grid),
            pruner=make_pruner(tune, epochs),
            load_if_exists=True,
        )
    except ValueError as exc:  # a study of that name in another direction
        raise UsageError(
            f"study '{plan.name}' in {plan.storage} cannot be continued: {exc}",
            "name another study with --study, or start over with --force",
        ) from None
    found = study.user_attrs.get(FINGERPRINT)
    if found is None and not study.trials:
        study.set_user_attr(FINGERPRINT, plan.fingerprint)
    elif found != plan.fingerprint:
        raise UsageError(
            f"study '{plan.name}' in {plan.storage} searched another spec, space or objective",
            "run the command that started it, name another study with --study or "
            "another --out, or start over with --force",
        )
    return study


# Opening a new storage creates its tables: a second process doing the same at
# that instant fails, and succeeds once the first is done.
OPEN_ATTEMPTS = 10
OPEN_RETRY_SECONDS = 0.5


def _storage(optuna: Any, url: str) -> Any:
    import time

    for _ in range(OPEN_ATTEMPTS - 1):
        try:
            return _open_storage(optuna, url)
        except _Busy:
            time.sleep(OPEN_RETRY_SECONDS)
    return _open_storage(optuna, url)


class _Busy(UsageError):
    """Another process is creating the storage's tables."""


# What SQLAlchemy says while another process creates the same tables.
_BUSY_SIGNS = ("unique constraint", "already exists", "database is locked", "duplicate")


def _open_storage(optuna: Any, url: str) -> Any:
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )
    except ImportError as exc:  # a database driver the URL needs
        raise MissingDependencyError(
            f"the storage {url} needs a database driver that is not installed: {exc}",
            "install the driver SQLAlchemy names (e.g. psycopg2-binary for postgresql://, "
            "PyMySQL for mysql+pymysql://)",
        ) from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's URL and connection errors
        busy = any(sign in str(exc).lower() for sign in _BUSY_SIGNS)
        raise (_Busy if busy else UsageError)(
            f"cannot open the storage {url}: {str(exc).splitlines()[0]}",
            "--storage takes an SQLAlchemy URL: sqlite:///path/study.db, "
            "postgresql://user:password@host/db, mysql+pymysql://user:password@host/db",
        ) from None


def placed_sampler(tune: TuneSpec, grid: list[dict[str, Any]] | None) -> Any:
    """The study's sampler: `tune.sampler`, reseeded for each trial by its
    place in the search (sampler.py)."""
    from kgraph_cli.tune.sampler import PlacedSampler

    return PlacedSampler(lambda seed: make_sampler(tune, seed), tune.seed, grid)


def make_sampler(tune: TuneSpec, seed: int) -> Any:
    """The sampler `tune.sampler` names, seeded."""
    optuna = import_optuna()
    samplers = optuna.samplers
    if tune.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    if tune.sampler == "grid":  # the points are dealt out by PlacedSampler
        return samplers.RandomSampler(seed=seed)
    if tune.sampler == "cmaes":
        # Categorical values are sampled independently (CMA-ES is for numbers).
        return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    # A third of a small budget explores at random before TPE models it.
    startup = max(4, min(10, tune.trials // 3))
    return samplers.TPESampler(
        seed=seed, n_startup_trials=startup, multivariate=True, group=True, constant_liar=True
    )


def check_sampler(tune: TuneSpec) -> list[dict[str, Any]] | None:
    """What the sampler needs, before anything is written: a finite grid (its
    points returned, for the study's sampler), the cmaes package."""
    if tune.sampler == "grid":
        return grid_points(tune)
    if tune.sampler == "cmaes":
        try:
            import cmaes  # noqa: F401 - Optuna's CmaEsSampler needs it
        except ImportError:
            raise MissingDependencyError(
                "the cmaes sampler needs the cmaes package, which is not installed",
                "pip install 'kgraph[tune]' or pip install cmaes",
            ) from None
    return None


def grid_points(tune: TuneSpec) -> list[dict[str, Any]]:
    """Every combination of the params' values (a conditional param only where
    its condition holds), as Optuna stores them; a continuous range, or more
    than MAX_GRID_POINTS combinations, is an error located at the space."""
    problems = []
    points: list[dict[str, Any]] = [{}]
    for param in tune.space:
        values = param.grid()
        if values is None:
            problems.append(_grid_problem(param, "it has no finite grid"))
            continue
        grown: list[dict[str, Any]] = []
        for point in points:
            chosen = {p.path: spec_value(p, point[p.path]) for p in tune.space if p.path in point}
            if holds(param, chosen):
                grown += [{**point, param.path: categorical(param, v)} for v in values]
            else:
                grown.append(point)
        points = grown
        if len(points) > MAX_GRID_POINTS:
            problems.append(_grid_problem(param, f"the grid passes {MAX_GRID_POINTS:,} points"))
            break
    if problems:
        raise SpecError(problems)
    return points


def _grid_problem(param: Param, why: str) -> Diagnostic:
    return Diagnostic(
        "search-space",
        f"the grid sampler cannot search {param.expression()}: {why}",
        param.loc,
        f"tune.space.{param.path}",
        "give ranges a step (float(0, 0.5, step=0.1)), use choices, or another sampler",
    )


def make_pruner(tune: TuneSpec, epochs: int) -> Any:
    """The pruner `tune.pruner` names: it stops a trial after an epoch whose
    objective is worse than the other trials' at that epoch."""
    pruners = import_optuna().pruners
    if tune.pruner == "none":
        return pruners.NopPruner()
    if tune.pruner == "hyperband":
        return pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)


def categorical(param: Param, value: Any) -> Any:
    """A value as Optuna stores a categorical one: scalars as they are, lists
    and mappings as their one-line YAML text."""
    from kgraph_cli.spec.tune import flow

    if value is None or isinstance(value, bool | int | float | str):
        return value
    return flow(value)


def spec_value(param: Param, stored: Any) -> Any:
    """The spec value of a stored categorical value (categorical's inverse)."""
    for choice in param.corners():
        if categorical(param, choice) == stored:
            return choice
    return stored


def counts(study: Any) -> dict[str, int]:
    """How many trials are in each state: complete, pruned, failed, running, waiting."""
    found = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    for trial in study.get_trials(deepcopy=False):
        found[state_name(trial.state)] += 1
    return found


def state_name(state: Any) -> str:
    name = state.name.lower()
    return "failed" if name == "fail" else name
