"""Simulated handheld bursts: a high-resolution image seen through a shaking, noisy camera.

Frame ``k`` is the high-resolution image moved by a random sub-pixel motion (translation, rotation
and optionally a little perspective), area-downsampled by ``scale``, with Gaussian read noise,
optional shot noise and optional 8-bit quantisation. Frame 0 is the reference (no motion). The
true transforms are returned in the burstsr convention (reference -> frame pixel coordinates, on
the low-resolution grid), so tests and benchmarks can score registration and merging.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from burstsr.burst.camera import (
    CameraParams,
    CameraRanges,
    develop,
    draw_camera_params,
    linear_to_srgb,
    motion_transform,
    optics,
    srgb_to_linear,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulatedBurst:
    """Attributes:
    frames: ``float32 (h, w, 3)`` noisy low-resolution frames, frame 0 the reference.
    transforms: true 3x3 transforms, reference -> frame pixel coordinates (low resolution).
    clean: the noise-free reference frame (what a perfect merge at scale 1 recovers).
    hr: the high-resolution image, cropped to a multiple of ``scale``.
    """

    frames: list[np.ndarray]
    transforms: list[np.ndarray]
    clean: np.ndarray
    hr: np.ndarray
    raws: list[np.ndarray] | None = None  # camera bursts: the noisy linear RGGB mosaics
    camera: CameraParams | None = None  # camera bursts: everything that was drawn


def random_transform(
    rng: np.random.Generator,
    size: tuple[int, int],
    *,
    shift: float,
    rotate: float,
    perspective: float = 0.0,
) -> np.ndarray:
    """A random handheld motion on an ``(h, w)`` grid: translation up to ``shift`` px, rotation
    up to ``rotate`` degrees about the centre, corner offsets up to ``perspective`` px."""
    h, w = size
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a = np.deg2rad(rng.uniform(-rotate, rotate))
    tx, ty = rng.uniform(-shift, shift, size=2)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    centre = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    t = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]) @ centre @ rot @ np.linalg.inv(centre)
    if perspective > 0:
        src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
        dst = src + rng.uniform(-perspective, perspective, size=(4, 2)).astype(np.float32)
        t = t @ cv2.getPerspectiveTransform(src, dst).astype(np.float64)
    return t / t[2, 2]


def move_image(image: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """The image as a camera moved by ``transform`` sees it: what the reference shows at ``x``
    appears at ``transform @ x`` (Lanczos resampling, reflected borders)."""
    h, w = image.shape[:2]
    return cv2.warpPerspective(
        image,
        np.linalg.inv(transform),
        (w, h),
        flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )


def simulate_burst(
    hr: np.ndarray,
    *,
    frames: int = 8,
    scale: int = 4,
    noise: float = 0.02,
    shot_noise: float = 0.0,
    shift: float = 2.0,
    rotate: float = 1.0,
    perspective: float = 0.0,
    quantize: bool = True,
    seed: int = 0,
) -> SimulatedBurst:
    """Simulate a handheld burst of ``hr`` (``float32 (H, W, 3)`` in [0, 1]).

    Args:
        frames: number of frames (frame 0 has no motion).
        scale: integer area-downsampling factor from ``hr`` to the frames.
        noise: standard deviation of the Gaussian read noise, in [0, 1] units.
        shot_noise: signal-dependent variance factor (variance = noise**2 + shot_noise * x).
        shift, rotate, perspective: motion amplitudes in low-resolution pixels and degrees.
        quantize: round the frames to 8 bits, as a camera's JPEG/PNG output would be.
        seed: random seed; the same seed gives the same burst.
    """
    rng = np.random.default_rng(seed)
    h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
    hr = np.ascontiguousarray(hr[:h, :w], dtype=np.float32)
    lr_size = (h // scale, w // scale)
    out_frames, transforms = [], []
    clean = None
    for k in range(frames):
        if k == 0:
            t_lr = np.eye(3)
        else:
            t_lr = random_transform(
                rng, lr_size, shift=shift, rotate=rotate, perspective=perspective
            )
        moved = move_image(hr, _lr_to_hr(t_lr, scale))
        lr = moved if scale == 1 else cv2.resize(moved, lr_size[::-1], interpolation=cv2.INTER_AREA)
        lr = np.clip(lr, 0.0, 1.0)
        if k == 0:
            clean = lr.copy()
        variance = noise**2 + shot_noise * lr
        noisy = lr + rng.standard_normal(lr.shape).astype(np.float32) * np.sqrt(variance)
        noisy = np.clip(noisy, 0.0, 1.0)
        if quantize:
            noisy = np.round(noisy * 255) / 255
        out_frames.append(noisy.astype(np.float32))
        transforms.append(t_lr)
    return SimulatedBurst(out_frames, transforms, clean, hr)


def _lr_to_hr(transform: np.ndarray, scale: int) -> np.ndarray:
    """The same motion on the ``scale`` times finer high-resolution grid."""
    if scale == 1:
        return transform
    s = float(scale)
    lr_to_hr = np.array([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1]])
    return lr_to_hr @ transform @ np.linalg.inv(lr_to_hr)


def simulate_camera_burst(
    hr: np.ndarray,
    *,
    scale: int = 4,
    ranges: CameraRanges = CameraRanges(),
    params: CameraParams | None = None,
    seed: int = 0,
    bayer: bool = True,
) -> SimulatedBurst:
    """Simulate a handheld burst of ``hr`` (sRGB ``float32 (H, W, 3)``) through a camera
    (:mod:`burstsr.burst.camera`): motion with zoom and almost-still frames, lens blur, Bayer
    mosaic, shot and read noise, demosaicing, sRGB, JPEG.

    Args:
        scale: integer area-downsampling factor from ``hr`` to the frames.
        ranges: what the camera and the motion are drawn from.
        params: a camera drawn already (its frame count and motions are used as they are).
        seed: random seed; the same seed gives the same burst.
        bayer: ``False`` for a sensor without a colour-filter mosaic (no demosaicing; ``raws``
            are then RGB), to measure what the mosaic costs.

    Returns:
        The burst, with ``raws`` (the noisy linear mosaics) and ``camera`` (the drawn
        parameters) set; ``clean`` is the reference frame through the camera without noise
        or JPEG.
    """
    rng = np.random.default_rng(seed)
    if params is None:
        params = draw_camera_params(rng, ranges)
    h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
    hr = np.ascontiguousarray(hr[:h, :w], dtype=np.float32)
    linear = srgb_to_linear(hr)
    lr_size = (h // scale, w // scale)
    frames, raws, transforms = [], [], []
    for motion in params.motions:
        t_lr = motion_transform(motion, lr_size)
        frame = develop(
            linear,
            _lr_to_hr(t_lr, scale),
            params,
            scale=scale,
            rng=rng,
            warp=move_image,
            bayer=bayer,
        )
        frames.append(frame.image)
        raws.append(frame.raw)
        transforms.append(t_lr)
    clean = linear_to_srgb(optics(linear, params.blur, scale))
    return SimulatedBurst(frames, transforms, clean, hr, raws=raws, camera=params)


def corner_error(estimated: np.ndarray, true: np.ndarray, size: tuple[int, int]) -> float:
    """RMS distance (pixels) between where two transforms put the four image corners."""
    h, w = size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float).T
    a, b = estimated @ corners, true @ corners
    a, b = a[:2] / a[2], b[:2] / b[2]
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=0))))
