"""Feature-based motion estimates: ORB keypoints, ratio-tested matches, a RANSAC fit."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Features:
    """ORB keypoints and descriptors of one image (computed once for a burst's reference)."""

    keypoints: tuple
    descriptors: np.ndarray | None


def orb_features(gray: np.ndarray) -> Features:
    """ORB keypoints of a gray image, lightly blurred (more of them on larger images)."""
    orb = cv2.ORB_create(nfeatures=int(np.clip(gray.size / 150, 500, 3000)), fastThreshold=8)
    keypoints, descriptors = orb.detectAndCompute(
        _to_uint8(cv2.GaussianBlur(gray, (0, 0), 1.0)), None
    )
    return Features(tuple(keypoints), descriptors)


def orb_estimate(
    ref: np.ndarray | Features, frm: np.ndarray, motion: str
) -> tuple[np.ndarray, float] | str:
    """Fit the motion model to ORB matches between the reference (its gray image or its
    :func:`orb_features`) and a frame; returns (transform at this level, inlier ratio) or the
    reason it failed."""
    first = ref if isinstance(ref, Features) else orb_features(ref)
    second = orb_features(frm)
    kp1, d1, kp2, d2 = first.keypoints, first.descriptors, second.keypoints, second.descriptors
    if d1 is None or d2 is None or len(kp1) < 8 or len(kp2) < 8:
        return "too few keypoints (a flat or very dark image?)"
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(d1, d2, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < 8:
        return f"only {len(good)} distinctive matches"
    src = np.float32([kp1[m.queryIdx].pt for m in good])
    dst = np.float32([kp2[m.trainIdx].pt for m in good])
    threshold = 2.0
    if motion == "homography":
        transform, mask = cv2.findHomography(
            src, dst, cv2.RANSAC, threshold, maxIters=4000, confidence=0.999
        )
    elif motion == "affine":
        affine, mask = cv2.estimateAffine2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold, maxIters=4000
        )
        transform = None if affine is None else np.vstack([affine, [0, 0, 1]])
    else:
        partial, mask = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold, maxIters=4000
        )
        transform = None
        if partial is not None:
            inl = mask.ravel().astype(bool)
            transform = _fit_rigid(src[inl], dst[inl], translation_only=motion == "translation")
    if transform is None or mask is None:
        return "RANSAC found no consistent motion"
    inliers = int(mask.sum())
    if inliers < max(8, 0.1 * len(good)):
        return f"only {inliers} of {len(good)} matches agree on one motion"
    return transform.astype(np.float64), inliers / len(good)


def _to_uint8(gray: np.ndarray) -> np.ndarray:
    return np.clip(gray * 255 + 0.5, 0, 255).astype(np.uint8)


def _fit_rigid(src: np.ndarray, dst: np.ndarray, *, translation_only: bool) -> np.ndarray:
    """Least-squares rotation + translation (or translation alone) taking src points to dst."""
    s_mean, d_mean = src.mean(0), dst.mean(0)
    rot = np.eye(2)
    if not translation_only:
        rot = fit_rigid_matrix((dst - d_mean).T @ (src - s_mean))
    out = np.eye(3)
    out[:2, :2] = rot
    out[:2, 2] = d_mean - rot @ s_mean
    return out


def fit_rigid_matrix(m: np.ndarray) -> np.ndarray:
    """The rotation closest to a 2x2 matrix."""
    u, _, vt = np.linalg.svd(m)
    return u @ np.diag([1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
