"""`kgraph save`: write a model as .keras, .h5, weights, SavedModel, TFLite or ONNX.

Every write goes to a temporary path in the target's folder and is renamed into
place, so a failed or interrupted save leaves no half-written file and never
destroys an existing one (a killed save leaves its temporary, which the next
save to that path removes: see fileio). The spec is embedded where the format
has room for it (.keras, .h5, weights, SavedModel, ONNX).
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgraph_cli.errors import KgraphError, MissingDependencyError, UsageError, short_message
from kgraph_cli.fileio import (
    FolderKind,
    check_folder_output,
    check_writable,
    staged_folder,
    write_file_with,
)

# The entry of a .keras zip (and the attribute of an .h5 file, and the file
# of a SavedModel folder) that holds the spec the model was built from.
SPEC_ENTRY = "kgraph/spec.yaml"
SPEC_ATTRIBUTE = "kgraph_spec"
SAVEDMODEL_SPEC_FILE = "kgraph.spec.yaml"
# What `model.export()` writes in a SavedModel folder, and the spec beside it.
SAVED_MODEL = FolderKind(
    "SavedModel folder",
    "saved_model.pb",
    lambda _: frozenset(
        {"saved_model.pb", "fingerprint.pb", "variables", "assets", SAVEDMODEL_SPEC_FILE}
    ),
    example="saved_model",
)
FORMATS = {
    "keras": ".keras",
    "h5": ".h5",
    "weights": ".weights.h5",
    "savedmodel": "(a folder)",
    "tflite": ".tflite",
    "onnx": ".onnx",
}


class ExportError(KgraphError):
    """A converter (TFLite, ONNX) refused the model."""


@dataclass
class SaveResult:
    path: Path
    format: str
    bytes: int
    spec_embedded: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "bytes": self.bytes,
            "spec_embedded": self.spec_embedded,
        }


def format_for(path: Path, explicit: str | None) -> str:
    """The format: --format, else the file name's ending (no ending: SavedModel)."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise UsageError(f"unknown format '{explicit}'", f"formats: {', '.join(FORMATS)}")
        return explicit
    name = path.name.lower()
    if name.endswith(".weights.h5"):
        return "weights"
    for fmt, ending in FORMATS.items():
        if ending.startswith(".") and name.endswith(ending):
            return fmt
    if not path.suffix:
        return "savedmodel"
    raise UsageError(
        f"cannot tell the format of '{path.name}'",
        "use .keras, .h5, .weights.h5, .tflite, .onnx, a folder name (SavedModel), or --format",
    )


def save_model(model: Any, path: Path, fmt: str, spec_text: str | None, force: bool) -> SaveResult:
    """Write `model` to `path` in `fmt`, atomically."""
    if fmt == "savedmodel":
        check_folder_output(path, force, SAVED_MODEL)
    else:
        check_writable(path, force)
    if fmt == "weights" and not path.name.endswith(".weights.h5"):
        raise UsageError(
            "Keras needs weights files to end in .weights.h5",
            f"use -o {path.with_suffix('')}.weights.h5",
        )
    writer = _WRITERS[fmt]
    if fmt == "savedmodel":
        _write_folder_atomically(path, lambda tmp: writer(model, tmp, spec_text))
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    else:
        # The temporary name keeps the real ending: Keras picks the format by it.
        write_file_with(path, lambda tmp: writer(model, tmp, spec_text), _ending(path))
        size = path.stat().st_size
    embedded = spec_text is not None and fmt != "tflite"
    return SaveResult(path, fmt, size, embedded)


def _ending(path: Path) -> str:
    name = path.name.lower()
    return ".weights.h5" if name.endswith(".weights.h5") else path.suffix


def _write_folder_atomically(path: Path, write: Callable[[Path], None]) -> None:
    with staged_folder(path) as tmp:
        tmp.rmdir()  # the exporter wants to create the folder itself
        write(tmp)


def _keras(model: Any, path: Path, spec_text: str | None) -> None:
    model.save(path)
    if spec_text is not None:
        embed_spec_in_keras(path, spec_text)


def embed_spec_in_keras(path: Path, spec_text: str) -> None:
    """Add the spec to a .keras zip (Keras ignores entries it does not know)."""
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(SPEC_ENTRY, spec_text)


# Keras's legacy .h5 format writes the top-level layer names into one HDF5
# attribute, 16 bytes a name, and HDF5 caps an attribute at 64 KiB.
H5_MAX_LAYERS = 4_000


def _h5(model: Any, path: Path, spec_text: str | None) -> None:
    if len(model.layers) > H5_MAX_LAYERS:
        raise ExportError(
            f"the legacy .h5 format holds at most {H5_MAX_LAYERS:,} layers (an HDF5 "
            f"attribute limit); the model has {len(model.layers):,}",
            "save it as .keras (no such limit), or group its layers into nested models",
        )
    model.save(path)
    _h5_attribute(path, spec_text)


def _weights(model: Any, path: Path, spec_text: str | None) -> None:
    model.save_weights(path)
    _h5_attribute(path, spec_text)


def _h5_attribute(path: Path, spec_text: str | None) -> None:
    if spec_text is None:
        return
    import h5py

    with h5py.File(path, "a") as handle:
        handle.attrs[SPEC_ATTRIBUTE] = spec_text


def _savedmodel(model: Any, path: Path, spec_text: str | None) -> None:
    try:
        model.export(str(path), format="tf_saved_model", verbose=False)
    except Exception as exc:  # the exporter's own errors
        raise ExportError(f"SavedModel export failed: {short_message(exc)}") from exc
    if spec_text is not None:
        (path / SAVEDMODEL_SPEC_FILE).write_text(spec_text)


def _tflite(model: Any, path: Path, spec_text: str | None) -> None:
    import tensorflow as tf

    try:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        # The converter goes through a SavedModel and prints about it.
        quiet = contextlib.redirect_stdout(io.StringIO())
        # Ops TFLite lacks (LSTM variants...) fall back to TensorFlow ops.
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS,
            tf.lite.OpsSet.SELECT_TF_OPS,
        ]
        with quiet:
            flatbuffer = converter.convert()
    except Exception as exc:  # the converter raises many kinds
        raise ExportError(
            f"TFLite conversion failed: {short_message(exc)}", "--debug shows the converter's log"
        ) from exc
    path.write_bytes(flatbuffer)  # a write error is fileio's (disk full, permissions)


def _onnx(model: Any, path: Path, spec_text: str | None) -> None:
    try:
        import onnx  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "ONNX export needs the `onnx` extra (tf2onnx and onnx)",
            "pip install 'kgraph[onnx]' (or: pip install tf2onnx onnx)",
        ) from None
    _call_once(model)
    try:
        model.export(str(path), format="onnx", verbose=False)
    except Exception as exc:
        raise ExportError(f"ONNX export failed: {short_message(exc)}") from exc
    if spec_text is not None:
        import onnx

        proto = onnx.load(str(path))
        entry = proto.metadata_props.add()
        entry.key, entry.value = SPEC_ATTRIBUTE, spec_text
        onnx.save(proto, str(path))


def _call_once(model: Any) -> None:
    """Keras's ONNX exporter wants a model that has been called on data once."""
    import numpy as np

    feeds = [
        np.zeros((1, *(1 if d is None else d for d in t.shape[1:])), dtype=str(t.dtype))
        for t in model.inputs
    ]
    model(feeds[0] if len(feeds) == 1 else feeds)


_WRITERS: dict[str, Callable[[Any, Path, str | None], None]] = {
    "keras": _keras,
    "h5": _h5,
    "weights": _weights,
    "savedmodel": _savedmodel,
    "tflite": _tflite,
    "onnx": _onnx,
}
