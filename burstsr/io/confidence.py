"""A fine-grid merge's confidence map (about how many frames reached each pixel): its encoding
as a generator's input channel, and its file (a 16-bit gray PNG of that encoding)."""

from __future__ import annotations

import os

import numpy as np

from burstsr.io.read import read_image
from burstsr.io.write import write_image

CONFIDENCE_FULL = 16.0  # frames: a confidence of this many or more encodes as 1


def confidence_channel(confidence: np.ndarray) -> np.ndarray:
    """A confidence map ``(H, W)``, in frames, as the generator's 4th input channel:
    ``min(confidence, 16) / 16``, ``float32 (H, W, 1)``."""
    clipped = np.clip(confidence, 0.0, CONFIDENCE_FULL) / CONFIDENCE_FULL
    return clipped.astype(np.float32)[..., None]


class ConfidenceTiles:
    """A confidence map ``(H, W)`` as the generator's input channel, made for each tile it is
    sliced to (``tiles[rows, cols]`` is :func:`confidence_channel` of that part): no
    full-size float copy beside the map (120 MB at 30 MP)."""

    def __init__(self, confidence: np.ndarray) -> None:
        self.confidence = confidence

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        return confidence_channel(self.confidence[key])


def write_confidence(path: str | os.PathLike, confidence: np.ndarray) -> None:
    """Write a confidence map as a 16-bit gray PNG of :func:`confidence_channel` (what
    ``merge --save-confidence`` and ``synth`` write), atomically."""
    write_image(path, confidence_channel(confidence)[..., 0], bit_depth=16)


def read_confidence(path: str | os.PathLike) -> np.ndarray:
    """Read a map written by :func:`write_confidence` -> ``float32 (H, W)``, in frames (capped
    at 16)."""
    return read_image(path).pixels[:, :, 0] * CONFIDENCE_FULL
