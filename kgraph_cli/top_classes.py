"""Class scores to the top classes: which outputs are class score vectors, their
probabilities (as the model gives them, or the softmax of its logits), the
top k of each sample, and the name of each class: the spec's `classes:`, the
class folders of the `images:` data it was trained on (run.json), ImageNet's
for 1000 classes, else `class N`.

numpy only: the caller has run the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgraph_cli.errors import KgraphError
from kgraph_cli.keras_graph import made_by, producer, shape_text

IMAGENET_CLASSES = 1000
# Where names come from (the `names` of --json): Target.class_origins' values, and these.
IMAGENET, INDEX = "imagenet", "index"
_ORIGINS = {
    "spec": "the spec's outputs.{name}.classes",
    "run": "run.json (the class folders of the training images)",
}
# Rows within this of 1 are taken as probability distributions.
_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class TopClass:
    index: int
    name: str
    probability: float

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "class": self.name, "probability": self.probability}


@dataclass
class RankedOutput:
    """One class score output: how its scores were read, and each sample's top classes."""

    name: str
    classes: int
    # The probabilities are the softmax of the model's logits (for a one-unit
    # output: their sigmoid, the softmax of [0, logit]).
    softmax: bool
    # Where the class names come from: "spec", "run", "imagenet" or "index".
    names: str
    # A one-unit output read as the probability of its second class.
    binary: bool = False
    # Sigmoid units: one probability per class, which need not sum to 1.
    independent: bool = False
    top: list[list[TopClass]] = field(default_factory=list)  # per sample

    @property
    def how(self) -> str:
        """What the probabilities are, for a table's title."""
        if self.binary:
            return "sigmoid of the logit" if self.softmax else "binary"
        if self.softmax:
            return "softmax of the logits"
        return "independent probabilities" if self.independent else "probabilities"

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "softmax": self.softmax,
            "binary": self.binary,
            "independent": self.independent,
            "names": self.names,
        }


@dataclass
class Ranking:
    outputs: dict[str, RankedOutput]
    notes: list[str] = field(default_factory=list)


def rank_outputs(
    model: Any,
    arrays: dict[str, np.ndarray],
    top: int,
    class_names: dict[str, list[str]],
    class_origins: dict[str, str],
    data_dir: Path | None,
) -> Ranking:
    """The top `top` classes of every sample for each output that is a class
    score vector ((samples, classes); one unit: a binary classifier's); the
    others are named in `notes`."""
    activations = _activations(model)
    ranking = Ranking({})
    imagenet: list[str] | None = None
    for name, scores in arrays.items():
        activation = activations.get(name)
        names = class_names.get(name)
        origin = class_origins.get(name, "spec")
        if scores.ndim != 2 or scores.shape[1] == 0:
            ranking.notes.append(_not_ranked(name, scores, "is not a class score vector"))
            continue
        width = scores.shape[1]
        binary = width == 1
        if binary and names is None and activation != "sigmoid":
            ranking.notes.append(_not_ranked(name, scores, "has one value per sample"))
            continue
        classes = 2 if binary else width
        if names is not None and len(names) != classes:
            given = _ORIGINS.get(origin, origin).format(name=name)
            scored = "one score (a binary classifier's: 2 classes)" if binary else f"{width}"
            raise KgraphError(
                f"output '{name}' gives {scored} class scores but {given} names "
                f"{len(names)} classes",
                f"list one name per class index ({classes} names)",
            )
        if names is None and classes == IMAGENET_CLASSES:
            if imagenet is None:
                imagenet = _imagenet_names(name, data_dir, ranking.notes)
            names, origin = (imagenet, IMAGENET) if imagenet else (None, INDEX)
        if names is None:
            names, origin = [f"class {i}" for i in range(classes)], INDEX
        if binary:
            probabilities, softmax = _binary(scores[:, 0])
            independent = False
        else:
            probabilities, softmax, independent = _probabilities(scores, activation)
        ranked = RankedOutput(name, classes, softmax, origin, binary, independent)
        ranked.top = _top(probabilities, names, top)
        ranking.outputs[name] = ranked
    return ranking


def _not_ranked(name: str, scores: np.ndarray, why: str) -> str:
    shape = shape_text((None, *scores.shape[1:]))
    return f"output '{name}' {shape} {why}: no top classes (-o FILE writes it)"


def _probabilities(scores: np.ndarray, activation: str | None) -> tuple[np.ndarray, bool, bool]:
    """(probabilities, softmax applied, independent): the scores themselves when
    they are probabilities, else the softmax of the logits."""
    scores = scores.astype(np.float64)
    unit = bool(np.all(np.isfinite(scores))) and scores.min() >= 0 and scores.max() <= 1
    if unit and activation == "sigmoid":
        return scores, False, True
    if unit and np.allclose(scores.sum(axis=1), 1.0, atol=_SUM_TOLERANCE):
        return scores, False, False
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True), True, False


def _binary(scores: np.ndarray) -> tuple[np.ndarray, bool]:
    """A one-unit output as [P(class 0), P(class 1)]: the sigmoid of a logit."""
    scores = scores.astype(np.float64)
    unit = bool(np.all(np.isfinite(scores))) and scores.min() >= 0 and scores.max() <= 1
    p = scores if unit else 1.0 / (1.0 + np.exp(-scores))
    return np.stack([1.0 - p, p], axis=1), not unit


def _top(probabilities: np.ndarray, names: list[str], k: int) -> list[list[TopClass]]:
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, : max(1, k)]
    return [
        [TopClass(int(i), names[int(i)], float(row[int(i)])) for i in indices]
        for row, indices in zip(probabilities, order, strict=True)
    ]


def _imagenet_names(output: str, data_dir: Path | None, notes: list[str]) -> list[str] | None:
    """ImageNet's class names, or None with a note saying which file to fetch."""
    try:
        from kgraph_cli.keras_cache import KerasFileMissing, imagenet_class_names
    except ImportError:
        notes.append(
            f"output '{output}' has 1000 classes, but this kgraph cannot read ImageNet's "
            "class index: showing class indices"
        )
        return None
    try:
        return imagenet_class_names(data_dir)
    except KerasFileMissing as exc:
        notes.append(
            f"output '{output}' has 1000 classes, shown as indices: {exc.message}; {exc.hint}"
        )
        return None


def _activations(model: Any) -> dict[str, str | None]:
    """Each output's final activation ("softmax", "sigmoid", "linear"...), looking
    through the Identity layers that name outputs; None where it is not a layer's."""
    found: dict[str, str | None] = {}
    for tensor in model.outputs:
        name = producer(tensor).name
        layer = producer(tensor)
        while type(layer).__name__ == "Identity":
            inputs = list(made_by(tensor).input_tensors)
            if len(inputs) != 1:
                break
            tensor = inputs[0]
            layer = producer(tensor)
        if type(layer).__name__ == "Softmax":
            found[name] = "softmax"
            continue
        activation = getattr(layer, "activation", None)
        found[name] = getattr(activation, "__name__", None) if callable(activation) else None
    return found
