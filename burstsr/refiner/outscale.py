"""Any output size from a fixed-scale model: ``--outscale S`` (times the frames' size) or
``--width W`` (pixels), by resizing the model's output with a good filter (area averaging when
shrinking, which does not alias; Lanczos when enlarging). The model's own size is returned
untouched."""

from __future__ import annotations

import cv2
import numpy as np

from burstsr.errors import InputError

OUTSCALE_RANGE = (0.25, 16.0)


def output_size(
    frames: tuple[int, int], *, outscale: float | None = None, width: int | None = None
) -> tuple[int, int] | None:
    """``(height, width)`` of the output for frames of ``frames`` ``(height, width)``: scaled
    by ``outscale``, or to ``width`` pixels wide (the height in proportion); None for neither.

    Raises:
        InputError: both given, or a size under 8 pixels.
    """
    if outscale is not None and width is not None:
        raise InputError("--outscale and --width: give one of them")
    h, w = frames
    if outscale is not None:
        size = (round(h * outscale), round(w * outscale))
    elif width is not None:
        size = (round(h * width / w), width)
    else:
        return None
    if min(size) < 8:
        option = f"--outscale {outscale:g}" if outscale is not None else f"--width {width}"
        raise InputError(f"{option}: a {size[1]}x{size[0]} output is too small (8 px a side)")
    return size


def resize_to(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``image`` ``(H, W, C)`` resized to ``size`` ``(height, width)``; unchanged when it
    already has that size or ``size`` is None."""
    if size is None or image.shape[:2] == tuple(size):
        return image
    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    filter_ = cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4
    out = cv2.resize(image, (size[1], size[0]), interpolation=filter_)
    return np.clip(out, 0.0, 1.0).reshape(size[0], size[1], *image.shape[2:])


def scale_name(outscale: float | None, width: int | None, scale: int) -> str:
    """The ``_xS`` part of a default output name: the real scale from the frames."""
    if width is not None:
        return f"_{width}px"
    return f"_x{outscale:g}" if outscale is not None else f"_x{scale}"
