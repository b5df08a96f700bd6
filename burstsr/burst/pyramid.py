"""Gray images and 2x pyramids for alignment, and moving transforms between pyramid levels.

Level ``l`` is the gray image box-filtered and halved ``l`` times; its pixel ``x_l`` covers
level-0 pixels centred at ``2**l * x_l + (2**l - 1) / 2``.
"""

from __future__ import annotations

import cv2
import numpy as np

from burstsr.io.image import unit_float


def to_gray(pixels: np.ndarray, *, linear: bool = False) -> np.ndarray:
    """Rec. 709 luma of an RGB image, float32 (H, W) in [0, 1]. Linear input is gamma-encoded
    first so that alignment sees shadows and highlights in proportion, as on a display.
    uint8 / uint16 input is converted in its own type (the luma rounded to a sample step or,
    for 16 bits, a few: far below any frame's noise), without a float copy of the whole image."""
    if pixels.dtype in (np.uint8, np.uint16):
        if pixels.ndim == 3:
            pixels = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
        gray = unit_float(pixels)
    elif pixels.ndim == 2:
        gray = pixels.astype(np.float32, copy=False)
    else:
        gray = cv2.cvtColor(np.ascontiguousarray(pixels, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    if linear:
        gray = np.power(np.maximum(gray, 0.0), 1 / 2.2, dtype=np.float32)
    return gray


def build_pyramid(gray: np.ndarray, *, coarsest_side: int = 128) -> list[np.ndarray]:
    """2x box-filter pyramid, finest first, down to a level whose longer side is at most
    ``coarsest_side`` (or whose shorter side would drop below 16 px).

    Level ``l`` pixel ``x_l`` covers level-0 pixels centred at ``2**l * x_l + (2**l - 1) / 2``.
    """
    levels = [np.ascontiguousarray(gray, dtype=np.float32)]
    while max(levels[-1].shape) > coarsest_side and min(levels[-1].shape) >= 32:
        h, w = levels[-1].shape
        levels.append(
            cv2.resize(
                levels[-1][: h // 2 * 2, : w // 2 * 2],
                (w // 2, h // 2),
                interpolation=cv2.INTER_AREA,
            )
        )
    return levels


def level_to_full(transform: np.ndarray, level: int) -> np.ndarray:
    """Express a level-``level`` transform in level-0 pixel coordinates."""
    s = float(2**level)
    scale = np.array([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1]])
    return scale @ transform @ np.linalg.inv(scale)


def full_to_level(transform: np.ndarray, level: int) -> np.ndarray:
    """Express a level-0 transform in level-``level`` pixel coordinates."""
    s = float(2**level)
    scale = np.array([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1]])
    return np.linalg.inv(scale) @ transform @ scale


def finest_level(pyramid: list[np.ndarray], max_pixels: int) -> int:
    """The finest level with at most ``max_pixels`` pixels (the coarsest if none has)."""
    for level, img in enumerate(pyramid):
        if img.size <= max_pixels:
            return level
    return len(pyramid) - 1
