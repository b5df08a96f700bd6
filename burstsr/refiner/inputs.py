"""What a model reads beside the image's RGB: the merge's confidence map and the lens blur.

A generator's config says which it reads (``confidence``, ``blur_input``); the channels are made
for each tile it is given, in that order, so no full-size float copy is held beside the image
(120 MB a channel at 30 MP).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from burstsr.io.confidence import confidence_channel
from burstsr.refiner.networks import GeneratorConfig


@dataclass(frozen=True)
class ExtraChannels:
    """The merge's ``confidence`` map ``(H, W)`` in frames (None: an evenly sampled 8-frame
    burst) and the lens ``blur`` (a Gaussian's sigma in frame pixels; None for models that do
    not read it)."""

    confidence: np.ndarray | None = None
    blur: float | None = None

    def tile(self, rows: slice, cols: slice, config: GeneratorConfig) -> np.ndarray | None:
        """The channels ``config`` reads beyond RGB for ``[rows, cols]`` (concrete slices of the
        image), ``float32 (h, w, k)``; None when it reads none."""
        h, w = rows.stop - rows.start, cols.stop - cols.start
        parts = []
        if config.confidence:
            if self.confidence is None:
                parts.append(np.full((h, w, 1), 8.0 / 16.0, np.float32))
            else:
                parts.append(confidence_channel(self.confidence[rows, cols]))
        if config.blur_input:
            if self.blur is None:
                raise ValueError("this model reads the lens blur; none was given")
            parts.append(np.full((h, w, 1), self.blur, np.float32))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


def with_extra_channels(
    image: np.ndarray, config: GeneratorConfig, extra: ExtraChannels
) -> np.ndarray:
    """``image`` (``float32 (H, W, 3)``) with the channels ``config`` reads joined to it."""
    more = extra.tile(slice(0, image.shape[0]), slice(0, image.shape[1]), config)
    return image if more is None else np.concatenate([image, more], axis=2)
