"""Read a `train.data.source` into numpy arrays, split by name and field.

Kinds: `dataset` (the keras.datasets collections, read from local files before
any download), `npz`, `npy`, `csv`, `images` and `tfrecord`; `generated`
lives in kgraph_cli.data.generated. Every problem with the data itself (a
missing or corrupted file, ragged fields, a record without a feature...) is a
SpecError whose diagnostic points at the option of the spec that named it.

TensorFlow and Keras are imported only by the functions that need them (TFRecord
parsing, the download fallback of `dataset`).
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import math
import os
import pickle
import re
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from kgraph_cli.errors import Diagnostic, KgraphError, Location, SpecError
from kgraph_cli.spec.loader import YamlList, YamlMap, value_location
from kgraph_cli.suggest import listed

if TYPE_CHECKING:
    from kgraph_cli.spec.train import SourceSpec


@dataclass
class SourceData:
    # split name ("train", "test", ...) -> field name -> array; axis 0 = samples,
    # the same length for all fields of a split
    splits: dict[str, dict[str, np.ndarray]]
    # one line for people, e.g. "mnist from /x/mnist.npz (60,000 train, 10,000 test)"
    description: str


def read_source(source: SourceSpec, spec_dir: Path, data_dir: Path | None = None) -> SourceData:
    """Read every split of a source.

    Relative paths in the options are relative to `spec_dir` (the spec file's
    folder). `data_dir` (`--data-dir`, else $KGRAPH_DATA_DIR) is where
    `dataset` sources look first for the files Keras would download.
    """
    if source.kind == "generated":
        raise ValueError("generated sources are made by kgraph_cli.data.generated, not read")
    reader = _READERS.get(source.kind)
    if reader is None:
        raise ValueError(f"unknown source kind {source.kind!r}")
    if data_dir is None and os.environ.get("KGRAPH_DATA_DIR"):
        data_dir = Path(os.environ["KGRAPH_DATA_DIR"])
    src = _Source(source, Path(spec_dir), data_dir)
    data = reader(src)
    _check_lengths(src, data.splits)
    return data


# -- shared helpers ------------------------------------------------------------


class _Source:
    """A source spec with helpers that turn problems into located diagnostics."""

    def __init__(self, spec: SourceSpec, spec_dir: Path, data_dir: Path | None):
        self.spec = spec
        self.options: YamlMap = spec.options
        self.kind = spec.kind
        self.spec_dir = spec_dir
        self.data_dir = data_dir

    def fail(
        self,
        message: str,
        hint: str = "",
        *,
        key: str | None = None,
        at: tuple[Any, Any] | None = None,
        path: str | None = None,
        loc: Location | None = None,
        code: str = "data",
    ) -> NoReturn:
        """Raise one diagnostic at `options[key]` (or `container[k]` for `at`)."""
        if loc is None:
            if at is not None:
                loc = value_location(at[0], at[1], self.spec.loc)
            else:
                loc = self.options.value_loc(key or self.kind)
        if path is None:
            path = f"{self.spec.path}.{key or self.kind}"
        raise SpecError([Diagnostic(code, message, loc, path, hint)])

    def resolve(
        self, value: Any, *, key: str, at: tuple[Any, Any] | None = None, path: str | None = None
    ) -> Path:
        """A path option, relative to the spec's folder."""
        if not isinstance(value, str) or not value.strip():
            self.fail(
                f"{(path or key).rsplit('.', 1)[-1]} must be a path, got {_describe(value)}",
                key=key,
                at=at,
                path=path,
                code="type",
            )
        given = Path(value).expanduser()
        return Path(os.path.abspath(given if given.is_absolute() else self.spec_dir / given))

    def existing(
        self,
        value: Any,
        *,
        key: str,
        what: str,
        directory: bool = False,
        at: tuple[Any, Any] | None = None,
        path: str | None = None,
    ) -> Path:
        """A path option that must name an existing file (or directory)."""
        resolved = self.resolve(value, key=key, at=at, path=path)
        relative = not Path(str(value)).expanduser().is_absolute()
        folder = os.path.abspath(self.spec_dir)
        hint = f"relative paths start at the spec's folder ({folder})" if relative else ""
        if not resolved.exists():
            self.fail(f"{what} not found: {resolved}", hint, key=key, at=at, path=path)
        if directory and not resolved.is_dir():
            self.fail(f"{resolved} is a file, not a directory", hint, key=key, at=at, path=path)
        if not directory and resolved.is_dir():
            self.fail(f"{resolved} is a directory, not a {what}", hint, key=key, at=at, path=path)
        return resolved

    def integer(self, key: str, minimum: int) -> int | None:
        if key not in self.options or self.options[key] is None:
            return None
        value = self.options[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(
                f"{key} must be an integer >= {minimum}, got {_describe(value)}",
                key=key,
                code="type",
            )
        return value


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _counts(splits: dict[str, dict[str, np.ndarray]]) -> str:
    parts = []
    for name, fields in splits.items():
        n = len(next(iter(fields.values()))) if fields else 0
        parts.append(f"{n:,} {name}")
    return ", ".join(parts)


def _check_lengths(src: _Source, splits: dict[str, dict[str, np.ndarray]]) -> None:
    for split, fields in splits.items():
        lengths = {name: len(array) for name, array in fields.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name} {n:,}" for name, n in lengths.items())
            src.fail(
                f"the fields of split '{split}' have different numbers of samples: {listed}",
                "every field needs one entry per sample (axis 0)",
            )


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str | bytes):
        key = exc.args[0].decode() if isinstance(exc.args[0], bytes) else exc.args[0]
        if " " not in key:  # a bare key: say what is missing
            return f"it has no '{key}'"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# Pickles inside Keras's dataset files (CIFAR batches, IMDB/Reuters ragged
# arrays) and object arrays of npz files are read with only the globals that
# rebuild numpy arrays allowed, as Keras's own loaders do: a tampered file
# cannot run code.
_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays)")


def _read_npy_member(open_member: Callable[[], Any]) -> np.ndarray:
    """One array of an npz; object arrays go through the restricted unpickler."""
    with open_member() as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(fp)
        else:  # 3.0 differs from 2.0 only by the header's text encoding
            _, _, dtype = np.lib.format.read_array_header_2_0(fp)
        if dtype.hasobject:
            return _RestrictedUnpickler(fp).load()
    with open_member() as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                arrays[member[: -len(".npy")]] = _read_npy_member(lambda m=member: archive.open(m))
    return arrays


_FILE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    IndexError,
    TypeError,
    zipfile.BadZipFile,
    pickle.UnpicklingError,
    tarfile.TarError,
    UnicodeDecodeError,
    zlib.error,
)


# -- dataset ------------------------------------------------------------------

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
_SEQUENCE_DATASETS = ("imdb", "reuters")


def _keras_home() -> Path:
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path("~").expanduser()
    return Path("/tmp" if not os.access(home, os.W_OK) else home) / ".keras"


def _keras_cache_dirs() -> list[Path]:
    """Where Keras keeps the datasets it downloads (and its fallback when unwritable)."""
    home = _keras_home()
    dirs = [home / "datasets"]
    existing = home
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent  # Keras creates the folder when it can
    if not os.access(existing, os.W_OK) and home != Path("/tmp/.keras"):
        dirs.append(Path("/tmp/.keras/datasets"))
    return dirs


def _channels_first() -> bool:
    """Keras's image_data_format, read from keras.json without importing Keras."""
    try:
        config = json.loads((_keras_home() / "keras.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("image_data_format") == "channels_first"


def _search_folders(name: str, data_dir: Path | None) -> list[tuple[Path, bool]]:
    """(folder, is it named after the dataset), in search order."""
    roots = (
        [Path(os.path.abspath(data_dir.expanduser()))] if data_dir else []
    ) + _keras_cache_dirs()
    subs = list(dict.fromkeys([name, name.replace("_", "-")]))
    folders = {
        folder: named
        for root in roots
        for folder, named in [(root, False)] + [(root / s, True) for s in subs]
    }
    return list(folders.items())


def _find_dataset(
    src: _Source, name: str, folders: list[tuple[Path, bool]]
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


def _read_dataset(src: _Source) -> SourceData:
    name = src.options.get("dataset")
    if name == "digits":
        return _read_digits(src)
    if name not in _DATASET_FILES:
        src.fail(
            f"unknown dataset {_describe(name)}",
            f"one of: {', '.join(_DATASET_FILES)}",
            key="dataset",
            code="unknown-dataset",
        )
    num_words, skip_top, maxlen, label_mode = _dataset_options(src, name)
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
    except _FILE_ERRORS as exc:
        src.fail(
            f"cannot read {name} from {path}: {_error_text(exc)}",
            f"the file looks corrupted or truncated: replace it with {_DATASET_FILES[name].url}",
            key="dataset",
        )
    if maxlen is not None:
        for fields in splits.values():
            fields["x"] = _pad(fields["x"], maxlen)
    extra = f", sequences padded or cut to {maxlen}" if maxlen is not None else ""
    return SourceData(splits, f"{name} from {path} ({_counts(splits)}{extra})")


def _read_digits(src: _Source) -> SourceData:
    """The UCI 8x8 digits shipped inside kgraph (kgraph_cli/datasets/DIGITS_LICENSE.md)."""
    for key in src.options:
        if key not in ("dataset", "split"):
            src.fail(
                f"option '{key}' does not apply to dataset 'digits'",
                "remove it",
                key=key,
                code="unknown-key",
            )
    path = Path(__file__).resolve().parent.parent / "datasets" / "digits.npz"
    with np.load(path) as data:
        splits = {"train": {"x": data["x"], "y": data["y"]}}
    return SourceData(splits, f"digits (UCI 8x8, shipped with kgraph; {_counts(splits)})")


def _dataset_options(src: _Source, name: str) -> tuple[int | None, int, int | None, str]:
    for key in ("num_words", "skip_top", "maxlen", "label_mode"):
        applies = _SEQUENCE_DATASETS if key != "label_mode" else ("cifar100",)
        if key in src.options and name not in applies:
            src.fail(
                f"option '{key}' does not apply to dataset '{name}'",
                f"{key} is for {' and '.join(applies)}",
                loc=src.options.key_loc(key),
                key=key,
                code="unknown-key",
            )
    num_words = src.integer("num_words", 1)
    skip_top = src.integer("skip_top", 0) or 0
    maxlen = src.integer("maxlen", 1)
    label_mode = src.options.get("label_mode", "fine")
    if label_mode not in ("fine", "coarse"):
        src.fail(
            f"label_mode must be fine or coarse, got {_describe(label_mode)}",
            "fine: the 100 classes; coarse: the 20 superclasses",
            key="label_mode",
            code="type",
        )
    return num_words, skip_top, maxlen, label_mode


def _download(
    src: _Source,
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
        if name in _SEQUENCE_DATASETS:
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
            reason = f" and could not be downloaded ({_error_text(exc)})"
        else:
            splits = {"train": {"x": x_train, "y": y_train}, "test": {"x": x_test, "y": y_test}}
            if maxlen is not None:
                for fields in splits.values():
                    fields["x"] = _pad(fields["x"], maxlen)
            return SourceData(splits, f"{name} downloaded by Keras ({_counts(splits)})")
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


def _read_mnist_npz(path: Path) -> dict[str, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as f:
        return {split: {"x": f[f"x_{split}"], "y": f[f"y_{split}"]} for split in ("train", "test")}


def _cifar_batches(path: Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Unpickled batches by file name, from an archive or its extracted folder."""
    wanted = set(names)
    found: dict[str, dict[str, Any]] = {}

    def load(f: Any) -> dict[str, Any]:
        batch = _RestrictedUnpickler(f, encoding="bytes").load()
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
    with np.load(path, allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    x, y = _shuffled(x, y)
    cut = int(len(x) * (1 - _TEST_SPLIT))
    return {"train": {"x": x[:cut], "y": y[:cut]}, "test": {"x": x[cut:], "y": y[cut:]}}


def _read_word_sequences(
    path: Path, name: str, num_words: int | None, skip_top: int
) -> dict[str, dict[str, np.ndarray]]:
    arrays = _load_npz(path)
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


# -- npz / npy ----------------------------------------------------------------

_SPLIT_SUFFIXES = (
    ("_train", "train"),
    ("_test", "test"),
    ("_validation", "validation"),
    ("_val", "validation"),
)


def _split_of(key: str) -> tuple[str, str]:
    """npz key -> (split, field): x_train -> (train, x); weights -> (train, weights)."""
    for suffix, split in _SPLIT_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return split, key[: -len(suffix)]
    return "train", key


def _read_npz(src: _Source) -> SourceData:
    path = src.existing(src.options["npz"], key="npz", what="npz file")
    try:
        arrays = _load_npz(path)
    except _FILE_ERRORS as exc:
        src.fail(
            f"{path} is not a valid .npz file ({_error_text(exc)})",
            "the file looks corrupted or truncated; write it with numpy.savez",
            key="npz",
        )
    if not arrays:
        src.fail(
            f"{path} holds no arrays", "write it with numpy.savez(path, x=..., y=...)", key="npz"
        )
    splits: dict[str, dict[str, np.ndarray]] = {}
    origin: dict[tuple[str, str], str] = {}
    for key, array in arrays.items():
        split, name = _split_of(key)
        if (split, name) in origin:
            src.fail(
                f"npz keys '{origin[split, name]}' and '{key}' are both field '{name}' "
                f"of split '{split}'",
                "rename one of them",
                key="npz",
            )
        if array.ndim == 0:
            src.fail(
                f"npz key '{key}' is a single value, not an array of samples",
                "axis 0 of every array is the sample axis",
                key="npz",
            )
        origin[split, name] = key
        splits.setdefault(split, {})[name] = array
    # train first, then the other splits in the file's order
    ordered = {s: splits[s] for s in ("train", "validation", "test") if s in splits}
    fields = sorted({name for _, name in origin})
    return SourceData(ordered, f"npz {path}: fields {', '.join(fields)} ({_counts(ordered)})")


def _read_npy(src: _Source) -> SourceData:
    files = src.options["npy"]
    if not isinstance(files, YamlMap) or not files:
        src.fail(
            f"npy must be a mapping of field name to .npy file, got {_describe(files)}",
            "e.g. npy: {x: x.npy, y: y.npy}",
            key="npy",
            code="type",
        )
    fields = {}
    paths: dict[str, Path] = {}
    for name, value in files.items():
        at = (files, name)
        path = f"{src.spec.path}.npy.{name}"
        file = src.existing(value, key="npy", at=at, path=path, what=".npy file")
        try:
            array = np.load(file, allow_pickle=False)
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                src.fail(
                    f"{file} holds Python objects (a pickled object array)",
                    "kgraph reads only numeric and string .npy files (no pickles)",
                    at=at,
                    path=path,
                )
            src.fail(f"{file} is not a valid .npy file ({_error_text(exc)})", at=at, path=path)
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            src.fail(
                f"{file} is not a valid .npy file ({_error_text(exc)})",
                "the file looks corrupted or truncated; write it with numpy.save",
                at=at,
                path=path,
            )
        if not isinstance(array, np.ndarray):
            array.close()
            src.fail(
                f"{file} is an .npz archive, not an .npy file",
                "use `npz: FILE` for .npz files",
                at=at,
                path=path,
            )
        if array.ndim == 0:
            src.fail(
                f"{file} holds a single value, not an array of samples",
                "axis 0 is the sample axis",
                at=at,
                path=path,
            )
        fields[name] = array
        paths[name] = file
    splits = {"train": fields}
    _check_lengths(src, splits)
    parents = {file.parent for file in paths.values()}
    if len(parents) == 1:
        listed = f"{', '.join(f'{n}={p.name}' for n, p in paths.items())} in {parents.pop()}"
    else:
        listed = ", ".join(f"{n}={p}" for n, p in paths.items())
    return SourceData(splits, f"npy {listed} ({_counts(splits)})")


# -- csv ----------------------------------------------------------------------


def _read_csv(src: _Source) -> SourceData:
    path = src.existing(src.options["csv"], key="csv", what="CSV file")
    delimiter = src.options.get("delimiter")
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    elif not isinstance(delimiter, str) or len(delimiter) != 1:
        src.fail(
            f"delimiter must be one character, got {_describe(delimiter)}",
            "e.g. ',' ';' or '\\t' (in double quotes: \"\\t\")",
            key="delimiter",
            code="type",
        )
    header: list[str] = []
    columns: list[list[str]] = []
    line = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for row in reader:
                line = reader.line_num
                if not row:
                    continue  # blank line
                if not header:
                    header = [cell.strip() or f"column_{i + 1}" for i, cell in enumerate(row)]
                    columns = [[] for _ in header]
                    continue
                if len(row) != len(header):
                    src.fail(
                        f"line {line} of {path} has {len(row)} columns, the header has "
                        f"{len(header)}",
                        _delimiter_hint(delimiter),
                        key="csv",
                    )
                for column, cell in zip(columns, row, strict=True):
                    column.append(cell)
    except UnicodeDecodeError as exc:
        src.fail(f"{path} is not UTF-8 text ({_error_text(exc)})", "save it as UTF-8", key="csv")
    except csv.Error as exc:
        src.fail(f"{path} is not a valid CSV file (line {line + 1}: {exc})", key="csv")
    except OSError as exc:
        src.fail(f"cannot read {path}: {exc.strerror or exc}", key="csv")
    if not header:
        src.fail(f"{path} is empty", "a CSV source needs a header row of column names", key="csv")
    if all(_is_number(name) for name in header):
        src.fail(
            f"the first line of {path} holds numbers, not column names",
            "a CSV source needs a header row: add a line of column names at the top",
            key="csv",
        )
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            src.fail(
                f"{path} has two columns named '{name}' (columns {seen[name] + 1} and {i + 1})",
                "column names become field names: make them unique",
                key="csv",
            )
        seen[name] = i
    if not columns[0]:
        src.fail(f"{path} has a header row but no data rows", key="csv")
    fields = {name: _column(cells) for name, cells in zip(header, columns, strict=True)}
    text = [name for name, array in fields.items() if array.dtype.kind == "U"]
    kinds = f"{len(fields) - len(text)} numeric, {len(text)} text"
    splits = {"train": fields}
    return SourceData(
        splits, f"csv {path}: {len(fields)} columns ({kinds}), {len(columns[0]):,} rows"
    )


def _delimiter_hint(delimiter: str) -> str:
    shown = "tab" if delimiter == "\t" else f"'{delimiter}'"
    return (
        f"every row needs one cell per header column (delimiter: {shown}); "
        "quote cells that contain it"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column(cells: list[str]) -> np.ndarray:
    """Numbers -> int64 (all integers, no empty cell) or float32 (empty -> NaN); else text."""
    empty = False
    integers = True
    for cell in cells:
        text = cell.strip()
        if not text:
            empty = True
            continue
        if integers:
            try:
                int(text)
                continue
            except ValueError:
                integers = False
        try:
            float(text)
        except ValueError:
            return np.array(cells, dtype=str)
    if integers and not empty:
        try:
            return np.array([int(c) for c in cells], dtype=np.int64)
        except OverflowError:
            pass
    return np.array([float(c) if c.strip() else math.nan for c in cells], dtype=np.float32)


# -- images -------------------------------------------------------------------

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_COLOR_MODES = {"rgb": ("RGB", 3), "grayscale": ("L", 1), "rgba": ("RGBA", 4)}


def _read_images(src: _Source) -> SourceData:
    root = src.existing(src.options["images"], key="images", what="images folder", directory=True)
    size = src.options.get("image_size", [256, 256])
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        src.fail(
            f"image_size must be [height, width] (two positive integers), got {_describe(size)}",
            "e.g. image_size: [64, 64]",
            key="image_size",
            code="type",
        )
    height, width = size
    mode = src.options.get("color_mode", "rgb")
    if mode not in _COLOR_MODES:
        src.fail(
            f"color_mode must be rgb, grayscale or rgba, got {_describe(mode)}",
            key="color_mode",
            code="type",
        )
    pil_mode, channels = _COLOR_MODES[mode]
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        loose = any(p.suffix.lower() in _IMAGE_SUFFIXES for p in root.iterdir())
        src.fail(
            f"{root} has no class sub-folders",
            "put the images of each class in a sub-folder named after it "
            "(e.g. cats/1.jpg, dogs/2.jpg)"
            + ("; images directly in the folder are ignored" if loose else ""),
            key="images",
        )
    files: list[tuple[Path, int]] = []
    for index, name in enumerate(classes):
        for folder, dirs, names in os.walk(root / name):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in sorted(names):
                if Path(file).suffix.lower() in _IMAGE_SUFFIXES and not file.startswith("."):
                    files.append((Path(folder) / file, index))
    if not files:
        src.fail(
            f"the class sub-folders of {root} hold no images",
            f"image files end with {', '.join(_IMAGE_SUFFIXES)}",
            key="images",
        )
    from PIL import Image, UnidentifiedImageError

    x = np.empty((len(files), height, width, channels), dtype=np.uint8)
    y = np.empty(len(files), dtype=np.int32)
    for i, (file, label) in enumerate(files):
        try:
            with Image.open(file) as image:
                image.seek(0)  # the first frame of an animated GIF
                converted = image.convert(pil_mode)
                if converted.size != (width, height):
                    converted = converted.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(converted, dtype=np.uint8)
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            OSError,
            ValueError,
            SyntaxError,
        ) as exc:
            src.fail(
                f"cannot read image {file} ({_error_text(exc)})",
                "the file is not an image or is truncated: remove or replace it",
                key="images",
            )
        x[i] = pixels.reshape(height, width, channels)
        y[i] = label
    splits = {"train": {"x": x, "y": y}}
    shown = listed(classes, 20)
    return SourceData(
        splits,
        f"images from {root} ({len(files):,} images of {height}x{width} {mode}, "
        f"{len(classes)} classes: {shown})",
    )


# -- tfrecord -----------------------------------------------------------------

_TF_DTYPES = {"float32": "float_list", "int64": "int64_list", "string": "bytes_list"}
_COMPRESSIONS = {"gzip": "GZIP", "zlib": "ZLIB", "none": "", "": ""}


@dataclass
class _Feature:
    name: str
    shape: list[int]
    dtype: str


def _read_tfrecord(src: _Source) -> SourceData:
    files = _tfrecord_files(src)
    features = _tfrecord_features(src)
    compression = src.options.get("compression")
    if compression is None:
        compression = ""
    elif not isinstance(compression, str) or compression.lower() not in _COMPRESSIONS:
        src.fail(
            f"compression must be GZIP or ZLIB, got {_describe(compression)}",
            "leave it out for uncompressed files",
            key="compression",
            code="type",
        )
    compression = _COMPRESSIONS[compression.lower()]

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
    for file, at, path in files:
        # an explicit buffer_size keeps TensorFlow from logging that it picked one
        dataset = tf.data.TFRecordDataset(
            str(file), compression_type=compression, buffer_size=256 * 1024
        )
        parsed = dataset.map(lambda record: tf.io.parse_single_example(record, spec)).batch(1024)
        try:
            for batch in parsed:
                for name, tensor in batch.items():
                    chunks[name].append(tensor.numpy())
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


def _tfrecord_files(src: _Source) -> list[tuple[Path, tuple[Any, Any], str]]:
    value = src.options["tfrecord"]
    base = f"{src.spec.path}.tfrecord"
    if isinstance(value, str):
        items = [(value, (src.options, "tfrecord"), base)]
    elif isinstance(value, YamlList) and value:
        items = [(v, (value, i), f"{base}[{i}]") for i, v in enumerate(value)]
    else:
        src.fail(
            f"tfrecord must be a file or a list of files, got {_describe(value)}",
            key="tfrecord",
            code="type",
        )
    files = []
    for item, at, path in items:
        if isinstance(item, str) and any(c in item for c in "*?["):
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


def _tfrecord_features(src: _Source) -> list[_Feature]:
    body = src.options.get("features")
    path = f"{src.spec.path}.features"
    if not isinstance(body, YamlMap) or not body:
        src.fail(
            "a tfrecord source needs `features`: a mapping of field name to {shape, dtype}",
            "e.g. features: {x: {shape: [784], dtype: float32}, y: {shape: [], dtype: int64}}",
            key="features",
            code="missing" if body is None else "type",
            loc=src.options.value_loc("features") if "features" in src.options else src.spec.loc,
        )
    features = []
    for name, feature in body.items():
        at = (body, name)
        if not isinstance(feature, YamlMap):
            src.fail(
                f"feature '{name}' must be a mapping {{shape, dtype}}, got {_describe(feature)}",
                at=at,
                path=f"{path}.{name}",
                code="type",
            )
        shape = feature.get("shape", [])
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            src.fail(
                f"the shape of feature '{name}' must be a list of integers, got {_describe(shape)}",
                "every record has the same shape: [] for a scalar, [784] for a vector",
                at=(feature, "shape"),
                path=f"{path}.{name}.shape",
                code="type",
            )
        dtype = feature.get("dtype", "float32")
        if dtype not in _TF_DTYPES:
            src.fail(
                f"TFRecord features are float32, int64 or string, got {_describe(dtype)}",
                at=(feature, "dtype"),
                path=f"{path}.{name}.dtype",
                code="dtype",
            )
        features.append(_Feature(str(name), list(shape), dtype))
    return features


def _tf_message(exc: Any) -> str:
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(getattr(exc, "message", exc)))
    text = re.sub(r"\s*\[Op:\w+\].*", "", text.split("\n")[0])
    return text.strip().rstrip(".")


def _tfrecord_problem(
    src: _Source,
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
                if kind != _TF_DTYPES[f.dtype]:
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


_READERS: dict[str, Callable[[_Source], SourceData]] = {
    "dataset": _read_dataset,
    "npz": _read_npz,
    "npy": _read_npy,
    "csv": _read_csv,
    "images": _read_images,
    "tfrecord": _read_tfrecord,
}
