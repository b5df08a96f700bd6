"""Back-projection: make the restored image agree with the frames it was made from.

The refiner restores the merge, and nothing ties its output to the measurements: made x4
smaller and moved as each frame was, it need not give that frame back. Iterative
back-projection (M. Irani and S. Peleg, "Improving Resolution by Image Registration", 1991)
closes that gap. Each iteration predicts every frame from the current image (moved by the
frame's motion, then each block of ``scale x scale`` pixels averaged, as the sensor's pixels
do), and adds back the mean of the frames' residuals, each spread over the block it came from
and moved back::

    image += step * mean_k( move_k^-1( spread(frame_k - area(move_k(image))) ) )

Where a frame shows something the image does not (an object that moved, an area aligned
wrongly), its residual is far beyond the noise: :func:`agreement` leaves such areas of a frame
out, so they are not painted in as ghosts. Where the mean residual is no larger than the noise
of a mean of that many frames, it is mostly that noise: :func:`shrink` lets only its part above
the noise through, so smooth areas, which the refiner already restores well, are not made
noisy.

That model of the camera (motion, then area sampling) is only right for some bursts: frames
downscaled from sharp photographs, clean simulated bursts, sensors without a visible lens blur.
Where the frames are softer than the model predicts (lens blur, demosaicing, JPEG), pushing the
image toward them blurs it. So :func:`fits_area_sampling` first asks the frames: the restored
image, predicted through a lens blur of 0 and of a little more, must explain the frames best
with none (docs/benchmarks.md has the measurements behind this test).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from burstsr.burst.result import FrameReport
    from burstsr.io import Burst

BLURS = (0.0, 0.2)  # lens blurs (frame pixels) the fit compares
MIN_FRAMES = 4  # auto back-projects bursts of at least this many frames (docs/benchmarks.md)
ITERATIONS = 6  # most of the gain (docs/benchmarks.md); about 1.5 s a MP out, 7 frames, 2 cores
STEP = 1.0
ROBUST_CUTOFF = 4.685  # Tukey's biweight constant, in robust spreads of a frame's residual
SHRINK = 1.0  # the mean residual is shrunk against this many times the noise of the mean
BAND_ROWS = 1024  # output rows back-projected at a time (bounded memory)
BAND_CONTEXT = 16  # output rows one iteration reaches: resampling, a block, the 3 x 3 erosion
# Bytes :func:`back_project` holds per output pixel of a band at its peak (17 float32 planes:
# the band, its update, weight and noise, a frame's prediction, spread residual and mask, and
# their warps back), and of the whole output (the back-projected copy); docs/benchmarks.md.
BACK_PROJECTION_BYTES = 17 * 4
BACK_PROJECTED_BYTES = 3 * 4


@dataclass(frozen=True)
class Observation:
    """One frame as the camera measured it: ``frame`` ``float32 (h, w, 3)`` in [0, 1] (the
    encoding the merge and the restored image share) and ``transform``, the 3x3 map from the
    reference frame's pixel coordinates to this frame's (what the merge's report holds)."""

    frame: np.ndarray
    transform: np.ndarray


def fine_transform(transform: np.ndarray, scale: int) -> np.ndarray:
    """``transform`` (frame pixels) as the same motion on a grid ``scale`` times finer (pixel
    centres: frame pixel ``x`` covers fine pixels ``scale * x .. scale * x + scale - 1``)."""
    s = float(scale)
    to_fine = np.array([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1]])
    return to_fine @ np.asarray(transform, np.float64) @ np.linalg.inv(to_fine)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma > 0 else image


def predict(
    image: np.ndarray,
    transform: np.ndarray,
    scale: int,
    blur: float = 0.0,
    interpolation: int = cv2.INTER_LANCZOS4,
) -> tuple[np.ndarray, np.ndarray]:
    """What a frame with ``transform`` would measure of ``image`` (``float32 (H, W, 3)``, on a
    grid ``scale`` times finer than the frames): moved (resampled with OpenCV's
    ``interpolation``), blurred by ``blur`` frame pixels, each ``scale x scale`` block averaged.
    Returns the prediction ``(H / scale, W / scale, 3)`` and where it is valid (``bool``: the
    block saw only the image, nothing beyond its edges)."""
    h, w = image.shape[0] // scale, image.shape[1] // scale
    fine = fine_transform(transform, scale)
    size = (w * scale, h * scale)
    flags = interpolation | cv2.WARP_INVERSE_MAP
    moved = cv2.warpPerspective(image, np.linalg.inv(fine), size, flags=flags,
                                borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    inside = cv2.warpPerspective(np.ones(size[::-1], np.float32), np.linalg.inv(fine), size,
                                 flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)  # fmt: skip
    moved = _blur(moved, blur * scale)
    prediction = cv2.resize(moved, (w, h), interpolation=cv2.INTER_AREA)
    margin = int(np.ceil(3 * blur)) + 1  # what the blur reaches, and the resampling's taps
    valid = cv2.resize(inside, (w, h), interpolation=cv2.INTER_AREA) >= 1.0
    valid = cv2.erode(valid.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)) > 0
    return prediction, valid


def residual_power(
    image: np.ndarray,
    observations: Sequence[Observation],
    scale: int,
    blurs: Sequence[float] = BLURS,
) -> dict[float, float]:
    """The mean squared difference between the frames and :func:`predict` of ``image``,
    for each lens blur in ``blurs`` (over the pixels valid for every blur)."""
    totals = dict.fromkeys(blurs, 0.0)
    count = 0.0
    for obs in observations:
        predictions = {blur: predict(image, obs.transform, scale, blur) for blur in blurs}
        valid = predictions[max(blurs)][1]  # the widest blur reaches furthest
        count += float(valid.sum()) * image.shape[2]
        for blur, (prediction, _) in predictions.items():
            h, w = prediction.shape[:2]
            totals[blur] += float(np.square(obs.frame[:h, :w] - prediction)[valid].sum())
    return {blur: total / max(count, 1.0) for blur, total in totals.items()}


def fits_area_sampling(
    image: np.ndarray, observations: Sequence[Observation], scale: int
) -> tuple[bool, dict[float, float]]:
    """Whether the frames look like ``image`` moved and area-sampled, with no lens blur: the
    prediction without blur explains them better than one with a blur of 0.2 frame pixels.
    Returns the answer and the residual powers it compared."""
    power = residual_power(image, observations, scale)
    return power[BLURS[0]] < power[BLURS[1]], power


def agreement(
    residual: np.ndarray, valid: np.ndarray, *, cutoff: float = ROBUST_CUTOFF
) -> np.ndarray:
    """How far to trust each pixel of a frame's ``residual`` (``(h, w, 3)``; ``valid``
    ``(h, w)``): ``float32 (h, w)`` in [0, 1], 0 outside ``valid``. Tukey's biweight of the
    largest channel's residual over ``cutoff`` times its robust spread (1.4826 x the median
    over the valid pixels), then the least over each pixel's 3 x 3 neighbourhood: where a frame
    shows something the image does not (an object that moved, a misregistered area), the
    residual is far beyond the noise, and that area of the frame is left out instead of being
    painted in as a ghost."""
    size = np.abs(residual).max(axis=2)
    spread = 1.4826 * float(np.median(size[valid])) if valid.any() else 0.0
    ratio = size / max(cutoff * spread, 1e-4)
    trust = np.square(np.clip(1.0 - np.square(ratio), 0.0, 1.0)) * valid
    return cv2.erode(trust.astype(np.float32), np.ones((3, 3), np.uint8))


def noise_level(residual: np.ndarray, valid: np.ndarray) -> float:
    """The robust spread of a frame's ``residual`` (``(h, w, 3)``) over the ``valid`` pixels:
    1.4826 x the median absolute value, the standard deviation of Gaussian noise."""
    return 1.4826 * float(np.median(np.abs(residual[valid]))) if valid.any() else 0.0


def shrink(mean: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``mean`` (``(H, W, 3)``, the frames' mean residual) shrunk in place where it is no larger
    than ``noise`` (``(H, W)``, the standard deviation of that mean): multiplied by
    ``m^2 / (m^2 + noise^2)``, a Wiener gain that keeps what stands above the noise."""
    floor = np.square(noise) + 1e-12
    for channel in range(mean.shape[2]):  # one plane of temporaries at a time
        part = mean[:, :, channel]
        gain = np.square(part)
        gain /= gain + floor
        part *= gain
    return mean


def back_project(
    image: np.ndarray,
    observations: Sequence[Observation],
    scale: int,
    *,
    iterations: int = ITERATIONS,
    step: float = STEP,
    shrinkage: float = SHRINK,
    progress: Callable[[int, int], None] | None = None,
    band_rows: int = BAND_ROWS,
) -> np.ndarray:
    """``image`` (``float32 (H, W, 3)`` in [0, 1], ``scale`` times the frames' size) after
    ``iterations`` of back-projection onto ``observations`` (see the module's docstring); each
    pixel's mean residual :func:`shrink`-ed against ``shrinkage`` times its noise (0: not at
    all); clipped to [0, 1]. ``progress(done, total)`` after each iteration (of each band).

    A taller image is back-projected in bands of ``band_rows`` output rows, each with the rows
    its iterations reach as context and the rows of every frame that see it
    (:func:`band_observations`), so the memory is that of a band: the same values as one pass,
    but for each frame's noise and spread being measured over the band's rows."""
    image = np.asarray(image, dtype=np.float32)  # read only: each band works on a copy
    bands = band_rows_of(image.shape[0], scale, iterations, band_rows)
    if len(bands) == 1:
        return _back_project(image, observations, scale, iterations, step, shrinkage, progress)
    out = np.empty_like(image)
    for index, (top, bottom, y0, y1) in enumerate(bands):
        rows = band_observations(observations, y0 // scale, (y1 - y0) // scale)

        def banded(done: int, total: int, index: int = index) -> None:
            if progress is not None:
                progress(index * total + done, len(bands) * total)

        part = _back_project(image[y0:y1], rows, scale, iterations, step, shrinkage, banded)
        out[top:bottom] = part[top - y0 : bottom - y0]
        del part
    return out


def band_rows_of(
    height: int, scale: int, iterations: int = ITERATIONS, band_rows: int = BAND_ROWS
) -> list[tuple[int, int, int, int]]:
    """How :func:`back_project` splits an image of ``height`` output rows: ``(top, bottom, y0,
    y1)`` for each band, rows ``top .. bottom`` kept from a pass over ``y0 .. y1`` (the band and
    the rows ``iterations`` reach around it, whole frame rows); one band when that is all."""
    band = max(scale, band_rows // scale * scale)
    halo = scale * -(-BAND_CONTEXT * iterations // scale)
    if height <= band + 2 * halo:
        return [(0, height, 0, height)]
    return [
        (top, min(top + band, height), max(top - halo, 0), min(top + band + halo, height))
        for top in range(0, height, band)
    ]


def band_observations(
    observations: Sequence[Observation], y0: int, height: int
) -> list[Observation]:
    """The observations of the reference's rows ``y0 .. y0 + height`` (frame pixels, the whole
    width) as a problem of their own: each frame cut to ``height`` of its rows, those where the
    band's middle lands in it (moved as the frame moved), its motion re-expressed between the
    crops. Rows a frame's crop misses (a turn spreads the band over more rows) are left out by
    :func:`predict`'s valid mask: the caller's context rows around the band let a frame turned by
    as many rows across the width still see all of the band itself."""
    cropped = []
    for obs in observations:
        fh, fw = obs.frame.shape[:2]
        transform = np.asarray(obs.transform, np.float64)
        middle = transform @ np.array([(fw - 1) / 2, y0 + (height - 1) / 2, 1.0])
        centre = middle[1] / middle[2]
        top = int(np.clip(round(centre - (height - 1) / 2), 0, max(fh - height, 0)))
        to_band = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
        to_crop = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -top], [0.0, 0.0, 1.0]])
        frame = np.ascontiguousarray(obs.frame[top : top + height])
        cropped.append(Observation(frame, to_crop @ transform @ to_band))
    return cropped


def _back_project(
    image: np.ndarray,
    observations: Sequence[Observation],
    scale: int,
    iterations: int,
    step: float,
    shrinkage: float,
    progress: Callable[[int, int], None] | None,
) -> np.ndarray:
    """:func:`back_project` of one band: a copy of ``image``, updated and returned."""
    image = np.array(image, dtype=np.float32)
    height, width = image.shape[:2]
    for done in range(1, iterations + 1):
        update = np.zeros_like(image)
        weight = np.zeros(image.shape[:2], np.float32)
        variance = np.zeros(image.shape[:2], np.float32)  # of the frames' residuals, summed
        for obs in observations:
            # Bicubic: a seventh of Lanczos's time at the same gain (docs/benchmarks.md).
            prediction, valid = predict(image, obs.transform, scale, interpolation=cv2.INTER_CUBIC)
            h, w = prediction.shape[:2]
            residual = obs.frame[:h, :w] - prediction
            sigma = noise_level(residual, valid)
            trust = agreement(residual, valid)
            residual *= trust[:, :, None]
            spread = cv2.resize(residual, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
            mask = cv2.resize(trust, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
            fine = fine_transform(obs.transform, scale)
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            update += cv2.warpPerspective(spread, fine, (width, height), flags=flags)
            seen = cv2.warpPerspective(mask, fine, (width, height), flags=flags)
            weight += seen
            seen *= sigma**2
            variance += seen
            del spread, mask, seen
        # Each pixel takes the mean residual of the frames that saw it, less their noise.
        count = np.maximum(weight, 1.0)
        update /= count[:, :, None]
        if shrinkage > 0:
            np.sqrt(variance, out=variance)
            variance *= shrinkage
            variance /= count  # now the noise of the mean
            shrink(update, variance)
        del weight, variance, count
        update *= step
        image += update
        np.clip(image, 0.0, 1.0, out=image)
        if progress is not None:
            progress(done, iterations)
    return image


def central_region(height: int, width: int, side: int = 256) -> tuple[int, int, int, int]:
    """``x0, y0, width, height`` of the central region of a ``height x width`` frame, at most
    ``side`` pixels square: where ``auto`` tests the frames."""
    h, w = min(height, side), min(width, side)
    return (width - w) // 2, (height - h) // 2, w, h


def worth_back_projecting(
    observations: Sequence[Observation],
    merge: np.ndarray,
    enhance: Callable[..., np.ndarray],
    region: tuple[int, int, int, int],
    *,
    grid: int,
    confidence: np.ndarray | None = None,
) -> tuple[bool, dict[float, float]]:
    """``run --back-project auto``'s test, on ``region`` (``x0, y0, width, height`` of the
    frames, :func:`central_region`; ``observations``: the frames cut to it,
    :func:`crop_observations`). At least :data:`MIN_FRAMES` frames (with fewer, the mean
    residual is mostly their noise: on smooth scenes back-projection then costs PSNR), and
    frames that look area-sampled: ``enhance`` (the model, called as
    ``enhance(image, confidence=...)``) restores the region of ``merge`` (on a grid ``grid``
    times finer than the frames, ``confidence`` on the same grid) and
    :func:`fits_area_sampling` compares it with the frames. Returns the answer and the residual
    powers compared (none with too few frames)."""
    if len(observations) < MIN_FRAMES:
        return False, {}
    x0, y0, w, h = region
    g = grid
    box = (slice(y0 * g, (y0 + h) * g), slice(x0 * g, (x0 + w) * g))
    restored = enhance(merge[box], confidence=None if confidence is None else confidence[box])
    return fits_area_sampling(restored, observations, restored.shape[0] // h)


def burst_observations(
    burst: Burst,
    reports: Sequence[FrameReport],
    region: tuple[int, int, int, int] | None = None,
) -> list[Observation]:
    """The frames a merge used (``reports``: its :attr:`MergeResult.frames`), read again from
    ``burst``, with the motions it found (the reference's: none); with ``region`` (``x0, y0,
    width, height``) each cut to it as :func:`crop_observations` does, one frame in memory
    whole at a time. Gray frames get three equal channels, as the merge gives them."""
    observations = []
    for report in reports:
        if not report.used:
            continue
        transform = np.eye(3) if report.transform is None else np.asarray(report.transform)
        pixels = burst.read(report.index).pixels
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        frame = np.empty((*pixels.shape[:2], 3), np.float32)
        frame[:] = pixels[:, :, :3]  # three equal channels from one
        del pixels
        observation = Observation(frame, transform)
        if region is not None:  # only the region is kept
            observation = crop_observations([observation], *region)[0]
        observations.append(observation)
    return observations


def crop_observations(
    observations: Sequence[Observation], x0: int, y0: int, width: int, height: int
) -> list[Observation]:
    """The observations of the reference's region ``x0, y0, width, height`` (frame pixels) as
    a problem of its own: each frame cut to the same region, its motion re-expressed between
    the two crops' coordinates (what moves out of the region is left out by
    :func:`predict`'s valid mask)."""
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    return [
        Observation(
            np.ascontiguousarray(obs.frame[y0 : y0 + height, x0 : x0 + width]),
            np.linalg.inv(shift) @ obs.transform @ shift,
        )
        for obs in observations
    ]
