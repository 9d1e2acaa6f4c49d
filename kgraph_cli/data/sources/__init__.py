"""Read a `train.data.source` into numpy arrays, split by name and field.

One reader per kind, each in its module: `dataset` (keras_datasets.py: the
keras.datasets collections, read from local files before any download, and
the shipped digits), `npz`, `npy` and `csv` (files.py), `images` (images.py)
and `tfrecord` (tfrecord.py, the only one that imports TensorFlow, inside its
functions); `generated` lives in kgraph_cli.data.generated. base.py holds what
they share.

The option values are checked first, by the checks `kgraph validate` runs
(kgraph_cli.spec.train.sources), so a reader only meets values it can use.
Every problem with the data itself (a missing or corrupted file, ragged
fields, a record without a feature, a split without samples, more data than
the limit of base.data_limit...) is a SpecError whose diagnostic points at the
option of the spec that named it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kgraph_cli.data.sources.base import Source, SourceData, check_lengths, check_samples
from kgraph_cli.data.sources.files import read_csv, read_npy, read_npz
from kgraph_cli.data.sources.images import read_images
from kgraph_cli.data.sources.keras_datasets import read_dataset
from kgraph_cli.data.sources.tfrecord import read_tfrecord
from kgraph_cli.spec.train.sources import check_source

if TYPE_CHECKING:
    from kgraph_cli.spec.train import SourceSpec

__all__ = ["SourceData", "read_source"]

# source kind -> its reader (the kinds of kgraph_cli.spec.train.keys.SOURCE_KINDS,
# `generated` aside)
_READERS: dict[str, Callable[[Source], SourceData]] = {
    "dataset": read_dataset,
    "npz": read_npz,
    "npy": read_npy,
    "csv": read_csv,
    "images": read_images,
    "tfrecord": read_tfrecord,
}


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
    check_source(source)
    if data_dir is None and os.environ.get("KGRAPH_DATA_DIR"):
        data_dir = Path(os.environ["KGRAPH_DATA_DIR"])
    src = Source(source, Path(spec_dir), data_dir)
    data = reader(src)
    check_lengths(src, data.splits)
    check_samples(src, data.splits)
    return data
