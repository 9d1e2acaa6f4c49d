"""Keras model -> kgraph spec (`kgraph import`), one module per job:

- `walk`: the walk over a model's functional graph (models, nodes, calls,
  shared layers, nested models, wrappers, masks, the summary's order);
- `configs`: layer configs as minimal spec values (defaults dropped, Keras
  objects as `{type: ...}` or their string);
- `ops`: keras.ops operations (`x * 2`, `ops.concatenate`) as `op:` nodes,
  each checked to make the same operation;
- `command`: the command: output checks, loading, the in-memory rebuild check
  (parameters and operations), writing the spec and the weights;
- `result`: what an import makes (`ImportResult`, `Renamed`) and its error.

The YAML itself is written by `kgraph_cli.spec.writer`.
"""

from __future__ import annotations

from kgraph_cli.importer.command import (
    FileImport,
    default_weights_path,
    import_file,
    import_model,
)
from kgraph_cli.importer.result import ImportResult, ModelImportError, Renamed
from kgraph_cli.importer.walk import import_keras_model, model_to_spec
from kgraph_cli.spec.writer import spec_yaml

__all__ = [
    "FileImport",
    "ImportResult",
    "ModelImportError",
    "Renamed",
    "default_weights_path",
    "import_file",
    "import_keras_model",
    "import_model",
    "model_to_spec",
    "spec_yaml",
]
