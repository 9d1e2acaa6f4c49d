"""What every data reader shares: the SourceData they return, the Source they
read (its options, and `fail`, which turns a problem with the data into one
located diagnostic), and the safe loading of numpy files (no pickled code)."""

from __future__ import annotations

import os
import pickle
import tarfile
import zipfile
import zlib
from collections.abc import Callable
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
        return resolved


def counts(splits: dict[str, dict[str, np.ndarray]]) -> str:
    """'60,000 train, 10,000 test'."""
    parts = []
    for name, fields in splits.items():
        n = len(next(iter(fields.values()))) if fields else 0
        parts.append(f"{n:,} {name}")
    return ", ".join(parts)


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


def _read_npy_member(open_member: Callable[[], Any]) -> np.ndarray:
    """One array of an npz; object arrays go through the restricted unpickler."""
    with open_member() as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(fp)
        else:  # 3.0 differs from 2.0 only by the header's text encoding
            _, _, dtype = np.lib.format.read_array_header_2_0(fp)
        if dtype.hasobject:
            return RestrictedUnpickler(fp).load()
    with open_member() as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an npz file by key, without running pickled code."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                arrays[member[: -len(".npy")]] = _read_npy_member(lambda m=member: archive.open(m))
    return arrays


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
