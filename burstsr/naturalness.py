"""A no-reference naturalness score: NIQE (Mittal, Soundararajan & Bovik, "Making a 'Completely
Blind' Image Quality Analyzer", IEEE SPL 20(3), 2013), with its pristine model fitted here.

An image's local contrast-normalised luma (MSCN coefficients) follows characteristic
distributions in natural photographs. For every 96x96 patch, at the image's scale and at half
of it, NIQE measures 18 statistics of them: the shape and spread of a generalised Gaussian fitted
to the coefficients, and of asymmetric generalised Gaussians fitted to the products of
neighbours in four directions. The pristine model is a multivariate Gaussian of these 36
features over the sharpest patches of a set of good photographs (:func:`fit_pristine`; the
benchmarks fit it on the training HR images, T91 + BSD200, since no published model can be
downloaded here); an image's score is the distance between that Gaussian and the one fitted to
its own patches. Lower is more natural. Over-smooth restorations and painted-on artefacts both
score higher than photographs; compare scores made with one pristine model.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.special import gamma

PATCH = 96
_ALPHAS = np.arange(0.2, 10.0, 0.001)
# (E|x|)^2 / E[x^2] of a generalised Gaussian of shape alpha: the moment ratio both fits invert.
_RATIO = gamma(2 / _ALPHAS) ** 2 / (gamma(1 / _ALPHAS) * gamma(3 / _ALPHAS))


@dataclass(frozen=True)
class Pristine:
    """The pristine model: mean ``(36,)`` and covariance ``(36, 36)`` of the patch features."""

    mean: np.ndarray
    cov: np.ndarray

    def save(self, path) -> None:
        np.savez(path, mean=self.mean, cov=self.cov)

    @classmethod
    def load(cls, path) -> Pristine:
        with np.load(path) as data:
            return cls(data["mean"], data["cov"])


def _luma(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3:
        img = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    return img * 255.0


def _mscn(gray: np.ndarray) -> np.ndarray:
    mu = cv2.GaussianBlur(gray, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    var = cv2.GaussianBlur(gray * gray, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE) - mu * mu
    return (gray - mu) / (np.sqrt(np.abs(var)) + 1.0)


def _ggd(x: np.ndarray) -> tuple[float, float]:
    """Shape and variance of a zero-mean generalised Gaussian fitted by moment matching."""
    sigma_sq = float(np.mean(x * x))
    e = float(np.mean(np.abs(x)))
    rho = e * e / max(sigma_sq, 1e-12)
    return float(_ALPHAS[np.argmin(np.abs(_RATIO - rho))]), sigma_sq


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """Shape, mean, left and right variances of an asymmetric generalised Gaussian."""
    left, right = x[x < 0], x[x >= 0]
    left_sq = float(np.mean(left * left)) if left.size else 1e-12
    right_sq = float(np.mean(right * right)) if right.size else 1e-12
    gamma_hat = np.sqrt(left_sq) / max(np.sqrt(right_sq), 1e-12)
    r_hat = float(np.mean(np.abs(x))) ** 2 / max(float(np.mean(x * x)), 1e-12)
    rho = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = float(_ALPHAS[np.argmin(np.abs(_RATIO - rho))])
    scale = gamma(1 / alpha) / gamma(3 / alpha)
    mean = (np.sqrt(right_sq) - np.sqrt(left_sq)) * gamma(2 / alpha) / gamma(1 / alpha)
    return alpha, float(mean * np.sqrt(scale)), left_sq, right_sq


def _patch_features(mscn: np.ndarray) -> list[float]:
    alpha, var = _ggd(mscn)
    features = [alpha, var]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = mscn[: mscn.shape[0] - dy, max(0, -dx) : mscn.shape[1] - max(0, dx)]
        b = mscn[dy:, max(0, dx) : mscn.shape[1] + min(0, dx) or None]
        shape, mean, left, right = _aggd((a * b).ravel())
        features += [shape, mean, left, right]
    return features


def patch_features(img: np.ndarray, patch: int = PATCH) -> tuple[np.ndarray, np.ndarray]:
    """The 36 features of every whole ``patch`` x ``patch`` block ``(N, 36)``, and each block's
    sharpness (mean local deviation) ``(N,)``."""
    gray = _luma(img)
    h, w = gray.shape[0] // patch * patch, gray.shape[1] // patch * patch
    if h == 0 or w == 0:
        raise ValueError(f"image smaller than one {patch}x{patch} patch")
    gray = gray[:h, :w]
    half = cv2.resize(gray, (w // 2, h // 2), interpolation=cv2.INTER_CUBIC)
    m1, m2 = _mscn(gray), _mscn(half)
    mu = cv2.GaussianBlur(gray, (7, 7), 7 / 6)
    deviation = np.sqrt(np.abs(cv2.GaussianBlur(gray * gray, (7, 7), 7 / 6) - mu * mu))
    rows, sharp = [], []
    for y in range(0, h, patch):
        for x in range(0, w, patch):
            p1 = m1[y : y + patch, x : x + patch]
            p2 = m2[y // 2 : (y + patch) // 2, x // 2 : (x + patch) // 2]
            rows.append(_patch_features(p1) + _patch_features(p2))
            sharp.append(float(deviation[y : y + patch, x : x + patch].mean()))
    return np.array(rows), np.array(sharp)


def fit_pristine(images, *, sharpness: float = 0.75) -> Pristine:
    """Fit the pristine model on good photographs: the features of each image's patches whose
    sharpness is at least ``sharpness`` times that image's sharpest patch's."""
    selected = []
    for img in images:
        features, sharp = patch_features(img)
        selected.append(features[sharp >= sharpness * sharp.max()])
    features = np.concatenate(selected)
    if len(features) < 2:
        raise ValueError("too few patches to fit a pristine model")
    return Pristine(features.mean(axis=0), np.cov(features, rowvar=False))


def niqe(img: np.ndarray, pristine: Pristine) -> float:
    """NIQE of ``img`` (RGB or gray in [0, 1], at least 192 px a side) against ``pristine``:
    lower is more natural."""
    features, _ = patch_features(img)
    if len(features) < 2:
        raise ValueError("NIQE needs an image of at least two 96x96 patches")
    mean = features.mean(axis=0)
    cov = np.cov(features, rowvar=False)
    diff = pristine.mean - mean
    pooled = (pristine.cov + cov) / 2
    return float(np.sqrt(max(diff @ np.linalg.pinv(pooled) @ diff, 0.0)))
