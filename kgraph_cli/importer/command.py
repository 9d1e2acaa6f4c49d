"""`kgraph import`: a Keras model file in, a spec (and its weights) out.

Checks the output names before any work; loads the model in safe mode; walks
it into spec data (walk.py) and writes that as YAML (spec/writer.py); then,
before writing anything, validates and builds the spec text in memory as
`kgraph` will read the file, and checks it has the original's parameters and
keras.ops operations (and, with `--weights`, that the weights fit it layer by
layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgraph_cli.errors import SpecError, UsageError
from kgraph_cli.importer.result import ModelImportError, Renamed
from kgraph_cli.importer.walk import import_keras_model
from kgraph_cli.keras_graph import layer_count
from kgraph_cli.rundir import SPEC_SUFFIXES
from kgraph_cli.spec.writer import spec_yaml

WEIGHTS_SUFFIX = ".weights.h5"
_BUG_HINT = "this is a kgraph bug: please report it with the model file"


@dataclass
class FileImport:
    """What `kgraph import` wrote."""

    spec: Path
    weights: Path | None
    layers: int
    params: int
    models: list[str]
    renamed: list[Renamed]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": str(self.spec),
            "weights": str(self.weights) if self.weights else None,
            "layers": self.layers,
            "params": self.params,
            "models": self.models,
            "renamed": [r.to_json() for r in self.renamed],
            "notes": self.notes,
        }


def default_weights_path(spec: Path) -> Path:
    """SPEC.weights.h5 next to SPEC.yaml (`--weights` without a file)."""
    return spec.with_name(spec.stem + WEIGHTS_SUFFIX)


def import_file(
    model_file: Path,
    output: Path,
    weights: Path | None = None,
    force: bool = False,
    plugins: list[str] | tuple[str, ...] = (),
) -> FileImport:
    """Load a model file, write its spec (and weights), check that both rebuild it."""
    from kgraph_cli.layers import LayerRegistry
    from kgraph_cli.persist import ModelFileError, load_keras_model

    _check_outputs(output, weights, force)
    LayerRegistry(plugins)  # before loading: Keras must find the plugins' classes
    notes: list[str] = []
    try:
        model = _load_legacy_h5(model_file, notes) if _is_legacy_h5(model_file) else None
        if model is None:
            model = load_keras_model(model_file, safe_mode=True)
    except ModelFileError as exc:
        if "Lambda" in str(exc) or "safe_mode" in str(exc):
            raise ModelImportError(
                f"'{model_file}' contains a Lambda layer (Python code): a spec cannot hold code",
                "replace the Lambda by a Keras layer, or by a custom layer class that "
                "`kgraph import --plugin MODULE` can name",
            ) from exc
        raise
    done = import_model(model, output, weights, force, plugins, model_file.name)
    done.notes[:0] = notes
    return done


def _is_legacy_h5(path: Path) -> bool:
    """A model in the legacy HDF5 format (`model.save("x.h5")`), not a weights file."""
    return path.suffix == ".h5" and not path.name.endswith(WEIGHTS_SUFFIX) and path.is_file()


def _load_legacy_h5(path: Path, notes: list[str]) -> Any:
    """A legacy .h5 model as keras_graph.load_legacy_h5 loads it (keras.ops
    operations, Keras 2's TensorFlow-function layers and `/` names included),
    its notes added to `notes`; None where that fails for a reason Keras's
    own loader explains better (a Lambda, a custom layer, no model config)."""
    from kgraph_cli import keras_legacy
    from kgraph_cli.deep import ModelTooDeepError, deep_recursion

    try:
        with deep_recursion(what=f"'{path}'"):
            model, found = keras_legacy.load_legacy_h5(path, safe_mode=True)
    except keras_legacy.LegacyModelError as exc:
        raise ModelImportError(
            f"cannot import '{path}': {exc}",
            "load it in Keras 2 and replace that step by a layer, or save the model "
            "as .keras from a Keras 3 model",
        ) from exc
    except ModelTooDeepError:
        raise
    except Exception:  # Keras's own loader says what is wrong, in its words
        return None
    notes.extend(found)
    return model


def import_model(
    model: Any,
    output: Path,
    weights: Path | None = None,
    force: bool = False,
    plugins: list[str] | tuple[str, ...] = (),
    source: str = "",
) -> FileImport:
    """Write the spec of a model (and its weights), after checking that the spec
    builds a model with the same parameters (and that the weights fit it)."""
    from kgraph_cli.fileio import write_text_atomic

    _check_outputs(output, weights, force)
    result = import_keras_model(model, plugins)
    if source:
        result.data = {
            "kgraph": result.data["kgraph"],
            "name": result.data["name"],
            "description": f"Imported by `kgraph import` from {source}.",
            **result.data,
        }
    text = spec_yaml(result.data, result.comments())
    rebuilt = rebuild(text, output, plugins, model)
    check_operations(model, rebuilt, result.layer_names)
    if weights is not None:
        _save_weights(model, rebuilt, weights, result.layer_names)
    write_text_atomic(output, text, force=True)
    return FileImport(
        output,
        weights,
        layer_count(rebuilt),
        int(rebuilt.count_params()),
        list(result.data.get("models") or {}),
        result.renamed,
        result.notes,
    )


def _check_outputs(output: Path, weights: Path | None, force: bool) -> None:
    """Refuse bad names and existing files before any work (usage errors)."""
    from kgraph_cli.fileio import check_writable

    if output.suffix not in SPEC_SUFFIXES:
        raise UsageError(f"'{output}' is not a .yaml file", "name the spec SOMETHING.yaml")
    if weights is not None and not weights.name.endswith(WEIGHTS_SUFFIX):
        raise UsageError(
            f"'{weights}' does not end with {WEIGHTS_SUFFIX}",
            f"Keras weights files end with {WEIGHTS_SUFFIX}",
        )
    if weights is not None and weights.resolve() == output.resolve():
        raise UsageError("the spec and the weights would be the same file")
    check_writable(output, force)
    if weights is not None:
        check_writable(weights, force)


def rebuild(text: str, output: Path, plugins: list[str] | tuple[str, ...], original: Any) -> Any:
    """Validate and build spec `text` (to be written at `output`, which names it
    in diagnostics) as `kgraph` will read the file, and check that it has the
    original's parameters; ModelImportError if not."""
    from kgraph_cli.build import ModelBuilder
    from kgraph_cli.spec.validate import validate_spec

    try:
        rebuilt = ModelBuilder(validate_spec(output, (), plugins, text=text)).build()
    except SpecError as exc:
        errors = [d for d in exc.diagnostics if d.is_error] or exc.diagnostics
        first = errors[0] if errors else None
        where = f" ({first.path})" if first and first.path else ""
        raise ModelImportError(
            f"the imported spec does not build{where}: {exc}", _BUG_HINT
        ) from exc
    if rebuilt.count_params() != original.count_params():
        raise ModelImportError(
            f"the imported spec builds a model with {rebuilt.count_params():,} parameters, "
            f"the original has {original.count_params():,}",
            _BUG_HINT,
        )
    return rebuilt


def check_operations(original: Any, rebuilt: Any, names: dict[int, str]) -> None:
    """Every keras.ops operation of the original that became an `op:` node is
    in the rebuilt model under the node's name, the same operation: class,
    config, call arguments and outputs (which parameter counts cannot tell)."""
    from kgraph_cli import keras_graph
    from kgraph_cli.importer.configs import same
    from kgraph_cli.importer.ops import op_signature
    from kgraph_cli.tf import import_keras

    keras = import_keras()
    rebuilt_ops: dict[str, Any] | None = None
    for op in keras_graph.model_operations(original):
        name = names.get(id(op))
        if name is None:
            continue
        if keras_graph.is_graph_op(op):
            if rebuilt_ops is None:
                rebuilt_ops = {o.name: o for o in keras_graph.model_operations(rebuilt)}
            twin = rebuilt_ops.get(name)
            if twin is None or not same(
                op_signature(keras_graph.calls(op)[0]), op_signature(keras_graph.calls(twin)[0])
            ):
                raise ModelImportError(
                    f"op node '{name}' does not rebuild operation '{op.name}' "
                    f"({type(op).__name__}) as it is in the original",
                    _BUG_HINT,
                )
            continue
        inner = getattr(op, "layer", None)
        if isinstance(op, keras.Model) or isinstance(inner, keras.Model):
            try:
                twin = rebuilt.get_layer(name)
            except ValueError:
                raise ModelImportError(
                    f"'{op.name}' has no counterpart in the imported spec", _BUG_HINT
                ) from None
            if isinstance(op, keras.Model):
                check_operations(op, twin, names)
            else:
                check_operations(inner, twin.layer, names)


def _save_weights(original: Any, rebuilt: Any, path: Path, names: dict[int, str]) -> None:
    """The original's weights, saved from the rebuilt model (so that its layer
    structure is the one load_weights finds), written atomically."""
    from kgraph_cli.fileio import atomic_path

    _copy_weights(original, rebuilt, names)
    with atomic_path(path, WEIGHTS_SUFFIX) as tmp:
        rebuilt.save_weights(tmp)


def _copy_weights(source: Any, target: Any, names: dict[int, str]) -> None:
    """Layer by layer, by name: Keras may order the layers of the two models
    differently (keyword inputs are ordered by name), never their names."""
    from kgraph_cli.tf import import_keras

    keras = import_keras()
    for layer in source.layers:
        if not layer.weights:
            continue
        name = names.get(id(layer))
        try:
            twin = target.get_layer(name)
        except ValueError:
            twin = None
        if name is None or twin is None:
            raise ModelImportError(
                f"layer '{layer.name}' has no counterpart in the imported spec", _BUG_HINT
            )
        inner = getattr(layer, "layer", None)
        if isinstance(layer, keras.Model):
            _copy_weights(layer, twin, names)
        elif isinstance(inner, keras.Model):
            _copy_weights(inner, twin.layer, names)
        else:
            values = layer.get_weights()
            shapes = [tuple(w.shape) for w in twin.weights]
            if [tuple(v.shape) for v in values] != shapes:
                raise ModelImportError(
                    f"the weights of layer '{layer.name}' do not fit the imported spec's",
                    _BUG_HINT,
                )
            twin.set_weights(values)
