"""Merging aligned frames into one image.

Every merger takes an iterable of ``(image, mask)`` pairs: ``image`` a ``float32 (C, H, W)``
tensor already warped onto the reference grid, ``mask`` a ``bool (H, W)`` tensor, True where the
image is valid. Pixels are merged only from the frames whose mask covers them.

``mean``        the classic stack. Streams: one accumulator, memory independent of frame count.
``median``      per-pixel median of the valid samples (mean of the two middle ones for even counts).
``sigma-clip``  per-pixel rejection of samples further than ``sigma`` robust standard deviations
                (median / MAD, floored by the burst's typical spread) from the centre, then a
                second pass around the mean of the kept samples; the mean of what is kept.

``robust``      the mean, each frame weighted down where it disagrees with the reference (the
                first frame) by more than the burst's noise explains: ghost-free with moving
                things, the mean's noise reduction elsewhere. Streams like the mean.

``median`` and ``sigma-clip`` hold every warped frame, so their memory grows with the burst.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Frames = Iterable[tuple[torch.Tensor, torch.Tensor]]
_MAD_TO_STD = 1.4826
_ROWS = 256  # rows processed at once by the stacking mergers (bounds sort temporaries)


@dataclass(frozen=True)
class Merged:
    """A merged image: ``image`` float32 (C, H, W); ``count`` (H, W), valid frames per pixel."""

    image: torch.Tensor
    count: torch.Tensor


def merge_mean(frames: Frames) -> Merged:
    """Average of the valid samples at each pixel, streaming over ``frames``."""
    total = count = None
    for image, mask in frames:
        weight = mask.to(image.dtype)
        if total is None:
            total = image * weight
            count = weight.clone()
        else:
            total.addcmul_(image, weight)
            count += weight
    if total is None:
        raise ValueError("merge_mean needs at least one frame")
    return Merged(total / count.clamp(min=1.0), count)


def _stack(frames: Frames) -> tuple[torch.Tensor, torch.Tensor]:
    images, masks = [], []
    for image, mask in frames:
        images.append(image)
        masks.append(mask)
    if not images:
        raise ValueError("merging needs at least one frame")
    return torch.stack(images), torch.stack(masks)


def _sorted_median(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Median over dim 0 of ``values`` (N, ...) using only ``valid`` samples (each column has
    at least one). Even counts give the mean of the two middle samples."""
    filled = values.masked_fill(~valid, float("inf"))
    ordered, _ = torch.sort(filled, dim=0)
    count = valid.sum(dim=0, keepdim=True).clamp(min=1)
    low = ordered.gather(0, (count - 1) // 2)
    high = ordered.gather(0, count // 2)
    return ((low + high) * 0.5)[0]


def merge_median(frames: Frames) -> Merged:
    """Per-pixel median of the valid samples."""
    images, masks = _stack(frames)
    n, c, h, w = images.shape
    out = torch.empty((c, h, w), dtype=images.dtype, device=images.device)
    for top in range(0, h, _ROWS):
        rows = slice(top, min(top + _ROWS, h))
        valid = masks[:, None, rows].expand(n, c, -1, w)
        out[:, rows] = _sorted_median(images[:, :, rows], valid)
    return Merged(out, masks.sum(dim=0).to(images.dtype))


def merge_sigma_clip(frames: Frames, *, sigma: float = 3.0) -> Merged:
    """Mean of the samples within ``sigma`` robust standard deviations of the per-pixel centre."""
    images, masks = _stack(frames)
    n, c, h, w = images.shape
    # A floor for the per-pixel spread: with few (and quantised) samples the per-pixel MAD can be
    # zero, which would reject every sample that is not an exact copy of the median.
    floor = _typical_spread(images, masks)
    out = torch.empty((c, h, w), dtype=images.dtype, device=images.device)
    for top in range(0, h, _ROWS):
        rows = slice(top, min(top + _ROWS, h))
        x = images[:, :, rows]
        valid = masks[:, None, rows].expand(n, c, -1, w)
        centre = _sorted_median(x, valid)
        spread = _MAD_TO_STD * _sorted_median((x - centre).abs(), valid)
        keep = valid & ((x - centre).abs() <= sigma * spread.clamp(min=floor))
        # Second pass: centre and spread of what survived.
        kept = keep.to(x.dtype)
        k = kept.sum(0).clamp(min=1)
        mean = (x * kept).sum(0) / k
        std = (((x - mean) ** 2 * kept).sum(0) / (k - 1).clamp(min=1)).sqrt()
        keep = valid & ((x - mean).abs() <= sigma * std.clamp(min=floor))
        kept = keep.to(x.dtype)
        k = kept.sum(0)
        merged = (x * kept).sum(0) / k.clamp(min=1)
        out[:, rows] = torch.where(k > 0, merged, centre)
    return Merged(out, masks.sum(dim=0).to(images.dtype))


def _typical_spread(images: torch.Tensor, masks: torch.Tensor) -> float:
    """Median over a subsample of pixels of the per-pixel robust spread (MAD x 1.4826)."""
    n, c, h, w = images.shape
    step = max(1, int((h * w / 65536) ** 0.5))
    x = images[:, :, ::step, ::step]
    valid = masks[:, None, ::step, ::step].expand_as(x)
    centre = _sorted_median(x, valid)
    spread = _MAD_TO_STD * _sorted_median((x - centre).abs(), valid)
    return max(float(spread.median()), 1e-4)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a ``(1, H, W)`` tensor (reflect padding), on its device."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x = x[None]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return x[0]


_COMPARE_PIXELS = 1_000_000  # large frames are compared on a pooled luma of about this size


def _pool_factor(height: int, width: int) -> int:
    return max(1, round(math.sqrt(height * width / _COMPARE_PIXELS)))


def local_luma(image: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Gaussian-smoothed mean of the channels, ``(1, h, w)``: what the robust merge compares.
    Frames over ~1 MP are average-pooled first (a local comparison needs no more), so the
    comparison costs the same whatever the frame size."""
    luma = image.mean(0, keepdim=True)
    factor = _pool_factor(*luma.shape[1:])
    if factor > 1:
        luma = F.avg_pool2d(luma[None], factor, ceil_mode=True)[0]
    return _gaussian_blur(luma, max(sigma / factor, 0.5))


def robust_weights(
    ref_local: torch.Tensor,
    image: torch.Tensor,
    mask: torch.Tensor,
    *,
    sigma: float = 1.5,
    tolerance: float = 2.5,
    spread: int = 3,
) -> torch.Tensor:
    """Per-pixel weight ``(H, W)`` in [0, 1] of an aligned frame against the reference's
    :func:`local_luma` (see :func:`merge_robust`); 0 outside ``mask``."""
    d = (local_luma(image, sigma) - ref_local).abs()
    h, w = mask.shape
    factor = _pool_factor(h, w)
    small_mask = mask
    if factor > 1:  # valid where the whole pooled cell is
        cells = F.max_pool2d((~mask).to(d.dtype)[None, None], factor, ceil_mode=True)
        small_mask = cells[0, 0] < 0.5
    valid = d[0][small_mask]
    sample = valid[:: max(1, valid.numel() // 1_000_000)]
    s = max(_MAD_TO_STD * float(sample.median()), 1e-4) if sample.numel() else 1.0
    weight = torch.exp(-((d / s - tolerance).clamp(min=0) ** 2))
    if spread > 1:
        weight = -F.max_pool2d(-weight[None], spread, stride=1, padding=spread // 2)[0]
    if factor > 1:
        weight = F.interpolate(weight[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return weight[0] * mask.to(weight.dtype)


def merge_robust(
    frames: Frames, *, sigma: float = 1.5, tolerance: float = 2.5, spread: int = 3
) -> Merged:
    """Mean of the frames, each weighted down where it disagrees with the reference (the first
    frame) by more than the burst's noise explains; a streaming merge like the mean.

    For every frame, ``d`` is the difference of the Gaussian-smoothed (``sigma`` px) luma of the
    frame and of the reference: a local comparison, not a single-pixel test. Its noise level
    ``s`` is estimated from the burst itself, as 1.4826 x the median of ``|d|`` (most of a burst
    is static). The weight is 1 while ``|d| <= tolerance * s`` and falls as
    ``exp(-(|d| / s - tolerance)**2)`` beyond; a ``spread`` x ``spread`` minimum filter then widens
    each rejection to the edges of what moved. Static areas keep the full noise reduction; where
    something moved, the merge falls back to the reference frame.

    In the spirit of HDR+'s robust merge (Hasinoff et al., SIGGRAPH Asia 2016) and the
    robustness model of Wronski et al., "Handheld Multi-Frame Super-Resolution", SIGGRAPH 2019.
    """
    it = iter(frames)
    try:
        reference, ref_mask = next(it)
    except StopIteration:
        raise ValueError("merge_robust needs at least one frame") from None
    weight_sum = ref_mask.to(reference.dtype)[None]
    total = reference * weight_sum
    ref_local = local_luma(reference, sigma)
    for image, mask in it:
        weight = robust_weights(
            ref_local, image, mask, sigma=sigma, tolerance=tolerance, spread=spread
        )[None]
        total.addcmul_(image, weight)
        weight_sum += weight
    return Merged(total / weight_sum.clamp(min=1e-6), weight_sum[0])


MERGERS: dict[str, Callable[[Frames], Merged]] = {
    "mean": merge_mean,
    "median": merge_median,
    "sigma-clip": merge_sigma_clip,
    "robust": merge_robust,
}


def merge_frames(frames: Frames, *, method: str = "mean") -> Merged:
    """Merge aligned frames with one of :data:`MERGERS` (mean, median, sigma-clip, robust).

    Args:
        frames: iterable of ``(image float32 (C, H, W), mask bool (H, W))`` on one device; a
            generator is consumed lazily (the mean never holds more than one frame).
        method: the merger's name.

    Returns:
        :class:`Merged` on the frames' device.
    """
    if method not in MERGERS:
        raise ValueError(f"method must be one of {tuple(MERGERS)}, got {method!r}")
    return MERGERS[method](frames)
