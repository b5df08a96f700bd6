"""A crop: the region of the frames (or of an image) a command works on, ``X,Y,W,H`` in pixels
of the upright image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from burstsr.errors import InputError


@dataclass(frozen=True)
class Crop:
    """``width`` x ``height`` pixels from column ``x``, row ``y``."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Crop:
        """``"X,Y,W,H"`` -> a crop; ``ValueError`` with the reason when it is not one."""
        parts = text.replace(" ", "").split(",")
        try:
            x, y, w, h = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"{text}: expected X,Y,W,H in pixels, e.g. 0,0,800,600") from None
        if x < 0 or y < 0:
            raise ValueError(f"{text}: X and Y must be 0 or more")
        if w < 8 or h < 8:
            raise ValueError(f"{text}: W and H must be at least 8 pixels")
        return cls(x, y, w, h)

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.width},{self.height}"

    def fits(self, height: int, width: int) -> bool:
        """Whether the crop lies inside an image of ``height`` x ``width``."""
        return self.x + self.width <= width and self.y + self.height <= height

    def check(self, height: int, width: int, path: str | Path) -> None:
        """Raise :class:`InputError` (naming ``path`` and the option) unless the crop fits."""
        if not self.fits(height, width):
            raise InputError(
                f"--crop {self}: reaches outside {path} ({width}x{height}); give a region inside it"
            )

    def apply(self, pixels: np.ndarray, path: str | Path) -> np.ndarray:
        """The cropped region of ``pixels`` ``(H, W, ...)`` (a contiguous copy)."""
        self.check(pixels.shape[0], pixels.shape[1], path)
        region = pixels[self.y : self.y + self.height, self.x : self.x + self.width]
        return np.ascontiguousarray(region)
