"""`{images: DIR}` sources: one sub-folder of images per class, read with Pillow
(imported when reading) into uint8 arrays of one size and colour mode."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kgraph_cli.data.sources.base import (
    DataFileError,
    Source,
    SourceData,
    check_size,
    error_text,
)
from kgraph_cli.spec.train.keys import COLOR_MODES, DEFAULT_IMAGE_SIZE
from kgraph_cli.suggest import listed

# What counts as an image file (also for `kgraph predict --image FOLDER`).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def read_images(src: Source) -> SourceData:
    """Every image under the class sub-folders (sorted: class index = position)."""
    root = src.existing(src.options["images"], key="images", what="images folder", directory=True)
    height, width = src.options.get("image_size", DEFAULT_IMAGE_SIZE)
    mode = src.options.get("color_mode", "rgb")
    pil_mode, channels = COLOR_MODES[mode]
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        loose = any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir())
        src.fail(
            f"{root} has no class sub-folders",
            "put the images of each class in a sub-folder named after it "
            "(e.g. cats/1.jpg, dogs/2.jpg)"
            + ("; images directly in the folder are ignored" if loose else ""),
            key="images",
        )
    files: list[tuple[Path, int]] = []
    for index, name in enumerate(classes):
        for folder, dirs, names in os.walk(root / name):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in sorted(names):
                if Path(file).suffix.lower() in IMAGE_SUFFIXES and not file.startswith("."):
                    files.append((Path(folder) / file, index))
    if not files:
        src.fail(
            f"the class sub-folders of {root} hold no images",
            f"image files end with {', '.join(IMAGE_SUFFIXES)}",
            key="images",
        )
    try:
        check_size(
            len(files) * height * width * channels,
            f"{len(files):,} image{'s' * (len(files) != 1)} of {height}x{width}x{channels}"
            " bytes when read",
        )
    except DataFileError as exc:
        src.fail(f"{root} {exc}", exc.hint, key="images")
    from PIL import Image, UnidentifiedImageError

    x = np.empty((len(files), height, width, channels), dtype=np.uint8)
    y = np.empty(len(files), dtype=np.int32)
    for i, (file, label) in enumerate(files):
        try:
            with Image.open(file) as image:
                image.seek(0)  # the first frame of an animated GIF
                converted = image.convert(pil_mode)
                if converted.size != (width, height):
                    converted = converted.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(converted, dtype=np.uint8)
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            OSError,
            ValueError,
            SyntaxError,
        ) as exc:
            src.fail(
                f"cannot read image {file} ({error_text(exc)})",
                "the file is not an image or is truncated: remove or replace it",
                key="images",
            )
        x[i] = pixels.reshape(height, width, channels)
        y[i] = label
    splits = {"train": {"x": x, "y": y}}
    shown = listed(classes, 20)
    return SourceData(
        splits,
        f"images from {root} ({len(files):,} images of {height}x{width} {mode}, "
        f"{len(classes)} classes: {shown})",
        classes={"y": classes},
    )
