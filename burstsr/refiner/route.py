"""Coarse/fine detail routing for enhance: a small coarse network runs on every tile; the fine
(deep) model runs only where the coarse one did not reach the detail, and on those tiles'
neighbours; the rest keeps the coarse output.

The detail score of a tile is the mean absolute residual the coarse network adds to its input
(to the image skip's base: the input itself for a model of x4-grid merges, its bicubic
upscaling otherwise), in 8-bit levels: flat sky, walls and night backgrounds score low, texture
and edges high. Tiles over :attr:`Routing.threshold` and their 8 neighbours go to the fine
model. Every tile's output is cross-faded with its neighbours' as in unrouted tiling, so a
fine tile fades into a coarse one over the cross-fade zone, without a seam.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.ndimage import binary_dilation

from burstsr.refiner.enhance import Box, run_tile, tile_plan
from burstsr.refiner.networks import Generator
from burstsr.refiner.registry import DEFAULT_ROUTE_THRESHOLD

DEFAULT_THRESHOLD = DEFAULT_ROUTE_THRESHOLD  # 8-bit levels of mean absolute coarse residual


@dataclass
class Routing:
    """A coarse network and the threshold that routes tiles past it; :func:`enhance_image`
    fills in what it routed: ``scores`` and ``fine`` per tile (rows x columns), the tiles'
    areas, and the seconds of each pass."""

    coarse: Generator
    threshold: float = DEFAULT_THRESHOLD
    scores: np.ndarray | None = None
    fine: np.ndarray | None = None
    boxes: list[list[Box]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    finished: float = 0.0  # when the coarse pass ended (perf_counter)
    # The coarse pass's tile outputs, kept (half precision) for the tiles it keeps.
    kept: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def fraction(self) -> float:
        """The share of tiles the fine model ran on."""
        return float(self.fine.mean()) if self.fine is not None else 1.0

    def coarse_tile(self, row: int, column: int) -> np.ndarray:
        """The coarse pass's output of a tile it kept (released once taken)."""
        return self.kept.pop((row, column)).astype(np.float32)

    def run_coarse(
        self, image: np.ndarray, extra: np.ndarray | None, box: Box, *, half: bool = False
    ) -> np.ndarray:
        """The coarse network on one tile (its own receptive radius as context)."""
        h, w = image.shape[:2]
        _, _, pad = tile_plan(self.coarse, h, w, None, None)
        return run_tile(self.coarse, image, extra, box, pad, half=half)

    def select(
        self,
        image: np.ndarray,
        extra: np.ndarray | None,
        boxes: list[list[Box]],
        *,
        progress: Callable[[int, int], None] | None = None,
        total: int = 0,
    ) -> np.ndarray:
        """The coarse pass: score every tile, pick those over the threshold and their
        neighbours. Returns the fine mask (rows x columns of tiles)."""
        self.coarse.eval()
        start, scale = time.perf_counter(), self.coarse.config.scale
        scores = np.zeros((len(boxes), len(boxes[0])), np.float32)
        done = 0
        for r, row in enumerate(boxes):
            for c, box in enumerate(row):
                out = self.run_coarse(image, extra, box)
                area = image[box.ay0 : box.ay1, box.ax0 : box.ax1, :3]
                if scale > 1:
                    area = cv2.resize(
                        area, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_CUBIC
                    )
                scores[r, c] = 255 * float(np.abs(out - area).mean())
                self.kept[r, c] = out.astype(np.float16)
                done += 1
                if progress is not None:
                    progress(done, total)
        self.scores, self.boxes = scores, boxes
        self.fine = binary_dilation(scores > self.threshold, structure=np.ones((3, 3), bool))
        for r, c in zip(*np.nonzero(self.fine), strict=True):
            del self.kept[r, c]  # the fine model replaces these
        self.finished = time.perf_counter()
        self.seconds["coarse"] = self.finished - start
        return self.fine


def route_map(image: np.ndarray, routing: Routing) -> np.ndarray:
    """A picture of the routing at the input's size: tiles the fine model ran on at full
    brightness, coarse tiles dimmed, the grid of tiles drawn in."""
    out = image[:, :, :3] * 0.3
    for r, row in enumerate(routing.boxes):
        for c, box in enumerate(row):
            region = (slice(box.y0, box.y1), slice(box.x0, box.x1))
            if routing.fine[r, c]:
                out[region] = image[region][:, :, :3]
            out[box.y0, box.x0 : box.x1] = out[box.y0 : box.y1, box.x0] = (1.0, 0.8, 0.0)
    return out
