"""A small camera pipeline: what a phone or compact camera does to the light it records.

Each step is a small pure function; :func:`simulate_camera_burst` chains them for a handheld
burst of one high-resolution image:

    sRGB -> linear -> handheld motion (shift, turn, zoom; some frames almost still)
         -> lens blur -> area downsampling -> Bayer mosaic (RGGB)
         -> Poisson-Gaussian noise (shot + read) -> demosaicing -> sRGB -> JPEG

The noise levels follow the camera model of Brooks et al., "Unprocessing Images for Learned Raw
Denoising" (CVPR 2019): ``variance = read + shot * x`` on the linear signal ``x`` in [0, 1],
with ``log(shot)`` uniform in ``[log 1e-4, log 1.2e-2]`` and ``log(read)`` normal about
``2.18 log(shot) + 1.2`` (std 0.26), which spans bright daylight to dim indoor light on phone
sensors. Every drawn parameter is kept in a :class:`CameraParams` that ``burstsr synth`` writes
into ``meta.json``; :class:`CameraRanges` says what is drawn from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class CameraRanges:
    """What :func:`draw_camera_params` draws from (the defaults of ``synth --degradation
    camera``). Motion is in frame pixels, degrees and relative zoom."""

    frames: tuple[int, int] = (2, 16)  # burst length, inclusive
    shift: float = 2.0  # largest handheld shift
    rotate: float = 1.0  # largest rotation
    zoom: float = 0.01  # largest zoom against the reference (0.01 = 1 %)
    still_share: tuple[float, float] = (0.0, 0.6)  # share of frames that barely move
    still_shift: float = 0.05  # how far an "almost still" frame moves at most
    blur: tuple[float, float] = (0.3, 0.9)  # lens blur sigma, frame pixels
    shot: tuple[float, float] = (1e-4, 1.2e-2)  # shot-noise factor (log-uniform)
    jpeg: tuple[int, int] = (60, 95)  # JPEG quality, inclusive


@dataclass(frozen=True)
class CameraParams:
    """One drawn camera: everything that made one simulated burst (saved in meta.json)."""

    frames: int
    blur: float
    shot: float
    read: float
    jpeg: int
    motions: list[dict] = field(default_factory=list)  # per frame: shift_x, shift_y, turn, zoom

    def to_dict(self) -> dict:
        return asdict(self)


# --- colour ------------------------------------------------------------------------------------


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The inverse sRGB transfer function (IEC 61966-2-1), encoded [0, 1] -> linear [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1), linear [0, 1] -> encoded [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(
        np.float32
    )


# --- optics and sensor -------------------------------------------------------------------------


def lens_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian point spread function of ``sigma`` pixels (reflected borders)."""
    if sigma <= 0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def optics(image: np.ndarray, blur: float, scale: int) -> np.ndarray:
    """The lens and the pixel grid: :func:`lens_blur` of ``blur`` frame pixels, then area
    downsampling by ``scale`` (``image`` on the ``scale`` times finer grid, linear light)."""
    blurred = lens_blur(image, blur * scale)
    if scale == 1:
        return blurred
    h, w = blurred.shape[0] // scale, blurred.shape[1] // scale
    return cv2.resize(blurred, (w, h), interpolation=cv2.INTER_AREA)


def mosaic(rgb: np.ndarray) -> np.ndarray:
    """Sample ``(H, W, 3)`` on an RGGB Bayer pattern (R at (0, 0), B at (1, 1)) -> ``(H, W)``."""
    cfa = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    cfa[0::2, 0::2] = rgb[0::2, 0::2, 0]
    cfa[0::2, 1::2] = rgb[0::2, 1::2, 1]
    cfa[1::2, 0::2] = rgb[1::2, 0::2, 1]
    cfa[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return cfa


def add_sensor_noise(
    raw: np.ndarray, *, shot: float, read: float, rng: np.random.Generator
) -> np.ndarray:
    """Poisson-Gaussian noise in its usual heteroscedastic Gaussian form: variance ``read +
    shot * x``; clipped to [0, 1] like a sensor's range."""
    variance = read + shot * np.clip(raw, 0.0, None)
    noisy = raw + rng.standard_normal(raw.shape).astype(np.float32) * np.sqrt(variance)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def demosaic(cfa: np.ndarray) -> np.ndarray:
    """RGGB ``(H, W)`` in [0, 1] -> ``(H, W, 3)`` RGB, OpenCV's edge-aware demosaicing on 16
    bits (what a camera's image processor does in its simplest form)."""
    raw16 = np.round(np.clip(cfa, 0.0, 1.0) * 65535).astype(np.uint16)
    # OpenCV names Bayer patterns from the second row: RGGB is its "BG" layout.
    rgb = cv2.demosaicing(raw16, cv2.COLOR_BayerBG2RGB_EA)
    return rgb.astype(np.float32) / 65535


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip ``(H, W, 3)`` RGB in [0, 1] through 8-bit JPEG at ``quality`` (4:2:0)."""
    bgr = np.round(np.clip(image, 0.0, 1.0)[:, :, ::-1] * 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255


# --- the whole camera --------------------------------------------------------------------------


def draw_camera_params(
    rng: np.random.Generator, ranges: CameraRanges = CameraRanges()
) -> CameraParams:
    """Draw one camera and one handheld motion per frame from ``ranges`` (frame 0: none)."""
    frames = int(rng.integers(ranges.frames[0], ranges.frames[1] + 1))
    log_shot = rng.uniform(np.log(ranges.shot[0]), np.log(ranges.shot[1]))
    log_read = rng.normal(2.18 * log_shot + 1.2, 0.26)
    still = rng.uniform(*ranges.still_share)
    motions = [{"shift_x": 0.0, "shift_y": 0.0, "turn": 0.0, "zoom": 0.0}]
    for _ in range(1, frames):
        if rng.random() < still:
            tx, ty = rng.uniform(-ranges.still_shift, ranges.still_shift, size=2)
            motions.append({"shift_x": tx, "shift_y": ty, "turn": 0.0, "zoom": 0.0})
        else:
            tx, ty = rng.uniform(-ranges.shift, ranges.shift, size=2)
            motions.append(
                {
                    "shift_x": tx,
                    "shift_y": ty,
                    "turn": rng.uniform(-ranges.rotate, ranges.rotate),
                    "zoom": rng.uniform(-ranges.zoom, ranges.zoom),
                }
            )
    return CameraParams(
        frames=frames,
        blur=float(rng.uniform(*ranges.blur)),
        shot=float(np.exp(log_shot)),
        read=float(np.exp(log_read)),
        jpeg=int(rng.integers(ranges.jpeg[0], ranges.jpeg[1] + 1)),
        motions=[{k: float(v) for k, v in m.items()} for m in motions],
    )


def motion_transform(motion: dict, size: tuple[int, int]) -> np.ndarray:
    """The 3x3 transform (reference -> frame pixel coordinates) of one drawn motion on an
    ``(h, w)`` grid: zoom and turn about the centre, then the shift."""
    h, w = size
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a = np.deg2rad(motion["turn"])
    z = 1.0 + motion["zoom"]
    linear = z * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    t = np.eye(3)
    t[:2, :2] = linear
    t[:2, 2] = np.array([cx, cy]) - linear @ np.array([cx, cy])
    t[:2, 2] += [motion["shift_x"], motion["shift_y"]]
    return t


@dataclass(frozen=True)
class CameraFrame:
    """One simulated camera frame: ``image`` the JPEG-decoded sRGB frame ``float32 (h, w, 3)``;
    ``raw`` the noisy linear RGGB mosaic ``float32 (h, w)`` it was developed from (without a
    mosaic: the noisy linear RGB ``(h, w, 3)``)."""

    image: np.ndarray
    raw: np.ndarray


def develop(
    linear_hr: np.ndarray,
    transform_hr: np.ndarray,
    params: CameraParams,
    *,
    scale: int,
    rng: np.random.Generator,
    warp: Callable[[np.ndarray, np.ndarray], np.ndarray],
    bayer: bool = True,
) -> CameraFrame:
    """One frame through the camera: move (``warp(image, transform)``), :func:`optics`,
    mosaic, add noise, demosaic, encode sRGB and JPEG. ``bayer=False``: a sensor that measures
    all three colours at every pixel (no mosaic, no demosaicing)."""
    small = np.clip(optics(warp(linear_hr, transform_hr), params.blur, scale), 0.0, 1.0)
    sensed = mosaic(small) if bayer else small
    raw = add_sensor_noise(sensed, shot=params.shot, read=params.read, rng=rng)
    image = jpeg(linear_to_srgb(demosaic(raw) if bayer else raw), params.jpeg)
    return CameraFrame(image=image, raw=raw)
