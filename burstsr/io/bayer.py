"""RAW files as the sensor measured them: the colour-filter mosaic, before any demosaicing.

``read_bayer`` gives the Bayer-domain merge (:mod:`burstsr.burst.bayer`) what it needs from a
RAW file, through rawpy (LibRaw): the visible mosaic with the black level taken off and scaled by
the white level, the 2x2 colour layout, the as-shot white balance and the matrix from camera RGB
to linear sRGB, so that the merge can do what a raw converter does, once, after merging.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from burstsr.errors import InputError
from burstsr.io.raw import open_raw


@dataclass(frozen=True)
class BayerFrame:
    """One RAW frame's mosaic and colour metadata.

    Attributes:
        cfa: ``float32 (H, W)``: (counts - black) / (white - black), not white-balanced; values
            can fall a little under 0 (read noise around the black level).
        pattern: ``uint8 (2, 2)``: the colour (0 red, 1 green, 2 blue) of the top-left 2x2 cell,
            which repeats over the mosaic.
        gains: ``float32 (3,)`` white-balance multipliers (green 1), from the as-shot balance.
        rgb_cam: ``float32 (3, 3)`` white-balanced camera RGB -> linear sRGB.
    """

    cfa: np.ndarray
    pattern: np.ndarray
    gains: np.ndarray
    rgb_cam: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.cfa.shape[0], self.cfa.shape[1]

    def colors(self) -> np.ndarray:
        """``uint8 (H, W)``: the colour of every sample."""
        h, w = self.shape
        return np.tile(self.pattern, (h // 2 + 1, w // 2 + 1))[:h, :w]


def read_bayer(path: str | Path) -> BayerFrame:
    """Read a RAW file's Bayer mosaic and colour metadata (see :class:`BayerFrame`).

    Raises:
        InputError: not a RAW file rawpy can open, or a sensor without a 2x2 Bayer layout
            (X-Trans, monochrome, linear DNG): use ``--raw-path demosaic`` for those.
    """
    path = Path(path)
    with open_raw(path) as raw:
        try:
            # Copies: these are views of LibRaw's buffers, freed when the file is closed.
            counts = np.array(raw.raw_image_visible, copy=True)
            colors = np.array(raw.raw_colors_visible, copy=True)
        except Exception as exc:
            raise InputError(f"{path}: no colour-filter mosaic in this RAW file ({exc})") from None
        desc = raw.color_desc.decode("ascii", "replace")
        if counts.ndim != 2 or min(counts.shape) < 4 or desc[:3] != "RGB":
            raise InputError(
                f"{path}: not a Bayer mosaic ({desc or 'no colour description'}); "
                f"use --raw-path demosaic"
            )
        pattern = np.asarray(colors[:2, :2], np.uint8)
        tiled = np.tile(pattern, (colors.shape[0] // 2 + 1, colors.shape[1] // 2 + 1))
        if not np.array_equal(tiled[: colors.shape[0], : colors.shape[1]], colors):
            raise InputError(f"{path}: not a 2x2 Bayer layout (X-Trans?); use --raw-path demosaic")
        black = np.asarray(raw.black_level_per_channel, np.float32)[colors]
        white = float(raw.white_level)
        balance = np.asarray(raw.camera_whitebalance, np.float32)
        matrix = np.asarray(raw.color_matrix, np.float32)[:, :3]
    pattern = np.where(pattern == 3, 1, pattern).astype(np.uint8)  # the second green is green
    if set(pattern.ravel().tolist()) != {0, 1, 2}:
        raise InputError(f"{path}: a 2x2 layout without red, green and blue; not supported")
    if white <= black.max():
        raise InputError(f"{path}: white level {white:g} is not above the black level")
    cfa = (counts.astype(np.float32) - black) / (white - black)
    gains = balance[:3] / balance[1] if balance[1] > 0 and balance[:3].min() > 0 else np.ones(3)
    if not np.isfinite(matrix).all() or not matrix.any():
        matrix = np.eye(3, dtype=np.float32)  # no matrix in the file: camera RGB taken as sRGB
    return BayerFrame(cfa, pattern, gains.astype(np.float32), matrix)
