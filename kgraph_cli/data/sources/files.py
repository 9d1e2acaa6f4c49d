"""Plain-file sources: `{npz: FILE}` (keys become fields, `x_train`/`x_test`
become splits), `{npy: {field: FILE, ...}}` and `{csv: FILE}` (a header row of
column names; numeric columns become int64 or float32 arrays, others text).
Each file is checked against the data limit (base.data_limit) before it is read."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from kgraph_cli.data.sources.base import (
    FILE_ERRORS,
    PYTHON_OBJECT_FACTOR,
    DataFileError,
    Source,
    SourceData,
    check_lengths,
    check_size,
    counts,
    error_text,
    load_npy,
    load_npz,
)

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


def read_npz(src: Source) -> SourceData:
    """The arrays of an npz file, as fields of the splits their keys name."""
    path = src.existing(src.options["npz"], key="npz", what="npz file")
    try:
        arrays = load_npz(path)
    except DataFileError as exc:
        src.fail(f"{path} {exc}", exc.hint, key="npz")
    except FILE_ERRORS as exc:
        src.fail(
            f"{path} is not a valid .npz file ({error_text(exc)})",
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
    return SourceData(ordered, f"npz {path}: fields {', '.join(fields)} ({counts(ordered)})")


def read_npy(src: Source) -> SourceData:
    """One .npy file per field, all in the train split."""
    files = src.options["npy"]
    fields = {}
    paths: dict[str, Path] = {}
    for name, value in files.items():
        at = (files, name)
        path = f"{src.spec.path}.npy.{name}"
        file = src.existing(value, key="npy", at=at, path=path, what=".npy file")
        try:
            array = load_npy(file)
        except DataFileError as exc:
            src.fail(f"{file} {exc}", exc.hint, at=at, path=path)
        except FILE_ERRORS as exc:
            src.fail(
                f"{file} is not a valid .npy file ({error_text(exc)})",
                "the file looks corrupted or truncated; write it with numpy.save",
                at=at,
                path=path,
            )
        if array.ndim == 0 or not len(array):
            src.fail(
                f"{file} holds a single value, not an array of samples"
                if array.ndim == 0
                else f"{file} holds no samples: its array {array.shape} has 0 entries on axis 0",
                "axis 0 is the sample axis",
                at=at,
                path=path,
            )
        fields[name] = array
        paths[name] = file
    splits = {"train": fields}
    check_lengths(src, splits)
    parents = {file.parent for file in paths.values()}
    if len(parents) == 1:
        listed = f"{', '.join(f'{n}={p.name}' for n, p in paths.items())} in {parents.pop()}"
    else:
        listed = ", ".join(f"{n}={p}" for n, p in paths.items())
    return SourceData(splits, f"npy {listed} ({counts(splits)})")


def read_csv(src: Source) -> SourceData:
    """The columns of a CSV (or TSV) file with a header row, in the train split."""
    path = src.existing(src.options["csv"], key="csv", what="CSV file")
    delimiter = src.options.get("delimiter")
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    header: list[str] = []
    columns: list[list[str]] = []
    line = 0
    try:
        size = path.stat().st_size
        check_size(
            size * PYTHON_OBJECT_FACTOR,
            f"{size:,} bytes of CSV text, about {PYTHON_OBJECT_FACTOR} times as much in "
            "memory while parsed",
        )
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
    except DataFileError as exc:
        src.fail(f"{path} {exc}", exc.hint, key="csv")
    except UnicodeDecodeError as exc:
        src.fail(f"{path} is not UTF-8 text ({error_text(exc)})", "save it as UTF-8", key="csv")
    except csv.Error as exc:
        hint = ""
        if "field limit" in str(exc):
            hint = (
                f"a cell holds at most {csv.field_size_limit():,} characters; a quote that is "
                "never closed makes the rest of the file one cell"
            )
        src.fail(f"{path} is not a valid CSV file (line {line + 1}: {exc})", hint, key="csv")
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
    values = [float(c) if c.strip() else math.nan for c in cells]
    with np.errstate(over="ignore"):  # beyond float32: infinite, which the checks report
        return np.array(values, dtype=np.float32)
