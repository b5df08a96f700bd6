"""ECC (Evangelidis & Psarakis' enhanced correlation coefficient, ``cv2.findTransformECC``),
coarse to fine over a 2x pyramid, and the phase-correlation shift it can start from.

Reference: G. D. Evangelidis, E. Z. Psarakis, "Parametric Image Alignment using Enhanced
Correlation Coefficient Maximization", IEEE TPAMI 30(10), 2008.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from burstsr.burst.checks import alignment_score, implausible
from burstsr.burst.orb import fit_rigid_matrix
from burstsr.burst.pyramid import full_to_level, level_to_full

if TYPE_CHECKING:
    from burstsr.burst.align import AlignOptions

MOTIONS = {
    "translation": cv2.MOTION_TRANSLATION,
    "euclidean": cv2.MOTION_EUCLIDEAN,
    "affine": cv2.MOTION_AFFINE,
    "homography": cv2.MOTION_HOMOGRAPHY,
}


def phase_shift(ref: np.ndarray, frm: np.ndarray) -> np.ndarray:
    """Translation (reference -> frame) from phase correlation, as a 3x3 matrix."""
    window = cv2.createHanningWindow(ref.shape[::-1], cv2.CV_32F)
    # Copies: OpenCV 5's phaseCorrelate applies the window to its inputs in place.
    (dx, dy), _ = cv2.phaseCorrelate(ref.copy(), frm.copy(), window)
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], dtype=np.float64)


def ecc_coarse_to_fine(
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
            problem = found if isinstance(found, str) else implausible(found, ref_pyr[level].shape)
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
