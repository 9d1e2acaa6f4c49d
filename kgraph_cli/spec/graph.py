"""DAG checks on a model's nodes: references, sharing, cycles, reachability,
and the build order. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass, field

from kgraph_cli.deep import MAX_DEPTH
from kgraph_cli.errors import Diagnostic, Location, Severity
from kgraph_cli.spec.model import ModelSpec, NodeKind, NodeSpec, Ref, Spec
from kgraph_cli.suggest import Suggester, did_you_mean, listed


@dataclass
class ModelGraph:
    """A model's nodes in build order, with every ref resolved."""

    model: ModelSpec
    order: list[str] = field(default_factory=list)
    # node -> the inputs/nodes it reads from (after resolving block aliases)
    edges: dict[str, list[Ref]] = field(default_factory=dict)
    # Layers on the longest path from an input to an output (0 with cycles).
    depth: int = 0


def resolve(model: ModelSpec, ref: Ref) -> Ref | None:
    """Follow block aliases to the node a ref stands for; None if undefined."""
    for _ in range(len(model.aliases) + 1):  # aliases chain through nested blocks
        if ref.node in model.inputs or ref.node in model.nodes:
            return ref
        outputs = model.aliases.get(ref.node)
        if outputs is None:
            return None
        if ref.output is None and len(outputs) == 1:
            ref = outputs[0]
        elif isinstance(ref.output, int) and ref.output < len(outputs):
            ref = outputs[ref.output]
        else:
            return None
    return None


def check_model_graph(spec: Spec, model: ModelSpec) -> tuple[ModelGraph, list[Diagnostic]]:
    """Resolve refs and order the nodes of a graph model; report every problem."""
    problems: list[Diagnostic] = []
    graph = ModelGraph(model)
    names = [*model.inputs, *model.nodes, *model.aliases]
    suggest_name = Suggester(names, f"defined names: {listed(names) or 'none'}")

    def lookup(ref: Ref, path: str) -> Ref | None:
        target = resolve(model, ref)
        if target is None and ref.node in model.broken:
            return None  # the node's own error is reported already
        if target is None:
            if ref.node in model.aliases:
                problems.append(
                    Diagnostic(
                        "undefined-ref",
                        f"block node '{ref.node}' has {len(model.aliases[ref.node])} "
                        f"outputs; '{ref}' names none of them",
                        ref.loc,
                        path,
                        f"use {ref.node}.0 .. {ref.node}.{len(model.aliases[ref.node]) - 1}",
                    )
                )
            else:
                what = "node or input" if ref.node not in spec.models else "node (it is a model)"
                problems.append(
                    Diagnostic(
                        "undefined-ref",
                        f"'{ref.node}' is not a {what} of model '{model.name}'",
                        ref.loc,
                        path,
                        suggest_name(ref.node)
                        if ref.node not in spec.models
                        else f"call it with a node `{{model: {ref.node}, from: ...}}`",
                    )
                )
        return target

    share_cycles: set[frozenset[str]] = set()
    for name, node in model.nodes.items():
        graph.edges[name] = [
            r
            for ref in node.inputs
            if (r := lookup(ref, model.key_path("layers", name, "from"))) is not None
        ]
        if node.kind is NodeKind.SHARE:
            _check_share(spec, model, node, problems, share_cycles)
    resolved_outputs = []
    seen_outputs: dict[str, Location] = {}
    for output in model.outputs:
        if output.name in seen_outputs:
            problems.append(
                Diagnostic(
                    "duplicate-name",
                    f"output name '{output.name}' is used twice",
                    output.ref.loc,
                    model.key_path("outputs"),
                    "give each output its own name (outputs: {name: ref})",
                    related=((seen_outputs[output.name], "first use"),),
                )
            )
        seen_outputs[output.name] = output.ref.loc
        if (target := lookup(output.ref, model.key_path("outputs"))) is not None:
            resolved_outputs.append(target)
    graph.order, cycle_problems = _topological_order(model, graph.edges)
    problems += cycle_problems
    if not cycle_problems:
        graph.depth, depth_problems = _depth(model, graph.order, graph.edges)
        problems += depth_problems
    # With broken links or no outputs, "unused" would only echo those errors.
    if not problems and not model.broken and model.outputs:
        problems += _unused(model, graph.edges, resolved_outputs)
    return graph, problems


def _check_share(
    spec: Spec,
    model: ModelSpec,
    node: NodeSpec,
    problems: list[Diagnostic],
    cycles: set[frozenset[str]],
) -> None:
    """Point a `share:` node at the node that owns the layer: a sharer of a
    sharer shares the original. A loop, not recursion: chains can be long."""
    if "." in node.target:
        _check_model_share(spec, model, node, problems)
        return
    chain = [node.name]
    on_chain = {node.name}
    target = node.target
    while True:
        owner = model.nodes.get(target)
        if owner is None:
            problems.append(_unknown_share(spec, model, node, target))
            return
        if owner.kind is not NodeKind.SHARE:
            # Share the original layer, not the sharer; so does every sharer
            # on the way, which keeps a long chain from being walked again.
            for name in chain:
                model.nodes[name].target = target
            return
        if owner.name in on_chain:
            cycle = chain[chain.index(owner.name) :] + [owner.name]
            if frozenset(cycle) not in cycles:  # once, not once per node of it
                cycles.add(frozenset(cycle))
                problems.append(_share_cycle_diagnostic(model, cycle))
            return
        chain.append(owner.name)
        on_chain.add(owner.name)
        target = owner.target


def _check_model_share(
    spec: Spec, model: ModelSpec, node: NodeSpec, problems: list[Diagnostic]
) -> None:
    """`share: seq2seq.decoder`: the layer of a node of another model."""
    model_name, _, owner = node.target.partition(".")
    other = spec.models.get(model_name)
    path = model.key_path("layers", node.name, "share")
    if other is None or other is model:
        problems.append(
            Diagnostic(
                "undefined-ref",
                f"node '{node.name}' shares '{node.target}', but '{model_name}' is "
                + ("this model" if other is model else "not a model of the spec"),
                node.target_loc,
                path,
                f"write `share: {owner}` for a node of this model"
                if other is model
                else did_you_mean(model_name, [m for m in spec.models if m != model.name]),
            )
        )
    elif other.graph is not None:
        problems.append(
            Diagnostic(
                "undefined-ref",
                f"node '{node.name}' shares '{node.target}', but model '{model_name}' is a "
                f"view over '{other.graph}' and has no layers of its own",
                node.target_loc,
                path,
                f"write `share: {other.graph}.{owner}`",
            )
        )
    elif owner not in other.nodes:
        problems.append(
            Diagnostic(
                "undefined-ref",
                f"node '{node.name}' shares '{node.target}', but model '{model_name}' has "
                f"no node '{owner}'",
                node.target_loc,
                path,
                did_you_mean(owner, other.nodes),
            )
        )


def _unknown_share(spec: Spec, model: ModelSpec, node: NodeSpec, target: str) -> Diagnostic:
    owners = [m.name for m in spec.models.values() if m is not model and target in m.nodes]
    if owners:  # the seq2seq inference decoder reusing the training decoder's layers
        return Diagnostic(
            "undefined-ref",
            f"node '{node.name}' shares the layer of '{target}', a node of model '{owners[0]}'",
            node.target_loc,
            model.key_path("layers", node.name, "share"),
            f"name the model too: `share: {owners[0]}.{target}` (or, to reuse a part of "
            f"'{owners[0]}' with its own inputs, a view: `graph: {owners[0]}`)",
        )
    return Diagnostic(
        "undefined-ref",
        f"node '{node.name}' shares the layer of '{target}', which is "
        f"not a node of model '{model.name}'",
        node.target_loc,
        model.key_path("layers", node.name, "share"),
        did_you_mean(target, [n for n in model.nodes if n != node.name]),
    )


def _share_cycle_diagnostic(model: ModelSpec, cycle: list[str]) -> Diagnostic:
    first = model.nodes[cycle[0]]
    return Diagnostic(
        "cycle",
        f"shared layers in a cycle: {' -> '.join(cycle)} (each shares the next's layer; "
        "none has one of its own)",
        first.target_loc,
        model.key_path("layers", first.name, "share"),
        "`share:` must lead to a node with a layer of its own (`type:` or `model:`)",
        related=tuple(
            (model.nodes[name].target_loc, f"'{name}' shares the layer of '{nxt}'")
            for name, nxt in zip(cycle[1:], cycle[2:], strict=False)
        ),
    )


def _topological_order(
    model: ModelSpec, edges: dict[str, list[Ref]]
) -> tuple[list[str], list[Diagnostic]]:
    """Depth-first order; every cycle is reported once, as a path."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    problems: list[Diagnostic] = []
    reported: set[frozenset[str]] = set()

    for root in model.nodes:
        if state.get(root):
            continue
        # Iterative DFS: specs may have tens of thousands of nodes.
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        state[root] = 1
        while stack:
            name, index = stack[-1]
            deps = [r.node for r in edges.get(name, []) if r.node in model.nodes]
            if index < len(deps):
                stack[-1] = (name, index + 1)
                dep = deps[index]
                if state.get(dep) == 1:
                    cycle = path[path.index(dep) :] + [dep]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        problems.append(_cycle_diagnostic(model, cycle))
                elif not state.get(dep):
                    state[dep] = 1
                    stack.append((dep, 0))
                    path.append(dep)
                continue
            stack.pop()
            path.pop()
            state[name] = 2
            order.append(name)
    return order, problems


def _depth(
    model: ModelSpec, order: list[str], edges: dict[str, list[Ref]]
) -> tuple[int, list[Diagnostic]]:
    """The graph's depth in layers; an error at the first node more than
    MAX_DEPTH layers from the inputs (Keras maps graphs recursively, see deep.py)."""
    depth: dict[str, int] = {}  # layers on the longest path ending at a node
    for name in order:  # every node after the nodes it reads from
        depth[name] = 1 + max((depth.get(r.node, 0) for r in edges.get(name, [])), default=0)
        if depth[name] > MAX_DEPTH:
            node = model.nodes[name]
            return depth[name], [
                Diagnostic(
                    "too-deep",
                    f"node '{name}' is {depth[name]:,} layers deep: kgraph builds models "
                    f"up to {MAX_DEPTH:,} layers deep",
                    node.loc,
                    model.key_path("layers", name),
                    "split the model into nested models (`models:`), whose depths count separately",
                )
            ]
    return max(depth.values(), default=0), []


def _cycle_diagnostic(model: ModelSpec, cycle: list[str]) -> Diagnostic:
    # `cycle` runs against the data flow (node -> what it reads); show it with the flow.
    flow = list(reversed(cycle))
    first = model.nodes[flow[0]]
    return Diagnostic(
        "cycle",
        f"cycle: {' -> '.join(flow)}",
        first.loc,
        model.key_path("layers", first.name),
        "a model is a DAG: one of these `from:` references must point elsewhere",
        related=tuple(
            (model.nodes[name].loc, f"'{name}' reads from '{nxt}'")
            for name, nxt in zip(cycle, cycle[1:], strict=False)
        ),
    )


def _unused(model: ModelSpec, edges: dict[str, list[Ref]], outputs: list[Ref]) -> list[Diagnostic]:
    used: set[str] = set()
    frontier = [r.node for r in outputs]
    shared_owners = {n.target for n in model.nodes.values() if n.kind is NodeKind.SHARE}
    while frontier:
        name = frontier.pop()
        if name in used:
            continue
        used.add(name)
        frontier.extend(r.node for r in edges.get(name, []))
    problems = []
    for name, node in model.nodes.items():
        if name in used or node.expanded_from in used:
            continue
        if name in shared_owners and any(
            n.target == name and n.name in used for n in model.nodes.values()
        ):
            continue
        problems.append(
            Diagnostic(
                "unused",
                f"node '{name}' does not lead to any output of model '{model.name}'",
                node.loc,
                model.key_path("layers", name),
                "add it to `outputs`, or remove it",
                Severity.WARNING,
            )
        )
    for name, spec_input in model.inputs.items():
        if name not in used:
            problems.append(
                Diagnostic(
                    "unused",
                    f"input '{name}' is not used by any output of model '{model.name}'",
                    spec_input.loc,
                    model.key_path("inputs", name),
                    "connect it to a node, or remove it",
                    Severity.WARNING,
                )
            )
    return problems


def depends_on_inputs(graph: ModelGraph, refs: list[Ref]) -> set[str]:
    """The model inputs that the given refs are computed from."""
    model = graph.model
    seen: set[str] = set()
    found: set[str] = set()
    frontier = [r.node for r in refs]
    while frontier:
        name = frontier.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in model.inputs:
            found.add(name)
        frontier.extend(r.node for r in graph.edges.get(name, []))
    return found
