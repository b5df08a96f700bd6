"""What a merge returns: the image, and a report of what happened to every frame."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from burstsr.io import GRID_NOTE, format_depth, write_image


@dataclass
class FrameReport:
    """What happened to one frame."""

    path: str
    index: int
    used: bool
    reference: bool = False
    score: float | None = None
    method: str | None = None
    inlier_ratio: float | None = None
    overlap: float | None = None
    transform: list[list[float]] | None = None
    message: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class MergeResult:
    """The merged image and how it was made.

    Attributes:
        image: ``float32 (H, W, 3)`` RGB in [0, 1], display-encoded (sRGB); RAW bursts are merged
            in linear light and encoded once at the end.
        bit_depth: the depth the output should have by default (16 for 16-bit or RAW input).
        gray: every frame was single-channel (write a gray image).
        reference: path of the reference frame.
        frames: one :class:`FrameReport` per input file, in input order.
        seconds: wall time per stage (load, align, warp+merge, total).
        confidence: merges onto a finer grid with the adaptive kernel: ``float32 (H, W)``, about
            how many frames reached each output pixel (fewer where the robust merge rejected
            some, 0 where none did). None otherwise.
        grid: the grid it was merged on: 1 for the frames' own, 2-4 for ``--scale`` (the image
            is that many times larger than a frame).
    """

    image: np.ndarray
    bit_depth: int
    gray: bool
    reference: str
    frames: list[FrameReport]
    seconds: dict[str, float]
    confidence: np.ndarray | None = None
    grid: int = 1

    @property
    def used(self) -> int:
        return sum(f.used for f in self.frames)

    def write(self, path: str | os.PathLike, *, bit_depth: int | None = None) -> Path:
        """Write the merged image atomically (gray when every frame was gray). Without
        ``bit_depth``, the default depth, lowered to 8 for formats that hold no more. A PNG
        notes the grid it was merged on, so ``burstsr enhance`` can tell a fine-grid merge."""
        pixels = self.image[:, :, 0] if self.gray else self.image
        if bit_depth is None:
            bit_depth = format_depth(path, self.bit_depth)
        return write_image(path, pixels, bit_depth=bit_depth, text={GRID_NOTE: str(self.grid)})

    def report(self) -> dict:
        """A JSON-serialisable summary (what ``--report`` writes)."""
        return {
            "reference": self.reference,
            "frames_used": self.used,
            "frames_total": len(self.frames),
            "seconds": self.seconds,
            "frames": [asdict(f) for f in self.frames],
        }
