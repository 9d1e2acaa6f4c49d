"""A search's pictures (matplotlib PNG, like the training curves): the
objective of each trial with the best so far, and the params' importances."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kgraph_cli.tune.results import TrialRecord, TuneResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_history(trials: list[TrialRecord], result: TuneResult, path: Path) -> None:
    """Each finished trial's objective (pruned ones hollow) and the best so far."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    figure, axis = plt.subplots(figsize=(7, 4))
    for state, marker, face in (("complete", "o", None), ("pruned", "o", "none")):
        shown = [t for t in trials if t.state == state]
        if shown:
            axis.scatter(
                [t.number for t in shown],
                [t.value for t in shown],
                marker=marker,
                facecolors=face,
                edgecolors="tab:blue",
                label=state,
            )
    pick = min if result.direction == "minimize" else max
    best: list[float] = []
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state == "complete":
            best.append(trial.value if not best else pick(best[-1], trial.value))
        else:
            best.append(best[-1] if best else float("nan"))
    axis.step(
        [t.number for t in sorted(trials, key=lambda t: t.number)],
        best,
        where="post",
        color="tab:red",
        label="best so far",
    )
    axis.set_xlabel("trial")
    axis.set_ylabel(f"{result.objective} ({result.direction})")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(f"study {result.study}: optimization history")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_importances(importances: dict[str, float], path: Path) -> None:
    """One horizontal bar per param, the most important on top."""
    plt = _pyplot()
    names = sorted(importances, key=importances.get)
    figure, axis = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    axis.barh(names, [importances[n] for n in names], color="tab:blue")
    axis.set_xlabel("importance (share of the objective's variation)")
    axis.set_xlim(0, 1)
    axis.grid(alpha=0.3, axis="x")
    axis.set_title("parameter importances")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
