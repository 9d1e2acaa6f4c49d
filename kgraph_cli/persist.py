"""Loading what `train` wrote: a run directory, a .keras file, or a spec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgraph_cli.errors import KgraphError, UsageError
from kgraph_cli.rundir import MODEL_FILE, SPEC_FILE, read_run_info
from kgraph_cli.spec.validate import ValidSpec, validate_spec
from kgraph_cli.tf import import_keras

SPEC_SUFFIXES = (".yaml", ".yml")


class ModelFileError(KgraphError):
    """A model file that cannot be loaded (corrupted, truncated, not a model)."""


@dataclass
class Target:
    """A model to evaluate or predict with, and the spec that describes its data."""

    model: Any
    valid: ValidSpec | None
    model_name: str
    trained: bool
    # Where the run's data was found (run.json), for evaluating it again.
    data_dir: Path | None = None


def load_target(
    path: Path, model_name: str | None, overrides: list[str], plugins: list[str], check_name: Any
) -> Target:
    """A spec (built, untrained), a run directory or a .keras file (trained)."""
    if path.suffix in SPEC_SUFFIXES and path.is_file():
        from kgraph_cli.build import ModelBuilder

        valid = validate_spec(path, overrides, plugins)
        name = check_name(valid, model_name)
        return Target(ModelBuilder(valid).build(name), valid, name, trained=False)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise UsageError(
            f"'{path}' is neither a spec, a run directory nor a model file",
            "pass a .yaml spec, a run directory written by `kgraph train`, or a .keras file",
        )
    spec_file = model_file.parent / SPEC_FILE
    valid = validate_spec(spec_file, overrides, plugins) if spec_file.is_file() else None
    if valid is None and plugins:
        from kgraph_cli.layers import LayerRegistry

        LayerRegistry(plugins)  # import the plugins so Keras finds their classes
    model = load_keras_model(model_file)
    info = read_run_info(model_file.parent)
    return Target(model, valid, model.name, True, info.data_dir if info else None)


def load_keras_model(path: Path, safe_mode: bool = True) -> Any:
    """Load a .keras/.h5 model; problems become a clear error, not a traceback."""
    keras = import_keras()
    try:
        return keras.saving.load_model(path, safe_mode=safe_mode)
    except Exception as exc:  # Keras raises many kinds for bad files
        message = " ".join(str(exc).split())[:300]
        hint = "is it a complete .keras file written by Keras 3 (kgraph train / kgraph save)?"
        if "Lambda" in message or "safe_mode" in message:
            hint = "the model contains code (a Lambda layer); load it only if you trust it"
        if "Unknown layer" in message or "Could not locate class" in message:
            hint = "the model uses custom layers: pass --plugin with the module that defines them"
        raise ModelFileError(f"cannot load model '{path}': {message}", hint) from exc
