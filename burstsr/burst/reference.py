"""Choosing the reference frame every other frame is aligned to: the first readable one, the
sharpest (variance of the Laplacian), or a given index."""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np

from burstsr.burst.align import to_gray
from burstsr.errors import InputError
from burstsr.io import Burst, Image

log = logging.getLogger(__name__)


def pick_reference(
    burst: Burst, choice: str, read: Callable[[int], Image | None]
) -> tuple[int, Image]:
    """Pick and decode the reference frame: ``choice`` is ``first``, ``sharpest`` or a 0-based
    frame index (``--reference``); ``read`` decodes a frame (None: unreadable, skipped)."""
    spelled, choice = choice, choice.strip().lower()
    if choice == "first":
        for index in range(len(burst)):
            image = read(index)
            if image is not None:
                return index, image
        raise InputError(f"{burst.paths[0].parent}: none of the frames could be read")
    if choice == "sharpest":
        best, best_sharpness = None, -1.0
        for index in range(len(burst)):
            image = read(index)
            if image is None:
                continue
            value = sharpness(image.pixels)
            if value > best_sharpness:
                best, best_sharpness = (index, image), value
        if best is None:
            raise InputError(f"{burst.paths[0].parent}: none of the frames could be read")
        log.info("reference: %s (sharpest)", burst.paths[best[0]].name)
        return best
    try:
        index = int(choice)
    except ValueError:
        raise InputError(
            f"--reference {spelled}: expected first, sharpest or a frame index"
        ) from None
    if not 0 <= index < len(burst):
        raise InputError(
            f"--reference {index}: the burst has {len(burst)} frames "
            f"(indices 0 to {len(burst) - 1})"
        )
    image = read(index)
    if image is None:
        raise InputError(f"--reference {index}: {burst.paths[index].name} cannot be read")
    return index, image


def sharpness(pixels: np.ndarray) -> float:
    """Variance of the Laplacian of the luma (higher is sharper), on at most ~1 MP."""
    gray = to_gray(pixels)
    while gray.size > 2_000_000:
        gray = cv2.resize(
            gray, (gray.shape[1] // 2, gray.shape[0] // 2), interpolation=cv2.INTER_AREA
        )
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())
