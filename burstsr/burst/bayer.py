"""Merging RAW bursts in the Bayer domain: joint demosaicing and super-resolution.

Instead of demosaicing every frame and merging the interpolated colours, every frame's raw
colour-filter samples are placed at their own sub-pixel positions on the output grid (x1 to x4
the sensor's) and accumulated per colour with a Gaussian kernel: a handheld burst samples each
colour at many positions, so the merge fills in all three colours everywhere from what the
sensor measured (the approach of Wronski et al., "Handheld Multi-Frame Super-Resolution",
SIGGRAPH 2019). The kernels follow the local structure of the demosaiced merge, as the
fine-grid merge's do (:mod:`burstsr.burst.kernels`): longer along edges than across them, wide
and round in flat areas. White balance, the colour matrix and the sRGB curve are
applied once, at the end, as a raw converter would.

    RAW files -> the demosaiced merge (LibRaw's demosaic of each frame, alignment, robust merge)
              -> each frame's raw samples splatted at their positions, per colour, with the
                 motion it found -> where a colour's samples are dense, their average; where
                 sparse, a blend towards the demosaiced merge -> colour matrix -> the colour
                 differences from the luma smoothed (false colour) -> sRGB

A burst whose frames barely moved samples red and blue only every other pixel: there the
demosaiced merge, whose demosaicing uses all three colours' structure, is the better estimate.
Coordinates: sensor pixel ``x`` (centres at integers); output pixel ``p`` on a grid ``s`` times
finer is at sensor ``(p - (s - 1) / 2) / s``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from burstsr.burst.camera import linear_to_srgb, srgb_to_linear
from burstsr.burst.config import BAYER_SIGMA, MergeConfig
from burstsr.burst.kernels import KernelParams, kernel_precision
from burstsr.burst.pipeline import merge_burst
from burstsr.burst.result import MergeResult
from burstsr.burst.superres import fine_positions
from burstsr.errors import InputError
from burstsr.io.bayer import BayerFrame, read_bayer
from burstsr.io.raw import RAW_EXTENSIONS

DEFAULT_SIGMA = BAYER_SIGMA  # the kernel's width, sensor pixels (burst/config.py)
# A sample counts fully within a few spreads (robust standard deviations of a frame's
# differences from the demosaiced merge) of that merge, and fades beyond: moving things.
ROBUST_SPREADS = 3.0
ROBUST_FLOOR = 0.005
FULL_WEIGHT = 4.0  # kernel weight of a colour at which the splatted value is taken alone
CHROMA_SIGMA = 0.5  # width of the colour-difference smoothing, sensor pixels (0: none)
# Structure-adaptive kernel shapes, sensor pixels: wider than the fine-grid merge's (each colour
# is sampled at half or a quarter of the sensor's pixels), chosen on eight BSD200 bursts and a
# zone plate (docs/benchmarks.md).
BAYER_KERNELS = KernelParams(detail=0.55, stretch=1.25, denoise=0.55)


def smooth_chroma(linear: np.ndarray, sigma: float) -> np.ndarray:
    """``linear`` ``(H, W, 3)`` with its colour differences from the luma (the channels' mean)
    smoothed by a Gaussian of ``sigma`` pixels, the luma kept: the colour planes of a Bayer
    merge alias at different frequencies (each was sampled at other positions), which shows as
    colour where the scene has none (false colour, zippering); the eye resolves colour far
    more coarsely than brightness, so smoothing it costs little."""
    luma = linear.mean(axis=2, keepdims=True)
    chroma = np.ascontiguousarray(linear - luma, dtype=np.float32)
    radius = max(1, int(3 * sigma + 0.5))
    chroma = cv2.GaussianBlur(chroma, (2 * radius + 1,) * 2, sigma, borderType=cv2.BORDER_REFLECT)
    return (luma + chroma).astype(np.float32)


class _Splat:
    """Per-colour numerator and weight of the output grid."""

    def __init__(
        self,
        size: tuple[int, int],
        scale: int,
        sigma: float,
        precision: torch.Tensor | None = None,
    ) -> None:
        """``sigma``: the isotropic kernel's width, sensor pixels (it also sets the reach);
        ``precision``: per output pixel, the kernel's inverse covariance in output pixels
        (``(3, H * W)``: ``Pxx, Pxy, Pyy``), in place of the isotropic kernel."""
        self.h, self.w = size[0] * scale, size[1] * scale
        self.scale, self.sigma = scale, sigma * scale  # in output pixels
        self.radius = max(1, math.ceil(2 * self.sigma))
        self.precision = precision
        self.total = torch.zeros(3 * self.h * self.w)
        self.weight = torch.zeros(3 * self.h * self.w)

    def add(
        self,
        frame: BayerFrame,
        transform: np.ndarray,
        *,
        guide: torch.Tensor | None = None,
        rows: int = 256,
    ) -> None:
        """Splat ``frame``'s samples; ``transform`` maps reference to frame sensor pixels.
        ``guide``: a ghost-free estimate on the output grid, in the samples' space (flat, as
        the accumulators): a sample far from it, beyond the spread of the frame's differences
        from it (something that moved), counts for little. ``rows`` of the frame at a time
        bound the temporaries' memory."""
        h, w = frame.shape
        inverse = torch.as_tensor(np.linalg.inv(transform), dtype=torch.float64)
        colors = torch.from_numpy(frame.pattern.astype(np.int64))
        xs = torch.arange(w, dtype=torch.float64)
        for top in range(0, h, rows):
            ys = torch.arange(top, min(top + rows, h), dtype=torch.float64)[:, None]
            fx, fy = fine_positions(inverse, xs, ys, self.scale)
            values = torch.from_numpy(frame.cfa[top : top + rows]).reshape(-1)
            plane = colors[ys.long() % 2, torch.arange(w) % 2].reshape(-1) * (self.h * self.w)
            cx, cy = torch.round(fx), torch.round(fy)
            trust = torch.ones_like(values)
            if guide is not None:
                nearest = plane + (cy.clamp(0, self.h - 1) * self.w).long()
                nearest += cx.clamp(0, self.w - 1).long()
                residual = values - guide[nearest]
                spread = max(ROBUST_FLOOR, 1.4826 * float(residual.abs().median()))
                trust = torch.exp(-0.5 * (residual / (ROBUST_SPREADS * spread)) ** 2)
            for dy in range(-self.radius, self.radius + 1):
                for dx in range(-self.radius, self.radius + 1):
                    tx, ty = cx + dx, cy + dy
                    inside = (tx >= 0) & (tx < self.w) & (ty >= 0) & (ty < self.h)
                    spatial = (ty.clamp(0, self.h - 1) * self.w).long()
                    spatial += tx.clamp(0, self.w - 1).long()
                    ox, oy = (tx - fx).float(), (ty - fy).float()
                    if self.precision is None:
                        q = (ox * ox + oy * oy) / self.sigma**2
                    else:  # the kernel of the output pixel the sample lands on
                        pxx, pxy, pyy = (p[spatial] for p in self.precision)
                        q = pxx * ox * ox + 2 * pxy * ox * oy + pyy * oy * oy
                    k = torch.exp(-0.5 * q) * inside * trust
                    index = plane + spatial
                    self.weight.index_add_(0, index, k)
                    self.total.index_add_(0, index, values * k)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(image (H, W, 3), weight (H, W, 3))`` of what was added."""
        weight = self.weight.reshape(3, self.h, self.w)
        image = self.total.reshape(3, self.h, self.w) / weight.clamp(min=1e-12)
        return image.permute(1, 2, 0).numpy(), weight.permute(1, 2, 0).numpy()


def merge_bayer(
    paths: list[Path],
    *,
    scale: int = 1,
    sigma: float = DEFAULT_SIGMA,
    full_weight: float = FULL_WEIGHT,
    chroma_sigma: float = CHROMA_SIGMA,
    kernels: KernelParams | None = BAYER_KERNELS,
    config: MergeConfig = MergeConfig(),
    progress: Callable[[int, int, str], None] | None = None,
) -> MergeResult:
    """Merge RAW frames (the first is the reference) in the Bayer domain onto a grid ``scale``
    (1-4) times the sensor's; see the module's description. Returns the demosaiced merge's
    :class:`MergeResult` (frames, motions, timings) with the Bayer-domain image in its place.

    Args:
        sigma: the isotropic splatting kernel's width, sensor pixels; with ``kernels`` it sets
            only how far a sample reaches (2 sigma).
        kernels: structure-adaptive kernel shapes (sensor pixels), read from the demosaiced
            merge's luma; None: the isotropic kernel.
        full_weight: a colour's accumulated kernel weight at which a pixel takes the splatted
            value alone; below it, the value blends towards the demosaiced merge.
        chroma_sigma: the width (sensor pixels) of the Gaussian that smooths the colour
            differences from the luma before the sRGB curve (0: none); see
            :func:`smooth_chroma`.
        config: how the demosaiced merge aligns and merges (its ``scale`` is ``scale``).

    Raises:
        InputError: unreadable or non-Bayer files, frames of different sizes or layouts, a
            bad ``scale``.
        AlignmentError: no frame besides the reference could be aligned.
    """
    if scale not in (1, 2, 3, 4):
        raise InputError(f"--scale {scale}: the Bayer merge takes 1 to 4")
    paths = [Path(p) for p in paths]
    for path in paths:  # refuse what is not a Bayer RAW file before any work
        if path.suffix.lower() not in RAW_EXTENSIONS:
            raise InputError(f"{path}: not a RAW file; the Bayer merge reads RAW frames only")
    # The demosaiced merge: the motion of every frame (with its robust checks) and the
    # estimate where the burst's raw samples of a colour are too sparse.
    config = dataclasses.replace(config, scale=scale)
    base = merge_burst(paths, config=config, device="cpu", progress=None)
    reference_path = Path(base.reference)
    reference = read_bayer(reference_path)
    if base.image.shape[:2] != (reference.shape[0] * scale, reference.shape[1] * scale):
        raise InputError(
            f"{paths[0]}: LibRaw's image is not the mosaic's visible area (a rotated or "
            f"cropped RAW); use --raw-path demosaic"
        )
    # The demosaiced merge in the samples' space (camera RGB before white balance): the guide
    # that tells moved samples apart, and the estimate where a colour's samples are sparse.
    to_camera = np.linalg.inv(reference.rgb_cam.astype(np.float64)).T.astype(np.float32)
    fallback = (srgb_to_linear(base.image) @ to_camera) / reference.gains
    guide = torch.from_numpy(np.ascontiguousarray(fallback.transpose(2, 0, 1)).reshape(-1))
    precision = None
    if kernels is not None:  # shapes in output pixels, from the demosaiced merge's structure
        luma = torch.from_numpy(np.ascontiguousarray(base.image.mean(axis=2)))
        in_output_pixels = dataclasses.replace(
            kernels,
            detail=kernels.detail * scale,
            denoise=kernels.denoise * scale,
            integration=kernels.integration * scale,
        )
        precision = kernel_precision(luma, params=in_output_pixels).reshape(3, -1)
    splat = _Splat(reference.shape, scale, sigma, precision)
    for i, (path, report) in enumerate(zip(paths, base.frames, strict=True), start=1):
        if report.used and report.transform is not None:
            frame = reference if path == reference_path else read_bayer(path)
            if frame.shape != reference.shape or not np.array_equal(
                frame.pattern, reference.pattern
            ):
                raise InputError(
                    f"{path}: size or colour layout differs from {reference_path.name}"
                )
            splat.add(frame, np.asarray(report.transform, np.float64), guide=guide)
        if progress is not None:
            progress(i, len(paths), path.name)
    image, weight = splat.result()
    # One blend for all three colours, set by the sparsest: mixing one colour's splatted value
    # with another's demosaiced one paints colour fringes (false colour on a zone plate).
    alpha = np.clip(weight.min(axis=2, keepdims=True) / full_weight, 0.0, 1.0)
    camera = alpha * image + (1 - alpha) * fallback
    linear = np.clip((camera * reference.gains) @ reference.rgb_cam.T, 0.0, 1.0)
    if chroma_sigma > 0:  # on what the output can hold: clipped highlights stay white
        linear = np.clip(smooth_chroma(linear, chroma_sigma * scale), 0.0, 1.0)
    return dataclasses.replace(base, image=linear_to_srgb(linear).astype(np.float32))
