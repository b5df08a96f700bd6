"""Warping and merging with torch on the reference's grid, on any device, with every merge
method.

``merge_burst`` uses this path on CUDA and for ``median`` and ``sigma-clip``; the CPU path
(:mod:`burstsr.burst.merge_cpu`) does the rest, and :mod:`burstsr.burst.merge_fine` the finer
grids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from burstsr.burst.config import MergeConfig
from burstsr.burst.merge import merge_frames
from burstsr.burst.warp import warp_frame

# Called with each warped frame and its mask, float32 (H, W, C) and bool (H, W), on the CPU.
OnWarped = Callable[[int, np.ndarray, np.ndarray], None]


def merge_torch(
    reference: np.ndarray,
    frames: Iterable[tuple[int, np.ndarray, np.ndarray]],
    *,
    config: MergeConfig,
    device: torch.device | str,
    on_warped: OnWarped | None = None,
) -> tuple[np.ndarray, None]:
    """Merge ``frames`` (index, pixels, transform) onto ``reference``'s grid with
    ``config.merge``. Returns the image, ``float32 (H, W, C)``, and no confidence map."""
    device = torch.device(device)

    def warped() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ref = torch.from_numpy(reference).permute(2, 0, 1).to(device)
        yield ref, torch.ones(ref.shape[1:], dtype=torch.bool, device=device)
        del ref
        for index, pixels, transform in frames:
            frame = torch.from_numpy(pixels).permute(2, 0, 1).to(device)
            image, mask = warp_frame(frame, transform, interpolation=config.interpolation)
            del frame
            if on_warped is not None:
                on_warped(index, image.permute(1, 2, 0).float().cpu().numpy(), mask.cpu().numpy())
            yield image, mask

    merged = merge_frames(warped(), method=config.merge)
    return np.ascontiguousarray(merged.image.permute(1, 2, 0).float().cpu().numpy()), None
