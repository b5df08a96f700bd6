"""Coarse/fine detail routing for enhance: the fine (deep) model runs only where there is
detail, whole tiles or windows around the detail in them; a small coarse network restores the
rest.

The detail score is the 98th percentile of the local gradient magnitude of the input's luma at
the frames' scale (the square root of the structure tensor's trace, in 8-bit levels per frame
pixel): a night sky or a plain wall scores 3 to 4, texture and edges 10 and more, and the noise
a merge leaves barely counts, since the structure tensor averages it out. Each tile is scored
in cells (:attr:`Routing.cell` frame pixels square, each over itself grown by
:attr:`Routing.cell_margin`); a tile's score is its highest cell's. A tile under
:attr:`Routing.threshold` goes to the coarse network. In a tile over it, each group of
touching detailed cells gets a window, its box grown by the cell margin (overlapping boxes
joined): when the windows' work, the context around each included, is at most
:attr:`Routing.full_share` of the whole tile's, the fine model runs on the windows only and the
coarse network on the tile, each window's output cross-faded into the coarse one over
``2 * feather`` pixels (:meth:`Routing.run_window`); otherwise the fine model runs on the whole
tile. The coarse network, small and trained with pixel loss only, paints a faint pattern locked
to its pixel-shuffle grid over flat, noisy areas; each coarse tile has it taken out
(:func:`remove_grid_pattern`). Every tile's output is cross-faded with its neighbours' as in
unrouted tiling, so a fine tile fades into a coarse one over the cross-fade zone, without a
seam.
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
from burstsr.refiner.enhance import Box, ramp, run_tile
from burstsr.refiner.networks import Generator
from burstsr.refiner.registry import DEFAULT_ROUTE_THRESHOLD

DEFAULT_THRESHOLD = DEFAULT_ROUTE_THRESHOLD  # 8-bit levels per frame pixel
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
CYAN, YELLOW = (0, 230, 255), (255, 204, 0)  # the routing map's window outlines and tile grid


@dataclass
class Routing:
    """A coarse network and the threshold that routes tiles past it; :func:`enhance_image`
    fills in what it routed: ``scores`` and ``fine`` per tile (rows x columns), the windows of
    the fine tiles that run the fine model on part of their area only (by ``(row, column)``),
    the tiles' areas, and the seconds of each pass."""

    coarse: Generator
    threshold: float = DEFAULT_THRESHOLD
    cell: int = 32  # frames' pixels: the cells a detailed tile's window is made of
    cell_margin: int = 8  # frames' pixels: a cell's score reaches this far; its window too
    # Windows whose work (context included) comes to more than this share of the whole tile's:
    # the whole tile goes deep.
    full_share: float = 0.7
    feather: int = 4  # frames' pixels: half the cross-fade from a window into the coarse tile
    scores: np.ndarray | None = None
    fine: np.ndarray | None = None
    windows: dict[tuple[int, int], list[Box]] = field(default_factory=dict)
    boxes: list[list[Box]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """The share of the image's area the fine model restored (its tiles, or its windows
        in them)."""
        if self.fine is None:
            return 1.0
        total = deep = 0
        for r, row in enumerate(self.boxes):
            for c, box in enumerate(row):
                area = (box.y1 - box.y0) * (box.x1 - box.x0)
                total += area
                if self.fine[r, c]:
                    parts = (_clip(w, box) for w in self.windows.get((r, c), [box]))
                    deep += sum((p.y1 - p.y0) * (p.x1 - p.x0) for p in parts if p is not None)
        return deep / max(total, 1)

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

    def select(self, image: np.ndarray, boxes: list[list[Box]], pad: int = 0) -> np.ndarray:
        """Score every tile (its highest cell's score) and pick those at or over the threshold,
        each with its windows when the fine model needs only parts of it (:attr:`windows`;
        ``pad``: the context, input pixels, the fine model runs a tile or window with).
        Returns the fine mask (rows x columns of tiles)."""
        self.coarse.eval()
        start = time.perf_counter()
        gradient, u = detail_map(image, self.coarse.config.unshuffle), self.coarse.config.unshuffle
        scores = np.zeros((len(boxes), len(boxes[0])), np.float32)
        self.windows = {}
        for r, row in enumerate(boxes):
            for c, box in enumerate(row):
                cells, corner = self._cells(gradient, box, u)
                scores[r, c] = cells.max()
                detailed = cells >= self.threshold
                windows = self._windows(detailed, corner, box, u) if detailed.any() else []
                whole = (box.ay1 - box.ay0 + 2 * pad) * (box.ax1 - box.ax0 + 2 * pad)
                work = sum((w.ay1 - w.ay0 + 2 * pad) * (w.ax1 - w.ax0 + 2 * pad) for w in windows)
                if windows and work <= self.full_share * whole:
                    self.windows[r, c] = windows
        self.scores, self.boxes = scores, boxes
        self.fine = scores >= self.threshold
        self.seconds["score"] = time.perf_counter() - start
        return self.fine

    def _cells(self, gradient: np.ndarray, box: Box, u: int) -> tuple[np.ndarray, tuple]:
        """The detail score of each :attr:`cell`-pixel cell (frames' pixels) of ``box``'s area,
        cross-fade zone included: the 98th percentile of ``gradient`` over the cell grown by
        :attr:`cell_margin`; and the area's top-left corner in frames' pixels."""
        fy0, fx0 = box.ay0 // u, box.ax0 // u
        fy1, fx1 = -(-box.ay1 // u), -(-box.ax1 // u)
        m, n = self.cell_margin, self.cell

        def score(y: int, x: int) -> float:
            part = gradient[max(y - m, 0) : y + n + m, max(x - m, 0) : x + n + m]
            return float(np.percentile(part, 98)) if part.size else 0.0  # past a ragged edge

        scores = [[score(y, x) for x in range(fx0, fx1, n)] for y in range(fy0, fy1, n)]
        return np.array(scores, np.float32), (fy0, fx0)

    def _windows(self, detailed: np.ndarray, corner: tuple, box: Box, u: int) -> list[Box]:
        """The parts of a tile the fine model needs: a box around each group of touching
        ``detailed`` cells, grown by :attr:`cell_margin`, within the tile's area (input pixels,
        whole blocks); boxes that overlap are joined into the box around both."""
        count, _, stats, _ = cv2.connectedComponentsWithStats(detailed.astype(np.uint8), 4)
        (fy0, fx0), m, n = corner, self.cell_margin, self.cell
        found = []
        for x, y, w, h, _ in stats[1:count].tolist():
            found.append(
                (
                    int(max((fy0 + y * n - m) * u, box.ay0)),
                    int(min((fy0 + (y + h) * n + m) * u, box.ay1)),
                    int(max((fx0 + x * n - m) * u, box.ax0)),
                    int(min((fx0 + (x + w) * n + m) * u, box.ax1)),
                )
            )
        return [Box(y0, y1, x0, x1, y0, y1, x0, x1) for y0, y1, x0, x1 in _join(found)]

    def run_window(
        self,
        generator: Generator,
        image: np.ndarray,
        extra: ConfidenceTiles | None,
        box: Box,
        windows: list[Box],
        pad: int,
        *,
        half: bool = False,
        ensemble: bool = False,
    ) -> np.ndarray:
        """A tile restored by the coarse network (:meth:`run_coarse`) with the fine model's
        output over each of ``windows`` (run with ``pad`` pixels of context) cross-faded into
        it over ``2 * feather`` frame pixels (the window's margin) where a window's edge is
        inside the tile's area."""
        core = self.run_coarse(image, extra, box, half=half)
        s = generator.config.scale
        fade = self.feather * generator.config.unshuffle * s  # output pixels
        for window in windows:
            deep = run_tile(generator, image, extra, window, pad, half=half, ensemble=ensemble)
            fy = (window.ay0 > box.ay0, window.ay1 < box.ay1)
            fx = (window.ax0 > box.ax0, window.ax1 < box.ax1)
            wy, wx = ramp(deep.shape[0], *fy, fade), ramp(deep.shape[1], *fx, fade)
            part = core[
                (window.ay0 - box.ay0) * s : (window.ay1 - box.ay0) * s,
                (window.ax0 - box.ax0) * s : (window.ax1 - box.ax0) * s,
            ]
            part += (wy[:, None] * wx[None, :])[:, :, None] * (deep - part)
        return core


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


def route_map(image: np.ndarray, routing: Routing, band: int = 256) -> np.ndarray:
    """A picture of the routing at the input's size, 8-bit RGB: what the fine model restored at
    full brightness (its windows outlined in cyan), what the coarse network restored dimmed,
    the grid of tiles drawn in yellow. Made ``band`` rows at a time, so a 30 MP map holds no
    float copy of the image."""
    h, w = image.shape[:2]
    bright = np.zeros((h, w), bool)
    outlines: list[Box] = []
    for r, row in enumerate(routing.boxes):
        for c, box in enumerate(row):
            windows = routing.windows.get((r, c))
            for part in (windows or [box]) if routing.fine[r, c] else []:
                shown = _clip(part, box)
                if shown is not None:
                    bright[shown.y0 : shown.y1, shown.x0 : shown.x1] = True
                    if windows:
                        outlines.append(shown)
    out = np.empty((h, w, 3), np.uint8)
    for top in range(0, h, band):
        rows = slice(top, min(top + band, h))
        part = unit_float(image[rows, :, :3])
        part = np.where(bright[rows, :, None], part, part * 0.3)
        out[rows] = np.clip(part * 255 + 0.5, 0, 255).astype(np.uint8)
    for o in outlines:  # a window's outline, in cyan
        out[o.y0, o.x0 : o.x1] = out[o.y1 - 1, o.x0 : o.x1] = CYAN
        out[o.y0 : o.y1, o.x0] = out[o.y0 : o.y1, o.x1 - 1] = CYAN
    for row in routing.boxes:
        for box in row:
            out[box.y0, box.x0 : box.x1] = out[box.y0 : box.y1, box.x0] = YELLOW
    return out


def _join(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Boxes ``(y0, y1, x0, x1)`` with any two that overlap replaced by the box around both,
    until none overlap."""
    boxes, i = list(boxes), 0
    while i < len(boxes):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                boxes[i] = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
                del boxes[j]
                i = 0  # the grown box may now overlap one already passed
                break
        else:
            i += 1
    return boxes


def _clip(a: Box, b: Box) -> Box | None:
    """The part of ``a``'s own area inside ``b``'s (None when they do not meet)."""
    y0, y1, x0, x1 = max(a.y0, b.y0), min(a.y1, b.y1), max(a.x0, b.x0), min(a.x1, b.x1)
    return Box(y0, y1, x0, x1, y0, y1, x0, x1) if y0 < y1 and x0 < x1 else None
