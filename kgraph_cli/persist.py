"""Loading what `train` wrote: a run directory, a .keras file, or a spec."""

from __future__ import annotations

import lzma
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgraph_cli.errors import Code, KgraphError, Location, SpecError, UsageError, short_message
from kgraph_cli.keras_graph import producer, producer_names
from kgraph_cli.rundir import MODEL_FILE, SPEC_FILE, SPEC_SUFFIXES, RunInfo, read_run_info
from kgraph_cli.spec.loader import MAX_FILE_BYTES, read_text
from kgraph_cli.spec.validate import ValidSpec, validate_spec
from kgraph_cli.tf import import_keras


class ModelFileError(KgraphError):
    """A model file that cannot be loaded (corrupted, truncated, not a model)."""


# Formats `kgraph save` exports for other runtimes, which Keras cannot read
# back: (what it is, what runs it).
EXPORT_ONLY = {
    ".tflite": ("a TensorFlow Lite model", "the TFLite interpreter (tf.lite.Interpreter)"),
    ".onnx": ("an ONNX model", "an ONNX runtime such as onnxruntime"),
}


def refuse_export_only(path: Path) -> None:
    """A clear error for a file of an export-only format, before reading it."""
    kind = EXPORT_ONLY.get(path.suffix.lower())
    if kind is None:
        return
    what, runtime = kind
    raise ModelFileError(
        f"cannot load '{path}': it is {what}, a format kgraph writes (kgraph save -o "
        f"model{path.suffix.lower()}) but cannot load back",
        "load the .keras or .h5 file or the SavedModel folder it was exported from "
        f"instead; to run the {path.suffix.lower()[1:]} file, use {runtime}",
    )


@dataclass
class Target:
    """A model to evaluate or predict with, and the spec that describes its data."""

    model: Any
    valid: ValidSpec | None
    model_name: str
    trained: bool
    # Where the run's data was found (run.json), for evaluating it again.
    data_dir: Path | None = None
    # The folder the spec's relative data paths start from.
    spec_dir: Path | None = None
    # Output name -> the name of each class index: the spec's `classes:` of the
    # output, else the class folders of the `images:` data it was trained on (run.json).
    class_names: dict[str, list[str]] = field(default_factory=dict)
    # Output name -> where its class names come from: "spec" or "run" (run.json).
    class_origins: dict[str, str] = field(default_factory=dict)


def _with_class_names(target: Target, info: RunInfo | None) -> Target:
    """`target` with the class names its spec and run directory record."""
    if info is not None:
        for output, names in info.classes.items():
            target.class_names[output] = names
            target.class_origins[output] = "run"
    name = info.model if info else target.model_name
    model = target.valid.spec.models.get(name) if target.valid else None
    for output in model.outputs if model else []:
        if output.classes is not None:
            target.class_names[output.name] = list(output.classes)
            target.class_origins[output.name] = "spec"
    return target


def load_target(
    path: Path,
    model_name: str | None,
    overrides: list[str],
    plugins: list[str],
    pretrained: bool = False,
    data_dir: Path | None = None,
    strategy: str | None = None,
) -> Target:
    """A spec (built, untrained; `pretrained`: with its applications' weights,
    looked for in `data_dir` first), a run directory or a .keras file (trained);
    built or loaded in the scope of `strategy` (evaluate and predict's
    --strategy; its settings from the spec's train.distribute)."""
    if path.suffix in SPEC_SUFFIXES and path.is_file():
        from kgraph_cli.build import ModelBuilder

        valid = validate_spec(path, overrides, plugins)
        name = valid.spec.model_name(model_name)
        with _strategy_scope(strategy, valid, name):
            model = ModelBuilder(valid, pretrained, data_dir).build(name)
        built = Target(model, valid, name, False, None, path.parent)
        return _with_class_names(built, None)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise UsageError(
            f"'{path}' is neither a spec, a run directory nor a model file",
            "pass a .yaml spec, a run directory written by `kgraph train`, or a .keras file",
        )
    refuse_export_only(model_file)  # before looking for a spec in or beside it
    spec_file = model_file.parent / SPEC_FILE
    if spec_file.is_file():
        valid = validate_spec(spec_file, overrides, plugins)
    elif (text := embedded_spec(model_file)) is not None:
        valid = validate_spec(embedded_name(model_file), overrides, plugins, text=text)
    else:
        valid = None
    if valid is None and plugins:
        from kgraph_cli.layers import LayerRegistry

        LayerRegistry(plugins)  # import the plugins so Keras finds their classes
    info = read_run_info(model_file.parent)
    with _strategy_scope(strategy, valid, info.model if info else None):
        model = load_keras_model(model_file)
    # A run's spec.yaml is a copy: its data paths are relative to the original spec.
    spec_dir = Path(info.spec).parent if info else model_file.parent
    loaded = Target(model, valid, model.name, True, info.data_dir if info else None, spec_dir)
    return _with_class_names(loaded, info)


def _strategy_scope(strategy: str | None, valid: ValidSpec | None, model: str | None) -> Any:
    """Where the model is made under --strategy: in the scope of the strategy,
    started with the settings of the spec's train.distribute."""
    from kgraph_cli.distribute import inference_runtime

    settings = None
    if strategy not in (None, "default") and valid is not None:
        from kgraph_cli.spec.train import checked_train

        settings = checked_train(valid.spec, valid.spec.model_name(model)).distribute
    return inference_runtime(strategy, settings).scope()


def load_keras_model(path: Path, safe_mode: bool = True) -> Any:
    """Load a .keras/.h5 model; problems become a clear error, not a traceback."""
    refuse_export_only(path)
    if path.name.endswith(".weights.h5"):
        raise ModelFileError(
            f"'{path}' holds weights only, not a model",
            "build the model from its spec and add the weights: "
            f"kgraph save SPEC --weights {path} -o model.keras",
        )
    if path.suffix == ".keras":
        _check_keras_archive(path)
    from kgraph_cli.deep import ModelTooDeepError, deep_recursion

    keras = import_keras()
    try:
        # Keras maps the loaded graph recursively, one frame per layer: see deep.py.
        with deep_recursion(what=f"'{path}'"):
            return keras.saving.load_model(path, safe_mode=safe_mode)
    except ModelTooDeepError:
        raise  # its own message, not "is it a complete .keras file?"
    except Exception as exc:  # Keras raises many kinds for bad files
        full = " ".join(str(exc).split())
        message = full[:300]
        hint = "is it a complete .keras file written by Keras 3 (kgraph train / kgraph save)?"
        if "Lambda" in full or "safe_mode" in full:
            message = "it contains Python code (a Lambda layer), which safe mode refuses to load"
            hint = "only if you trust the file: kgraph load --unsafe"
        if "Could not locate class" in full or "Unknown layer" in full:
            found = re.search(r"Could not locate class '([^']+)'", full)
            missing = f" ({found.group(1)})" if found else ""
            message = f"it uses a custom layer{missing} that is not loaded"
            hint = "pass --plugin with the module that defines it"
        raise ModelFileError(f"cannot load model '{path}': {message}", hint) from exc


def _check_keras_archive(path: Path) -> None:
    """A .keras file must be a zip archive whose embedded spec, if any, is
    sound: checked before Keras, which extracts every entry of the archive."""
    if zipfile.is_zipfile(path):
        embedded_spec(path)
        return
    hint = "a .keras file is a zip archive written by Keras 3 (kgraph train / kgraph save)"
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(_HDF5_SIGNATURE))
    except OSError as exc:
        raise ModelFileError(f"cannot load model '{path}': {exc.strerror}") from None
    if not start:
        problem = "the file is empty"
    elif start == _HDF5_SIGNATURE:
        problem = "it is an HDF5 file (Keras's legacy .h5 format), not a .keras zip archive"
        hint = f"rename it to '{path.with_suffix('.h5').name}'"
    else:
        problem = "not a valid .keras file (truncated or corrupted?)"
    raise ModelFileError(f"cannot load model '{path}': {problem}", hint)


# The first bytes of every HDF5 file (.h5).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# What zipfile and its decompressors raise for a damaged entry.
_DAMAGED_ZIP = (
    OSError,
    EOFError,
    RuntimeError,  # an encrypted entry
    NotImplementedError,  # an unknown compression method
    zipfile.BadZipFile,  # a bad CRC, a broken header
    zlib.error,
    lzma.LZMAError,
)


def embedded_name(path: Path) -> str:
    """How diagnostics name the spec embedded in the model file `path`."""
    return f"{path}[embedded spec]"


def embedded_spec(path: Path) -> str | None:
    """The spec a model file was saved with (kgraph save / train), if any:
    the one reader of embedded specs. Like a spec file, it may be at most
    MAX_FILE_BYTES (error[too-large]); a zip entry is checked against that by
    its declared size before reading, and read decompressed in chunks up to
    that size, so a zip bomb is refused without filling the memory. A damaged
    one is a ModelFileError (exit 1)."""
    from kgraph_cli.export import SAVEDMODEL_SPEC_FILE, SPEC_ATTRIBUTE, SPEC_ENTRY

    if path.is_dir():
        spec_file = path / SAVEDMODEL_SPEC_FILE
        return read_text(spec_file, embedded_name(path)) if spec_file.is_file() else None
    if zipfile.is_zipfile(path):
        return _zip_entry_text(path, SPEC_ENTRY)
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            value = handle.attrs.get(SPEC_ATTRIBUTE)
    except OSError:  # not an HDF5 file: the model loader says what it is
        return None
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes):
        raise _damaged(path, SPEC_ATTRIBUTE, f"it holds {type(value).__name__}, not text")
    return _spec_text(path, value, SPEC_ATTRIBUTE)


def _zip_entry_text(path: Path, entry: str) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(entry)
            except KeyError:
                return None
            _check_spec_size(path, info.file_size)
            with archive.open(info) as member:
                raw = member.read(MAX_FILE_BYTES + 1)
    except _DAMAGED_ZIP as exc:
        raise _damaged(path, entry, short_message(exc)) from None
    return _spec_text(path, raw, entry)


def _spec_text(path: Path, raw: bytes, where: str) -> str:
    _check_spec_size(path, len(raw))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _damaged(
            path, where, f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8"
        ) from None


def _check_spec_size(path: Path, size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise SpecError.at(
            Code.TOO_LARGE,
            f"the embedded spec is {size:,} bytes, over the limit for a spec ({MAX_FILE_BYTES:,})",
            Location(embedded_name(path)),
            hint="kgraph never embeds a larger spec: the file was not written by kgraph as it is",
        )


def _damaged(path: Path, where: str, problem: str) -> ModelFileError:
    return ModelFileError(
        f"cannot load model '{path}': its embedded spec ({where}) is damaged: {problem}",
        "the file is truncated or corrupted: save it again (kgraph save) or train again",
    )


def load_weights_from(model: Any, source: Path) -> None:
    """Give `model` the weights of a trained model, a run directory or a weights file."""
    if source.is_dir():
        source = source / MODEL_FILE
    if not source.is_file():
        raise UsageError(
            f"--weights: '{source}' does not exist",
            "pass a .keras model, a run directory or a .weights.h5 file",
        )
    try:
        if source.name.endswith(".weights.h5"):
            model.load_weights(source)
            return
        trained = load_keras_model(source)
        mine = [tuple(w.shape) for w in model.weights]
        theirs = [tuple(w.shape) for w in trained.weights]
        if mine != theirs:
            raise ModelFileError(
                f"--weights: '{source}' has {len(theirs)} weight arrays that do not match this "
                f"model's {len(mine)}",
                "the weights must come from a model with the same architecture",
            )
        model.set_weights(trained.get_weights())
    except KgraphError:
        raise
    except Exception as exc:  # Keras's own mismatch errors
        raise ModelFileError(
            f"--weights: cannot load '{source}': {short_message(exc)}",
            "the weights must come from a model with the same architecture",
        ) from exc


@dataclass
class ModelInfo:
    """What `kgraph load` shows about a saved model."""

    path: Path
    format: str
    name: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    summary: Any = None  # ModelSummary for Keras models
    spec: str | None = None
    compiled: bool = False
    optimizer: str | None = None
    optimizer_steps: int | None = None
    loss: Any = None
    check: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "name": self.name,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "total_params": self.summary.total_params if self.summary else None,
            "summary": self.summary.to_json() if self.summary else None,
            "spec": self.spec,
            "compiled": self.compiled,
            "optimizer": self.optimizer,
            "optimizer_steps": self.optimizer_steps,
            "loss": self.loss,
            "check": self.check,
        }


def inspect_model(
    path: Path, safe_mode: bool = True, check: bool = False, plugins: list[str] | None = None
) -> ModelInfo:
    """Load a .keras/.h5 model or a SavedModel folder and describe it."""
    if plugins:
        from kgraph_cli.layers import LayerRegistry

        LayerRegistry(plugins)  # import the plugins so Keras finds their classes
    if path.is_dir():
        if (path / MODEL_FILE).is_file():  # a run directory
            path = path / MODEL_FILE
        else:
            return _inspect_savedmodel(path, check)
    from kgraph_cli.summary import summarize_model

    model = load_keras_model(path, safe_mode)  # checks the embedded spec first
    summary = summarize_model(model)
    info = ModelInfo(
        path,
        "h5" if path.suffix == ".h5" else "keras",
        model.name,
        [vars(t) for t in summary.inputs],
        [vars(t) for t in summary.outputs],
        summary,
        embedded_spec(path),
    )
    optimizer = getattr(model, "optimizer", None)
    info.compiled = bool(getattr(model, "compiled", False))
    if optimizer is not None:
        info.optimizer = type(optimizer).__name__
        info.optimizer_steps = int(optimizer.iterations.numpy())
    if info.compiled:
        loss = getattr(model, "loss", None)
        info.loss = _loss_names(loss)
    if check:
        info.check = _forward_check(model)
    return info


def _loss_names(loss: Any) -> Any:
    if loss is None or isinstance(loss, str):
        return loss
    if isinstance(loss, dict):
        return {k: _loss_names(v) for k, v in loss.items()}
    if isinstance(loss, (list, tuple)):
        return [_loss_names(v) for v in loss]
    return getattr(loss, "name", None) or type(loss).__name__


def _random_inputs(specs: list[tuple[str, tuple, str]], batch: int = 2) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {}
    for name, shape, dtype in specs:
        dims = (batch, *(8 if d is None else d for d in shape))
        if dtype.startswith(("int", "uint")):
            arrays[name] = np.zeros(dims, dtype=dtype)
        else:
            arrays[name] = rng.standard_normal(dims).astype(
                dtype if dtype != "bfloat16" else "float32"
            )
    return arrays


def _forward_check(model: Any) -> dict[str, Any]:
    """One forward pass on random inputs: output shapes, and whether all are finite."""
    import numpy as np

    specs = [(producer(t).name, tuple(t.shape[1:]), str(t.dtype)) for t in model.inputs]
    arrays = _random_inputs(specs)
    feed = next(iter(arrays.values())) if len(arrays) == 1 else arrays
    try:
        raw = model.predict(feed, verbose=0)
    except Exception as exc:
        raise ModelFileError(f"--check: the forward pass failed: {short_message(exc)}") from exc
    outputs = raw if isinstance(raw, (list, tuple)) else [raw]
    names = producer_names(model.outputs)
    return {
        "ok": all(bool(np.all(np.isfinite(o))) for o in outputs),
        "outputs": {n: list(np.shape(o)) for n, o in zip(names, outputs, strict=False)},
    }


def _inspect_savedmodel(path: Path, check: bool) -> ModelInfo:
    import_keras()
    import tensorflow as tf

    if not (path / "saved_model.pb").is_file():
        raise UsageError(
            f"'{path}' is a folder but neither a run directory nor a SavedModel",
            "pass a .keras/.h5 file, a run directory or a SavedModel folder",
        )
    try:
        loaded = tf.saved_model.load(str(path))
        serve = loaded.signatures["serving_default"]
    except Exception as exc:
        raise ModelFileError(f"cannot load SavedModel '{path}': {short_message(exc)}") from exc
    inputs = [
        {"name": name, "shape": spec.shape.as_list(), "dtype": spec.dtype.name}
        for name, spec in serve.structured_input_signature[1].items()
    ]
    outputs = [
        {"name": name, "shape": spec.shape.as_list(), "dtype": spec.dtype.name}
        for name, spec in serve.structured_outputs.items()
    ]
    info = ModelInfo(path, "savedmodel", path.name, inputs, outputs, spec=embedded_spec(path))
    if check:
        import numpy as np

        arrays = _random_inputs([(i["name"], tuple(i["shape"][1:]), i["dtype"]) for i in inputs])
        try:
            results = serve(**{k: tf.constant(v) for k, v in arrays.items()})
        except Exception as exc:
            raise ModelFileError(f"--check: the forward pass failed: {short_message(exc)}") from exc
        info.check = {
            "ok": all(bool(np.all(np.isfinite(v.numpy()))) for v in results.values()),
            "outputs": {k: list(v.shape) for k, v in results.items()},
        }
    return info
