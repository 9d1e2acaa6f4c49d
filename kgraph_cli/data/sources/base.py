"""What every data reader shares: the SourceData they return, the Source they
read (its options, and `fail`, which turns a problem with the data into one
located diagnostic), the checks of what was read (samples, lengths), the
limit on how much data one file may hold, and the safe loading of numpy files
(no pickled code; every array's header is checked against the file's size and
the limit before anything is allocated)."""

from __future__ import annotations

import math
import os
import pickle
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from kgraph_cli.errors import Location, SpecError
from kgraph_cli.spec.loader import YamlMap, value_location

if TYPE_CHECKING:
    from kgraph_cli.spec.train import SourceSpec


@dataclass
class SourceData:
    """What a source holds, by split and field."""

    # split name ("train", "test", ...) -> field name -> array; axis 0 = samples,
    # the same length for all fields of a split
    splits: dict[str, dict[str, np.ndarray]]
    # one line for people, e.g. "mnist from /x/mnist.npz (60,000 train, 10,000 test)"
    description: str
    # field name -> the name of each class index of that field, where the source
    # knows them (an `images:` folder's class sub-folders: {"y": ["cats", "dogs"]})
    classes: dict[str, list[str]] = field(default_factory=dict)


class Source:
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
        raise SpecError.at(code, message, loc, path, hint)

    def resolve(
        self, value: Any, *, key: str, at: tuple[Any, Any] | None = None, path: str | None = None
    ) -> Path:
        """A path option, relative to the spec's folder (source_problems has checked
        that it is text)."""
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
        if not directory and not resolved.is_file():  # a device or a pipe: reads never end
            self.fail(
                f"{resolved} is not a regular file (a device, pipe or socket)",
                f"name a {what} on disk",
                key=key,
                at=at,
                path=path,
            )
        return resolved

    def named(self) -> str:
        """The source as messages name it: its file, or its dataset."""
        value = self.options.get(self.kind)
        if self.kind == "dataset":
            return f"dataset '{value}'"
        if isinstance(value, str):
            return str(self.resolve(value, key=self.kind))
        return f"the {self.kind} source"


def counts(splits: dict[str, dict[str, np.ndarray]]) -> str:
    """'60,000 train, 10,000 test'."""
    parts = []
    for name, fields in splits.items():
        n = len(next(iter(fields.values()))) if fields else 0
        parts.append(f"{n:,} {name}")
    return ", ".join(parts)


def check_samples(src: Source, splits: dict[str, dict[str, np.ndarray]]) -> None:
    """Fail if a split holds no samples (before TensorFlow sees an empty array)."""
    for split, fields in splits.items():
        if fields and all(len(array) == 0 for array in fields.values()):
            src.fail(
                f"{src.named()} holds no samples: its {split} split ({', '.join(fields)}) "
                "has 0 entries on axis 0",
                "axis 0 of every array is the sample axis: write the samples into the file"
                + (", or leave the split's keys out of it" if split != "train" else ""),
            )


def check_lengths(src: Source, splits: dict[str, dict[str, np.ndarray]]) -> None:
    """Fail unless the fields of each split have one entry per sample."""
    for split, fields in splits.items():
        lengths = {name: len(array) for name, array in fields.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name} {n:,}" for name, n in lengths.items())
            src.fail(
                f"the fields of split '{split}' have different numbers of samples: {listed}",
                "every field needs one entry per sample (axis 0)",
            )


def error_text(exc: BaseException) -> str:
    """An exception as the first line of a message."""
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str | bytes):
        key = exc.args[0].decode() if isinstance(exc.args[0], bytes) else exc.args[0]
        if " " not in key:  # a bare key: say what is missing
            return f"it has no '{key}'"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# How much data one source file may hold (an .npz's arrays together, one .npy
# file, a CSV file, the records of a TFRecord source): checked from the sizes
# and headers before anything is read (TFRecords: as they are read), so a small
# file whose header claims a huge shape, or a zip bomb, is refused instead of
# exhausting memory.
# $KGRAPH_MAX_DATA_GB raises (or lowers) it.
DATA_LIMIT_ENV = "KGRAPH_MAX_DATA_GB"
DEFAULT_DATA_LIMIT_GB = 4
# Data read as Python objects (a CSV file's text, an .npz's pickled object
# arrays) takes about this many bytes of memory per byte of the file while it is
# read: such files count this many times their size (a CSV file may be 250 MB).
PYTHON_OBJECT_FACTOR = 16


class DataFileError(ValueError):
    """A data file that cannot be used, said as what follows its path ("is
    truncated: ..."), with what to do. A ValueError, so FILE_ERRORS catch it."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


def data_limit() -> int:
    """The limit in bytes: $KGRAPH_MAX_DATA_GB gigabytes (10^9 bytes), default 4."""
    text = os.environ.get(DATA_LIMIT_ENV, "").strip()
    if not text:
        return DEFAULT_DATA_LIMIT_GB * 10**9
    try:
        gigabytes = float(text)
    except ValueError:
        gigabytes = math.nan
    if not (math.isfinite(gigabytes) and gigabytes > 0):
        raise DataFileError(
            f"cannot be checked against the data limit: ${DATA_LIMIT_ENV} is '{text}', "
            "not a number of gigabytes",
            f"set {DATA_LIMIT_ENV} to a positive number (default {DEFAULT_DATA_LIMIT_GB})",
        )
    return int(gigabytes * 10**9)


def check_size(nbytes: int, what: str) -> None:
    """Raise DataFileError if `nbytes` ("holds `what`") is over the data limit."""
    limit = data_limit()
    if nbytes > limit:
        raise DataFileError(
            f"holds {what} ({_gigabytes(nbytes)}), more than the data limit of {_gigabytes(limit)}",
            f"set {DATA_LIMIT_ENV} to raise the limit (in GB; default "
            f"{DEFAULT_DATA_LIMIT_GB}); if the file should be small, it is damaged",
        )


def _gigabytes(nbytes: int) -> str:
    return f"{nbytes / 10**9:,.1f} GB" if nbytes >= 10**8 else f"{nbytes:,} bytes"


@dataclass
class _Header:
    """An .npy array's header: what reading it would allocate."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def described(self) -> str:
        return f"'{self.name}': {self.dtype} of shape {self.shape}"


def _read_header(fp: Any, name: str, size: int) -> _Header:
    """The header of an .npy stream of `size` bytes, checked against that size:
    an array needs its data in the file (a header that claims more is truncated
    or crafted, and reading it would allocate what it claims)."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
    else:  # 3.0 differs from 2.0 only by the header's text encoding
        shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
    header = _Header(name, tuple(shape), dtype)
    if any(d < 0 for d in header.shape):
        raise DataFileError(f"is damaged: array {header.described()} has a negative size")
    if not dtype.hasobject:  # object arrays are pickles: their size is the stream's
        data = size - fp.tell()
        if header.nbytes > data:
            raise DataFileError(
                f"is truncated or damaged: the header of array {header.described()} "
                f"says {header.nbytes:,} bytes of data, the file holds {data:,}",
                "write the file again (numpy.save / numpy.savez)",
            )
    return header


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


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays)")


def _pickled_objects(header: _Header, exc: pickle.UnpicklingError) -> DataFileError:
    return DataFileError(
        f"holds Python objects kgraph does not unpickle in array {header.described()} "
        f"({error_text(exc)})",
        "kgraph reads numeric and text arrays, and object arrays of numbers, text or "
        "sequences of numbers (ragged sequences): save other data as numbers",
    )


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an npz file by key, without running pickled code (object
    arrays go through the restricted unpickler). Before any array is read, the
    unpacked sizes the archive declares (zipfile never unpacks more) are checked
    against the data limit, and each array's header against its size.
    DataFileError (a ValueError) says what is wrong."""
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if m.filename.endswith(".npy")]
        headers = []
        for member in members:
            with archive.open(member) as fp:
                name = member.filename[: -len(".npy")]
                headers.append(_read_header(fp, name, member.file_size))
        _check_npz_size(members, headers)
        arrays = {}
        for member, header in zip(members, headers, strict=True):
            with archive.open(member) as fp:
                if not header.dtype.hasobject:
                    arrays[header.name] = np.lib.format.read_array(fp, allow_pickle=False)
                    continue
                _read_header(fp, header.name, member.file_size)  # on to the pickle
                try:
                    arrays[header.name] = RestrictedUnpickler(fp).load()
                except pickle.UnpicklingError as exc:
                    raise DataFileError(
                        f"holds Python objects in array {header.described()}, which kgraph "
                        f"does not unpickle ({error_text(exc)})",
                        "kgraph reads numeric and text arrays, and object arrays of numbers, "
                        "text or ragged sequences: save other data as numbers",
                    ) from None
    return arrays


def _check_npz_size(members: list[zipfile.ZipInfo], headers: list[_Header]) -> None:
    """An npz's arrays together against the data limit; pickled (object) arrays
    count PYTHON_OBJECT_FACTOR times their size, as Python objects once read."""
    total = sum(
        m.file_size * (PYTHON_OBJECT_FACTOR if h.dtype.hasobject else 1)
        for m, h in zip(members, headers, strict=True)
    )
    if headers:
        largest = max(zip(members, headers, strict=True), key=lambda mh: mh[0].file_size)[1]
        what = f"{len(headers)} arrays, the largest" if len(headers) > 1 else "array"
        check_size(total, f"{what} {largest.described()}")


def load_npy(path: Path) -> np.ndarray:
    """One .npy file, its header checked against its size and the data limit
    before it is read; never unpickles (an object array is a DataFileError)."""
    size = path.stat().st_size
    with open(path, "rb") as fp:
        if fp.read(4) == b"PK\x03\x04":
            raise DataFileError(
                "is an .npz archive, not an .npy file", "use `npz: FILE` for .npz files"
            )
        fp.seek(0)
        header = _read_header(fp, path.stem, size)
        if header.dtype.hasobject:
            raise DataFileError(
                f"holds Python objects (a pickled object array, {header.dtype})",
                "kgraph never unpickles an .npy file: save numbers or text, "
                "or ragged sequences as an object array in an .npz",
            )
        check_size(header.nbytes, f"array {header.described()}")
        fp.seek(0)
        return np.lib.format.read_array(fp, allow_pickle=False)


# What reading a damaged or foreign file raises: each becomes a "cannot read" diagnostic.
FILE_ERRORS = (
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
