"""The one door to TensorFlow: quiet import, and a clear error when it is absent."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType

from kgraph_cli.errors import MissingDependencyError

_debug = False


def quiet_tensorflow(debug: bool) -> None:
    """Silence TensorFlow's C++ and Python logging unless debugging.

    Must run before TensorFlow is imported: the C++ side reads these
    variables once, at import time.
    """
    global _debug
    _debug = debug
    if debug:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"keras(\.|$)")


def debug_enabled() -> bool:
    return _debug


def import_keras() -> ModuleType:
    """Import Keras (TensorFlow backend) or explain how to install it."""
    quiet_tensorflow(_debug)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        with _stderr_silenced(not _debug):
            import keras
    except ImportError as exc:
        raise MissingDependencyError(
            f"TensorFlow/Keras is not installed ({exc.msg})",
            hint="install kgraph with a TensorFlow extra: pip install 'kgraph[cpu]' "
            "(or [gpu] for NVIDIA GPUs)",
        ) from None
    if not _debug:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    return keras


def set_op_determinism(enabled: bool) -> None:
    """TensorFlow's deterministic ops on or off, process-wide (a seeded run
    turns them on; a run without a seed after it must not inherit them: Keras
    does not compile deterministic ops with XLA)."""
    import tensorflow as tf

    if enabled:
        tf.config.experimental.enable_op_determinism()
        return
    # Only enabling is in tf.config's public API.
    from tensorflow.python.framework import config

    if config.is_op_determinism_enabled():
        config.disable_op_determinism()


def op_determinism_enabled() -> bool:
    from tensorflow.python.framework import config

    return bool(config.is_op_determinism_enabled())


@contextlib.contextmanager
def _stderr_silenced(active: bool) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for a while.

    TensorFlow 2.21's C++ side logs through absl before it reads
    TF_CPP_MIN_LOG_LEVEL ("oneDNN custom operations are on..."), so only
    the descriptor itself can keep those lines off the user's terminal.
    """
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
