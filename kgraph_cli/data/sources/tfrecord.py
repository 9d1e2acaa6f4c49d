"""`{tfrecord: FILES, features: {...}}` sources: tf.train.Example records parsed
with TensorFlow, the only source that needs it (imported when reading); a record
that does not match the declared features is reported with its index. What the
records hold counts against the data limit (base.data_limit) as they are read,
so a compressed file that unpacks to more is stopped at the limit."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from kgraph_cli.data.sources.base import DataFileError, Source, SourceData, check_size
from kgraph_cli.spec.loader import YamlList
from kgraph_cli.spec.train.keys import COMPRESSIONS, TFRECORD_DTYPES


@dataclass
class _Feature:
    name: str
    shape: list[int]
    dtype: str


def read_tfrecord(src: Source) -> SourceData:
    """The features of every record of the files, in the train split."""
    files = _tfrecord_files(src)
    features = _tfrecord_features(src)
    compression = COMPRESSIONS[(src.options.get("compression") or "").lower()]

    from kgraph_cli.tf import import_keras

    import_keras()
    import tensorflow as tf

    spec = {
        f.name: tf.io.FixedLenFeature(
            f.shape, {"float32": tf.float32, "int64": tf.int64, "string": tf.string}[f.dtype]
        )
        for f in features
    }
    chunks: dict[str, list[np.ndarray]] = {f.name: [] for f in features}
    held = 0  # bytes of the records read so far
    for file, at, path in files:
        # an explicit buffer_size keeps TensorFlow from logging that it picked one
        dataset = tf.data.TFRecordDataset(
            str(file), compression_type=compression, buffer_size=256 * 1024
        )
        parsed = dataset.map(lambda record: tf.io.parse_single_example(record, spec)).batch(1024)
        try:
            for batch in parsed:
                for name, tensor in batch.items():
                    array = tensor.numpy()
                    chunks[name].append(array)
                    held += sum(map(len, array.flat)) if array.dtype == object else array.nbytes
                check_size(held, f"records of {', '.join(chunks)}")
        except DataFileError as exc:
            src.fail(f"{file} {exc}", exc.hint, key="tfrecord", at=at, path=path)
        except tf.errors.OpError as exc:
            _tfrecord_problem(src, tf, exc, file, at, path, dataset, features, compression)
    if not chunks[features[0].name]:
        shown = files[0][0] if len(files) == 1 else f"{len(files)} files"
        src.fail(
            f"{shown} holds no records", "write tf.train.Example records into it", key="tfrecord"
        )
    fields = {name: np.concatenate(parts) for name, parts in chunks.items()}
    splits = {"train": fields}
    shown = str(files[0][0]) if len(files) == 1 else f"{len(files)} files in {files[0][0].parent}"
    return SourceData(splits, f"tfrecord {shown} ({len(fields[features[0].name]):,} records)")


def _tfrecord_files(src: Source) -> list[tuple[Path, tuple[Any, Any], str]]:
    """(file, where the spec names it, its key path) for each file; patterns expanded."""
    value = src.options["tfrecord"]
    base = f"{src.spec.path}.tfrecord"
    if isinstance(value, YamlList):
        items = [(v, (value, i), f"{base}[{i}]") for i, v in enumerate(value)]
    else:
        items = [(value, (src.options, "tfrecord"), base)]
    files = []
    for item, at, path in items:
        if any(c in item for c in "*?["):
            pattern = src.resolve(item, key="tfrecord", at=at, path=path)
            matches = sorted(p for p in pattern.parent.glob(pattern.name) if p.is_file())
            if not matches:
                src.fail(f"no file matches {pattern}", key="tfrecord", at=at, path=path)
            files.extend((m, at, path) for m in matches)
        else:
            files.append(
                (
                    src.existing(item, key="tfrecord", at=at, path=path, what="TFRecord file"),
                    at,
                    path,
                )
            )
    return files


def _tfrecord_features(src: Source) -> list[_Feature]:
    body = src.options["features"]
    return [
        _Feature(str(name), list(feature.get("shape", [])), feature.get("dtype", "float32"))
        for name, feature in body.items()
    ]


def _tf_message(exc: Any) -> str:
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(getattr(exc, "message", exc)))
    text = re.sub(r"\s*\[Op:\w+\].*", "", text.split("\n")[0])
    return text.strip().rstrip(".")


def _tfrecord_problem(
    src: Source,
    tf: Any,
    exc: Any,
    file: Path,
    at: tuple[Any, Any],
    path: str,
    dataset: Any,
    features: list[_Feature],
    compression: str,
) -> NoReturn:
    message = _tf_message(exc)
    if isinstance(exc, tf.errors.DataLossError):
        with open(file, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        if not compression and gzipped:
            hint = "the file is GZIP-compressed: add `compression: GZIP`"
        elif compression:
            hint = f"check `compression` ({compression}): it must match how the file was written"
        else:
            hint = "the file is corrupted or truncated, or not a TFRecord file"
        src.fail(
            f"{file} is not a valid TFRecord file ({message})",
            hint,
            key="tfrecord",
            at=at,
            path=path,
        )
    body = src.options["features"]
    problem = _find_bad_feature(tf, dataset, features)
    if problem is not None:
        name, text = problem
        src.fail(
            f"{text} in {file}",
            f"declare features as the records hold them (features.{name})",
            at=(body, name),
            path=f"{src.spec.path}.features.{name}",
        )
    match = re.search(r"(?:Feature|Key): (\S+?)[. ]", message)
    name = match.group(1) if match and match.group(1) in body else None
    if name is None:
        src.fail(f"cannot parse the records of {file}: {message}", key="tfrecord", at=at, path=path)
    src.fail(
        f"cannot parse feature '{name}' of {file}: {message}",
        at=(body, name),
        path=f"{src.spec.path}.features.{name}",
    )


def _find_bad_feature(tf: Any, dataset: Any, features: list[_Feature]) -> tuple[str, str] | None:
    """The first record whose features do not match the spec: (feature, what is wrong)."""
    kinds = {"float_list": "float", "int64_list": "int64", "bytes_list": "bytes (string)"}
    try:
        for index, record in enumerate(dataset):
            example = tf.train.Example.FromString(record.numpy())
            present = example.features.feature
            for f in features:
                if f.name not in present:
                    return f.name, f"record {index} has no feature '{f.name}'"
                kind = present[f.name].WhichOneof("kind")
                count = len(getattr(present[f.name], kind).value) if kind else 0
                wanted = math.prod(f.shape)
                if kind != TFRECORD_DTYPES[f.dtype]:
                    return f.name, (
                        f"feature '{f.name}' of record {index} holds "
                        f"{kinds.get(kind, 'no')} values, not {f.dtype}"
                    )
                if count != wanted:
                    return f.name, (
                        f"feature '{f.name}' of record {index} has {count} value(s), "
                        f"but shape {f.shape} needs {wanted}"
                    )
    except Exception:  # the records themselves are unreadable: report TensorFlow's message
        return None
    return None
