"""What an import makes and how it fails: the spec as data with the names it
had to change (`ImportResult`, `Renamed`), and `ModelImportError` for a model
a spec cannot describe. Shared by the walk, the config minimiser and the command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kgraph_cli.errors import KgraphError


class ModelImportError(KgraphError):
    """A model that a spec cannot describe (a Lambda layer, a subclassed model...)."""


@dataclass(frozen=True)
class Renamed:
    """An input or node whose Keras name is not an identifier."""

    model: str  # key path of the model: "" (top level) or "models.NAME"
    name: str  # the input's or node's name in the spec
    keras_name: str

    def to_json(self) -> dict[str, str]:
        return {"model": self.model, "name": self.name, "keras_name": self.keras_name}


@dataclass
class ImportResult:
    """A spec as plain data, and what the import had to change or could not keep."""

    data: dict[str, Any]
    # Names that are not the Keras names (which are not identifiers).
    renamed: list[Renamed] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # id() of each layer (and nested model) of the imported model -> its node's
    # name, to copy the weights layer by layer.
    layer_names: dict[int, str] = field(default_factory=dict, repr=False)

    def comments(self) -> dict[tuple[str, str], str]:
        """(model key path, name) -> the comment written next to the input or node."""
        return {(r.model, r.name): f"Keras name: {r.keras_name!r}" for r in self.renamed}
