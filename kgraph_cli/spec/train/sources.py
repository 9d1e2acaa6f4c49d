"""Data sources in `train:` (`data.source`, and `{source: ...}` for test or
validation data): which kind a source is, and every option whose valid values
are known without reading data (dataset names and the options each dataset
takes, paths written as text, image sizes, colour modes, CSV delimiters,
TFRecord features and compression, the counts and seed of generated data).

`kgraph validate` reports these through the `train:` parser; the data readers
run the same checks (`check_source`) before they read, so each check exists
once and a reader only meets values it can use.
"""

from __future__ import annotations

from typing import Any

from kgraph_cli.errors import SpecError
from kgraph_cli.spec.fields import FieldChecker
from kgraph_cli.spec.loader import YamlList, YamlMap
from kgraph_cli.spec.train.keys import (
    COLOR_MODES,
    COMPRESSIONS,
    DATASET_OPTIONS,
    DATASETS,
    LABEL_MODES,
    SEQUENCE_DATASETS,
    SOURCE_KINDS,
    TFRECORD_DTYPES,
)
from kgraph_cli.spec.train.model import SourceSpec
from kgraph_cli.spec.values import describe
from kgraph_cli.suggest import did_you_mean

# integer option -> (smallest valid value, hint); null means the default
_SEQUENCE_OPTIONS = {
    "num_words": (1, "e.g. num_words: 10000 keeps the 10,000 most frequent words"),
    "skip_top": (0, "e.g. skip_top: 20 marks the 20 most frequent words as unknown"),
    "maxlen": (1, "e.g. maxlen: 200 pads or cuts every sequence to 200 word ids"),
}
# integer option -> (smallest valid value, hint); null is not valid
_GENERATED_OPTIONS = {
    "generated": (1, ""),
    "seed": (0, "any integer >= 0: the same seed gives the same data"),
    "sequence_length": (1, "the length of variable-length (null) dimensions, e.g. 16"),
    "test_samples": (1, "how many test samples to generate, e.g. 64"),
}


def check_source(source: SourceSpec) -> None:
    """Raise SpecError with the problems of a source's options (the data readers'
    first step), located as `kgraph validate` reports them."""
    checker = SourceChecker(source.loc.file)
    checker.options(source.options, source.kind, source.path)
    if checker.diagnostics:
        raise SpecError(checker.diagnostics)


class SourceChecker(FieldChecker):
    """Checks data sources, appending to `problems`."""

    def source(self, parent: Any, key: Any, path: str) -> SourceSpec | None:
        """`parent[key]` as a source of one kind with valid options, or None."""
        body = self.mapping(parent, key, path, "a data source")
        if body is None:
            return None
        kinds = [k for k in SOURCE_KINDS if k in body]
        if len(kinds) != 1:
            message = (
                "a data source names one kind"
                if not kinds
                else f"a data source names one kind, not {' and '.join(kinds)}"
            )
            self.error(
                "source",
                message,
                body.loc,
                path,
                f"one of: {', '.join(SOURCE_KINDS)}; e.g. {{dataset: mnist}}",
            )
            return None
        self.options(body, kinds[0], path)
        return SourceSpec(kinds[0], body, body.loc, path)

    def options(self, body: YamlMap, kind: str, path: str) -> None:
        """Every option of a `kind` source: known to the kind, with a valid value."""
        for option in body:
            if option not in SOURCE_KINDS[kind]:
                self.error(
                    "unknown-key",
                    f"unknown option '{option}' for a {kind} source",
                    body.key_loc(option),
                    f"{path}.{option}",
                    did_you_mean(option, SOURCE_KINDS[kind]),
                )
        checks = {
            "dataset": self.dataset,
            "npz": self.npz,
            "npy": self.npy,
            "csv": self.csv,
            "images": self.images,
            "tfrecord": self.tfrecord,
            "generated": self.generated,
        }
        checks[kind](body, path)

    def path(self, parent: Any, key: Any, path: str) -> None:
        """A file or folder, written as text (whether it exists is the reader's check)."""
        value = parent[key]
        if not isinstance(value, str) or not value.strip():
            self.error(
                "type",
                f"{path.rsplit('.', 1)[-1]} must be a path, got {describe(value)}",
                self.where(parent, key),
                path,
                "a file name, relative to the spec's folder",
            )

    def dataset(self, body: YamlMap, path: str) -> None:
        name = body["dataset"]
        if name not in DATASETS:
            self.error(
                "unknown-dataset",
                f"unknown dataset '{name}'",
                body.value_loc("dataset"),
                f"{path}.dataset",
                did_you_mean(str(name), DATASETS),
            )
            return
        for option, applies in DATASET_OPTIONS.items():
            if option in body and name not in applies:
                self.error(
                    "unknown-key",
                    f"option '{option}' does not apply to dataset '{name}'",
                    body.key_loc(option),
                    f"{path}.{option}",
                    f"{option} is for {' and '.join(applies)}",
                )
        if name in SEQUENCE_DATASETS:
            for option, (minimum, hint) in _SEQUENCE_OPTIONS.items():
                if body.get(option) is not None:
                    self.number(body, option, f"{path}.{option}", int, minimum, hint=hint)
        if "label_mode" in body and name in DATASET_OPTIONS["label_mode"]:
            hint = "; ".join(f"{mode}: {meaning}" for mode, meaning in LABEL_MODES.items())
            self.choice(body, "label_mode", f"{path}.label_mode", list(LABEL_MODES), hint)

    def npz(self, body: YamlMap, path: str) -> None:
        self.path(body, "npz", f"{path}.npz")

    def csv(self, body: YamlMap, path: str) -> None:
        self.path(body, "csv", f"{path}.csv")
        delimiter = body.get("delimiter")
        if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
            self.error(
                "type",
                f"delimiter must be one character, got {describe(delimiter)}",
                self.where(body, "delimiter"),
                f"{path}.delimiter",
                "e.g. ',' ';' or '\\t' (in double quotes: \"\\t\")",
            )

    def generated(self, body: YamlMap, path: str) -> None:
        for option, (minimum, hint) in _GENERATED_OPTIONS.items():
            if option in body:
                self.number(body, option, f"{path}.{option}", int, minimum, hint=hint)
        names = body.get("positions")
        if "positions" in body and not (
            isinstance(names, YamlList) and all(isinstance(n, str) for n in names)
        ):
            self.type_error(
                body,
                "positions",
                f"{path}.positions",
                "positions must be a list of input names",
                names,
                "e.g. positions: [pos]",
            )

    def npy(self, body: YamlMap, path: str) -> None:
        files = body["npy"]
        if not isinstance(files, YamlMap) or not files:
            self.error(
                "type",
                "npy must be a mapping of field name to .npy file, "
                f"got {describe(files, lists=True)}",
                self.where(body, "npy"),
                f"{path}.npy",
                "e.g. npy: {x: x.npy, y: y.npy}",
            )
            return
        for name in files:
            self.path(files, name, f"{path}.npy.{name}")

    def images(self, body: YamlMap, path: str) -> None:
        self.path(body, "images", f"{path}.images")
        if "image_size" in body:
            size = body["image_size"]
            if (
                not isinstance(size, list)
                or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
            ):
                self.error(
                    "type",
                    "image_size must be [height, width] (two positive integers), "
                    f"got {describe(size, lists=True)}",
                    self.where(body, "image_size"),
                    f"{path}.image_size",
                    "e.g. image_size: [64, 64]",
                )
        if "color_mode" in body:
            hint = ", ".join(
                f"{mode}: {n} channel{'s' * (n > 1)}" for mode, (_, n) in COLOR_MODES.items()
            )
            self.choice(body, "color_mode", f"{path}.color_mode", list(COLOR_MODES), hint)

    def tfrecord(self, body: YamlMap, path: str) -> None:
        files = body["tfrecord"]
        if isinstance(files, str):
            self.path(body, "tfrecord", f"{path}.tfrecord")
        elif isinstance(files, YamlList) and files:
            for i in range(len(files)):
                self.path(files, i, f"{path}.tfrecord[{i}]")
        else:
            self.error(
                "type",
                f"tfrecord must be a file or a list of files, got {describe(files, lists=True)}",
                self.where(body, "tfrecord"),
                f"{path}.tfrecord",
                "e.g. tfrecord: train.tfrecord, or [part-0.tfrecord, part-1.tfrecord]",
            )
        self.tfrecord_features(body, path)
        if body.get("compression") is not None:
            self.choice(
                body,
                "compression",
                f"{path}.compression",
                ["GZIP", "ZLIB"],
                "leave it out for uncompressed files",
                aliases=COMPRESSIONS,
            )

    def tfrecord_features(self, body: YamlMap, path: str) -> None:
        example = "e.g. features: {x: {shape: [784], dtype: float32}, y: {shape: [], dtype: int64}}"
        if "features" not in body:
            self.error(
                "missing",
                "a tfrecord source needs `features`",
                body.loc,
                f"{path}.features",
                example,
            )
            return
        features = self.mapping(body, "features", f"{path}.features", "features")
        if features is not None and not features:
            self.error(
                "type",
                "a tfrecord source needs `features`: a mapping of field name to {shape, dtype}",
                body.value_loc("features"),
                f"{path}.features",
                example,
            )
        for name in features or {}:
            fpath = f"{path}.features.{name}"
            feature = self.mapping(
                features, name, fpath, f"feature '{name}'", {"shape": "", "dtype": ""}
            )
            if feature is None:
                continue
            shape = feature.get("shape", [])
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
            ):
                self.error(
                    "type",
                    f"the shape of feature '{name}' must be a list of integers >= 0, "
                    f"got {describe(shape, lists=True)}",
                    self.where(feature, "shape"),
                    f"{fpath}.shape",
                    "every record has the same shape: [] for a scalar, [784] for a vector",
                )
            dtype = feature.get("dtype", "float32")
            if not isinstance(dtype, str) or dtype not in TFRECORD_DTYPES:
                self.error(
                    "dtype",
                    f"TFRecord features are float32, int64 or string, got '{dtype}'",
                    feature.value_loc("dtype"),
                    f"{fpath}.dtype",
                    "cast afterwards with a transform: {cast: int32}",
                )
