"""Merging onto a finer grid (``--scale`` > 1): every frame's samples land at their own
sub-pixel positions on a grid ``scale`` times finer than the reference's
(:mod:`burstsr.burst.superres`), with the robust merge's weights when ``--merge robust``. The
ordinary merge on the reference's grid is made alongside (the weighted mean of the warped
frames): it fills the fine pixels no sample reached. Runs with torch on any device.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from burstsr.burst.config import MergeConfig
from burstsr.burst.merge import local_luma, merge_frames, robust_weights
from burstsr.burst.merge_torch import OnWarped
from burstsr.burst.superres import ACCUMULATORS, KernelAccumulator
from burstsr.burst.warp import warp_frame
from burstsr.memory import release_free_memory


def merge_fine(
    reference: np.ndarray,
    frames: Iterable[tuple[int, np.ndarray, np.ndarray]],
    *,
    config: MergeConfig,
    device: torch.device | str,
    on_warped: OnWarped | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Merge ``frames`` (index, pixels, transform) onto a grid ``config.scale`` times finer
    than ``reference``'s.

    Returns the image, ``float32 (H * scale, W * scale, C)``, and with the adaptive kernels the
    confidence map (about how many frames reached each output pixel), else None.
    """
    device = torch.device(device)
    ref = torch.from_numpy(reference).permute(2, 0, 1).to(device)
    fine = ACCUMULATORS[config.kernel](ref, config.scale)
    fine.add(ref, np.eye(3))
    ref_local = local_luma(ref) if config.merge == "robust" else None

    def warped() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield ref, torch.ones(ref.shape[1:], dtype=torch.bool, device=device)
        for index, pixels, transform in frames:
            frame = torch.from_numpy(pixels).permute(2, 0, 1).to(device)
            image, mask = warp_frame(frame, transform, interpolation=config.interpolation)
            if on_warped is not None:
                on_warped(index, image.permute(1, 2, 0).float().cpu().numpy(), mask.cpu().numpy())
            if isinstance(fine, KernelAccumulator):
                fine.measure_noise(image, mask)
            weights = robust_weights(ref_local, image, mask) if ref_local is not None else None
            fine.add(frame, transform, weights)
            del frame
            yield image, (mask if weights is None else weights)

    # With robust weights the coarse robust merge is the mean weighted by them (computed once;
    # the reference's weight is 1 everywhere); otherwise the merge asked for.
    method = "mean" if ref_local is not None else config.merge
    coarse = merge_frames(warped(), method=method).image
    image, confidence = fine.result(coarse)  # releases the frames it kept
    # The bands' temporaries, freed, stay in glibc's heap in pieces; handed back now, the next
    # step (the refiner, in run) does not stack its own on top (1.41 -> 1.25 GB for run's peak
    # on the example phone burst).
    release_free_memory()
    if confidence is not None:
        confidence = np.ascontiguousarray(confidence.float().cpu().numpy())
    return np.ascontiguousarray(image.permute(1, 2, 0).float().cpu().numpy()), confidence
