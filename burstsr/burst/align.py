"""Estimating the transform that maps the reference frame onto another frame.

Every aligner returns a 3x3 float64 homography ``T`` that maps *reference* pixel coordinates to
*frame* pixel coordinates, pixel centres at integer coordinates: the frame pixel that shows what
the reference shows at ``(x, y)`` is at ``T @ (x, y, 1)`` (after the homogeneous divide). This is
the ``warpMatrix`` convention of OpenCV's ``findTransformECC`` (use with ``WARP_INVERSE_MAP``).

Methods (``ALIGN_METHODS``; ORB in burst/orb.py, ECC in burst/ecc.py, the full-resolution
refinement in burst/refine.py, the checks in burst/checks.py):

``orb``   ORB keypoints, ratio-tested matches and a RANSAC fit of the motion model, on a
          pyramid level of at most ``orb_pixels``.
``ecc``   Evangelidis & Psarakis' enhanced correlation coefficient (``cv2.findTransformECC``),
          coarse-to-fine over a 2x pyramid, started from a phase-correlation translation on the
          coarsest level, refined down to the finest level of at most ``max_align_pixels``.
``auto``  ORB for the estimate (an affine fit when the motion is a homography), ECC from the
          ORB level down for the refinement; when ECC fails the ORB estimate is kept, when ORB
          fails ECC runs on its own.

Each result carries a score: the correlation coefficient between the reference and the aligned
frame over their overlap on the finest level used. Frames below ``min_score`` are rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from burstsr.burst.checks import alignment_score, implausible
from burstsr.burst.ecc import MOTIONS, ecc_coarse_to_fine, phase_shift
from burstsr.burst.orb import Features, orb_estimate, orb_features
from burstsr.burst.pyramid import (
    build_pyramid,
    finest_level,
    full_to_level,
    level_to_full,
    to_gray,
)
from burstsr.burst.refine import Template, prepare_template, refine_transform

__all__ = [
    "ALIGN_METHODS",
    "MOTIONS",
    "AlignOptions",
    "Alignment",
    "Reference",
    "build_pyramid",
    "estimate_transform",
    "full_to_level",
    "level_to_full",
    "prepare_reference",
    "to_gray",
]

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
        # As ECC's start (auto), an affine fit: a homography fitted to the few, clustered
        # matches of a small image can throw its corners pixels off, and ECC then settles far
        # from the motion; ECC fits the full homography from the affine start.
        orb_motion = options.motion
        if options.method == "auto" and options.motion == "homography":
            orb_motion = "affine"
        found = orb_estimate(
            ref_orb if ref_orb is not None else ref_pyr[orb_level], frm_pyr[orb_level], orb_motion
        )
        if not isinstance(found, str) and implausible(found[0], ref_pyr[orb_level].shape):
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
        phase = level_to_full(phase_shift(ref_pyr[coarsest], frm_pyr[coarsest]), coarsest)
        # Start from ORB's estimate when there is one, else (or if that fails) from phase
        # correlation on the coarsest level.
        starts = [(orb_level, orb_transform, False)] if orb_transform is not None else []
        starts.append((coarsest, phase, True))
        for level, start, from_translation in starts:
            refined = ecc_coarse_to_fine(
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
    doubt = implausible(transform, ref_pyr[0].shape)
    score, overlap = alignment_score(
        ref_pyr[finest], frm_pyr[finest], full_to_level(transform, finest)
    )
    message = ""
    if doubt:
        message = doubt
    elif overlap < 0.5:
        message = f"the aligned frame covers only {overlap:.0%} of the reference"
    elif score < options.min_score:
        message = f"alignment score {score:.2f} is below --min-score {options.min_score:g}"
    if message and failures:
        message += " (" + "; ".join(failures) + ")"
    return Alignment(transform, not message, score, method, inlier_ratio, overlap, message)
