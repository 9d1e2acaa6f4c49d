"""Room for deep graphs where Keras walks them recursively. Pure Python.

Keras maps a functional model's graph with a recursive depth-first walk, one
Python frame per layer of the longest path
(`keras.src.ops.function._build_map_helper`, run by every `keras.Model(...)`,
so by loading, `from_config` and `clone_model` too). Python's default limit
of 1,000 frames stops it at about 970 layers. Fit, predict, evaluate,
`get_config` and saving walk the graph iteratively and need nothing.

`deep_recursion()` raises the limit around such a call, in the calling
thread on purpose: in Python 3.11 a Python-to-Python call uses no C stack
(a 5,000-layer walk passes with `ulimit -s 1024`), so no thread with a larger
stack is needed; and Keras keeps its global state (dtype policy, seeds, name
scopes, custom objects) per thread, which a worker thread would not see.
The limit is raised only as far as the graph needs and only around these
calls: under a high limit, a runaway recursion through C code (a buggy
`__getattr__`) overflows the 8 MB C stack, a crash, before it reaches the limit.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from kgraph_cli.errors import KgraphError

# The most layers on a path from an input to an output that kgraph builds;
# spec/graph.py refuses deeper specs (error[too-deep]). Keras's own cost grows
# faster than the depth (the map above, and TensorFlow's graph optimizer in
# training), so deeper graphs would be impractical anyway.
MAX_DEPTH = 20_000
# Frames beyond the caller's and one per layer: Keras's own calls around its walk.
_KERAS_FRAMES = 500


class ModelTooDeepError(KgraphError):
    """Keras ran out of recursion depth on a model's graph."""

    code = "too-deep"


@contextmanager
def deep_recursion(depth: int = MAX_DEPTH, *, what: str = "the model") -> Iterator[None]:
    """Let Keras walk a graph `depth` layers deep (unknown: the deepest kgraph
    builds); a RecursionError inside becomes a ModelTooDeepError, a message."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, _stack_depth() + depth + _KERAS_FRAMES))
    try:
        yield
    except RecursionError as exc:
        raise ModelTooDeepError(
            f"Keras ran out of recursion depth on {what}: kgraph supports graphs "
            f"up to {MAX_DEPTH:,} layers deep",
            "split the model into nested models (`models:`), whose depths count "
            "separately; if it is not that deep, a layer recurses endlessly "
            "(--debug shows where)",
        ) from exc
    finally:
        sys.setrecursionlimit(previous)


def _stack_depth() -> int:
    """How many frames the calling thread's stack holds."""
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth
