"""Estimating the transform that maps the reference frame onto another frame.

Every aligner returns a 3x3 float64 homography ``T`` that maps *reference* pixel coordinates to
*frame* pixel coordinates, pixel centres at integer coordinates: the frame pixel that shows what
the reference shows at ``(x, y)`` is at ``T @ (x, y, 1)`` (after the homogeneous divide). This is
the ``warpMatrix`` convention of OpenCV's ``findTransformECC`` (use with ``WARP_INVERSE_MAP``).

Methods (``ALIGNERS``):

``orb``   ORB keypoints, ratio-tested matches and a RANSAC fit of the motion model, on a
          pyramid level of at most ``orb_pixels``.
``ecc``   Evangelidis & Psarakis' enhanced correlation coefficient (``cv2.findTransformECC``),
          coarse-to-fine over a 2x pyramid, started from a phase-correlation translation on the
          coarsest level, refined down to the finest level of at most ``max_align_pixels``.
``auto``  ORB for the estimate, ECC from the ORB level down for the refinement; when ECC fails
          the ORB estimate is kept, when ORB fails ECC runs on its own.

Each result carries a score: the correlation coefficient between the reference and the aligned
frame over their overlap on the finest level used. Frames below ``min_score`` are rejected.

Reference: G. D. Evangelidis, E. Z. Psarakis, "Parametric Image Alignment using Enhanced
Correlation Coefficient Maximization", IEEE TPAMI 30(10), 2008.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from burstsr.burst.orb import Features, fit_rigid_matrix, orb_estimate, orb_features
from burstsr.burst.pyramid import (
    build_pyramid,
    finest_level,
    full_to_level,
    level_to_full,
    to_gray,
)
from burstsr.burst.refine import Template, prepare_template, refine_transform

MOTIONS = {
    "translation": cv2.MOTION_TRANSLATION,
    "euclidean": cv2.MOTION_EUCLIDEAN,
    "affine": cv2.MOTION_AFFINE,
    "homography": cv2.MOTION_HOMOGRAPHY,
}
ALIGN_METHODS = ("auto", "orb", "ecc")


@dataclass(frozen=True)
class AlignOptions:
    """Tuning of :func:`estimate_transform`; the defaults suit handheld bursts."""

    method: str = "auto"
    motion: str = "homography"
    # ECC runs on pyramid levels of at most this many pixels; larger frames then get the sparse
    # full-resolution refinement (burst/refine.py), which is cheaper than ECC on more pixels.
    max_align_pixels: int = 65_000
    orb_pixels: int = 250_000  # ORB runs on the finest level with at most this many pixels
    min_score: float = 0.5  # frames whose aligned correlation is lower are rejected
    ecc_iterations: int = 50
    ecc_eps: float = 1e-6
    ecc_blur: int = 1  # Gaussian kernel size ECC applies to both images (1: none)
    refine: bool = True  # sparse full-resolution refinement when ECC ran on a coarser level


@dataclass(frozen=True)
class Alignment:
    """What :func:`estimate_transform` found for one frame.

    Attributes:
        transform: 3x3 float64, reference pixel coordinates -> frame pixel coordinates.
        ok: whether the frame is aligned well enough to be merged.
        score: correlation coefficient of reference and aligned frame on their overlap.
        method: what produced ``transform`` ("orb", "ecc", "orb+ecc").
        inlier_ratio: RANSAC inliers / ratio-tested matches, when ORB ran.
        overlap: fraction of the reference covered by the aligned frame.
        message: why the frame was rejected ("" when ok).
    """

    transform: np.ndarray
    ok: bool
    score: float
    method: str
    inlier_ratio: float | None = None
    overlap: float = 0.0
    message: str = ""


@dataclass(frozen=True)
class Reference:
    """What alignment needs of the reference frame, computed once per burst: its pyramid, its
    ORB features on level ``orb_level`` (when ORB runs) and the sparse full-resolution template
    of :mod:`burstsr.burst.refine` (when it is used)."""

    pyramid: list[np.ndarray]
    template: Template | None = None
    features: Features | None = None
    orb_level: int = 0


def prepare_reference(image: np.ndarray, *, options: AlignOptions = AlignOptions()) -> Reference:
    """Precompute the reference's pyramid (and template) from its gray or RGB image."""
    pyramid = build_pyramid(to_gray(image))
    template = None
    if options.refine and options.method != "orb" and pyramid[0].size > options.max_align_pixels:
        template = prepare_template(pyramid[0], options.motion)
    features, orb_level = None, 0
    if options.method in ("orb", "auto"):
        orb_level = _orb_level(pyramid, options)
        features = orb_features(pyramid[orb_level])
    return Reference(pyramid, template, features, orb_level)


def _orb_level(pyramid: list[np.ndarray], options: AlignOptions) -> int:
    return finest_level(pyramid, options.orb_pixels)


# --------------------------------------------------------------------------------------------
# The public entry point


def estimate_transform(
    reference: np.ndarray | Reference,
    frame: np.ndarray | list[np.ndarray],
    *,
    options: AlignOptions = AlignOptions(),
) -> Alignment:
    """Estimate the transform from ``reference`` to ``frame`` pixel coordinates.

    Args:
        reference: gray ``float32 (H, W)`` image in [0, 1] (RGB is converted with
            :func:`to_gray`), or a :class:`Reference` from :func:`prepare_reference`, to reuse
            across the frames of a burst.
        frame: the frame to align (gray or RGB, same size), or its :func:`build_pyramid`.
        options: method (auto|orb|ecc), motion model and tuning, see :class:`AlignOptions`.

    Returns:
        An :class:`Alignment`; ``ok`` is False (with a ``message``) when the frame could not be
        aligned. Nothing is raised for frames that merely fail to align.
    """
    if options.method not in ALIGN_METHODS:
        raise ValueError(f"method must be one of {ALIGN_METHODS}, got {options.method!r}")
    if options.motion not in MOTIONS:
        raise ValueError(f"motion must be one of {tuple(MOTIONS)}, got {options.motion!r}")
    if not isinstance(reference, Reference):
        reference = prepare_reference(reference, options=options)
    ref_pyr = reference.pyramid
    frm_pyr = frame if isinstance(frame, list) else build_pyramid(to_gray(frame))
    if ref_pyr[0].shape != frm_pyr[0].shape:
        raise ValueError(f"shapes differ: {ref_pyr[0].shape} vs {frm_pyr[0].shape}")

    finest = finest_level(ref_pyr, options.max_align_pixels)
    method, inlier_ratio, orb_transform, orb_level = "ecc", None, None, 0
    failures = []

    if options.method in ("orb", "auto"):
        orb_level = _orb_level(ref_pyr, options)
        ref_orb = reference.features if reference.orb_level == orb_level else None
        found = orb_estimate(
            ref_orb if ref_orb is not None else ref_pyr[orb_level],
            frm_pyr[orb_level],
            options.motion,
        )
        if not isinstance(found, str) and _implausible(found[0], ref_pyr[orb_level].shape):
            found = "matches agree only on an implausible motion (repetitive texture?)"
        if isinstance(found, str):
            failures.append(f"ORB: {found}")
        else:
            orb_transform = level_to_full(found[0], orb_level)
            inlier_ratio = found[1]
            method = "orb"

    transform = orb_transform
    if options.method in ("ecc", "auto"):
        refine = reference.template is not None and finest > 0
        coarsest = len(ref_pyr) - 1
        phase = level_to_full(_phase_shift(ref_pyr[coarsest], frm_pyr[coarsest]), coarsest)
        # Start from ORB's estimate when there is one, else (or if that fails) from phase
        # correlation on the coarsest level.
        starts = [(orb_level, orb_transform, False)] if orb_transform is not None else []
        starts.append((coarsest, phase, True))
        for level, start, from_translation in starts:
            refined = _ecc_coarse_to_fine(
                ref_pyr,
                frm_pyr,
                (level, start),
                finest,
                options,
                from_translation=from_translation,
                refined_later=refine,
            )
            if not isinstance(refined, str):
                break
            failures.append(f"ECC: {refined}")
        if not isinstance(refined, str):
            transform = refined
            method = "orb+ecc" if not from_translation else "ecc"
            if refine:
                transform = refine_transform(reference.template, frm_pyr[0], transform)
                method += "+refine"
            failures = []

    if transform is None:
        return Alignment(
            np.eye(3),
            False,
            0.0,
            options.method,
            inlier_ratio,
            0.0,
            "; ".join(failures) or "no estimate",
        )
    transform = transform / transform[2, 2]
    implausible = _implausible(transform, ref_pyr[0].shape)
    score, overlap = alignment_score(
        ref_pyr[finest], frm_pyr[finest], full_to_level(transform, finest)
    )
    message = ""
    if implausible:
        message = implausible
    elif overlap < 0.5:
        message = f"the aligned frame covers only {overlap:.0%} of the reference"
    elif score < options.min_score:
        message = f"alignment score {score:.2f} is below --min-score {options.min_score:g}"
    if message and failures:
        message += " (" + "; ".join(failures) + ")"
    return Alignment(transform, not message, score, method, inlier_ratio, overlap, message)


# --------------------------------------------------------------------------------------------
# ECC, coarse to fine


def _phase_shift(ref: np.ndarray, frm: np.ndarray) -> np.ndarray:
    """Translation (reference -> frame) from phase correlation, as a 3x3 matrix."""
    window = cv2.createHanningWindow(ref.shape[::-1], cv2.CV_32F)
    # Copies: OpenCV 5's phaseCorrelate applies the window to its inputs in place.
    (dx, dy), _ = cv2.phaseCorrelate(ref.copy(), frm.copy(), window)
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], dtype=np.float64)


def _ecc_coarse_to_fine(
    ref_pyr: list[np.ndarray],
    frm_pyr: list[np.ndarray],
    start: tuple[int, np.ndarray],
    finest: int,
    options: AlignOptions,
    *,
    from_translation: bool = False,
    refined_later: bool = False,
) -> np.ndarray | str:
    """Refine ``start`` (level, level-0 transform) with ECC on each level down to ``finest``.

    Small levels cannot constrain an affine or projective model (ECC then "zooms" into a smooth
    patch), so levels under ``_FULL_MODEL_PIXELS`` fit at most a rotation + translation. A start
    that is only a translation guess is first refined as a translation. A coarse level whose
    result is implausible is ignored; the finest level's failure is the method's failure. On the
    finest level an affine or projective fit starts from, and must score better than, a rotation +
    translation fit (ECC can settle on a worse optimum with more freedom, e.g. on flat images),
    unless it starts from a feature estimate and the full-resolution refinement follows.
    Only the finest level runs to ``options``' precision, unless a refinement follows.
    """
    start_level, transform = start
    exact = (
        cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS,
        options.ecc_iterations,
        options.ecc_eps,
    )
    rough = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-4)
    # The finest level, when the sparse full-resolution refinement follows: a few iterations
    # bring the estimate well inside the refinement's reach (it ends within 0.005 px).
    handoff = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 8, 1e-4)
    requested = list(MOTIONS).index(options.motion)
    first = max(start_level, finest)
    for level in range(first, finest - 1, -1):
        last = level == finest
        small = ref_pyr[level].size < _FULL_MODEL_PIXELS and not last
        motions = [min(requested, 1) if small else requested]
        if from_translation and level == first and requested > 0:
            motions.insert(0, 0)
        if last and requested > 1 and 1 not in motions and (from_translation or not refined_later):
            motions.insert(-1, 1)  # the full model must beat a rotation + translation
        best, problem = None, ""
        for motion_index in motions:
            found = _ecc_level(
                ref_pyr[level],
                frm_pyr[level],
                full_to_level(transform, level),
                list(MOTIONS.values())[motion_index],
                (handoff if refined_later else exact) if last else rough,
                options.ecc_blur,
            )
            problem = found if isinstance(found, str) else _implausible(found, ref_pyr[level].shape)
            if problem:
                continue  # keep the previous estimate
            transform = level_to_full(found, level)
            if last and len(motions) > 1:
                score = alignment_score(ref_pyr[level], frm_pyr[level], found)[0]
                if best is None or score > best[0]:
                    best = (score, transform)
            elif last:
                best = (1.0, transform)
        if last:
            return problem if best is None else best[1]
    return transform


_FULL_MODEL_PIXELS = 40_000


def _ecc_level(
    ref: np.ndarray, frm: np.ndarray, warp: np.ndarray, motion: int, criteria: tuple, blur: int
) -> np.ndarray | str:
    """One ``cv2.findTransformECC`` run; the 3x3 result or why it failed."""
    warp = warp / warp[2, 2]
    init = (warp if motion == cv2.MOTION_HOMOGRAPHY else warp[:2]).astype(np.float32)
    if motion == cv2.MOTION_EUCLIDEAN:  # project the start onto a rotation + translation
        init[:, :2] = fit_rigid_matrix(init[:, :2].astype(np.float64))
    elif motion == cv2.MOTION_TRANSLATION:
        init[:, :2] = np.eye(2)
    try:
        _, found = cv2.findTransformECC(ref, frm, init, motion, criteria, None, blur)
    except cv2.error:
        return f"did not converge on the {ref.shape[1]}x{ref.shape[0]} level"
    found = found.astype(np.float64)
    if found.shape[0] == 2:
        found = np.vstack([found, [0, 0, 1]])
    return found if np.all(np.isfinite(found)) else "diverged"


# --------------------------------------------------------------------------------------------
# Checks


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


def _implausible(transform: np.ndarray, shape: tuple[int, int]) -> str:
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
