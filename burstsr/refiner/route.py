"""Coarse/fine detail routing for enhance: the fine (deep) model runs only on the tiles that
hold detail, near their edges included; a small coarse network restores the rest.

A tile's detail score is the 98th percentile of the local gradient magnitude of the input's
luma at the frames' scale (the square root of the structure tensor's trace, in 8-bit levels per
frame pixel): a night sky or a plain wall scores 3 to 4, texture and edges 10 and more, and the
noise a merge leaves barely counts, since the structure tensor averages it out. It is taken
over the tile grown by a margin (:attr:`Routing.margin`, a quarter of a tile) into its
neighbours, so a tile goes to the fine model when detail lies near its edge, not merely because
a neighbour holds some. Tiles at or over :attr:`Routing.threshold` go to the fine model, the
others to the coarse one. The coarse network, small and trained with pixel loss only, paints a
faint pattern locked to its pixel-shuffle grid over flat, noisy areas; each coarse tile has it
taken out (:func:`remove_grid_pattern`). Every tile's output is cross-faded with its
neighbours' as in unrouted tiling, so a fine tile fades into a coarse one over the cross-fade
zone, without a seam.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from burstsr.burst.kernels import structure_tensor
from burstsr.io.confidence import ConfidenceTiles
from burstsr.io.image import unit_float
from burstsr.refiner.context import needed_context
from burstsr.refiner.enhance import Box, run_tile
from burstsr.refiner.networks import Generator
from burstsr.refiner.registry import DEFAULT_ROUTE_THRESHOLD

DEFAULT_THRESHOLD = DEFAULT_ROUTE_THRESHOLD  # 8-bit levels per frame pixel
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass
class Routing:
    """A coarse network and the threshold that routes tiles past it; :func:`enhance_image`
    fills in what it routed: ``scores`` and ``fine`` per tile (rows x columns), the tiles'
    areas, and the seconds of each pass."""

    coarse: Generator
    threshold: float = DEFAULT_THRESHOLD
    margin: float = 0.25  # the score's reach into the neighbours, in tiles
    scores: np.ndarray | None = None
    fine: np.ndarray | None = None
    boxes: list[list[Box]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """The share of tiles the fine model ran on."""
        return float(self.fine.mean()) if self.fine is not None else 1.0

    def run_coarse(
        self, image: np.ndarray, extra: ConfidenceTiles | None, box: Box, *, half: bool = False
    ) -> np.ndarray:
        """The coarse network on one tile (the context it needs around it), without the
        faint pattern locked to its pixel-shuffle grid that it paints over flat areas
        (:func:`remove_grid_pattern`)."""
        pad = needed_context(self.coarse)  # whole blocks
        tile = run_tile(self.coarse, image, extra, box, pad, half=half)
        period = self.coarse.config.scale * self.coarse.config.unshuffle
        return remove_grid_pattern(tile, period) if period > 1 else tile

    def select(self, image: np.ndarray, boxes: list[list[Box]]) -> np.ndarray:
        """Score every tile (over its area grown by the margin) and pick those at or over the
        threshold. Returns the fine mask (rows x columns of tiles)."""
        self.coarse.eval()
        start = time.perf_counter()
        gradient, u = detail_map(image, self.coarse.config.unshuffle), self.coarse.config.unshuffle
        scores = np.zeros((len(boxes), len(boxes[0])), np.float32)
        for r, row in enumerate(boxes):
            for c, box in enumerate(row):
                reach = round(self.margin * max(box.y1 - box.y0, box.x1 - box.x0))
                y0, x0 = max(box.y0 - reach, 0) // u, max(box.x0 - reach, 0) // u
                y1, x1 = -(-(box.y1 + reach) // u), -(-(box.x1 + reach) // u)
                scores[r, c] = float(np.percentile(gradient[y0:y1, x0:x1], 98))
        self.scores, self.boxes = scores, boxes
        self.fine = scores >= self.threshold
        self.seconds["score"] = time.perf_counter() - start
        return self.fine


def remove_grid_pattern(tile: np.ndarray, period: int, *, min_cells: int = 256) -> np.ndarray:
    """``tile`` ``(H, W, C)`` in [0, 1] less what repeats with ``period`` pixels on its grid: for
    each of the ``period x period`` pixel phases, the mean over the tile of its high-pass (the
    tile less a Gaussian blur of sigma 2, as :func:`burstsr.metrics.periodic_pattern`
    measures); clipped to [0, 1] again. Image content averages out over a tile's many periods; a
    pattern locked to the grid does not, and is taken out whole. A tile of fewer than
    ``min_cells`` periods (a sliver at the image's edge) is returned as it is: its phase means
    would be mostly content."""
    h, w = tile.shape[:2]
    rows, cols = h // period * period, w // period * period
    if rows * cols < min_cells * period * period:
        return tile
    blurred = cv2.GaussianBlur(tile, (0, 0), 2.0, borderType=cv2.BORDER_REFLECT)
    pattern = _phase_means(tile, period) - _phase_means(blurred.reshape(tile.shape), period)
    if h % period or w % period:
        reps = (-(-h // period), -(-w // period), 1)
        out = tile - np.tile(pattern, reps)[:h, :w].reshape(tile.shape)
    else:  # a view of whole periods: no tiled copy of the pattern
        cells = tile.reshape(h // period, period, w // period, period, -1)
        out = (cells - pattern[None, :, None]).reshape(tile.shape)
    return np.clip(out, 0.0, 1.0, out=out).astype(tile.dtype, copy=False)


def _phase_means(image: np.ndarray, period: int) -> np.ndarray:
    """``(period, period, C)``: the mean of each pixel phase of ``image``'s whole periods."""
    h, w = image.shape[:2]
    rows, cols = h // period, w // period
    cells = image[: rows * period, : cols * period].reshape(rows, period, cols, period, -1)
    return np.add.reduce(np.add.reduce(cells, axis=0), axis=1) / (rows * cols)


def detail_map(image: np.ndarray, grid: int = 1) -> np.ndarray:
    """The local gradient magnitude of ``image``'s luma, 8-bit levels per frame pixel, at the
    frames' scale (``image`` area-reduced by ``grid``, the grid it was merged on). ``image``:
    float in [0, 1] or 8/16-bit samples, converted to float a band of rows at a time (a 24 MP
    merge is not copied whole) where ``grid`` divides its size."""
    luma = torch.from_numpy(np.ascontiguousarray(_reduced(image[:, :, :3], grid) @ LUMA))
    ixx, _, iyy = structure_tensor(luma, integration=1.0)
    return (torch.sqrt((ixx + iyy).clamp(min=0)) * 255).numpy()


def _reduced(image: np.ndarray, grid: int, band: int = 256) -> np.ndarray:
    """``image`` as float in [0, 1], area-reduced by ``grid``: ``(max(1, h // grid), max(1, w //
    grid), 3)``. Where ``grid`` divides the size, every output pixel is the mean of its own
    ``grid x grid`` block, so the image is converted and reduced ``band`` output rows at a
    time, with the same values as reducing the whole converted image."""
    h, w = image.shape[:2]
    if grid == 1:
        return unit_float(image)
    size = (max(1, w // grid), max(1, h // grid))
    if h % grid or w % grid or image.dtype == np.float32:
        return cv2.resize(unit_float(image), size, interpolation=cv2.INTER_AREA)
    bands = []
    for top in range(0, h, band * grid):
        part = unit_float(image[top : top + band * grid])
        out = (size[0], part.shape[0] // grid)
        bands.append(cv2.resize(part, out, interpolation=cv2.INTER_AREA).reshape(out[1], -1, 3))
    return np.concatenate(bands)


def route_map(image: np.ndarray, routing: Routing) -> np.ndarray:
    """A picture of the routing at the input's size: tiles the fine model ran on at full
    brightness, coarse tiles dimmed, the grid of tiles drawn in."""
    image = unit_float(image[:, :, :3])
    out = image * 0.3
    for r, row in enumerate(routing.boxes):
        for c, box in enumerate(row):
            region = (slice(box.y0, box.y1), slice(box.x0, box.x1))
            if routing.fine[r, c]:
                out[region] = image[region]
            out[box.y0, box.x0 : box.x1] = out[box.y0 : box.y1, box.x0] = (1.0, 0.8, 0.0)
    return out
