"""How fast kgraph trains a model, against the same training written by hand.

Three models of the Keras functional-API guide, each trained by kgraph and by
the guide's own code, in one process, alternating:

- ``mnist``: ``specs/mnist.yaml`` (784 -> Dense 64 relu -> Dense 64 relu ->
  Dense 10, RMSprop, batch 64, 2 epochs, validation_split 0.2) on the real
  MNIST (``mnist.npz`` in ``--data-dir``); both test accuracies must be
  >= 0.95. Target: kgraph / hand-written >= 2.5 (issue 13; 1.5 before).
- ``toy_resnet``: ``specs/toy_resnet.yaml`` (the guide's toy ResNet) on 2,048
  generated CIFAR-10-shaped images (32x32x3, one-hot labels), batch 64,
  2 epochs, validation 0.2.
- ``ticket_router``: ``specs/ticket_router.yaml`` (two Embeddings, two LSTMs,
  two heads) on 4,096 generated tickets (sequences of 20 word ids), batch 32,
  2 epochs.

The kgraph side is ``validate_spec`` then ``train_model`` (what ``kgraph train
SPEC --out TMP --force --quiet`` runs), silent; the hand-written side is the
guide's code for that model: the same layers, ``compile`` and ``model.fit``
on NumPy arrays of the same shapes and sizes.

The figure is training throughput: training samples x epochs / seconds of
``model.fit`` (the validation passes inside ``fit`` included), median over the
repetitions. ``--variants`` also times kgraph with other settings (steps per
execution, data pipeline, XLA...) in the same alternation, on each model.

Run from the repository root::

    .venv/bin/python benchmarks/train_speed.py              # 3 repetitions (`make bench`)
    .venv/bin/python benchmarks/train_speed.py --quick      # 1 repetition
    .venv/bin/python benchmarks/train_speed.py --models mnist --variants all

A table goes to stdout; machine-readable results to
``benchmarks/results/train_speed.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "specs" / "mnist.yaml"
DATA_DIR = REPO.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "train_speed.json"

# The guide's settings (specs/mnist.yaml says the same).
BATCH_SIZE = 64
EPOCHS = 2
VALIDATION_SPLIT = 0.2
SEED = 1
TARGET_RATIO = 2.5
MIN_TEST_ACCURACY = 0.95
# Untimed warm-up of both sides: a slice of this many samples, 1 epoch.
WARMUP_TAKE = 2_500


@dataclass
class Run:
    """One training: what was trained, how long it took, how well it did."""

    who: str
    train_samples: int
    epochs: int
    fit_s: float  # model.fit, validation passes included
    wall_s: float  # kgraph: train_model; hand-written: load + build + fit + evaluate
    test_accuracy: float

    @property
    def samples_per_s(self) -> float:
        return self.train_samples * self.epochs / self.fit_s if self.fit_s else 0.0


def mnist_npz(data_dir: Path) -> Path:
    return data_dir / "mnist" / "mnist.npz"


# -- the two sides --------------------------------------------------------------
def kgraph_train(
    data_dir: Path,
    *,
    take: int | None = None,
    epochs: int | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    who: str = "kgraph",
    spec: Path = SPEC,
) -> Run:
    """Train `spec` (specs/mnist.yaml) with kgraph's Python API, silently, into a
    temporary run directory. `take`: only the first N samples of the training
    file (`train.data.take`, before the validation split); `epochs` overrides the
    spec's."""
    from kgraph_cli.reporting import PlainReporter
    from kgraph_cli.spec.validate import validate_spec
    from kgraph_cli.train import TrainOptions, train_model

    _fresh_session()
    spec_overrides = [*overrides]  # what `kgraph train --set ...` would pass
    if take:
        spec_overrides.append(f"train.data.take={take}")
    if epochs is not None:
        spec_overrides.append(f"train.fit.epochs={epochs}")  # = kgraph train --epochs
    valid = validate_spec(spec, spec_overrides)
    reporter = PlainReporter(quiet=True)
    with tempfile.TemporaryDirectory(prefix="kgraph-train-bench-") as tmp:
        options = TrainOptions(out=Path(tmp) / "run", force=True, data_dir=data_dir)
        started = time.perf_counter()
        result = train_model(valid, valid.spec.default, options, reporter)
        wall = time.perf_counter() - started
    # TrainResult.samples_per_second = training samples x epochs run / fit seconds
    samples = round(result.samples_per_second * result.seconds / result.epochs)
    test = result.metrics.get("test") or {}
    return Run(
        who,
        samples,
        result.epochs,
        result.seconds,
        wall,
        float(test.get("accuracy", test.get("acc", math.nan))),
    )


def handwritten_train(
    data_dir: Path,
    *,
    take: int | None = None,
    epochs: int = EPOCHS,
    steps_per_execution: int | None = 1,
    who: str = "hand-written",
) -> Run:
    """The guide's hand-written Keras, timed around `model.fit`.

    `take`: only the first N samples of the training file (before
    validation_split); `steps_per_execution` is for a variant (the guide's is
    Keras's default, 1; None: kgraph's default for this many samples).
    """
    import keras
    import numpy as np

    _fresh_session(determinism=False)
    started = time.perf_counter()
    with np.load(mnist_npz(data_dir)) as f:
        x_train, y_train = f["x_train"], f["y_train"]
        x_test, y_test = f["x_test"], f["y_test"]
    if take:
        x_train, y_train = x_train[:take], y_train[:take]
    x_train = x_train.reshape(len(x_train), 784).astype("float32") / 255
    x_test = x_test.reshape(len(x_test), 784).astype("float32") / 255

    inputs = keras.Input(shape=(784,))
    x = keras.layers.Dense(64, activation="relu")(inputs)
    x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(10)(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(),
        metrics=["accuracy"],
        steps_per_execution=_handwritten_spe(
            steps_per_execution, len(x_train), BATCH_SIZE, VALIDATION_SPLIT
        ),
    )
    run = _handwritten_fit(
        model,
        x_train,
        y_train,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        validation_split=VALIDATION_SPLIT,
        started=started,
        who=who,
    )
    scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    wall = time.perf_counter() - started
    return replace(run, wall_s=wall, test_accuracy=float(scores["accuracy"]))


def _handwritten_fit(
    model: Any,
    inputs: Any,
    targets: Any,
    *,
    batch_size: int,
    epochs: int,
    validation_split: float,
    started: float,
    who: str,
) -> Run:
    """`model.fit` as the guide calls it, timed; the model is compiled already."""
    samples = _training_samples(len(next(iter(_leaves(inputs)))), validation_split)
    fit_started = time.perf_counter()
    model.fit(
        inputs,
        targets,
        batch_size=batch_size,
        epochs=epochs,
        validation_split=validation_split,
        verbose=0,
    )
    fit_s = time.perf_counter() - fit_started
    return Run(who, samples, epochs, fit_s, time.perf_counter() - started, math.nan)


def _leaves(data: Any) -> list[Any]:
    return list(data.values()) if isinstance(data, dict) else [data]


def toy_resnet_handwritten(
    samples: int,
    *,
    epochs: int = EPOCHS,
    steps_per_execution: int | None = 1,
    who: str = "hand-written",
) -> Run:
    """The guide's toy ResNet, as written there, on `samples` random CIFAR-10-shaped
    images with one-hot labels (what `source: {generated: N}` gives kgraph)."""
    import keras
    import numpy as np
    from keras import layers

    _fresh_session(determinism=False)
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    x_train = rng.standard_normal((samples, 32, 32, 3)).astype(np.float32)
    y_train = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=samples)]

    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])
    x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs, outputs, name="toy_resnet")
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["acc"],
        steps_per_execution=_handwritten_spe(steps_per_execution, samples, 64, 0.2),
    )
    return _handwritten_fit(
        model,
        x_train,
        y_train,
        batch_size=64,
        epochs=epochs,
        validation_split=0.2,
        started=started,
        who=who,
    )


def ticket_router_handwritten(
    samples: int,
    *,
    epochs: int = EPOCHS,
    steps_per_execution: int | None = 1,
    who: str = "hand-written",
) -> Run:
    """The guide's ticket router (num_tags 12, num_words 10,000, num_departments 4),
    as written there, on `samples` random tickets of 20 word ids per title and
    body (what `source: {generated: N, sequence_length: 20}` gives kgraph)."""
    import keras
    import numpy as np
    from keras import layers

    num_tags, num_words, num_departments, length = 12, 10_000, 4, 20
    _fresh_session(determinism=False)
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    data = {
        "title": rng.integers(0, num_words, size=(samples, length)).astype(np.float32),
        "body": rng.integers(0, num_words, size=(samples, length)).astype(np.float32),
        "tags": rng.integers(0, 2, size=(samples, num_tags)).astype(np.float32),
    }
    targets = {
        "priority": rng.integers(0, 2, size=(samples, 1)).astype(np.float32),
        "department": np.eye(num_departments, dtype=np.float32)[
            rng.integers(0, num_departments, size=samples)
        ],
    }

    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.Embedding(num_words, 64)(title_input)
    body_features = layers.Embedding(num_words, 64)(body_input)
    title_features = layers.LSTM(128)(title_features)
    body_features = layers.LSTM(32)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, name="department")(x)
    model = keras.Model(
        inputs=[title_input, body_input, tags_input], outputs=[priority_pred, department_pred]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=[
            keras.losses.BinaryCrossentropy(from_logits=True),
            keras.losses.CategoricalCrossentropy(from_logits=True),
        ],
        loss_weights=[1.0, 0.2],
        steps_per_execution=_handwritten_spe(steps_per_execution, samples, 32, 0.0),
    )
    return _handwritten_fit(
        model,
        data,
        targets,
        batch_size=32,
        epochs=epochs,
        validation_split=0.0,
        started=started,
        who=who,
    )


def _handwritten_spe(asked: int | None, samples: int, batch_size: int, split: float) -> int:
    """`asked`, or kgraph's default for this many training samples when None."""
    if asked is not None:
        return asked
    return kgraph_steps_per_execution(_training_samples(samples, split), batch_size)


def _training_samples(samples: int, validation_split: float) -> int:
    """Keras's validation_split keeps the first ceil(n * (1 - split)) samples to train on."""
    return int(math.ceil(samples * (1.0 - validation_split)))


def kgraph_steps_per_execution(train_samples: int, batch_size: int = BATCH_SIZE) -> int:
    """What kgraph compiles with when the spec sets no steps_per_execution."""
    from kgraph_cli.train import default_steps_per_execution

    return default_steps_per_execution(-(-train_samples // batch_size))


def _fresh_session(determinism: bool | None = None) -> None:
    """Clear Keras's state and seed, as both sides get before each run.

    kgraph's `train_model` turns TensorFlow's op determinism on (the spec has a
    seed), process-wide; the guide's code never does, so the hand-written side
    runs with it off (`determinism=False`).
    """
    import keras

    keras.backend.clear_session()
    gc.collect()
    if determinism is not None:
        _set_op_determinism(determinism)
    keras.utils.set_random_seed(SEED)


def _set_op_determinism(enabled: bool) -> None:
    import tensorflow as tf

    if enabled:
        tf.config.experimental.enable_op_determinism()
        return
    try:  # not in tf.config's public API
        from tensorflow.python.framework.config import disable_op_determinism
    except ImportError:  # pragma: no cover
        return
    disable_op_determinism()


# -- variants of kgraph's defaults ------------------------------------------------
@contextlib.contextmanager
def _patched(module_name: str, attribute: str, value: Any) -> Iterator[None]:
    """Temporarily replace `module.attribute` (and the same name in kgraph_cli.train)."""
    import importlib

    targets = [importlib.import_module(module_name)]
    train_module = importlib.import_module("kgraph_cli.train")
    if train_module not in targets and hasattr(train_module, attribute):
        targets.append(train_module)
    saved = [(module, getattr(module, attribute)) for module in targets]
    try:
        for module in targets:
            setattr(module, attribute, value)
        yield
    finally:
        for module, old in saved:
            setattr(module, attribute, old)


def index_shuffle_dataset(
    split: Any, batch_size: int, shuffle: bool, seed: int | None, cache: bool = True
) -> Any:
    """Candidate `make_dataset`: shuffle sample *indices*, batch them, then gather
    each batch from the in-memory arrays (what Keras does for NumPy arrays),
    instead of shuffling the samples themselves through a buffer."""
    import tensorflow as tf

    from kgraph_cli.data.pipeline import _single_or_dict

    data = _single_or_dict(split.inputs)
    if split.targets:
        data = (data, _single_or_dict(split.targets))
    tensors = tf.nest.map_structure(tf.convert_to_tensor, data)
    dataset = tf.data.Dataset.range(len(split))
    if shuffle:
        dataset = dataset.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(
        lambda index: tf.nest.map_structure(lambda t: tf.gather(t, index), tensors),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def small_buffer_dataset(
    split: Any, batch_size: int, shuffle: bool, seed: int | None, cache: bool = True
) -> Any:
    """Candidate `make_dataset`: as kgraph's, with a shuffle buffer of 10,000
    samples instead of the whole split (a weaker shuffle)."""
    from kgraph_cli.data.pipeline import make_dataset

    return make_dataset(split, batch_size, shuffle, seed, cache, shuffle_buffer=10_000)


def unprefetched_dataset(
    split: Any, batch_size: int, shuffle: bool, seed: int | None, cache: bool = True
) -> Any:
    """Candidate `make_dataset`: kgraph's, without the final `prefetch`."""
    return _cached_shuffled(split, shuffle, seed).batch(batch_size)


def per_sample_map_dataset(
    split: Any, batch_size: int, shuffle: bool, seed: int | None, cache: bool = True
) -> Any:
    """Candidate `make_dataset`: kgraph's with a per-sample `map` (a cast, on
    parallel threads) before batching: what a transform written as a tf.data
    function costs against kgraph's, done once on whole NumPy arrays."""
    import tensorflow as tf

    def per_sample(*sample: Any) -> Any:
        return tf.nest.map_structure(tf.identity, sample if len(sample) > 1 else sample[0])

    dataset = _cached_shuffled(split, shuffle, seed)
    dataset = dataset.map(per_sample, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _cached_shuffled(split: Any, shuffle: bool, seed: int | None) -> Any:
    """The first steps of kgraph's pipeline: the split's samples, cached, shuffled."""
    import tensorflow as tf

    from kgraph_cli.data.pipeline import _single_or_dict

    data = _single_or_dict(split.inputs)
    if split.targets:
        data = (data, _single_or_dict(split.targets))
    dataset = tf.data.Dataset.from_tensor_slices(data).cache()
    if shuffle:
        dataset = dataset.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    return dataset


def _seed_without_determinism(seed: int | None) -> None:
    import keras

    _set_op_determinism(False)  # an earlier kgraph run of this process turned it on
    if seed is not None:
        keras.utils.set_random_seed(seed)


@dataclass(frozen=True)
class Workload:
    """One model of the guide: its spec, how kgraph and the guide's code train it."""

    name: str
    title: str
    spec: Path
    batch_size: int
    handwritten: Callable[..., Run]  # (data_dir, take, epochs, who, **kwargs) -> Run
    generated: int | None = None  # samples of `source: {generated: N}`; None: a data file
    min_test_accuracy: float | None = None  # both sides must reach it (real data only)
    target_ratio: float | None = None  # kgraph / hand-written samples/s, the goal
    epochs: int = EPOCHS
    warmup_take: int = WARMUP_TAKE

    def kgraph(
        self,
        data_dir: Path,
        take: int | None,
        epochs: int | None,
        overrides: list[str] | tuple[str, ...] = (),
        who: str = "kgraph",
    ) -> Run:
        epochs = self.epochs if epochs is None else epochs
        if self.generated is None:
            return kgraph_train(
                data_dir, take=take, epochs=epochs, overrides=overrides, who=who, spec=self.spec
            )
        size = [f"train.data.source.generated={self.samples(take)}"]
        run = kgraph_train(
            data_dir, epochs=epochs, overrides=[*size, *overrides], who=who, spec=self.spec
        )
        return replace(run, test_accuracy=math.nan)  # random labels: nothing to learn

    def hand(
        self, data_dir: Path, take: int | None, epochs: int | None, who: str, **kwargs: Any
    ) -> Run:
        epochs = self.epochs if epochs is None else epochs
        if self.generated is None:
            return self.handwritten(data_dir, take=take, epochs=epochs, who=who, **kwargs)
        return self.handwritten(self.samples(take), epochs=epochs, who=who, **kwargs)

    def samples(self, take: int | None) -> int:
        assert self.generated is not None
        return min(self.generated, take) if take else self.generated


WORKLOADS: dict[str, Workload] = {
    "mnist": Workload(
        "mnist",
        "MNIST, specs/mnist.yaml",
        SPEC,
        BATCH_SIZE,
        handwritten_train,
        min_test_accuracy=MIN_TEST_ACCURACY,
        target_ratio=TARGET_RATIO,
    ),
    "toy_resnet": Workload(
        "toy_resnet",
        "toy ResNet, specs/toy_resnet.yaml, generated 32x32x3 images",
        REPO / "specs" / "toy_resnet.yaml",
        64,
        toy_resnet_handwritten,
        generated=2_048,
        warmup_take=256,
    ),
    "ticket_router": Workload(
        "ticket_router",
        "ticket router, specs/ticket_router.yaml, generated tickets of 20 words",
        REPO / "specs" / "ticket_router.yaml",
        32,
        ticket_router_handwritten,
        generated=4_096,
        warmup_take=256,
    ),
}


@dataclass
class Variant:
    """kgraph with one setting changed (spec overrides and/or a patched function),
    or the hand-written code with one change."""

    description: str
    overrides: list[str] = field(default_factory=list)
    patch: tuple[str, str, Callable[..., Any]] | None = None
    handwritten: dict[str, Any] | None = None  # keyword arguments of the hand-written code

    def run(
        self, workload: Workload, data_dir: Path, name: str, take: int | None, epochs: int | None
    ) -> Run:
        if self.handwritten is not None:
            return workload.hand(data_dir, take, epochs, name, **self.handwritten)
        context = _patched(*self.patch) if self.patch else contextlib.nullcontext()
        with context:
            return workload.kgraph(data_dir, take, epochs, self.overrides, name)


def _pipeline(make_dataset: Callable[..., Any]) -> tuple[str, str, Callable[..., Any]]:
    """A patch putting `make_dataset` in place of kgraph's."""
    return ("kgraph_cli.data.pipeline", "make_dataset", make_dataset)


NO_DETERMINISM = ("kgraph_cli.train", "seed_everything", _seed_without_determinism)


def _spe(n: int) -> list[str]:
    return [f"train.fit.steps_per_execution={n}"]


VARIANTS: dict[str, Variant] = {
    "control": Variant("kgraph again, unchanged: a control, its spread is the noise"),
    "spe=1": Variant("kgraph, steps_per_execution 1 (Keras's default)", _spe(1)),
    "spe=8": Variant("kgraph, steps_per_execution 8", _spe(8)),
    "spe=16": Variant("kgraph, steps_per_execution 16", _spe(16)),
    "spe=64": Variant("kgraph, steps_per_execution 64", _spe(64)),
    "spe=128": Variant("kgraph, steps_per_execution 128", _spe(128)),
    "spe=256": Variant("kgraph, steps_per_execution 256", _spe(256)),
    "spe=750": Variant("kgraph, steps_per_execution 750 (one call per epoch)", _spe(750)),
    "no-cache": Variant("kgraph, train.data.cache: false", ["train.data.cache=false"]),
    "no-shuffle": Variant("kgraph, train.fit.shuffle: false", ["train.fit.shuffle=false"]),
    "index-shuffle": Variant(
        "kgraph, make_dataset shuffling indices + batched gather",
        patch=_pipeline(index_shuffle_dataset),
    ),
    "buffer-10k": Variant(
        "kgraph, make_dataset with a 10,000-sample shuffle buffer",
        patch=_pipeline(small_buffer_dataset),
    ),
    "xla": Variant("kgraph, train.compile.jit_compile: true", ["train.compile.jit_compile=true"]),
    "no-prefetch": Variant(
        "kgraph, make_dataset without prefetch",
        patch=_pipeline(unprefetched_dataset),
    ),
    "per-sample-map": Variant(
        "kgraph, a per-sample parallel tf.data map before batching",
        patch=_pipeline(per_sample_map_dataset),
    ),
    "xla-unseeded": Variant(
        "kgraph, jit_compile true, seeded without op determinism (XLA really on)",
        ["train.compile.jit_compile=true"],
        patch=NO_DETERMINISM,
    ),
    "no-determinism": Variant(
        "kgraph, seeded without TensorFlow op determinism",
        patch=NO_DETERMINISM,
    ),
    "hand-spe": Variant(
        "hand-written, compile(steps_per_execution=kgraph's default)",
        handwritten={"steps_per_execution": None},
    ),
}


def variant(name: str) -> Variant:
    """A variant of `VARIANTS` by name; also any `spe=N` (steps_per_execution N)."""
    if name in VARIANTS:
        return VARIANTS[name]
    if name.startswith("spe=") and name[4:].isdigit() and int(name[4:]) >= 1:
        return Variant(f"kgraph, steps_per_execution {int(name[4:])}", _spe(int(name[4:])))
    raise KeyError(name)


# -- the benchmark -----------------------------------------------------------------
def bench_train(
    data_dir: Path,
    reps: int,
    workload: Workload = WORKLOADS["mnist"],
    variants: list[str] | None = None,
    take: int | None = None,
    epochs: int | None = None,
    warmup: bool = True,
) -> dict[str, Any]:
    """Train `workload` by kgraph, by hand and with the variants, alternating,
    `reps` times; medians, ratios."""
    from kgraph_cli.tf import import_keras

    import_keras()  # TensorFlow's import is not what we measure
    variants = list(variants or [])
    runners: dict[str, Callable[[], Run]] = {
        "kgraph": lambda: workload.kgraph(data_dir, take, epochs),
        "hand-written": lambda: workload.hand(data_dir, take, epochs, "hand-written"),
    }
    for name in variants:
        chosen = variant(name)
        runners[name] = lambda v=chosen, n=name: v.run(workload, data_dir, n, take, epochs)
    if warmup:
        # Untimed: the first training of a process pays one-off costs (thread
        # pools, kernels, caches) that neither side should carry.
        workload.kgraph(data_dir, workload.warmup_take, 1)
        workload.hand(data_dir, workload.warmup_take, 1, "hand-written")

    runs: dict[str, list[Run]] = {name: [] for name in runners}
    for rep in range(reps):
        # Alternate who goes first, so drift in machine load hits both sides alike;
        # the variants follow, rotated, so that none always runs at the same time.
        pair = ["kgraph", "hand-written"] if rep % 2 == 0 else ["hand-written", "kgraph"]
        shift = rep * len(variants) // reps if variants else 0
        for name in [*pair, *variants[shift:], *variants[:shift]]:
            runs[name].append(runners[name]())
    _set_op_determinism(False)
    _fresh_session()

    summary = {name: _summarise(name_runs) for name, name_runs in runs.items()}
    kgraph, hand = summary["kgraph"], summary["hand-written"]
    ratio = kgraph["samples_per_s"] / hand["samples_per_s"]
    per_rep = [
        k.samples_per_s / h.samples_per_s
        for k, h in zip(runs["kgraph"], runs["hand-written"], strict=True)
    ]
    for name in variants:
        row = summary[name]
        row["description"] = variant(name).description
        row["vs_kgraph"] = row["samples_per_s"] / kgraph["samples_per_s"]
        row["vs_handwritten"] = row["samples_per_s"] / hand["samples_per_s"]
    target = workload.target_ratio
    return {
        "model": workload.name,
        "title": workload.title,
        "batch_size": workload.batch_size,
        "reps": reps,
        "epochs": kgraph["epochs"],
        "train_samples": kgraph["train_samples"],
        "kgraph_steps_per_execution": kgraph_steps_per_execution(
            kgraph["train_samples"], workload.batch_size
        ),
        "kgraph": kgraph,
        "handwritten": hand,
        "ratio": ratio,
        "ratio_median_of_reps": statistics.median(per_rep),
        "target_ratio": target,
        "meets_target": None if target is None else ratio >= target,
        "min_test_accuracy": workload.min_test_accuracy,
        "variants": {name: summary[name] for name in variants},
        "runs": {name: [asdict(r) for r in name_runs] for name, name_runs in runs.items()},
    }


def _summarise(runs: list[Run]) -> dict[str, Any]:
    return {
        "train_samples": runs[0].train_samples,
        "epochs": runs[0].epochs,
        "fit_s": statistics.median(r.fit_s for r in runs),
        "samples_per_s": statistics.median(r.samples_per_s for r in runs),
        "wall_s": statistics.median(r.wall_s for r in runs),
        "test_accuracy": statistics.median(r.test_accuracy for r in runs),
        "test_accuracy_min": min(r.test_accuracy for r in runs),
        "samples_per_s_all": [r.samples_per_s for r in runs],
    }


def check_accuracy(results: dict[str, Any], minimum: float | None = None) -> None:
    """Both sides must still learn the data: every run's test accuracy >= `minimum`
    (the model's own bar unless given; models on random data have none)."""
    minimum = results.get("min_test_accuracy") if minimum is None else minimum
    if minimum is None:
        return
    for who in ("kgraph", "handwritten"):
        worst = results[who]["test_accuracy_min"]
        assert worst >= minimum, f"{who} test accuracy {worst:.4f} < {minimum}"


# -- report -----------------------------------------------------------------------
def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    from importlib.metadata import PackageNotFoundError, version

    for package in ("tensorflow-cpu", "tensorflow", "keras", "numpy"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            pass
    return info


def format_report(results: dict[str, Any]) -> str:
    kgraph, hand = results["kgraph"], results["handwritten"]
    target = results["target_ratio"]
    goal = "no target" if target is None else f"target >= {target}x: "
    if target is not None:
        goal += "met" if results["meets_target"] else "NOT met"
    lines = [
        f"{results['title']}: {results['train_samples']:,} training samples x "
        f"{results['epochs']} epoch(s), batch {results['batch_size']}; "
        f"median of {results['reps']}",
        "",
        f"  {'':30} {'fit s':>7} {'samples/s':>10} {'wall s':>7} {'test acc':>8}",
    ]
    rows = [("kgraph", kgraph), ("hand-written Keras", hand)]
    for name, row in rows:
        lines.append(
            f"  {name:30} {row['fit_s']:7.2f} {row['samples_per_s']:10,.0f} "
            f"{row['wall_s']:7.2f} {row['test_accuracy']:8.4f}"
        )
    lines += [
        f"  (kgraph's default steps_per_execution here: {results['kgraph_steps_per_execution']};"
        " the hand-written code's: 1)",
        "",
        f"  ratio kgraph / hand-written (samples/s): {results['ratio']:.2f}x ({goal})",
        f"  median of per-repetition ratios:         {results['ratio_median_of_reps']:.2f}x",
        "",
        "  fit s: model.fit (validation included); samples/s: training samples x epochs / fit s;",
        "  wall s: kgraph's whole train_model (data, build, fit, evaluate, save, curves);",
        "  hand-written: load + build + fit (+ evaluate on real data); test acc: real data only.",
        "",
    ]
    variants = results.get("variants") or {}
    if variants:
        lines += [
            "Variants (same alternation)",
            "",
            f"  {'variant':16} {'fit s':>7} {'samples/s':>10} {'vs kgraph':>9} "
            f"{'vs hand':>8} {'test acc':>8}  what",
        ]
        for name, row in variants.items():
            lines.append(
                f"  {name:16} {row['fit_s']:7.2f} {row['samples_per_s']:10,.0f} "
                f"{row['vs_kgraph']:8.2f}x {row['vs_handwritten']:7.2f}x "
                f"{row['test_accuracy']:8.4f}  {row['description']}"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition")
    parser.add_argument(
        "--models",
        default=",".join(WORKLOADS),
        help=f"comma-separated models to train (default all): {', '.join(WORKLOADS)}",
    )
    parser.add_argument("--reps", type=int, help="repetitions (median taken); default 3")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DATA_DIR,
        help=f"folder holding mnist/mnist.npz (default {DATA_DIR})",
    )
    parser.add_argument(
        "--variants",
        default="",
        help=f"comma-separated variants to time too, or 'all': {', '.join(VARIANTS)}, or any spe=N",
    )
    parser.add_argument(
        "--take",
        type=int,
        help="train on the first N samples only (of the file, or generated; a smoke run)",
    )
    parser.add_argument("--epochs", type=int, help=f"epochs (default {EPOCHS})")
    parser.add_argument(
        "--no-warmup", action="store_true", help="skip the untimed warm-up trainings"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)

    models = [m for m in args.models.split(",") if m]
    if not models or set(models) - set(WORKLOADS):
        parser.error(f"--models: choose among {', '.join(WORKLOADS)}")
    if "mnist" in models and not mnist_npz(args.data_dir).is_file():
        print(f"error: {mnist_npz(args.data_dir)} not found (see --data-dir)", file=sys.stderr)
        return 2
    variants = (
        list(VARIANTS) if args.variants == "all" else [v for v in args.variants.split(",") if v]
    )
    unknown = []
    for name in variants:
        try:
            variant(name)
        except KeyError:
            unknown.append(name)
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    reps = args.reps or (1 if args.quick else 3)

    results: dict[str, Any] = {
        "benchmark": "train_speed",
        "date": datetime.date.today().isoformat(),
        "quick": args.quick,
        "data": str(mnist_npz(args.data_dir)),
        "environment": environment(),
    }
    started = time.perf_counter()
    results["models"] = {}
    for name in models:
        results["models"][name] = bench_train(
            args.data_dir,
            reps,
            WORKLOADS[name],
            variants,
            args.take,
            args.epochs,
            warmup=not args.no_warmup,
        )
        print(format_report(results["models"][name]), flush=True)
    results["total_s"] = time.perf_counter() - started
    results["environment"].update(_keras_versions())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.output}")
    if args.take is None and args.epochs is None:  # the guide's full runs
        for model_results in results["models"].values():
            check_accuracy(model_results)
    return 0


def _keras_versions() -> dict[str, Any]:
    if "keras" not in sys.modules:
        return {}
    import keras

    versions: dict[str, Any] = {"keras_runtime": keras.__version__}
    if "tensorflow" in sys.modules:
        versions["tensorflow_runtime"] = sys.modules["tensorflow"].__version__
    return versions


if __name__ == "__main__":
    sys.exit(main())
