"""The keys of each part of a spec's graph (top level, models, inputs, nodes,
blocks), with what each means: the parser checks against them and the JSON
Schema is made from them. The `train:` section's are in `spec/train/keys.py`."""

from __future__ import annotations

from kgraph_cli.spec.model import NodeKind

TOP_KEYS = {
    "kgraph": "spec format version (1)",
    "name": "name of the model defined by the top-level inputs/layers/outputs",
    "description": "free text",
    "include": "other spec files whose models and blocks this one uses",
    "default": "the model commands act on when --model is not given",
    "inputs": "the top-level model's inputs",
    "layers": "the top-level model's nodes",
    "outputs": "the top-level model's outputs",
    "models": "further models, by name",
    "blocks": "reusable parameterised sub-graphs, by name",
    "train": "how to train the default model",
    "tune": "what `kgraph tune` searches (ignored by the other commands)",
}
MODEL_KEYS = {
    "description": "free text",
    "inputs": "inputs by name",
    "layers": "nodes by name",
    "outputs": "outputs: a list of refs, or a mapping of output name to ref",
    "graph": "build this model over another model's graph (shared layers)",
}
INPUT_KEYS = {
    "shape": "shape without the batch dimension; null for a variable size",
    "dtype": "data type (default float32)",
    "sparse": "whether the input is a sparse tensor",
    "batch_size": "fixed batch size (rarely needed)",
}
OUTPUT_KEYS = {
    "from": "the node (or node.N) the output is",
    "classes": "the name of each class index, shown by `predict --image`",
}
BLOCK_KEYS = {
    "description": "free text",
    "params": "parameters with their defaults (null: required), or a list of required names",
    "inputs": "names the block's layers use for its inputs",
    "layers": "the block's nodes; ${param} is replaced by the argument",
    "outputs": "the ref (or list of refs) the block returns",
}
NODE_KIND_KEYS = {kind.value: kind for kind in NodeKind}
NODE_COMMON_KEYS = {
    "from": "the node's inputs: a ref, a list of refs, or keyword refs (a ref or a list each)"
}
NODE_EXTRA_KEYS = {
    NodeKind.LAYER: {
        "call": "keyword arguments for calling the layer (e.g. training)",
        "adapt": "true: adapt the preprocessing layer on the training data before training",
    },
    # `share: NODE`, or `share: MODEL.NODE` for another model's layer
    NodeKind.SHARE: {"call": "keyword arguments for calling the layer"},
    NodeKind.MODEL: {
        "trainable": "freeze (false) or unfreeze the sub-model",
        "call": "keyword arguments for calling the model (e.g. training: false)",
    },
    # Every other key of an `application:` node is a constructor argument.
    NodeKind.APPLICATION: {
        "call": "keyword arguments for calling the model",
        "trainable": "false: freeze the pretrained model (its BatchNormalization in inference "
        "mode)",
        "preprocess": "put the application's preprocess_input in the graph, so the model takes "
        "raw pixels 0..255 (default true)",
    },
    NodeKind.BLOCK: {
        "args": "arguments for the block's params, or a list of them: one set per repetition",
        "repeat": "chain the block N times (one input, one output)",
    },
}
# What to write where a section is missing or is not a mapping.
SECTION_EXAMPLES = {
    "inputs": "{x: {shape: [784]}}",
    "outputs": "[<node name>]",
    "layers": "{hidden: {type: Dense, units: 64, from: x}}",
}
