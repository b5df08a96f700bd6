"""A decoded image, as every reader returns it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from burstsr.errors import InputError


@dataclass(frozen=True)
class Image:
    """One decoded frame.

    Attributes:
        pixels: ``float32 (H, W, 3)`` RGB in ``[0, 1]``.
        bit_depth: bits per sample in the file (8, 16; 32 for float TIFF).
        gray: the file held a single channel (replicated to RGB in ``pixels``).
        linear: the values are linear light (RAW), not sRGB-encoded.
        grid: for a merge burstsr wrote as PNG, the grid it was merged on (1: the frames' own,
            4: ``--scale 4``); None when the file does not say.
    """

    pixels: np.ndarray
    bit_depth: int
    gray: bool = False
    linear: bool = False
    grid: int | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]


def unit_float(pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 / uint16 samples as float32 in [0, 1] (one pass, no temporary); others as given.
    With ``out`` (a float32 array of their shape) the result is written there, whatever the
    samples' type."""
    if pixels.dtype in (np.uint8, np.uint16):
        scale = np.float32(1 / np.iinfo(pixels.dtype).max)
        return np.multiply(pixels, scale, out=out, dtype=np.float32)
    if out is not None:
        out[...] = pixels
        return out
    return pixels


def to_unit_float(pixels: np.ndarray, path: Path) -> tuple[int, np.ndarray]:
    """Integer or float samples -> ``(bits per sample, float32 in [0, 1])``."""
    if pixels.dtype in (np.uint8, np.uint16):
        return (8 if pixels.dtype == np.uint8 else 16), unit_float(pixels)
    if pixels.dtype in (np.float32, np.float64):
        return 32, np.clip(pixels, 0.0, 1.0).astype(np.float32)
    raise InputError(f"{path}: unsupported sample type {pixels.dtype}; use 8/16-bit or float")
