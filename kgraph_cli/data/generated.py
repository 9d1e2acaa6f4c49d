"""Random data shaped like a model's inputs and outputs, for smoke runs of any spec.

Targets suit each output's loss; an output shaped like the model's one float
input of that shape is an autoencoder's, and its target is the input itself.
`positions: [name]` gives an input 0..N-1 along its last axis."""

from __future__ import annotations

import numpy as np

from kgraph_cli.data.pipeline import ModelIO
from kgraph_cli.data.sources import SourceData
from kgraph_cli.errors import SpecError
from kgraph_cli.spec.train import SourceSpec, check_source
from kgraph_cli.suggest import did_you_mean


def generate(source: SourceSpec, io: ModelIO) -> SourceData:
    """Seeded random inputs and loss-appropriate targets; splits train and test."""
    check_source(source)  # the counts and seed are integers from here on
    options = source.options
    samples = int(options["generated"])
    seed = int(options.get("seed", 0))
    length = int(options.get("sequence_length", 16))
    test_samples = int(options.get("test_samples", max(1, samples // 4)))
    positions = list(options.get("positions") or [])
    for name in positions:
        if name not in io.inputs:
            raise SpecError.at(
                "data",
                f"positions: '{name}' is not an input of the model",
                options.value_loc("positions"),
                f"{source.path}.positions",
                did_you_mean(name, io.inputs),
            )
    rng = np.random.default_rng(seed)
    splits = {
        split: _fields(io, n, length, rng, positions)
        for split, n in (("train", samples), ("test", test_samples))
    }
    return SourceData(
        splits, f"generated: {samples:,} train and {test_samples:,} test samples (seed {seed})"
    )


def _fields(
    io: ModelIO, n: int, length: int, rng: np.random.Generator, positions: list[str]
) -> dict[str, np.ndarray]:
    fields: dict[str, np.ndarray] = {}
    for name, (shape, dtype) in io.inputs.items():
        dims = (n, *(length if d is None else d for d in shape))
        if name in positions:
            numpy_dtype = np.float32 if dtype in ("bfloat16", "string") else dtype
            fields[name] = np.broadcast_to(np.arange(dims[-1]), dims).astype(numpy_dtype)
            continue
        # Inputs feeding an Embedding get valid ids, also when declared float32
        # (as the guide's ticket router does): normal noise would be ids -3..3.
        if dtype.startswith(("int", "uint")) or name in io.vocab_sizes:
            fields[name] = rng.integers(0, io.vocab_sizes.get(name, 10), size=dims).astype(dtype)
        elif dtype == "bool":
            fields[name] = rng.integers(0, 2, size=dims).astype(bool)
        else:
            fields[name] = rng.standard_normal(dims).astype(np.float32)
    for name, shape in io.outputs.items():
        dims = tuple(length if d is None else d for d in shape)
        loss = (io.losses.get(name) or "").lower()
        classes = dims[-1] if dims else 2
        binary = "binary" in loss or "hinge" in loss or "bce" in loss
        same = [
            i
            for i, (in_shape, dtype) in io.inputs.items()
            if dtype.startswith("float")
            and i not in positions
            and i not in io.vocab_sizes
            and tuple(length if d is None else d for d in in_shape) == dims
        ]
        if len(same) == 1 and "categorical" not in loss and "kl" not in loss:
            if binary:  # a sigmoid reconstruction: pixels in [0, 1]
                fields[same[0]] = rng.random((n, *dims)).astype(np.float32)
            fields[name] = fields[same[0]].copy()  # an autoencoder: the target is its input
        elif "sparse" in loss:
            fields[name] = rng.integers(0, max(classes, 2), size=(n, *dims[:-1])).astype(np.int32)
        elif "categorical" in loss or "kl" in loss:
            labels = rng.integers(0, classes, size=(n, *dims[:-1]))
            fields[name] = np.eye(classes, dtype=np.float32)[labels]
        elif binary:
            fields[name] = rng.integers(0, 2, size=(n, *dims)).astype(np.float32)
        else:
            fields[name] = rng.standard_normal((n, *dims)).astype(np.float32)
    return fields
