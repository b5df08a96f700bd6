"""Warping and merging on the CPU with OpenCV and numpy: the fast path of ``merge_burst``.

The same arithmetic as the torch path (:mod:`burstsr.burst.warp`, :mod:`burstsr.burst.merge`),
for the streaming merges ``mean`` and ``robust`` on the frames' own grid, with OpenCV's
vectorised, multi-threaded ``warpPerspective`` in place of ``grid_sample`` and without loading
torch at all. Both use Keys' cubic (a = -0.75) with replicated borders; OpenCV rounds sampling
positions to 1/32 px, which moves a sample by at most 1/64 px (tests check that the two paths
agree within 1/255 on photographs). Images here are ``float32 (H, W, 3)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import cv2
import numpy as np

from burstsr.io.image import unit_float

CPU_MERGES = ("mean", "robust")
_MAD_TO_STD = 1.4826
_COMPARE_PIXELS = 1_000_000  # as burst/merge.py: large frames are compared on a pooled luma
_FLAGS = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}


def warp_frame(
    pixels: np.ndarray,
    transform: np.ndarray,
    *,
    interpolation: str = "bicubic",
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``pixels`` as seen from the reference: output ``(x, y)`` samples ``transform @ (x, y, 1)``.

    Returns ``(warped float32 (H, W, C), mask bool (H, W))``; the mask is False where the sample
    falls outside the frame (those values are border-replicated and must not be merged).
    ``out``: arrays of those shapes (the mask as uint8) to write into instead of new ones.
    """
    h, w = pixels.shape[:2]
    matrix = np.asarray(transform, dtype=np.float64)
    warped, inside = out if out is not None else (None, None)
    warped = cv2.warpPerspective(
        pixels,
        matrix,
        (w, h),
        dst=None if warped is None else warped.reshape(pixels.shape),
        flags=_FLAGS[interpolation] | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if warped.ndim == 2:
        warped = warped[:, :, None]
    # Inside where the sample (u, v) has 0 <= u <= w - 1 and 0 <= v <= h - 1 (within the torch
    # path's 1e-3 px): the nearest pixel of (u, v), mapped so that that range spans an image one
    # pixel smaller, all 255 (its ends fall between pixels, not on a rounding tie). Twice as
    # fast as warping a full-size image bilinearly and keeping its 255s.
    if min(h, w) < 2:
        return warped, _inside_exactly(matrix, h, w)
    inside = cv2.warpPerspective(
        _ones(h - 1, w - 1),
        _onto_smaller(h, w) @ matrix,
        (w, h),
        dst=inside,
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    np.equal(inside, 255, out=inside)  # 0 / 1: a bool view, no copy
    return warped, inside.view(bool)


_EDGE = 1e-3  # how far past the frame's edge pixels a sample still counts as inside (as warp.py)


def _onto_smaller(h: int, w: int) -> np.ndarray:
    """Frame coordinates -> those of an image one pixel smaller whose pixels' extent,
    [-1/2, w - 3/2], is the frame's [-_EDGE, w - 1 + _EDGE]."""
    sx, sy = (w - 1) / (w - 1 + 2 * _EDGE), (h - 1) / (h - 1 + 2 * _EDGE)
    return np.array([[sx, 0, _EDGE * sx - 0.5], [0, sy, _EDGE * sy - 0.5], [0, 0, 1.0]])


def _inside_exactly(matrix: np.ndarray, h: int, w: int) -> np.ndarray:
    """The mask of :func:`warp_frame` computed point by point (frames one pixel wide or high)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    d = matrix[2, 0] * xs + matrix[2, 1] * ys + matrix[2, 2]
    u = (matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]) / d
    v = (matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]) / d
    e = _EDGE
    return (d > 0) & (u >= -e) & (u <= w - 1 + e) & (v >= -e) & (v <= h - 1 + e)


@functools.lru_cache(maxsize=1)
def _ones(h: int, w: int) -> np.ndarray:
    """A (h, w) uint8 image of 255, made once per frame size (it is only read)."""
    return np.full((h, w), 255, np.uint8)


def _pool_factor(height: int, width: int) -> int:
    return max(1, min(round(math.sqrt(height * width / _COMPARE_PIXELS)), height, width))


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` cells of an ``(H, W)`` or ``(H, W, C)`` image; partial
    cells at the edges average what they hold (torch's ``avg_pool2d(ceil_mode=True)``)."""
    h, w = image.shape[:2]
    rest = image.shape[2:]
    rows, cols = h // factor, w // factor
    out = np.empty((-(-h // factor), -(-w // factor), *rest), np.float32)
    whole = cv2.resize(
        image[: rows * factor, : cols * factor], (cols, rows), interpolation=cv2.INTER_AREA
    )
    out[:rows, :cols] = whole.reshape(rows, cols, *rest)
    if cols * factor < w:  # the right column of partial cells
        strip = image[: rows * factor, cols * factor :]
        out[:rows, cols] = strip.reshape(rows, factor, -1, *rest).mean(axis=(1, 2))
    if rows * factor < h:  # the bottom row
        strip = image[rows * factor :, : cols * factor]
        out[rows, :cols] = strip.reshape(h - rows * factor, cols, factor, *rest).mean(axis=(0, 2))
        if cols * factor < w:
            corner = image[rows * factor :, cols * factor :]
            out[rows, cols] = corner.reshape(-1, *rest).mean(axis=0)
    return out


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma + 0.5))
    size = 2 * radius + 1
    return cv2.GaussianBlur(image, (size, size), sigma, borderType=cv2.BORDER_REFLECT_101)


def local_luma(image: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Gaussian-smoothed mean of the channels (on a pooled grid above ~1 MP): what the robust
    merge compares, as :func:`burstsr.burst.merge.local_luma`."""
    factor = _pool_factor(*image.shape[:2])
    if factor > 1:  # pool first (the channel mean and the cell mean commute): less to allocate
        image = _block_mean(image, factor)
    if image.ndim == 3 and image.shape[2] > 1:
        weights = np.full((1, image.shape[2]), 1 / image.shape[2], np.float32)
        luma = cv2.transform(image, weights)
    else:
        luma = image.reshape(image.shape[:2])
    return _gaussian_blur(np.ascontiguousarray(luma, dtype=np.float32), max(sigma / factor, 0.5))


def robust_weights(
    ref_local: np.ndarray,
    image: np.ndarray,
    mask: np.ndarray,
    *,
    sigma: float = 1.5,
    tolerance: float = 2.5,
    spread: int = 3,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Per-pixel weight ``float32 (H, W)`` in [0, 1] of an aligned frame against the
    reference's :func:`local_luma`; 0 outside ``mask`` (see ``merge.merge_robust``). ``out``:
    an array of that shape to write into."""
    d = np.abs(local_luma(image, sigma) - ref_local)
    h, w = mask.shape
    factor = _pool_factor(h, w)
    small_mask = mask
    if factor > 1:  # valid where the whole pooled cell is
        inside = mask.view(np.uint8) * np.uint8(255)  # 0 or 255: a cell's mean is 255 if all are
        small_mask = _block_mean(inside, factor) > 254.5
    valid = d[small_mask]
    sample = valid[:: max(1, valid.size // 1_000_000)]
    s = 1.0
    if sample.size:  # the lower median, as torch's
        lower = np.partition(sample, (sample.size - 1) // 2)[(sample.size - 1) // 2]
        s = max(_MAD_TO_STD * float(lower), 1e-4)
    weight = np.exp(-np.square(np.maximum(d / s - tolerance, 0.0))).astype(np.float32)
    if spread > 1:
        weight = cv2.erode(weight, np.ones((spread, spread), np.uint8))
    if factor > 1:
        weight = cv2.resize(weight, (w, h), dst=out, interpolation=cv2.INTER_LINEAR)
    return cv2.multiply(weight, mask.view(np.uint8), dst=out, dtype=cv2.CV_32F)


class CpuStack:
    """A streaming ``mean`` or ``robust`` merge onto the reference's grid.

    ``add`` warps a frame and accumulates it; ``result`` divides. Memory: the accumulator, its
    weights and one warped frame, whatever the burst's length.
    """

    def __init__(
        self, reference: np.ndarray, *, method: str, interpolation: str, in_place: bool = False
    ) -> None:
        """``in_place``: accumulate into ``reference`` itself when it is a float32 array
        (the caller gives it up; at 12 MP that saves a 144 MB copy)."""
        if method not in CPU_MERGES:
            raise ValueError(f"method must be one of {CPU_MERGES}, got {method!r}")
        self.interpolation = interpolation
        if in_place:
            self.total = np.ascontiguousarray(reference, dtype=np.float32)
        else:
            self.total = np.array(reference, dtype=np.float32, copy=True)
        self.weight = np.ones(reference.shape[:2], np.float32)
        self.ref_local = local_luma(self.total) if method == "robust" else None
        # Buffers reused for every frame (allocating large arrays afresh costs page faults).
        self._warped = np.empty_like(self.total)
        self._inside = np.empty(reference.shape[:2], np.uint8)
        self._weight = np.empty(reference.shape[:2], np.float32)
        self._frame: np.ndarray | None = None  # integer frames as float, made on first use

    def add(
        self,
        pixels: np.ndarray,
        transform: np.ndarray,
        *,
        on_warped: Callable[[np.ndarray, np.ndarray], None] | None = None,
    ) -> None:
        """Warp ``pixels`` (float32 in [0, 1], or uint8 / uint16 samples) onto the reference
        grid and add them. ``on_warped`` sees the warped frame and its mask before they are
        weighted (in place) and added."""
        if pixels.dtype in (np.uint8, np.uint16):  # into one reused buffer: no page faults
            if self._frame is None:
                self._frame = np.empty_like(self.total)
            pixels = unit_float(pixels, out=self._frame.reshape(pixels.shape))
        warped, mask = warp_frame(
            pixels, transform, interpolation=self.interpolation, out=(self._warped, self._inside)
        )
        if on_warped is not None:
            on_warped(warped, mask)
        if self.ref_local is not None:
            weight = robust_weights(self.ref_local, warped, mask, out=self._weight)
        else:  # the mean
            np.copyto(self._weight, mask)
            weight = self._weight
        # In place: a weight repeated per channel for a fused multiply-add (cv2.accumulateProduct)
        # was 2 % faster at 12 MP but held another frame-sized float buffer.
        np.multiply(warped, weight[:, :, None], out=warped)
        self.total += warped
        self.weight += weight

    def result(self) -> np.ndarray:
        """The merged image, ``float32 (H, W, C)``."""
        floor = 1e-6 if self.ref_local is not None else 1.0
        np.maximum(self.weight, floor, out=self.weight)
        return np.divide(self.total, self.weight[:, :, None], out=self.total)
