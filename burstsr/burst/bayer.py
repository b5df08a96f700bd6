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
from burstsr.memory import release_free_memory

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
    radius = _chroma_radius(sigma)
    chroma = cv2.GaussianBlur(chroma, (2 * radius + 1,) * 2, sigma, borderType=cv2.BORDER_REFLECT)
    return (luma + chroma).astype(np.float32)


def _chroma_radius(sigma: float) -> int:
    """How far (pixels) :func:`smooth_chroma`'s Gaussian reaches."""
    return max(1, int(3 * sigma + 0.5))


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
        (``(3, H * W)``: ``Pxx, Pxy, Pyy``), in place of the isotropic kernel; kept per pixel,
        ``(H * W, 3)``, for one gather per neighbour."""
        self.h, self.w = size[0] * scale, size[1] * scale
        self.scale, self.sigma = scale, sigma * scale  # in output pixels
        self.radius = max(1, math.ceil(2 * self.sigma))
        self.precision = None if precision is None else precision.t().contiguous()
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
            self._splat_band(fx - cx, fy - cy, cx.long(), cy.long(), plane, values, trust)

    def _splat_band(
        self,
        rx: torch.Tensor,
        ry: torch.Tensor,
        cx: torch.Tensor,
        cy: torch.Tensor,
        plane: torch.Tensor,
        values: torch.Tensor,
        trust: torch.Tensor,
    ) -> None:
        """Add samples at output pixels ``(cx, cy)`` + ``(rx, ry)`` (offsets within half a
        pixel) to every output pixel within the radius. The per-axis offsets and bounds are
        made once per band, the flat index and the kernel once per neighbour."""
        offsets = range(-self.radius, self.radius + 1)
        rx, ry = rx.float(), ry.float()
        ox = {d: d - rx for d in offsets}  # a neighbour's offset from the sample, output pixels
        oy = {d: d - ry for d in offsets}
        in_x = {d: (cx >= -d) & (cx < self.w - d) for d in offsets}
        in_y = {d: (cy >= -d) & (cy < self.h - d) for d in offsets}
        pixel = cy * self.w + cx
        last = self.h * self.w - 1
        for dy in offsets:
            for dx in offsets:
                # Out of the grid: weight 0, at any index inside the accumulators.
                spatial = (pixel + (dy * self.w + dx)).clamp_(0, last)
                if self.precision is None:
                    q = (ox[dx] * ox[dx] + oy[dy] * oy[dy]) / self.sigma**2
                else:  # the kernel of the output pixel the sample lands on
                    pxx, pxy, pyy = self.precision.index_select(0, spatial).unbind(1)
                    q = pxx * ox[dx] * ox[dx] + 2 * pxy * ox[dx] * oy[dy] + pyy * oy[dy] * oy[dy]
                k = torch.exp(-0.5 * q).mul_(trust).mul_(in_x[dx] & in_y[dy])
                index = spatial.add_(plane)
                self.weight.index_add_(0, index, k)
                self.total.index_add_(0, index, values * k)


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
    # Kept once, as the accumulators are (flat, colour-major); the merge's image is let go.
    to_camera = np.linalg.inv(reference.rgb_cam.astype(np.float64)).T.astype(np.float32)
    guide = _to_camera_planes(base.image, to_camera / reference.gains)
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
        del luma
    base = dataclasses.replace(base, image=np.empty((0, 0, 3), np.float32))
    splat = _Splat(reference.shape, scale, sigma, precision)
    precision = None  # the splat holds its own copy, per pixel
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
    splat.precision = None  # no longer needed: the finish's memory
    image = _finish(splat, guide, reference, full_weight=full_weight, chroma_sigma=chroma_sigma)
    del splat, guide
    release_free_memory()  # the splat's and the finish's freed temporaries (see merge_fine)
    return dataclasses.replace(base, image=image)


def _to_camera_planes(image: np.ndarray, matrix: np.ndarray, rows: int = 512) -> torch.Tensor:
    """sRGB ``image`` ``(H, W, 3)`` -> linear, times ``matrix`` -> flat colour planes
    ``(3 * H * W,)``, in bands of ``rows`` (no full-size temporaries)."""
    h, w = image.shape[:2]
    planes = torch.empty((3, h, w), dtype=torch.float32)
    out = planes.numpy()
    for y0 in range(0, h, rows):
        band = srgb_to_linear(image[y0 : y0 + rows]) @ matrix
        out[:, y0 : y0 + rows] = band.transpose(2, 0, 1)
    return planes.reshape(-1)


def _finish(
    splat: _Splat,
    guide: torch.Tensor,
    reference: BayerFrame,
    *,
    full_weight: float,
    chroma_sigma: float,
    rows: int = 256,
) -> np.ndarray:
    """The splatted colours where dense, the guide where sparse; then the colour matrix, the
    chroma smoothing and the sRGB curve: ``float32 (H, W, 3)``. In bands of ``rows`` rows with
    the chroma blur's reach as context, so that only the output is held at full size."""
    h, w = splat.h, splat.w
    total = splat.total.reshape(3, h, w).numpy()
    weight = splat.weight.reshape(3, h, w).numpy()
    fallback = guide.reshape(3, h, w).numpy()
    sigma = chroma_sigma * splat.scale
    context = _chroma_radius(sigma) if sigma > 0 else 0
    out = np.empty((h, w, 3), np.float32)
    for y0 in range(0, h, rows):
        y1 = min(y0 + rows, h)
        c0, c1 = max(y0 - context, 0), min(y1 + context, h)
        band_weight = weight[:, c0:c1]
        image = total[:, c0:c1] / np.maximum(band_weight, 1e-12)
        # One blend for all three colours, set by the sparsest: mixing one colour's splatted
        # value with another's demosaiced one paints colour fringes (false colour on a zone
        # plate).
        alpha = np.clip(band_weight.min(axis=0) / full_weight, 0.0, 1.0)
        camera = alpha * image + (1 - alpha) * fallback[:, c0:c1]
        camera = camera.transpose(1, 2, 0)
        linear = np.clip((camera * reference.gains) @ reference.rgb_cam.T, 0.0, 1.0)
        if sigma > 0:  # on what the output can hold: clipped highlights stay white
            linear = np.clip(smooth_chroma(linear, sigma), 0.0, 1.0)
        out[y0:y1] = linear_to_srgb(linear[y0 - c0 : y1 - c0])
    return out
