"""`adapt: true` nodes: preprocessing layers (Normalization, TextVectorization,
StringLookup...) learn their state from the training data before training, so
that it is part of the trained and saved model."""

from __future__ import annotations

from typing import Any

from kgraph_cli import keras_graph
from kgraph_cli.reporting import TrainingReporter
from kgraph_cli.spec.model import ModelSpec


def adapt_layers(
    model: Any, spec: ModelSpec, inputs: dict[str, Any], reporter: TrainingReporter
) -> None:
    """Adapt each `adapt: true` layer of `spec` on what reaches it when the
    training inputs (arrays by model input name) are fed to `model`."""
    from kgraph_cli.data.pipeline import Split, make_dataset
    from kgraph_cli.tf import import_keras

    keras = import_keras()
    dataset = None
    for node in spec.nodes.values():
        if not node.adapt:
            continue
        layer = model.get_layer(node.name)
        source = keras_graph.producer(layer.input)
        if source.name in inputs:  # fed by an input (layers have other names): the data itself
            data = inputs[source.name]
        else:  # what the layers before it make of the data
            feeder = keras.Model(model.inputs, layer.input)
            if dataset is None:  # tf.data: it also carries text inputs
                dataset = make_dataset(Split(dict(inputs), {}), 256, False, None, cache=False)
            data = feeder.predict(dataset, verbose=0)
        layer.adapt(data)
        reporter.note(f"adapted {node.name} ({type(layer).__name__}) on {len(data):,} samples")
