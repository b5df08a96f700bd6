"""Crop figures of the benchmarks: where to crop, and panels side by side."""

from __future__ import annotations

import numpy as np


def busiest(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` square with the most gradient energy (a detailed area)."""
    gray = image.mean(axis=2)
    energy = np.zeros_like(gray)
    energy[:, 1:] += np.diff(gray, axis=1) ** 2
    energy[1:, :] += np.diff(gray, axis=0) ** 2
    sums = np.pad(energy, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    window = sums[size:, size:] - sums[:-size, size:] - sums[size:, :-size] + sums[:-size, :-size]
    y, x = np.unravel_index(np.argmax(window), window.shape)
    return int(y), int(x)


def row(panels: list[np.ndarray], zoom: int = 1) -> np.ndarray:
    """``panels`` side by side (``zoom`` x nearest), 6 white pixels apart."""
    tiles = [np.repeat(np.repeat(p, zoom, 0), zoom, 1) for p in panels]
    gap = np.ones((tiles[0].shape[0], 6, 3), np.float32)
    return np.hstack([t if i == 0 else np.hstack([gap, t]) for i, t in enumerate(tiles)])
