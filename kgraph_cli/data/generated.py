"""Random data shaped like a model's inputs and outputs, for smoke runs of any spec."""

from __future__ import annotations

import numpy as np

from kgraph_cli.data.pipeline import ModelIO
from kgraph_cli.data.sources import SourceData
from kgraph_cli.spec.train import SourceSpec, check_source


def generate(source: SourceSpec, io: ModelIO) -> SourceData:
    """Seeded random inputs and loss-appropriate targets; splits train and test."""
    check_source(source)  # the counts and seed are integers from here on
    options = source.options
    samples = int(options["generated"])
    seed = int(options.get("seed", 0))
    length = int(options.get("sequence_length", 16))
    test_samples = int(options.get("test_samples", max(1, samples // 4)))
    rng = np.random.default_rng(seed)
    splits = {
        split: _fields(io, n, length, rng)
        for split, n in (("train", samples), ("test", test_samples))
    }
    return SourceData(
        splits, f"generated: {samples:,} train and {test_samples:,} test samples (seed {seed})"
    )


def _fields(io: ModelIO, n: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    fields: dict[str, np.ndarray] = {}
    for name, (shape, dtype) in io.inputs.items():
        dims = (n, *(length if d is None else d for d in shape))
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
        if "sparse" in loss:
            fields[name] = rng.integers(0, max(classes, 2), size=(n, *dims[:-1])).astype(np.int32)
        elif "categorical" in loss or "kl" in loss:
            labels = rng.integers(0, classes, size=(n, *dims[:-1]))
            fields[name] = np.eye(classes, dtype=np.float32)[labels]
        elif "binary" in loss or "hinge" in loss or "bce" in loss:
            fields[name] = rng.integers(0, 2, size=(n, *dims)).astype(np.float32)
        else:
            fields[name] = rng.standard_normal((n, *dims)).astype(np.float32)
    return fields
