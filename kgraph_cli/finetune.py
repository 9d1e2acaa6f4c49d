"""`train.fine_tune`: the second phase of transfer learning. After fit's epochs,
part of a frozen node (the pretrained backbone) is unfrozen and training goes
on with a lower learning rate, as in Keras's transfer-learning guide: the last
N layers (or those from a name on), BatchNormalization layers kept frozen."""

from __future__ import annotations

from typing import Any

from kgraph_cli.errors import Diagnostic, SpecError
from kgraph_cli.spec.train.model import FineTuneSpec
from kgraph_cli.suggest import did_you_mean
from kgraph_cli.tf import import_keras


def unfreeze(model: Any, spec: FineTuneSpec) -> str:
    """Make the layers `spec` names trainable; what was unfrozen, for people."""
    keras = import_keras()
    node = model.get_layer(spec.unfreeze)
    layers = list(getattr(node, "layers", [node]))
    start = _first_unfrozen(layers, spec)
    node.trainable = True  # Keras sets every layer inside it too
    for index, layer in enumerate(layers):
        if index < start or isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    count = sum(1 for layer in layers[start:] if layer.trainable)
    params = sum(int(_size(w)) for w in node.trainable_weights)
    return (
        f"unfroze {count} of the {len(layers)} layers of '{spec.unfreeze}' "
        f"({params:,} trainable parameters; BatchNormalization stays frozen)"
    )


def _first_unfrozen(layers: list[Any], spec: FineTuneSpec) -> int:
    if spec.from_layer is not None:
        names = [layer.name for layer in layers]
        if spec.from_layer not in names:
            raise SpecError(
                [
                    Diagnostic(
                        "undefined-ref",
                        f"'{spec.unfreeze}' has no layer '{spec.from_layer}'",
                        spec.loc,
                        "train.fine_tune.from_layer",
                        did_you_mean(spec.from_layer, names, f"its last layer is '{names[-1]}'"),
                    )
                ]
            )
        return names.index(spec.from_layer)
    if spec.layers is not None:
        return max(0, len(layers) - spec.layers)
    return 0


def _size(weight: Any) -> int:
    size = 1
    for dim in weight.shape:
        size *= int(dim)
    return size


def with_learning_rate(optimizer: Any, learning_rate: float) -> Any:
    """A fresh optimizer like `optimizer` (a name or an instance) at `learning_rate`."""
    keras = import_keras()
    config = keras.optimizers.serialize(keras.optimizers.get(optimizer))
    config["config"]["learning_rate"] = learning_rate
    return keras.optimizers.deserialize(config)
