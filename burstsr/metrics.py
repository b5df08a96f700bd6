"""Image quality: PSNR and SSIM, on RGB or on the Y (luma) channel, with a border crop.

The super-resolution field reports PSNR/SSIM on Y (ITU-R BT.601, as MATLAB's ``rgb2ycbcr``)
with ``border`` pixels cropped from every side; both are options here.
Reference: Z. Wang et al., "Image quality assessment: from error visibility to structural
similarity", IEEE TIP 13(4), 2004.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma in [16/255, 235/255] of an RGB image in [0, 1], as MATLAB ``rgb2ycbcr``."""
    return (16.0 + img[..., 0] * 65.481 + img[..., 1] * 128.553 + img[..., 2] * 24.966) / 255.0


def _prepare(a: np.ndarray, b: np.ndarray, border: int, y_channel: bool) -> tuple:
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if y_channel and a.ndim == 3:
        a, b = rgb_to_y(a), rgb_to_y(b)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return a, b


def psnr(
    a: np.ndarray,
    b: np.ndarray,
    *,
    border: int = 0,
    y_channel: bool = False,
    data_range: float = 1.0,
) -> float:
    """Peak signal-to-noise ratio in dB between two float images in [0, data_range]."""
    a, b = _prepare(a, b, border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    *,
    border: int = 0,
    y_channel: bool = False,
    data_range: float = 1.0,
) -> float:
    """Mean structural similarity (Gaussian window, sigma 1.5), averaged over channels."""
    a, b = _prepare(a, b, border, y_channel)
    if a.ndim == 3:
        return float(
            np.mean([_ssim_2d(a[..., c], b[..., c], data_range) for c in range(a.shape[2])])
        )
    return _ssim_2d(a, b, data_range)


def _ssim_2d(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    blur = lambda x: gaussian_filter(x, 1.5, truncate=3.5)  # noqa: E731  (11x11 window)
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    r = 5  # drop the half-window at the edges, where the filter sees padding
    return float(np.mean((num / den)[r:-r, r:-r]))


def periodic_pattern(img: np.ndarray, *, period: int = 4) -> float:
    """How strongly ``img`` repeats a pattern with the given period (a "screen door"), in 8-bit
    levels: the RMS, over the ``period x period`` pixel phases, of the mean high-pass luma
    (luma minus its Gaussian blur, sigma 2) at each phase. A natural image, or one upscaled
    smoothly, scores well under 0.1; a fine-grid merge that takes whichever few samples landed
    near each pixel paints its sampling grid in and scores higher."""
    y = rgb_to_y(np.asarray(img, dtype=np.float64)) if img.ndim == 3 else np.asarray(img, float)
    h, w = y.shape[0] // period * period, y.shape[1] // period * period
    high = (y - gaussian_filter(y, 2.0, mode="reflect"))[:h, :w] * 255
    phases = high.reshape(h // period, period, w // period, period).mean(axis=(0, 2))
    return float(np.sqrt(np.mean(phases**2)))


def texture(img: np.ndarray) -> float:
    """Mean absolute Laplacian of the luma (3x3 kernel), in [0, 1] units: how much fine detail
    and texture an image carries. Noise counts too, so compare restorations of one scene."""
    y = rgb_to_y(np.asarray(img, dtype=np.float64)) if img.ndim == 3 else np.asarray(img, float)
    lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1]
    return float(np.mean(np.abs(lap)))


def texture_ratio(img: np.ndarray, truth: np.ndarray, *, border: int = 0) -> float:
    """:func:`texture` of ``img`` over that of the ground truth ``truth`` (1: as much fine
    detail as the truth; a smooth restoration scores well under 1)."""
    img, truth = _prepare(img, truth, border, False)
    return texture(img) / max(texture(truth), 1e-12)
