"""`{dataset: NAME}` sources: the keras.datasets collections, read by kgraph from
the files Keras would download (in --data-dir, $KGRAPH_DATA_DIR or Keras's
cache) before any download, with Keras's own conventions (splits, dtypes,
shuffles, word indices); and `digits`, which ships with kgraph.

Which dataset names exist, and which options each takes, is
kgraph_cli.spec.train.keys's (checked before reading). Keras is imported only
for the download fallback.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgraph_cli.data.sources.base import (
    FILE_ERRORS,
    DataFileError,
    RestrictedUnpickler,
    Source,
    SourceData,
    counts,
    error_text,
    load_npz,
)
from kgraph_cli.errors import KgraphError
from kgraph_cli.keras_cache import keras_cache_dirs, keras_home
from kgraph_cli.spec.train.keys import SEQUENCE_DATASETS

_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# Keras's constants for imdb and reuters.
_SEED = 113
_START_CHAR, _OOV_CHAR, _INDEX_FROM = 1, 2, 3
_TEST_SPLIT = 0.2


@dataclass(frozen=True)
class _DatasetFiles:
    files: tuple[str, ...]  # one file (npz or archive), looked for in every folder searched
    folders: tuple[str, ...]  # an extracted archive
    idx: bool  # the four idx .gz files, only in a folder named after the dataset
    wanted: str  # what to put where, for the hint
    url: str


_CIFAR10_DIR = "cifar-10-batches-py"
_CIFAR100_DIR = "cifar-100-python"
# Where the files of each dataset of DATASETS (digits aside: it ships with
# kgraph) are, by the name they have there.
_DATASET_FILES = {
    "mnist": _DatasetFiles(
        ("mnist.npz",),
        (),
        True,
        "mnist.npz (or the four MNIST idx .gz files in a mnist/ folder)",
        f"{_KERAS_ORIGIN}mnist.npz",
    ),
    "fashion_mnist": _DatasetFiles(
        (),
        (),
        True,
        f"the four Fashion-MNIST idx .gz files ({', '.join(_IDX_FILES)}) "
        "in a fashion-mnist/ folder",
        f"{_KERAS_ORIGIN}fashion-mnist/",
    ),
    "cifar10": _DatasetFiles(
        # the archive as published, then as older and newer Keras versions cache it
        (
            "cifar-10-python.tar.gz",
            "cifar-10-batches-py.tar.gz",
            "cifar-10-batches-py-target_archive",
        ),
        (_CIFAR10_DIR, f"cifar-10-batches-py-target/{_CIFAR10_DIR}"),
        False,
        f"cifar-10-python.tar.gz (or its extracted {_CIFAR10_DIR}/ folder)",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ),
    "cifar100": _DatasetFiles(
        ("cifar-100-python.tar.gz", "cifar-100-python-target_archive"),
        (_CIFAR100_DIR, f"cifar-100-python-target/{_CIFAR100_DIR}"),
        False,
        f"cifar-100-python.tar.gz (or its extracted {_CIFAR100_DIR}/ folder)",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    ),
    "imdb": _DatasetFiles(("imdb.npz",), (), False, "imdb.npz", f"{_KERAS_ORIGIN}imdb.npz"),
    "reuters": _DatasetFiles(
        ("reuters.npz",), (), False, "reuters.npz", f"{_KERAS_ORIGIN}reuters.npz"
    ),
    "boston_housing": _DatasetFiles(
        ("boston_housing.npz",),
        (),
        False,
        "boston_housing.npz",
        f"{_KERAS_ORIGIN}boston_housing.npz",
    ),
}


def _channels_first() -> bool:
    """Keras's image_data_format, read from keras.json without importing Keras."""
    try:
        config = json.loads((keras_home() / "keras.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("image_data_format") == "channels_first"


def _search_folders(name: str, data_dir: Path | None) -> list[tuple[Path, bool]]:
    """(folder, is it named after the dataset), in search order."""
    roots = [Path(os.path.abspath(data_dir.expanduser()))] if data_dir else []
    roots += keras_cache_dirs("datasets")
    subs = list(dict.fromkeys([name, name.replace("_", "-")]))
    folders = {
        folder: named
        for root in roots
        for folder, named in [(root, False)] + [(root / s, True) for s in subs]
    }
    return list(folders.items())


def _find_dataset(
    src: Source, name: str, folders: list[tuple[Path, bool]]
) -> tuple[str, Path] | None:
    files = _DATASET_FILES[name]
    for folder, named in folders:
        if not folder.is_dir():
            continue
        for file in files.files:
            if (folder / file).is_file():
                return "file", folder / file
        for sub in files.folders:
            if (folder / sub).is_dir():
                return "folder", folder / sub
        if files.idx and named:
            present = [f for f in _IDX_FILES if (folder / f).is_file()]
            if len(present) == len(_IDX_FILES):
                return "idx", folder
            if present:
                missing = [f for f in _IDX_FILES if f not in present]
                src.fail(
                    f"{folder} has only {len(present)} of the four {name} idx files",
                    f"add {', '.join(missing)} (from {files.url})",
                    key="dataset",
                )
    return None


def read_dataset(src: Source) -> SourceData:
    """The train and test splits of a keras.datasets collection (or digits' one split)."""
    name = src.options["dataset"]
    if name == "digits":
        return _read_digits()
    num_words = src.options.get("num_words")
    skip_top = src.options.get("skip_top") or 0
    maxlen = src.options.get("maxlen")
    label_mode = src.options.get("label_mode", "fine")
    folders = _search_folders(name, src.data_dir)
    found = _find_dataset(src, name, folders)
    if found is None:
        return _download(src, name, folders, num_words, skip_top, maxlen, label_mode)
    how, path = found
    try:
        if name in ("mnist", "fashion_mnist"):
            splits = _read_idx_folder(path) if how == "idx" else _read_mnist_npz(path)
        elif name == "cifar10":
            splits = _read_cifar10(path)
        elif name == "cifar100":
            splits = _read_cifar100(path, label_mode)
        elif name == "boston_housing":
            splits = _read_boston(path)
        else:
            splits = _read_word_sequences(path, name, num_words, skip_top)
    except FILE_ERRORS as exc:
        src.fail(
            f"cannot read {name} from {path}: {error_text(exc)}",
            (exc.hint if isinstance(exc, DataFileError) else "")
            or f"the file looks corrupted or truncated: replace it with {_DATASET_FILES[name].url}",
            key="dataset",
        )
    if maxlen is not None:
        for fields in splits.values():
            fields["x"] = _pad(fields["x"], maxlen)
    extra = f", sequences padded or cut to {maxlen}" if maxlen is not None else ""
    return SourceData(splits, f"{name} from {path} ({counts(splits)}{extra})")


def _read_digits() -> SourceData:
    """The UCI 8x8 digits shipped inside kgraph (kgraph_cli/datasets/DIGITS_LICENSE.md)."""
    path = Path(__file__).resolve().parents[2] / "datasets" / "digits.npz"
    data = load_npz(path)
    splits = {"train": {"x": data["x"], "y": data["y"]}}
    return SourceData(splits, f"digits (UCI 8x8, shipped with kgraph; {counts(splits)})")


def _download(
    src: Source,
    name: str,
    folders: list[tuple[Path, bool]],
    num_words: int | None,
    skip_top: int,
    maxlen: int | None,
    label_mode: str,
) -> SourceData:
    reason = ""
    if not os.environ.get("KGRAPH_OFFLINE"):
        kwargs: dict[str, Any] = {}
        if name in SEQUENCE_DATASETS:
            kwargs = {"num_words": num_words, "skip_top": skip_top}
        elif name == "cifar100":
            kwargs = {"label_mode": label_mode}
        try:
            from kgraph_cli.tf import import_keras

            keras = import_keras()
            loaded = getattr(keras.datasets, name).load_data(**kwargs)
            (x_train, y_train), (x_test, y_test) = loaded
        except KgraphError as exc:
            reason = f" and cannot be downloaded ({exc})"
        except Exception as exc:  # no network, a proxy, a full disk: all mean "not available"
            reason = f" and could not be downloaded ({error_text(exc)})"
        else:
            splits = {"train": {"x": x_train, "y": y_train}, "test": {"x": x_test, "y": y_test}}
            if maxlen is not None:
                for fields in splits.values():
                    fields["x"] = _pad(fields["x"], maxlen)
            return SourceData(splits, f"{name} downloaded by Keras ({counts(splits)})")
    looked = ", ".join(str(folder) for folder, _ in folders)
    files = _DATASET_FILES[name]
    src.fail(
        f"dataset '{name}' is not available offline{reason}",
        f"put {files.wanted} in --data-dir DIR or $KGRAPH_DATA_DIR (from {files.url}); "
        f"looked in: {looked}",
        key="dataset",
        code="data-missing",
    )


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] != ndim:
        raise ValueError(f"{path.name} is not an idx file of {ndim}-D unsigned bytes")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != math.prod(dims):
        raise ValueError(
            f"{path.name} holds {len(data) - offset:,} bytes of data, its header says "
            f"{math.prod(dims):,} (truncated?)"
        )
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims).copy()


def _read_idx_folder(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 3)
        y = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 1)
        if len(x) != len(y):
            raise ValueError(f"{prefix} has {len(x):,} images but {len(y):,} labels")
        splits[split] = {"x": x, "y": y}
    return splits


def _npz_arrays(path: Path, *keys: str) -> dict[str, np.ndarray]:
    """The arrays `keys` of an npz file, read within the data limit (load_npz)."""
    arrays = load_npz(path)
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise ValueError(f"{path.name} lacks the arrays {', '.join(missing)}")
    return arrays


def _read_mnist_npz(path: Path) -> dict[str, dict[str, np.ndarray]]:
    f = _npz_arrays(path, "x_train", "y_train", "x_test", "y_test")
    return {split: {"x": f[f"x_{split}"], "y": f[f"y_{split}"]} for split in ("train", "test")}


def _cifar_batches(path: Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Unpickled batches by file name, from an archive or its extracted folder."""
    wanted = set(names)
    found: dict[str, dict[str, Any]] = {}

    def load(f: Any) -> dict[str, Any]:
        batch = RestrictedUnpickler(f, encoding="bytes").load()
        return {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in batch.items()}

    if path.is_dir():
        for name in sorted(wanted):
            if (path / name).is_file():
                with open(path / name, "rb") as f:
                    found[name] = load(f)
    else:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and base not in found:
                    f = archive.extractfile(member)
                    if f is not None:
                        found[base] = load(f)
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(f"{path.name} lacks {', '.join(missing)}")
    return found


def _cifar_images(batch: dict[str, Any], channels_first: bool) -> np.ndarray:
    data = np.asarray(batch["data"])
    x = data.reshape(data.shape[0], 3, 32, 32)
    return x if channels_first else np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _read_cifar10(path: Path) -> dict[str, dict[str, np.ndarray]]:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = _cifar_batches(path, names)
    first = _channels_first()
    # Keras: uint8 images and (n, 1) uint8 labels for both splits
    x_train = np.concatenate([_cifar_images(batches[n], first) for n in names[:5]]).astype(np.uint8)
    y_train = np.concatenate([np.asarray(batches[n]["labels"]) for n in names[:5]]).astype(np.uint8)
    test = batches["test_batch"]
    x_test = _cifar_images(test, first).astype(np.uint8)
    y_test = np.asarray(test["labels"]).astype(np.uint8)
    return {
        "train": {"x": x_train, "y": y_train.reshape(-1, 1)},
        "test": {"x": x_test, "y": y_test.reshape(-1, 1)},
    }


def _read_cifar100(path: Path, label_mode: str) -> dict[str, dict[str, np.ndarray]]:
    batches = _cifar_batches(path, ["train", "test"])
    first = _channels_first()
    splits = {}
    for split in ("train", "test"):
        batch = batches[split]
        labels = batch[f"{label_mode}_labels"]
        # Keras reshapes the label list as is: int64 labels of shape (n, 1)
        splits[split] = {
            "x": _cifar_images(batch, first),
            "y": np.reshape(labels, (len(labels), 1)),
        }
    return splits


def _shuffled(*arrays: np.ndarray) -> list[np.ndarray]:
    """Keras's shuffle of imdb, reuters and boston_housing (seed 113)."""
    indices = np.arange(len(arrays[0]))
    np.random.RandomState(_SEED).shuffle(indices)
    return [a[indices] for a in arrays]


def _read_boston(path: Path) -> dict[str, dict[str, np.ndarray]]:
    f = _npz_arrays(path, "x", "y")
    x, y = _shuffled(f["x"], f["y"])
    cut = int(len(x) * (1 - _TEST_SPLIT))
    return {"train": {"x": x[:cut], "y": y[:cut]}, "test": {"x": x[cut:], "y": y[cut:]}}


def _read_word_sequences(
    path: Path, name: str, num_words: int | None, skip_top: int
) -> dict[str, dict[str, np.ndarray]]:
    arrays = load_npz(path)
    if name == "imdb":
        # Keras shuffles train then test with one RandomState
        rng = np.random.RandomState(_SEED)
        parts = []
        for split in ("train", "test"):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            indices = np.arange(len(x))
            rng.shuffle(indices)
            parts.append((x[indices], y[indices]))
        (x_train, y_train), (x_test, y_test) = parts
        xs = _index_words(list(x_train) + list(x_test), num_words, skip_top)
        cut = len(x_train)
        labels = np.concatenate([y_train, y_test])
    else:
        x, y = _shuffled(arrays["x"], arrays["y"])
        xs = _index_words(list(x), num_words, skip_top)
        cut = int(len(xs) * (1 - _TEST_SPLIT))
        labels = np.array(y)
    return {
        "train": {"x": xs[:cut], "y": labels[:cut]},
        "test": {"x": xs[cut:], "y": labels[cut:]},
    }


def _index_words(seqs: list[Any], num_words: int | None, skip_top: int) -> np.ndarray:
    """Keras's imdb/reuters word indices: start_char 1, words shifted by index_from 3,
    words outside [skip_top, num_words) replaced by oov_char 2. An object array of lists."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    flat = np.fromiter(
        itertools.chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum())
    )
    starts = np.cumsum(lengths) - lengths
    flat = np.insert(flat + _INDEX_FROM, starts, _START_CHAR)
    if not num_words:
        num_words = int(flat.max()) if len(flat) else 0  # Keras's default: the largest index
    flat = np.where((flat >= skip_top) & (flat < num_words), flat, _OOV_CHAR)
    ends = np.cumsum(lengths + 1)
    result = np.empty(len(seqs), dtype=object)
    for i, piece in enumerate(np.split(flat, ends[:-1]) if len(seqs) else []):
        result[i] = piece.tolist()
    return result


def _pad(sequences: Any, maxlen: int) -> np.ndarray:
    """Like keras.utils.pad_sequences(maxlen=...): zeros before, long sequences cut at the
    start (padding and truncating 'pre'), int32."""
    out = np.zeros((len(sequences), maxlen), dtype=np.int32)
    for i, seq in enumerate(sequences):
        kept = np.asarray(seq, dtype=np.int64)[-maxlen:]
        if len(kept):
            out[i, maxlen - len(kept) :] = kept
    return out
