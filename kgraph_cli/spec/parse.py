"""YAML data -> typed spec objects, collecting every structural problem.

This stage checks what one can see without following references: known keys,
value types, required fields, name syntax. References, cycles and layer
arguments are checked by later stages on the objects built here. This module
reads the spec, its models, views, inputs, outputs and blocks; `nodes.py` reads
the nodes; `fields.py` has the checks of single values they share.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kgraph_cli.errors import Location
from kgraph_cli.spec.fields import join, positive_int
from kgraph_cli.spec.keys import (
    BLOCK_KEYS,
    INPUT_KEYS,
    MODEL_KEYS,
    OUTPUT_KEYS,
    SECTION_EXAMPLES,
    TOP_KEYS,
)
from kgraph_cli.spec.loader import YamlList, YamlMap
from kgraph_cli.spec.model import (
    DTYPES,
    SPEC_VERSION,
    BlockSpec,
    InputSpec,
    ModelSpec,
    OutputSpec,
    Ref,
    Spec,
)
from kgraph_cli.spec.nodes import NodeParser
from kgraph_cli.suggest import did_you_mean


class SpecParser(NodeParser):
    """Turns one file's YAML data into a `Spec`, recording diagnostics."""

    def section(self, parent: YamlMap, key: str, path: str, what: str) -> YamlMap | None:
        """`parent[key]`, a mapping; if it is not, the error shows what to write."""
        example = SECTION_EXAMPLES.get(key)
        hint = f"e.g. `{key}: {example}`" if example else ""
        return self.mapping(parent, key, path, what, hint=hint)

    # -- spec -----------------------------------------------------------
    def parse_spec(self, data: YamlMap) -> Spec:
        self.check_keys(data, TOP_KEYS, "", "the spec")
        version = self._version(data)
        stem = re.sub(r"\W", "_", Path(self.file).stem) or "model"
        if stem[0].isdigit():  # `01_mnist.yaml` must still give a valid model name
            stem = f"_{stem}"
        name = self.string(data, "name", "", stem)
        description = self.string(data, "description", "", "")
        models: dict[str, ModelSpec] = {}
        if any(k in data for k in ("inputs", "layers", "outputs")):
            if self.name_ok(
                name, data.value_loc("name") if "name" in data else data.loc, "name", "model"
            ):
                models[name] = self.parse_model(name, data, "", data.loc, top_level=True)
        if "models" in data and (section := self.mapping(data, "models", "models", "models")):
            for model_name, _body in section.items():
                path = f"models.{model_name}"
                if not self.name_ok(model_name, section.key_loc(model_name), path, "model"):
                    continue
                if model_name in models:
                    self.error(
                        "duplicate-name",
                        f"model '{model_name}' is defined twice: "
                        "by the top-level graph (its `name`) and in models",
                        section.key_loc(model_name),
                        path,
                        "rename one of them",
                    )
                    continue
                if body_map := self.mapping(section, model_name, path, "a model"):
                    models[model_name] = self.parse_model(
                        model_name, body_map, path, section.key_loc(model_name)
                    )
        blocks = {}
        if "blocks" in data and (section := self.mapping(data, "blocks", "blocks", "blocks")):
            for block_name in section:
                path = f"blocks.{block_name}"
                if self.name_ok(block_name, section.key_loc(block_name), path, "block") and (
                    body_map := self.mapping(section, block_name, path, "a block")
                ):
                    blocks[block_name] = self.parse_block(
                        block_name, body_map, path, section.key_loc(block_name)
                    )
        default = self.string(data, "default", "", "")
        train = data.get("train")
        if train is not None and not isinstance(train, YamlMap):
            self.type_error(data, "train", "train", "train must be a mapping", train)
            train = None  # reported here, where its place is known: not parsed again
        spec = Spec(self.file, version, name, default, models, blocks, train, description)
        spec.default_loc = data.value_loc("default") if "default" in data else data.loc
        spec.data = data
        return spec

    def _version(self, data: YamlMap) -> int:
        if "kgraph" not in data:
            self.error(
                "missing",
                "missing the spec format version `kgraph`",
                data.loc,
                "kgraph",
                f"add `kgraph: {SPEC_VERSION}` as the first line",
            )
            return SPEC_VERSION
        version = data["kgraph"]
        if not isinstance(version, int) or isinstance(version, bool):
            self.type_error(
                data, "kgraph", "kgraph", "the spec version must be an integer", version
            )
            return SPEC_VERSION
        if version != SPEC_VERSION:
            self.error(
                "version",
                f"spec format version {version} is not supported",
                data.value_loc("kgraph"),
                "kgraph",
                f"this kgraph reads version {SPEC_VERSION}; upgrade kgraph for newer specs",
            )
        return version

    # -- models ---------------------------------------------------------
    def parse_model(
        self, name: str, data: YamlMap, path: str, loc: Location, top_level: bool = False
    ) -> ModelSpec:
        if not top_level:
            self.check_keys(data, MODEL_KEYS, path, f"model '{name}'")
        description = "" if top_level else self.string(data, "description", path, "")
        model = ModelSpec(name, loc, description=description, path=path)
        if "graph" in data:
            return self._parse_view(model, data, path)
        for key in ("inputs", "outputs"):
            if key not in data:
                self.error(
                    "missing",
                    f"model '{name}' has no `{key}`",
                    data.loc,
                    join(path, key),
                    f"add `{key}: {SECTION_EXAMPLES[key]}`"
                    + (
                        " (or `graph:` to build it over another model's layers)"
                        if not top_level
                        else ""
                    ),
                )
        if "inputs" in data and (
            section := self.section(data, "inputs", join(path, "inputs"), "inputs")
        ):
            model.inputs = self.parse_inputs(section, join(path, "inputs"))
        if "layers" in data and (
            section := self.section(data, "layers", join(path, "layers"), "layers")
        ):
            model.nodes = self.parse_nodes(section, join(path, "layers"), model.inputs)
            model.broken = set(section) - set(model.nodes) - set(model.inputs)
            model.broken |= {n for n in model.nodes if "from" not in section[n]}
        if "outputs" in data:
            model.outputs = self.parse_outputs(data, join(path, "outputs"))
        return model

    def _parse_view(self, model: ModelSpec, data: YamlMap, path: str) -> ModelSpec:
        graph = data["graph"]
        if not isinstance(graph, str):
            self.type_error(data, "graph", join(path, "graph"), "graph must be a model name", graph)
        else:
            model.graph = graph
            model.graph_loc = data.value_loc("graph")
        if "layers" in data:
            self.error(
                "view-layers",
                f"model '{model.name}' is built over graph '{graph}' and cannot add layers",
                data.key_loc("layers"),
                join(path, "layers"),
                "define the layers in the graph model, or drop `graph:`",
            )
        if "inputs" in data:
            refs = data["inputs"]
            if isinstance(refs, YamlList):
                model.view_inputs = [
                    r
                    for i in range(len(refs))
                    if (r := self.ref(refs, i, f"{path}.inputs[{i}]")) is not None
                ]
            else:
                self.type_error(
                    data,
                    "inputs",
                    join(path, "inputs"),
                    "a view's inputs must be a list of refs into its graph",
                    refs,
                )
        if "outputs" not in data:
            self.error(
                "missing",
                f"model '{model.name}' has no `outputs`",
                data.loc,
                join(path, "outputs"),
                "name the graph nodes this model returns",
            )
        else:
            model.outputs = self.parse_outputs(data, join(path, "outputs"))
        return model

    def parse_inputs(self, section: YamlMap, path: str) -> dict[str, InputSpec]:
        inputs = {}
        for name, body in section.items():
            ipath = f"{path}.{name}"
            if not self.name_ok(name, section.key_loc(name), ipath, "input"):
                continue
            loc = section.key_loc(name)
            if isinstance(body, YamlList):  # shorthand: `pixels: [784]`
                body = YamlMap({"shape": body}, loc=body.loc)
                body.value_locs["shape"] = body.loc
            if not isinstance(body, YamlMap):
                self.type_error(
                    section,
                    name,
                    ipath,
                    "an input must be a mapping with `shape` (or a shape list)",
                    body,
                )
                continue
            self.check_keys(body, INPUT_KEYS, ipath, f"input '{name}'")
            shape = self._shape(body, ipath) if "shape" in body else None
            if "shape" not in body:
                self.error(
                    "missing",
                    f"input '{name}' has no `shape`",
                    loc,
                    f"{ipath}.shape",
                    "e.g. `shape: [784]`; use null for a variable dimension",
                )
            dtype = self.string(body, "dtype", ipath, "float32")
            if dtype not in DTYPES:
                self.error(
                    "dtype",
                    f"unknown dtype '{dtype}'",
                    body.value_loc("dtype"),
                    f"{ipath}.dtype",
                    did_you_mean(dtype, DTYPES),
                )
            sparse = "sparse" in body and bool(self.boolean(body, "sparse", f"{ipath}.sparse"))
            batch_size = body.get("batch_size")
            if batch_size is not None and not positive_int(batch_size):
                self.type_error(
                    body,
                    "batch_size",
                    f"{ipath}.batch_size",
                    "batch_size must be a positive integer",
                    batch_size,
                )
                batch_size = None
            inputs[name] = InputSpec(name, shape or (), dtype, loc, sparse, batch_size)
        return inputs

    def _shape(self, body: YamlMap, path: str) -> tuple[int | None, ...] | None:
        shape = body["shape"]
        if isinstance(shape, int) and not isinstance(shape, bool) and shape > 0:
            return (shape,)
        if not isinstance(shape, YamlList):
            self.type_error(body, "shape", f"{path}.shape", "shape must be a list of sizes", shape)
            return None
        dims: list[int | None] = []
        for i, dim in enumerate(shape):
            if dim is None or positive_int(dim):
                dims.append(dim)
            else:
                self.type_error(
                    shape,
                    i,
                    f"{path}.shape[{i}]",
                    "a dimension must be a positive integer or null",
                    dim,
                    "e.g. `shape: [28, 28, 1]`; null for a size that varies",
                )
                return None
        return tuple(dims)

    def parse_outputs(self, data: YamlMap, path: str) -> list[OutputSpec]:
        value = data["outputs"]
        outputs: list[OutputSpec] = []
        if isinstance(value, str):  # a single ref
            value = YamlList([value], loc=data.value_loc("outputs"))
            value.item_locs.append(data.value_loc("outputs"))
        if isinstance(value, YamlList):
            for i in range(len(value)):
                if (r := self.ref(value, i, f"{path}[{i}]")) is not None:
                    outputs.append(
                        OutputSpec(r.node if r.output is None else f"{r.node}_{r.output}", r)
                    )
        elif isinstance(value, YamlMap):
            for name in value:
                opath = f"{path}.{name}"
                if not self.name_ok(name, value.key_loc(name), opath, "output"):
                    continue
                if isinstance(value[name], YamlMap):  # {from: ref, classes: [...]}
                    output = self._output_entry(name, value[name], opath)
                    if output is not None:
                        outputs.append(output)
                elif r := self.ref(value, name, opath):
                    outputs.append(OutputSpec(name, r))
        else:
            self.type_error(
                data,
                "outputs",
                path,
                "outputs must be a ref, a list of refs or a mapping name: ref",
                value,
            )
            return outputs
        if not value and isinstance(value, (YamlList, YamlMap)):  # not: every ref was bad
            self.error(
                "missing",
                "outputs is empty",
                data.value_loc("outputs"),
                path,
                "name at least one node",
            )
        return outputs

    def _output_entry(self, name: str, entry: YamlMap, path: str) -> OutputSpec | None:
        """`probs: {from: head, classes: [cat, dog]}`: an output with class names."""
        self.check_keys(entry, OUTPUT_KEYS, path, f"output '{name}'")
        if "from" not in entry:
            self.error(
                "missing",
                f"output '{name}' has no `from`",
                entry.loc,
                f"{path}.from",
                "say which node it is, e.g. `{from: head, classes: [cat, dog]}`",
            )
            return None
        ref = self.ref(entry, "from", f"{path}.from")
        if ref is None:
            return None
        classes = entry.get("classes")
        if classes is not None and not (
            isinstance(classes, YamlList)
            and classes
            and all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in classes)
        ):
            self.type_error(
                entry,
                "classes",
                f"{path}.classes",
                "classes must be a list of names, one per class index",
                classes,
            )
            classes = None
        return OutputSpec(name, ref, [str(c) for c in classes] if classes else None)

    # -- blocks ---------------------------------------------------------
    def parse_block(self, name: str, data: YamlMap, path: str, loc: Location) -> BlockSpec:
        self.check_keys(data, BLOCK_KEYS, path, f"block '{name}'")
        params: dict[str, Any] = {}
        required: set[str] = set()
        raw = data.get("params")
        if isinstance(raw, YamlList):
            for i, pname in enumerate(raw):
                if isinstance(pname, str):
                    required.add(pname)
                else:
                    self.type_error(raw, i, f"{path}.params[{i}]", "a param must be a name", pname)
        elif isinstance(raw, YamlMap):
            for pname, default in raw.items():
                if default is None:
                    required.add(pname)
                else:
                    params[pname] = default
        elif raw is not None:
            self.type_error(
                data,
                "params",
                f"{path}.params",
                "params must be a mapping of defaults or a list of names",
                raw,
            )
        inputs: list[str] = []
        raw_inputs = data.get("inputs")
        if isinstance(raw_inputs, str):
            raw_inputs = [raw_inputs]
        if isinstance(raw_inputs, list) and all(isinstance(i, str) for i in raw_inputs):
            inputs = list(raw_inputs)
        else:
            self.error(
                "missing" if raw_inputs is None else "type",
                f"block '{name}' needs `inputs`: the names its layers use for what the "
                "block is fed",
                data.value_loc("inputs") if "inputs" in data else loc,
                f"{path}.inputs",
                "e.g. `inputs: [x]`",
            )
        layers = data.get("layers")
        if not isinstance(layers, YamlMap):
            self.error(
                "missing" if layers is None else "type",
                f"block '{name}' needs `layers`, a mapping of nodes",
                data.value_loc("layers") if "layers" in data else loc,
                f"{path}.layers",
            )
            layers = YamlMap(loc=loc)
        outputs: list[Ref] = []
        if "outputs" not in data:
            self.error(
                "missing",
                f"block '{name}' has no `outputs`",
                loc,
                f"{path}.outputs",
                "name the node the block returns",
            )
        else:
            outputs = [o.ref for o in self.parse_outputs(data, f"{path}.outputs")]
        return BlockSpec(name, loc, params, required, inputs, layers, outputs)
