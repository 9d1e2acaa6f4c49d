"""`predict --image`: image files to a model's input batch. The files of each
--image path (a file, or a folder's image files), the model's image input (its
size and colour mode), keras.utils.load_img, and the spec's own transforms of
that input (train.data.inputs), applied by the data pipeline as in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgraph_cli.data.pipeline import Arrays, ModelIO, Stats, feed_inputs
from kgraph_cli.data.sources.images import IMAGE_SUFFIXES
from kgraph_cli.errors import KgraphError, Location, UsageError, short_message
from kgraph_cli.keras_graph import producer, shape_text
from kgraph_cli.spec.loader import YamlMap
from kgraph_cli.spec.train import DataSpec, FeedSpec, SourceSpec, TrainSpec
from kgraph_cli.spec.train.keys import COLOR_MODES, DEFAULT_IMAGE_SIZE
from kgraph_cli.tf import import_keras

IMAGE_OPTION = "--image"
# An image input's channels -> keras.utils.load_img's color_mode.
CHANNEL_MODES = {channels: mode for mode, (_, channels) in COLOR_MODES.items()}


class ImageFileError(KgraphError):
    """An image file that cannot be read (not an image, truncated)."""

    code = "data"


@dataclass(frozen=True)
class ImageInput:
    """The model input images go to, and how to load them for it."""

    name: str
    size: tuple[int, int]  # (height, width)
    color_mode: str  # grayscale, rgb, rgba


def image_files(paths: list[Path]) -> list[Path]:
    """The files of each --image path, in order: a file itself, or a folder's
    image files (sorted by name, not recursive)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            if not found:
                raise UsageError(
                    f"{IMAGE_OPTION} folder '{path}' holds no image files",
                    f"image files end with {', '.join(IMAGE_SUFFIXES)} (sub-folders are not read)",
                )
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{IMAGE_OPTION} '{path}' does not exist")
    if not files:
        raise UsageError(f"{IMAGE_OPTION} needs at least one image file or folder")
    return files


def image_input(model: Any, train: TrainSpec) -> ImageInput:
    """The model's one image input: (height, width, channels), its size and
    colour mode; a model trained on an `images:` source may take them from the
    source (image_size, color_mode) and reshape them with its transforms."""
    names = [producer(t).name for t in model.inputs]
    if len(names) != 1:
        raise UsageError(
            f"{IMAGE_OPTION} needs a model with one image input; '{model.name}' has "
            f"{len(names)} inputs ({', '.join(names)})",
            "feed several inputs from a data file: --data FILE.npz",
        )
    name, shape = names[0], tuple(model.inputs[0].shape[1:])
    source = _images_source(train)
    if len(shape) == 3:
        height, width, channels = shape
        mode = CHANNEL_MODES.get(channels)  # type: ignore[arg-type]
        if mode is None:
            raise UsageError(
                f"input '{name}' {shape_text((None, *shape))} takes {channels} channels; "
                "images have 1 (grayscale), 3 (rgb) or 4 (rgba)",
                "pass the data as a file instead: --data FILE.npz",
            )
        if height is None or width is None:
            if source is None:
                raise UsageError(
                    f"input '{name}' {shape_text((None, *shape))} takes images of any "
                    f"size: {IMAGE_OPTION} does not know which size to load them at",
                    "give the input a fixed size (e.g. shape: [224, 224, 3]), or train "
                    "it on an `images:` source with an image_size",
                )
            height, width = source.options.get("image_size", DEFAULT_IMAGE_SIZE)
        return ImageInput(name, (int(height), int(width)), mode)
    if source is not None:  # the spec's transforms make the images fit (reshape...)
        height, width = source.options.get("image_size", DEFAULT_IMAGE_SIZE)
        return ImageInput(name, (int(height), int(width)), source.options.get("color_mode", "rgb"))
    raise UsageError(
        f"{IMAGE_OPTION} needs a model whose input takes images (height, width, "
        f"channels); input '{name}' of '{model.name}' is {shape_text((None, *shape))}",
        "predict on a data file instead (--data FILE.npz), or train the model on an "
        "`images:` source, whose image_size and transforms --image then follows",
    )


def image_inputs(
    model: Any,
    train: TrainSpec,
    files: list[Path],
    training_stats: Callable[[], Stats],
) -> Arrays:
    """The model's inputs for `files`: loaded at the image input's size and colour
    mode (float32 pixel values 0..255), then the spec's transforms of that
    input. `training_stats` gives the training split's statistics, read only
    for a `standardize` transform."""
    image = image_input(model, train)
    pixels = load_images(files, image)
    feed = train.data.inputs.get(image.name) if train.data is not None else None
    if feed is None:  # no spec, or no data section: the pixels as they are
        loc = Location(IMAGE_OPTION)
        feed = FeedSpec(image.name, ["x"], False, [], loc, IMAGE_OPTION)
    if feed.stacked:
        raise UsageError(
            f"input '{image.name}' is fed by several columns ({', '.join(feed.fields)}), "
            "not by images",
            "pass the data as a file instead: --data FILE.csv",
        )
    stats = training_stats() if any(t.name == "standardize" for t in feed.transforms) else {}
    loc = feed.loc
    source = (
        train.data.source
        if train.data is not None
        else SourceSpec("images", YamlMap(loc=loc), loc, IMAGE_OPTION)
    )
    only = DataSpec(source, {image.name: feed}, {}, loc)
    return feed_inputs(
        only, ModelIO.of(model, train), {feed.fields[0]: pixels}, IMAGE_OPTION, stats
    )


def load_images(files: list[Path], image: ImageInput) -> np.ndarray:
    """(samples, height, width, channels) float32 pixel values 0..255, each file
    resized (bilinear, as an `images:` source reads them) to the input's size."""
    keras = import_keras()
    from PIL import Image, UnidentifiedImageError

    unreadable = (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError)
    height, width = image.size
    batch = np.empty((len(files), height, width, COLOR_MODES[image.color_mode][1]), np.float32)
    for i, file in enumerate(files):
        try:
            loaded = keras.utils.load_img(
                file,
                color_mode=image.color_mode,
                target_size=(height, width),
                interpolation="bilinear",
            )
            if image.color_mode == "grayscale" and loaded.mode != "L":
                loaded = loaded.convert("L")  # 16-bit greys: 0..255, as training reads them
            batch[i] = keras.utils.img_to_array(loaded, dtype="float32").reshape(batch.shape[1:])
        except (*unreadable, SyntaxError) as exc:
            why = (
                "not an image format Pillow reads"
                if isinstance(exc, UnidentifiedImageError)
                else short_message(exc, 160)
            )
            raise ImageFileError(
                f"cannot read image '{file}' ({why})",
                "the file is not an image or is truncated: remove or replace it",
            ) from None
    return batch


def _images_source(train: TrainSpec) -> SourceSpec | None:
    source = train.data.source if train.data is not None else None
    return source if source is not None and source.kind == "images" else None
