"""Warping and merging with torch, on any device: every merge method and every output scale.

``merge_burst`` uses this path on CUDA, for ``median`` and ``sigma-clip``, and for merges onto
a finer grid (``--scale`` > 1); the CPU path (:mod:`burstsr.burst.merge_cpu`) does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from burstsr.burst.config import MergeConfig
from burstsr.burst.merge import local_luma, merge_frames, robust_weights
from burstsr.burst.superres import ACCUMULATORS
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
) -> tuple[np.ndarray, np.ndarray | None]:
    """Merge ``frames`` (index, pixels, transform) onto ``reference``'s grid (times
    ``config.scale``).

    Returns the image, ``float32 (H, W, C)``, and with the adaptive finer-grid kernels the
    confidence map (about how many frames reached each output pixel), else None.
    """
    device = torch.device(device)
    splat_robust = config.scale > 1 and config.merge == "robust"
    splat = None  # the finer grid's accumulator (scale > 1), built from the reference
    ref_local = None  # the reference's local luma, for robust weights on the finer grid

    def warped() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        nonlocal splat, ref_local
        frame = torch.from_numpy(reference).permute(2, 0, 1).to(device)
        if config.scale > 1:
            splat = ACCUMULATORS[config.kernel](frame, config.scale)
            splat.add(frame, np.eye(3))
            ref_local = local_luma(frame) if config.merge == "robust" else None
        yield frame, torch.ones(frame.shape[1:], dtype=torch.bool, device=device)
        del frame
        for index, pixels, transform in frames:
            frame = torch.from_numpy(pixels).permute(2, 0, 1).to(device)
            image, mask = warp_frame(frame, transform, interpolation=config.interpolation)
            if on_warped is not None:
                on_warped(index, image.permute(1, 2, 0).float().cpu().numpy(), mask.cpu().numpy())
            if splat is not None:
                weights = robust_weights(ref_local, image, mask) if ref_local is not None else None
                splat.add(frame, transform, weights)
                if weights is not None:  # computed once: the coarse merge is their weighted mean
                    mask = weights
            del frame
            yield image, mask

    # With a finer grid the robust weights are already known: the robust merge on the frames'
    # grid is the mean weighted by them (the reference's weight is 1 everywhere).
    method = "mean" if splat_robust else config.merge
    merged = merge_frames(warped(), method=method)
    image, confidence = merged.image, None
    if splat is not None:
        image, weight = splat.result(merged.image)
        splat = None  # free the accumulators before the image is copied out
        if weight is not None:
            confidence = np.ascontiguousarray(weight.float().cpu().numpy())
    return np.ascontiguousarray(image.permute(1, 2, 0).float().cpu().numpy()), confidence
