"""Expand `block:` nodes into the layers they stand for.

A block node is instantiated once per repetition: the block's layers are
copied with the arguments filled in, parsed, and put into the model under
their final names (`<node>_<layer>`, `<node>_<i>_<layer>` when repeated) in
one pass, nested block nodes expanding in place. A block node's name lives
on as an alias of its block's outputs (`ModelSpec.aliases`, followed by
`graph.resolve`). Every node made is parsed, renamed and stored once and
every ref rewritten once, so the work is linear in the nodes made.

Before a block node expands, the nodes it would make are counted from its
block and the blocks that one uses (`repeat:` as written): a spec is refused
at once, not after minutes, when expanding it would pass MAX_EXPANDED_NODES.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from kgraph_cli.errors import Diagnostic, Location, Reporter, Severity
from kgraph_cli.spec.fields import positive_int
from kgraph_cli.spec.loader import YamlList, YamlMap
from kgraph_cli.spec.model import BlockSpec, ModelSpec, NodeKind, NodeSpec, Ref, Spec
from kgraph_cli.spec.nodes import NodeParser
from kgraph_cli.suggest import closest, did_you_mean

_PARAM = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Blocks nest at most this deep (a block using itself through `${...}` args stops here).
MAX_BLOCK_DEPTH = 16
# The most nodes a spec holds once its blocks are expanded: every model's
# nodes, written and made (a block instance that makes no node counts as one).
# Above the deepest graph kgraph builds (deep.MAX_DEPTH, 20,000 layers) with
# room for wide ones; Keras needs minutes to build a model of this size.
MAX_EXPANDED_NODES = 100_000


def expand_blocks(spec: Spec) -> list[Diagnostic]:
    """Replace every block node of every model by the nodes of its block."""
    diagnostics: list[Diagnostic] = []
    used: set[str] = set()
    written = sum(
        node.kind is not NodeKind.BLOCK
        for model in spec.models.values()
        for node in model.nodes.values()
    )
    budget = _Budget(spec.blocks, written)
    for model in spec.models.values():
        expander = _Expander(spec, model, budget, diagnostics)
        expander.expand_model()
        used |= expander.used
    used |= budget.counted  # and those of a block node refused as too large
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


class _Budget:
    """The nodes the spec holds as its blocks expand, against MAX_EXPANDED_NODES,
    and the nodes one instance of each block makes: counted from the blocks as
    written, so a lower bound where `${param}`s choose a repeat or a block (the
    nested block nodes are checked again when they expand)."""

    def __init__(self, blocks: dict[str, BlockSpec], nodes: int):
        self.blocks = blocks
        self.nodes = nodes  # in the spec so far: the written ones, and those made
        self._sizes: dict[tuple[str, int], int] = {}
        self._path: set[str] = set()  # the blocks being counted: a cycle counts nothing
        self.counted: set[str] = set()  # every block counted (so used) so far

    def use(self, node: NodeSpec, depth: int) -> int:
        """The nodes block node `node`, at nesting depth `depth`, would make."""
        return node.repeat * self.size(node.target, depth)

    def size(self, name: str, depth: int) -> int:
        """The nodes one instance of block `name`, used at `depth`, makes."""
        key = (name, depth)
        if key in self._sizes:
            return self._sizes[key]
        block = self.blocks.get(name)
        if block is None or name in self._path:
            return 0  # an error, reported when it expands
        self.counted.add(name)
        self._path.add(name)
        total = 0
        for body in block.layers.values():
            target = body.get("block") if isinstance(body, YamlMap) else None
            if not isinstance(target, str):
                total += 1
            elif depth + 1 < MAX_BLOCK_DEPTH:
                total += _written_repeat(body) * self.size(target, depth + 1)
        self._path.discard(name)
        self._sizes[key] = max(total, 1)
        return self._sizes[key]


def _written_repeat(body: YamlMap) -> int:
    """How often a block node as written repeats its block (1 when `${...}` says)."""
    args = body.get("args")
    if isinstance(args, YamlList) and args:
        return len(args)
    repeat = body.get("repeat", 1)
    return repeat if positive_int(repeat) else 1


class _TooLarge(Exception):
    """A block node would take the spec past MAX_EXPANDED_NODES."""

    def __init__(self, node: NodeSpec, needed: int, depth: int, where: Location):
        super().__init__(node.name)
        self.node, self.needed, self.depth, self.where = node, needed, depth, where


@dataclass
class _Scope:
    """One instance of a block: how the refs written in it read in the model."""

    block: BlockSpec
    prefix: str  # of the names it makes: "stage1_2_"
    feeds: dict[str, Ref | None]  # its inputs -> what they stand for (None: broken)
    names: set[str]  # the block's layers as written
    parent: _Scope | None  # the instance it is part of (None: the model)

    def share_target(self, target: str) -> str:
        """A `share:` target: a layer of this instance or of one it is part
        of, innermost first; else a node of the model, as written."""
        scope: _Scope | None = self
        while scope is not None:
            if target in scope.names:
                return scope.prefix + target
            scope = scope.parent
        return target


def _repeat_loc(node: NodeSpec, body: YamlMap | None) -> Location:
    """Where block node `node`, written as `body`, says how often it repeats
    (else the node)."""
    if body is not None and node.repeat > 1:
        for key in ("repeat", "args"):
            if key in body:
                return body.value_loc(key)
    return node.loc


class _Expander(Reporter):
    """Expands the block nodes of one model, each in one pass."""

    def __init__(
        self, spec: Spec, model: ModelSpec, budget: _Budget, diagnostics: list[Diagnostic]
    ):
        super().__init__(diagnostics)
        self.spec = spec
        self.model = model
        self.budget = budget
        self.used: set[str] = set()  # the blocks this model's nodes expand
        self.written = model.nodes  # the model's nodes as parsed
        self.nodes: dict[str, NodeSpec] = {}  # the model's nodes, expanded so far
        # What the block node being expanded (`top`) makes, kept apart until it
        # is complete: its nodes, the aliases of its nested block nodes, and
        # the names of its nodes that could not be parsed or expanded.
        self.top: NodeSpec | None = None
        self.made: dict[str, NodeSpec] = {}
        self.aliases: dict[str, list[Ref]] = {}
        self.broken: set[str] = set()
        # The blocks being instantiated, outermost first, each with whether
        # the node that uses it names it as written (not through `${...}`).
        self.stack: list[tuple[str, bool]] = []

    def expand_model(self) -> None:
        model = self.model
        for name, node in self.written.items():
            if node.kind is not NodeKind.BLOCK:
                self.nodes[name] = node
                continue
            model.broken.add(name)  # until it expands: refs to it are not "undefined" too
            self.top, self.made, self.aliases, self.broken = node, {}, {}, set()
            start = self.budget.nodes
            try:
                outputs = self.expand_node(node, None, 0, self._written_body(node), literal=True)
            except _TooLarge as too_large:
                self._too_large(too_large, start)
                self.budget.nodes = start  # nothing of it is kept
                continue
            self.nodes.update(self.made)
            model.aliases.update(self.aliases)
            model.broken |= self.broken
            if outputs is not None:
                model.aliases[name] = outputs
                model.broken.discard(name)
        model.nodes = self.nodes

    def expand_node(
        self, node: NodeSpec, scope: _Scope | None, depth: int, body: YamlMap | None, literal: bool
    ) -> list[Ref] | None:
        """Expand block node `node`, written in the block instance `scope` (None:
        in the model) as `body`; its outputs in the model, or None (reported)."""
        self.used.add(node.target)
        block = self.spec.blocks.get(node.target)
        if block is None:
            self.error(
                "unknown-block",
                f"unknown block '{node.target}'",
                node.target_loc,
                self._path(scope, node, "block"),
                did_you_mean(
                    node.target,
                    self.spec.blocks,
                    "define it under `blocks:` or include a file that does",
                ),
            )
            return None
        if cycle := self._cycle(node.target, literal):
            self.error(
                "block-cycle",
                f"block '{node.target}' uses itself: {' -> '.join(cycle)}",
                node.target_loc,
                self._path(scope, node, "block"),
                "a block cannot contain itself, directly or through other blocks: "
                "its expansion would never end",
            )
            return None
        if depth >= MAX_BLOCK_DEPTH:
            self.error(
                "block-cycle",
                f"block '{block.name}' nests more than {MAX_BLOCK_DEPTH} levels deep",
                node.target_loc,
                self._path(scope, node, "block"),
                f"blocks nest at most {MAX_BLOCK_DEPTH} levels; a block that names the "
                "block it uses with `${...}` may be given itself",
            )
            return None
        needed = self.budget.use(node, depth)
        if self.budget.nodes + needed > MAX_EXPANDED_NODES:  # before making any of them
            raise _TooLarge(node, needed, depth, _repeat_loc(node, body))
        self.stack.append((block.name, literal))
        try:
            return self.instantiate(node, block, scope, depth)
        finally:
            self.stack.pop()

    def _cycle(self, target: str, literal: bool) -> list[str]:
        """The blocks from `target` back to it, when the node about to use
        `target` is inside an instance of it and every block on the way is named
        as written: a cycle that no argument can end (else [])."""
        if not literal:
            return []
        for i in range(len(self.stack) - 1, -1, -1):
            if not (self.stack[i][0] == target or self.stack[i][1]):
                return []  # a `${...}` block on the way: the depth limit decides
            if self.stack[i][0] == target:
                return [name for name, _ in self.stack[i:]] + [target]
        return []

    def instantiate(
        self, node: NodeSpec, block: BlockSpec, scope: _Scope | None, depth: int
    ) -> list[Ref] | None:
        if node.arg_sets is None:  # one `args:` for every repetition
            arg_sets = [self.check_args(node, block, node.block_args, "args")] * node.repeat
        else:
            arg_sets = [
                self.check_args(node, block, args, f"args[{i}]")
                for i, args in enumerate(node.arg_sets)
            ]
        if any(args is None for args in arg_sets):
            return None
        if node.repeat > 1 and (len(block.inputs) != 1 or len(block.outputs) != 1):
            self.error(
                "block-repeat",
                f"block '{block.name}' has {_count(len(block.inputs), 'input')} and "
                f"{_count(len(block.outputs), 'output')}; `repeat` needs exactly one of each",
                node.loc,
                self._path(scope, node, "repeat"),
                "the output of one repetition feeds the next: drop `repeat` and write "
                "one block node per repetition",
            )
            return None
        if len(node.inputs) != len(block.inputs):
            self.error(
                "block-inputs",
                f"block '{block.name}' takes {len(block.inputs)} "
                f"input(s) ({', '.join(block.inputs)}), node '{node.name}' gives "
                f"{len(node.inputs)}",
                node.loc,
                self._path(scope, node, "from"),
            )
            return None
        feeds = {
            name: self._rename(scope, ref)
            for name, ref in zip(block.inputs, node.inputs, strict=True)
        }
        outer = scope.prefix if scope is not None else ""
        outputs: list[Ref] = []
        for index in range(1, node.repeat + 1):
            prefix = f"{outer}{node.name}_" if node.repeat == 1 else f"{outer}{node.name}_{index}_"
            values = {**(arg_sets[index - 1] or {}), "index": index}
            layers = self.substitute(block.layers, values, block)
            parser = NodeParser(block.loc.file, self.diagnostics)
            inner = parser.parse_nodes(layers, f"blocks.{block.name}.layers", {})
            here = _Scope(block, prefix, feeds, set(layers), scope)
            self.broken.update(prefix + name for name in layers if name not in inner)
            before = self.budget.nodes
            for name, inner_node in inner.items():
                if inner_node.kind is not NodeKind.BLOCK:
                    self._place(inner_node, here)
                    continue
                literal = "${" not in str(block.layers[name].get("block"))
                made = self.expand_node(inner_node, here, depth + 1, layers[name], literal)
                if made is None:
                    self.broken.add(prefix + name)
                else:
                    self._add(prefix + name, self.aliases, made)
            if self.budget.nodes == before:  # an instance that makes no node counts as one
                self.budget.nodes += 1
            outputs = [r for ref in block.outputs if (r := self._rename(here, ref)) is not None]
            if len(outputs) < len(block.outputs) or any(self._is_broken(r) for r in outputs):
                return None  # the next repetitions would only say it again
            feeds = {block.inputs[0]: outputs[0]} if node.repeat > 1 else feeds
        return outputs

    def _place(self, node: NodeSpec, scope: _Scope) -> None:
        """Put a node of a block instance into the model, its refs renamed."""
        node.name = scope.prefix + node.name
        assert self.top is not None
        node.expanded_from = self.top.name
        node.inputs = [r for ref in node.inputs if (r := self._rename(scope, ref)) is not None]
        if node.kind is NodeKind.SHARE:
            node.target = scope.share_target(node.target)
        self.budget.nodes += 1
        self._add(node.name, self.made, node)

    def _add(self, name: str, into: dict[str, Any], value: Any) -> None:
        """A node (or a nested block node's alias) that `top` makes, unless the
        name is taken."""
        model = self.model
        taken = (self.made, self.aliases, self.nodes, self.written, model.inputs, model.aliases)
        if any(name in names for names in taken):
            assert self.top is not None
            self.error(
                "duplicate-name",
                f"block node '{self.top.name}' makes a node named '{name}', which already exists",
                self.top.loc,
                self.model.key_path("layers", self.top.name),
                "rename the block node or the other node",
            )
            self.broken.add(name)  # refs to it would not mean the other node
            return
        into[name] = value

    def _rename(self, scope: _Scope | None, ref: Ref) -> Ref | None:
        """A ref written in a block instance -> the ref in the model; None when
        it names nothing of the block (reported) or an input that does not."""
        if scope is None:  # written in the model: its names are the model's
            return ref
        if ref.node in scope.feeds and ref.output is None:
            return scope.feeds[ref.node]
        if ref.node in scope.names:
            return Ref(scope.prefix + ref.node, ref.output, ref.loc)
        self.error(
            "undefined-ref",
            f"block '{scope.block.name}' refers to '{ref}', which is "
            "neither one of its inputs nor one of its layers",
            ref.loc,
            hint=did_you_mean(ref.node, [*scope.block.inputs, *scope.names]),
        )
        return None

    def _is_broken(self, ref: Ref) -> bool:
        return ref.node in self.broken or ref.node in self.model.broken

    def _path(self, scope: _Scope | None, node: NodeSpec, *keys: str) -> str:
        if scope is None:
            return self.model.key_path("layers", node.name, *keys)
        return ".".join(("blocks", scope.block.name, "layers", node.name, *keys))

    def _written_body(self, node: NodeSpec) -> YamlMap | None:
        """A node of the model as written in the spec's own file (an included
        file's YAML is not kept), for the locations of its keys."""
        value: Any = self.spec.data if node.loc.file == self.spec.file else None
        for key in self.model.key_path("layers", node.name).split("."):
            value = value.get(key) if isinstance(value, YamlMap) else None
        return value if isinstance(value, YamlMap) else None

    def _too_large(self, too_large: _TooLarge, others: int) -> None:
        """Report the block node `top` that would take the spec past the limit,
        at its `repeat:` (or itself), with the nested block node that found it."""
        top, node = self.top, too_large.node
        assert top is not None
        if too_large.depth == 0:
            makes = too_large.needed
            what = (
                f"{top.repeat:,} repetitions of block '{top.target}', "
                f"{_count(makes // top.repeat, 'node')} each"
                if top.repeat > 1
                else f"block '{top.target}' and the blocks it uses"
            )
            total = f"{makes:,} nodes ({what})"
            where, related = too_large.where, ()
        else:  # a `${param}` decided a nested repeat or block: counted as it expanded
            makes = self.budget.nodes - others + too_large.needed
            total = f"at least {makes:,} nodes"
            where = _repeat_loc(top, self._written_body(top))
            related = (
                (
                    too_large.where,
                    f"block node '{node.name}' here would make {too_large.needed:,} of them "
                    f"({_count(node.repeat, 'repetition')} of block '{node.target}')",
                ),
            )
        if makes <= MAX_EXPANDED_NODES:
            total += f", and the spec has {others:,} others"
        self.error(
            "too-many-nodes",
            f"block node '{top.name}' would expand to {total}: a spec may expand to at "
            f"most {MAX_EXPANDED_NODES:,} nodes",
            where,
            self.model.key_path("layers", top.name, "repeat" if top.repeat > 1 else ""),
            "lower `repeat`, or the repeats and nesting of the blocks it uses (the limit is fixed)",
            related,
        )

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
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
