"""Is an estimated transform believable? The correlation score of an alignment, and the test of
whether a transform is one a handheld camera can make."""

from __future__ import annotations

import cv2
import numpy as np

from burstsr.burst.orb import fit_rigid_matrix


def alignment_score(ref: np.ndarray, frm: np.ndarray, transform: np.ndarray) -> tuple[float, float]:
    """Correlation coefficient of ``ref`` and ``frm`` warped by ``transform`` (ref -> frame
    coordinates) over their overlap, after a light blur; and the overlap fraction."""
    h, w = ref.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(frm, transform, (w, h), flags=flags)
    mask = cv2.warpPerspective(np.ones_like(frm), transform, (w, h), flags=flags) > 0.999
    overlap = float(mask.mean())
    if mask.sum() < 64:
        return 0.0, overlap
    a = cv2.GaussianBlur(ref, (0, 0), 1.0)[mask].astype(np.float64)
    b = cv2.GaussianBlur(warped, (0, 0), 1.0)[mask].astype(np.float64)
    a -= a.mean()
    b -= b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return (float((a * b).sum() / denom) if denom > 0 else 0.0), overlap


def implausible(transform: np.ndarray, shape: tuple[int, int]) -> str:
    """A reason the transform cannot be a handheld camera motion, or "" when it can.

    Handheld frames differ by a shift, a turn, a little zoom and a little perspective. Compared
    with the closest similarity transform, the image corners may move by at most 5% of the
    diagonal, and the zoom must stay within 0.8..1.25.
    """
    h, w = shape
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float).T
    mapped = transform @ corners
    if np.any(mapped[2] <= 0):
        return "the estimated transform folds the image (points behind the camera)"
    src, dst = corners[:2].T, (mapped[:2] / mapped[2]).T
    # Closest similarity: dst ~ s R src + t (Umeyama).
    s_mean, d_mean = src.mean(0), dst.mean(0)
    cov = (dst - d_mean).T @ (src - s_mean)
    rot = fit_rigid_matrix(cov)
    scale = np.trace(rot.T @ cov) / np.sum((src - s_mean) ** 2)
    if not 0.8 < scale < 1.25:
        return f"the estimated transform zooms by {scale:.2f}, beyond a handheld motion"
    fitted = scale * (src - s_mean) @ rot.T + d_mean
    residual = np.sqrt(np.mean(np.sum((fitted - dst) ** 2, axis=1)))
    if residual > 0.05 * np.hypot(w, h):
        return "the estimated transform shears or tilts the image beyond a handheld motion"
    return ""
