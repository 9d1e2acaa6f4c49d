"""Expand `block:` nodes into the layers they stand for."""

from __future__ import annotations

import copy
import re
from typing import Any

from kgraph_cli.errors import Diagnostic, Location, Reporter, Severity
from kgraph_cli.spec.loader import YamlList, YamlMap
from kgraph_cli.spec.model import BlockSpec, ModelSpec, NodeKind, NodeSpec, Ref, Spec
from kgraph_cli.spec.nodes import NodeParser
from kgraph_cli.suggest import closest, did_you_mean

_PARAM = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_BLOCK_DEPTH = 16


def expand_blocks(spec: Spec) -> list[Diagnostic]:
    """Replace every block node of every model by the nodes of its block."""
    diagnostics: list[Diagnostic] = []
    used: set[str] = set()
    for model in spec.models.values():
        expander = _Expander(spec, model, diagnostics)
        model.nodes = expander.expand(model.nodes, depth=0)
        used |= expander.used
    # Blocks of included files are libraries: only the spec's own are reported,
    # and not one that a misspelt block node meant (reported already).
    meant = {m for name in used - set(spec.blocks) for m in closest(name, spec.blocks)}
    for name, block in spec.blocks.items():
        if name not in used | meant and block.loc.file == spec.file:
            diagnostics.append(
                Diagnostic(
                    "unused",
                    f"block '{name}' is defined but no node uses it",
                    block.loc,
                    f"blocks.{name}",
                    f"use it with `{{block: {name}, from: ...}}`, or remove it",
                    Severity.WARNING,
                )
            )
    return diagnostics


class _Expander(Reporter):
    def __init__(self, spec: Spec, model: ModelSpec, diagnostics: list[Diagnostic]):
        super().__init__(diagnostics)
        self.spec = spec
        self.model = model
        self.used: set[str] = set()  # the blocks this model's nodes expand

    def expand(self, nodes: dict[str, NodeSpec], depth: int) -> dict[str, NodeSpec]:
        result: dict[str, NodeSpec] = {}
        for name, node in nodes.items():
            if node.kind is not NodeKind.BLOCK:
                result[name] = node
                continue
            block = self.spec.blocks.get(node.target)
            self.used.add(node.target)
            if depth == 0:  # until it expands: refs to it are not "undefined" too
                self.model.broken.add(name)
            if block is None:
                self.error(
                    "unknown-block",
                    f"unknown block '{node.target}'",
                    node.target_loc,
                    self.model.key_path("layers", name, "block"),
                    did_you_mean(
                        node.target,
                        self.spec.blocks,
                        "define it under `blocks:` or include a file that does",
                    ),
                )
                continue
            if depth >= MAX_BLOCK_DEPTH:
                self.error(
                    "block-cycle",
                    f"block '{block.name}' nests more than {MAX_BLOCK_DEPTH} levels deep",
                    node.target_loc,
                    hint="a block probably uses itself, directly or through another",
                )
                continue
            made = self.instantiate(node, block, depth)
            if made and depth == 0:
                self.model.broken.discard(name)
            for new_name, new_node in made.items():
                if new_name in result or new_name in nodes or new_name in self.model.inputs:
                    self.error(
                        "duplicate-name",
                        f"block node '{name}' makes a node named "
                        f"'{new_name}', which already exists",
                        node.loc,
                        self.model.key_path("layers", name),
                        "rename the block node or the other node",
                    )
                    continue
                result[new_name] = new_node
        return result

    def instantiate(self, node: NodeSpec, block: BlockSpec, depth: int) -> dict[str, NodeSpec]:
        if node.arg_sets is None:  # one `args:` for every repetition
            arg_sets = [self.check_args(node, block, node.block_args, "args")] * node.repeat
        else:
            arg_sets = [
                self.check_args(node, block, args, f"args[{i}]")
                for i, args in enumerate(node.arg_sets)
            ]
        if any(args is None for args in arg_sets):
            return {}
        if node.repeat > 1 and (len(block.inputs) != 1 or len(block.outputs) != 1):
            self.error(
                "block-repeat",
                f"block '{block.name}' has {_count(len(block.inputs), 'input')} and "
                f"{_count(len(block.outputs), 'output')}; `repeat` needs exactly one of each",
                node.loc,
                self.model.key_path("layers", node.name, "repeat"),
                "the output of one repetition feeds the next: drop `repeat` and write "
                "one block node per repetition",
            )
            return {}
        if len(node.inputs) != len(block.inputs):
            self.error(
                "block-inputs",
                f"block '{block.name}' takes {len(block.inputs)} "
                f"input(s) ({', '.join(block.inputs)}), node '{node.name}' gives "
                f"{len(node.inputs)}",
                node.loc,
                self.model.key_path("layers", node.name, "from"),
            )
            return {}
        feeds = dict(zip(block.inputs, node.inputs, strict=True))
        made: dict[str, NodeSpec] = {}
        outputs: list[Ref] = []
        for index in range(1, node.repeat + 1):
            prefix = f"{node.name}_" if node.repeat == 1 else f"{node.name}_{index}_"
            values = {**(arg_sets[index - 1] or {}), "index": index}
            layers = self.substitute(block.layers, values, block)
            parser = NodeParser(block.loc.file)
            inner = parser.parse_nodes(layers, f"blocks.{block.name}.layers", {})
            self.diagnostics.extend(parser.diagnostics)
            inner = self.expand(inner, depth + 1)
            renamed = {name: prefix + name for name in inner}
            renamed.update(self._inner_aliases(inner, prefix))

            def rename(ref: Ref, feeds=feeds, renamed=renamed) -> Ref | None:
                return self._rename(ref, feeds, renamed, block)

            for inner_name, inner_node in inner.items():
                inner_node.name = prefix + inner_name
                inner_node.expanded_from = node.expanded_from or node.name
                inner_node.inputs = [r for ref in inner_node.inputs if (r := rename(ref))]
                if inner_node.kind is NodeKind.SHARE and inner_node.target in renamed:
                    inner_node.target = renamed[inner_node.target]
                made[inner_node.name] = inner_node
            outputs = [r for ref in block.outputs if (r := rename(ref))]
            feeds = {block.inputs[0]: outputs[0]} if outputs and node.repeat > 1 else feeds
        self.model.aliases[node.name] = outputs
        return made

    def _rename(
        self, ref: Ref, feeds: dict[str, Ref], renamed: dict[str, str], block: BlockSpec
    ) -> Ref | None:
        """A ref inside a block instance -> the ref in the model it is expanded into."""
        if ref.node in feeds and ref.output is None:
            return feeds[ref.node]
        if ref.node in renamed:
            return Ref(renamed[ref.node], ref.output, ref.loc)
        self.error(
            "undefined-ref",
            f"block '{block.name}' refers to '{ref}', which is "
            "neither one of its inputs nor one of its layers",
            ref.loc,
            hint=did_you_mean(ref.node, [*block.inputs, *renamed]),
        )
        return None

    def _inner_aliases(self, inner: dict[str, NodeSpec], prefix: str) -> dict[str, str]:
        # Nested block nodes were replaced by their layers; their names live on
        # as aliases, which must be renamed with this instance's prefix.
        renamed = {}
        for alias, refs in list(self.model.aliases.items()):
            if alias in inner or not any(r.node in {n.name for n in inner.values()} for r in refs):
                continue
            renamed[alias] = prefix + alias
            self.model.aliases[prefix + alias] = [
                Ref(prefix + r.node, r.output, r.loc) for r in self.model.aliases.pop(alias)
            ]
        return renamed

    def check_args(
        self, node: NodeSpec, block: BlockSpec, args: Any, where: str
    ) -> dict[str, Any] | None:
        """The block's params filled from `args`, the argument set at key `where`."""
        known = set(block.params) | block.required_params
        ok = True
        misspelt: set[str] = set()  # a misspelt required param is one mistake
        for key in args:
            if key not in known:
                ok = False
                misspelt.update(closest(key, block.required_params - set(args)))
                self.error(
                    "unknown-arg",
                    f"block '{block.name}' has no param '{key}'",
                    args.key_loc(key),
                    self.model.key_path("layers", node.name, where, key),
                    did_you_mean(key, known, "the block takes no params")
                    if known
                    else "the block takes no params",
                )
        for key in sorted(block.required_params - set(args) - misspelt):
            ok = False
            self.error(
                "missing",
                f"block '{block.name}' needs the argument '{key}'",
                args.loc if node.arg_sets is not None else node.loc,
                self.model.key_path("layers", node.name, where),
                f"add `{key}: ...` to its `args`" if args else f"add `args: {{{key}: ...}}`",
            )
        return {**block.params, **args} if ok else None

    def substitute(
        self, value: Any, params: dict[str, Any], block: BlockSpec, loc: Location | None = None
    ) -> Any:
        """A deep copy of `value` with `${param}` replaced, locations kept."""
        if isinstance(value, YamlMap):
            out = YamlMap(loc=value.loc)
            for key, item in value.items():
                out.copy_entry(
                    value, key, self.substitute(item, params, block, value.value_loc(key))
                )
            return out
        if isinstance(value, YamlList):
            out_list = YamlList(loc=value.loc)
            out_list.item_locs = list(value.item_locs)
            for i, item in enumerate(value):
                out_list.append(self.substitute(item, params, block, value.item_loc(i)))
            return out_list
        if isinstance(value, str) and "${" in value:
            return self._fill(value, params, block, loc or block.loc)
        return copy.copy(value)

    def _fill(self, text: str, params: dict[str, Any], block: BlockSpec, loc: Location) -> Any:
        whole = _PARAM.fullmatch(text)
        names = _PARAM.findall(text)
        for name in names:
            if name not in params:
                self.error(
                    "unknown-param",
                    f"block '{block.name}' uses '${{{name}}}' but has no param '{name}'",
                    loc,
                    f"blocks.{block.name}",
                    hint=did_you_mean(name, [*params], "declare it under `params:`"),
                )
                return text
        if whole:
            return copy.deepcopy(params[whole.group(1)])
        return _PARAM.sub(lambda m: str(params[m.group(1)]), text)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
