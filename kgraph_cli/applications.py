"""Building an `application:` node: a keras.applications model (ResNet50...) as
one nested model, its weights (ImageNet's found offline, a file, or none), its
preprocess_input as layers in front of it, frozen or not.

The preprocessing is read off the application's own `preprocess_input` by
probing it: every family's function (caffe, torch and tf modes, or nothing for
the models that preprocess inside) is an affine map of each pixel's channels,
possibly reordered (RGB to BGR). kgraph writes that map as standard Keras
pieces, a channel flip and a Normalization layer with fixed mean and variance,
so a saved model takes raw pixels 0..255 and loads without kgraph.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgraph_cli.spec.applications import applications_catalog, weights_file
from kgraph_cli.spec.model import ApplicationSpec
from kgraph_cli.spec.values import keras_config


class ApplicationFailed(Exception):
    """The application cannot be built as written; `key` is the argument to blame."""

    def __init__(self, code: str, message: str, hint: str, key: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.key = key


@dataclass(frozen=True)
class Preprocessing:
    """preprocess_input as `x[..., order] * scale + offset`, per channel."""

    order: tuple[int, ...] | None  # None: channels stay in place
    scale: np.ndarray
    offset: np.ndarray

    @property
    def identity(self) -> bool:
        return self.order is None and np.allclose(self.scale, 1) and np.allclose(self.offset, 0)


def preprocessing_of(name: str) -> Preprocessing:
    """Probe keras.applications' preprocess_input for application `name`."""
    module = importlib.import_module(applications_catalog()[name]["module"])
    probe = np.array(
        [[0, 0, 0], [100, 0, 0], [0, 100, 0], [0, 0, 100], [37, 142, 251]], dtype="float64"
    )[None, None]
    out = np.asarray(module.preprocess_input(probe.copy()), dtype="float64")[0, 0]
    offset = out[0]
    matrix = (out[1:4] - offset).T / 100.0  # matrix[i, j]: output i from input j
    if not np.allclose(matrix @ probe[0, 0, 4] + offset, out[4], atol=1e-3):
        raise ApplicationFailed(
            "layer-args",
            f"{name}'s preprocess_input is not a per-pixel affine map",
            "set `preprocess: false` and preprocess the data yourself",
            "preprocess",
        )
    order = tuple(int(j) for j in np.argmax(np.abs(matrix), axis=1))
    scale = matrix[np.arange(3), order]
    return Preprocessing(None if order == (0, 1, 2) else order, scale, offset)


def apply_application(
    keras: Any, app: ApplicationSpec, name: str, model: Any, tensor: Any, call_args: dict[str, Any]
) -> Any:
    """Node `name`'s output: preprocessing (unless `preprocess: false`), then
    the application called as one nested model."""
    if app.preprocess:
        tensor = _preprocess(keras, app.name, name, tensor)
    call_args = dict(call_args)
    if app.trainable is False:
        # Keras's transfer-learning guide: a frozen backbone runs in inference
        # mode, and stays so when fine-tuning unfreezes it (its BatchNormalization
        # statistics are not updated by a small dataset).
        call_args.setdefault("training", False)
    return model(tensor, **call_args)


def build_application(
    keras: Any,
    app: ApplicationSpec,
    name: str,
    shape: tuple,
    pretrained: bool,
    data_dir: Path | None,
    told: list[str],
) -> Any:
    """The keras.applications model of node `name` for inputs of `shape`, with
    its weights when `pretrained` (else their checks only), frozen or not;
    what Keras warned about is added to `told`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _construct(keras, app, name, shape, pretrained, data_dir)
    told.extend(dict.fromkeys(str(w.message).strip() for w in caught))
    if app.trainable is not None:
        model.trainable = app.trainable
    return model


def _construct(
    keras: Any,
    app: ApplicationSpec,
    name: str,
    shape: tuple,
    pretrained: bool,
    data_dir: Path | None,
) -> Any:
    from kgraph_cli import keras_cache

    constructor = getattr(keras.applications, app.name)
    kwargs = {k: keras_config(v) for k, v in app.args.items() if k != "weights"}
    kwargs.update(input_shape=shape, name=name)
    weights = app.weights()
    file = weights_file(app)
    try:
        if weights == "imagenet" and pretrained:
            with keras_cache.application_downloads(data_dir):
                return constructor(weights="imagenet", **kwargs)
        if weights == "imagenet":
            # Keras checks what ImageNet weights need (input size, classes)
            # before it fetches them: run those checks, fetch nothing.
            with keras_cache.weights_deferred() as deferred:
                try:
                    constructor(weights="imagenet", **kwargs)
                except deferred:
                    pass
        model = constructor(weights=None, **kwargs)
    except keras_cache.KerasFileMissing as exc:
        raise ApplicationFailed("weights", exc.message, exc.hint, "weights") from exc
    except Exception as exc:  # Keras raises ValueError for shapes, sizes, arguments
        raise ApplicationFailed(
            "layer-args",
            f"{app.name} cannot be built on input {shape}: {_first_line(exc)}",
            f"check the input shape and {app.name}'s arguments",
        ) from exc
    if file is not None and pretrained:
        try:
            model.load_weights(str(file))
        except Exception as exc:  # h5py, shape and layer-count mismatches
            raise ApplicationFailed(
                "weights",
                f"cannot load {file} into {app.name}: {_first_line(exc)}",
                "the file must hold the weights of this application with the same "
                "include_top, classes and input channels (model.save_weights writes one)",
                "weights",
            ) from exc
    return model


def _preprocess(keras: Any, app_name: str, node_name: str, tensor: Any) -> Any:
    from kgraph_cli.keras_graph import producer

    prep = preprocessing_of(app_name)
    if prep.identity:
        return tensor
    channels = tensor.shape[-1]
    if channels != 3 and (prep.order is not None or np.ptp(prep.scale) or np.ptp(prep.offset)):
        raise ApplicationFailed(
            "shape",
            f"{app_name}'s preprocess_input works on 3 colour channels, the input has {channels}",
            "feed RGB images (`color_mode: rgb`), or set `preprocess: false`",
            "preprocess",
        )
    if prep.order is not None:
        tensor = (
            keras.ops.flip(tensor, axis=-1)
            if prep.order == (2, 1, 0)
            else keras.ops.take(tensor, list(prep.order), axis=-1)
        )
        producer(tensor).name = f"{node_name}_channels"
    # y = x * scale + offset  ==  (x - mean) / sqrt(variance)
    scale, offset = prep.scale, prep.offset
    if channels != 3:
        scale, offset = scale[:1], offset[:1]
    norm = keras.layers.Normalization(
        axis=-1,
        mean=(-offset / scale).tolist(),
        variance=(1.0 / scale**2).tolist(),
        name=f"{node_name}_preprocess",
    )
    return norm(tensor)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
