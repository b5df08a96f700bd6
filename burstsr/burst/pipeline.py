"""``merge_burst``: frames on disk -> load -> align -> warp -> merge -> one image.

Frames are decoded one at a time and handed to the merger as they are warped, so with the mean
merge the memory holds the reference, one frame and the accumulator, whatever the burst's length.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from burstsr.burst.align import (
    AlignOptions,
    build_pyramid,
    estimate_transform,
    prepare_reference,
    to_gray,
)
from burstsr.burst.camera import linear_to_srgb
from burstsr.burst.merge import MERGERS, local_luma, merge_frames, robust_weights
from burstsr.burst.reference import pick_reference
from burstsr.burst.result import FrameReport, MergeResult
from burstsr.burst.superres import ACCUMULATORS, KERNELS
from burstsr.burst.warp import INTERPOLATIONS, warp_frame
from burstsr.errors import AlignmentError, InputError, OutputError
from burstsr.io import Burst, Image, load_burst, write_image

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (frames done, frames in all, name of the last one)


@dataclass(frozen=True)
class MergeConfig:
    """Options of ``burstsr merge``; the CLI takes its defaults from here."""

    align: str = "auto"  # auto | orb | ecc
    motion: str = "homography"  # translation | euclidean | affine | homography
    reference: str = "first"  # first | sharpest | a 0-based frame index
    merge: str = "robust"  # a key of MERGERS
    interpolation: str = "bicubic"  # bicubic | bilinear
    min_score: float = 0.5
    max_align_pixels: int = 250_000
    skip_bad: bool = False
    scale: int = 1  # > 1: merge onto a scale-times finer grid (burst.superres)
    kernel: str = "adaptive"  # the finer grid's kernels: adaptive | gaussian (burst.superres)

    def align_options(self) -> AlignOptions:
        return AlignOptions(
            method=self.align,
            motion=self.motion,
            min_score=self.min_score,
            max_align_pixels=self.max_align_pixels,
        )


def merge_burst(
    source: str | os.PathLike | Sequence[str | os.PathLike] | Burst,
    *,
    config: MergeConfig = MergeConfig(),
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    save_aligned: str | os.PathLike | None = None,
) -> MergeResult:
    """Align every frame of a burst to its reference and merge them.

    Args:
        source: a folder of frames, a list of frame files, or a :class:`Burst`.
        config: alignment, reference and merge options.
        device: torch device for warping and merging (alignment runs on the CPU with OpenCV).
        progress: called after each frame with (done, total, frame name).
        save_aligned: a folder to write every aligned frame into (created if missing).

    Raises:
        InputError: unreadable frames (unless ``config.skip_bad``), frames of different sizes,
            a bad ``reference``, fewer than two usable frames.
        AlignmentError: no frame besides the reference could be aligned.
    """
    if config.merge not in MERGERS:
        raise InputError(f"--merge {config.merge}: expected one of {', '.join(MERGERS)}")
    if config.scale not in (1, 2, 3, 4):
        raise InputError(f"--scale {config.scale}: expected 1, 2, 3 or 4")
    if config.kernel not in KERNELS:
        raise InputError(f"--kernel {config.kernel}: expected one of {', '.join(KERNELS)}")
    if config.interpolation not in INTERPOLATIONS:
        raise InputError(
            f"--interpolation {config.interpolation}: expected one of {', '.join(INTERPOLATIONS)}"
        )
    device = torch.device(device)
    burst = source if isinstance(source, Burst) else load_burst(source)
    start = time.perf_counter()
    seconds = {"load": 0.0, "align": 0.0, "warp_merge": 0.0}
    reports = [FrameReport(str(p), i, used=False) for i, p in enumerate(burst.paths)]

    def read(index: int) -> Image | None:
        t0 = time.perf_counter()
        try:
            image = burst.read(index)
        except InputError as exc:
            if not config.skip_bad:
                raise
            log.warning("%s; skipped (--skip-bad)", exc)
            reports[index].message = str(exc)
            return None
        finally:
            seconds["load"] += time.perf_counter() - t0
        reports[index].seconds["load"] = time.perf_counter() - t0
        return image

    ref_index, ref = pick_reference(burst, config.reference, read)
    ref_path, ref_shape, ref_linear = burst.paths[ref_index], ref.shape, ref.linear
    # The output is gray only if every merged frame is, and deep if any merged frame is.
    output = {"gray": ref.gray, "depth": 16 if ref.bit_depth > 8 or ref.linear else 8}
    ref_report = reports[ref_index]
    ref_report.used, ref_report.reference = True, True
    ref_report.transform, ref_report.score = np.eye(3).tolist(), 1.0
    options = config.align_options()
    t0 = time.perf_counter()
    reference = prepare_reference(to_gray(ref.pixels, linear=ref_linear), options=options)
    seconds["align"] += time.perf_counter() - t0
    aligned_dir = Path(save_aligned) if save_aligned is not None else None
    save_format = {"linear": ref_linear, "gray": output["gray"], "bit_depth": output["depth"]}
    if aligned_dir is not None:
        _check_aligned_dir(aligned_dir, burst)
        aligned_dir.mkdir(parents=True, exist_ok=True)
        _save_aligned(
            aligned_dir / _aligned_name(ref_index, ref_path), ref.pixels, None, **save_format
        )
    others = [i for i in range(len(burst)) if i != ref_index]
    readable = 1
    splat = None  # the finer grid's accumulator (scale > 1), built from the reference
    ref_local = None  # the reference's local luma, for robustness weights on the finer grid

    def align(index: int, image: Image) -> np.ndarray | None:
        """Estimate the frame's transform and record it; None if it is left out."""
        path, report = burst.paths[index], reports[index]
        _check_compatible(image, ref_shape, ref_linear, path, ref_path)
        t0 = time.perf_counter()
        pyramid = build_pyramid(to_gray(image.pixels, linear=image.linear))
        found = estimate_transform(reference, pyramid, options=options)
        report.seconds["align"] = time.perf_counter() - t0
        seconds["align"] += report.seconds["align"]
        report.score, report.method = round(found.score, 5), found.method
        report.inlier_ratio, report.overlap = found.inlier_ratio, round(found.overlap, 4)
        report.transform = found.transform.tolist()
        report.used, report.message = found.ok, found.message
        if found.ok:
            output["gray"] = output["gray"] and image.gray
            output["depth"] = max(output["depth"], 16 if image.bit_depth > 8 else 8)
        log.debug(
            "%s: %s, score %.4f, %.2f s",
            path.name,
            found.method,
            found.score,
            report.seconds["align"],
        )
        if not found.ok:
            log.warning("%s: left out, not aligned: %s", path.name, found.message)
            return None
        return found.transform

    def warped_frames() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        nonlocal ref, readable, ref_local, splat
        frame = torch.from_numpy(ref.pixels).permute(2, 0, 1).to(device)
        ref = None  # from here on the reference's pixels live only in the merge
        if config.scale > 1:
            splat = ACCUMULATORS[config.kernel](frame, config.scale)
            splat.add(frame, np.eye(3))
            ref_local = local_luma(frame) if config.merge == "robust" else None
        yield frame, torch.ones(ref_shape, dtype=torch.bool, device=device)
        del frame
        if progress is not None:
            progress(1, len(burst), ref_path.name)
        # Decode the next frame in the background while this one is aligned and warped.
        with ThreadPoolExecutor(max_workers=1) as pool:
            upcoming = pool.submit(read, others[0]) if others else None
            for done, index in enumerate(others, start=2):
                image = upcoming.result()
                nxt = done - 1
                upcoming = pool.submit(read, others[nxt]) if nxt < len(others) else None
                transform = None
                if image is not None:
                    readable += 1
                    transform = align(index, image)
                if transform is not None:
                    t0 = time.perf_counter()
                    frame = torch.from_numpy(image.pixels).permute(2, 0, 1).to(device)
                    warped, mask = warp_frame(frame, transform, interpolation=config.interpolation)
                    if splat is not None:
                        confidence = None
                        if ref_local is not None:
                            confidence = robust_weights(ref_local, warped, mask)
                        splat.add(frame, transform, confidence)
                    del frame, image
                    if aligned_dir is not None:
                        name = _aligned_name(index, burst.paths[index])
                        _save_aligned(aligned_dir / name, warped, mask, **save_format)
                    yield warped, mask
                    del warped, mask
                    reports[index].seconds["warp_merge"] = time.perf_counter() - t0
                    seconds["warp_merge"] += reports[index].seconds["warp_merge"]
                if progress is not None:
                    progress(done, len(burst), burst.paths[index].name)

    merged = merge_frames(warped_frames(), method=config.merge)
    used = sum(r.used for r in reports)
    if readable < 2:
        raise InputError(
            f"{ref_path.parent}: fewer than 2 usable frames "
            f"(only {readable} of {len(burst)} could be read)"
        )
    if used < 2:
        raise AlignmentError(
            f"none of the other {readable - 1} frames could be aligned to "
            f"{ref_path.name}; try another --align (ecc, orb), a simpler --motion, "
            f"or a lower --min-score"
        )
    fine, confidence = merged.image, None
    if splat is not None:
        fine, weight = splat.result(merged.image)
        splat = None  # free the accumulators before the image is copied out
        if weight is not None:
            confidence = np.ascontiguousarray(weight.float().cpu().numpy())
    image = fine.permute(1, 2, 0).float().cpu().numpy()
    if ref_linear:
        image = linear_to_srgb(image)
    seconds["total"] = time.perf_counter() - start
    seconds = {k: round(v, 4) for k, v in seconds.items()}
    for r in reports:
        r.seconds = {k: round(v, 4) for k, v in r.seconds.items()}
    return MergeResult(
        image=np.ascontiguousarray(image),
        bit_depth=output["depth"],
        gray=output["gray"],
        reference=str(ref_path),
        frames=reports,
        seconds=seconds,
        confidence=confidence,
    )


def _check_compatible(
    image: Image, shape: tuple[int, int], linear: bool, path: Path, ref_path: Path
) -> None:
    if image.shape != shape:
        raise InputError(
            f"{path}: size {image.shape[1]}x{image.shape[0]} differs from the reference "
            f"{ref_path.name} ({shape[1]}x{shape[0]}); every frame must have one size"
        )
    if image.linear != linear:
        raise InputError(f"{path}: RAW and non-RAW frames cannot be merged together")


def _aligned_name(index: int, path: Path) -> str:
    return f"{index:03d}_{path.stem}.png"


def _check_aligned_dir(folder: Path, burst: Burst) -> None:
    """The aligned frames may not overwrite an input."""
    inputs = {p.resolve() for p in burst.paths}
    for index, path in enumerate(burst.paths):
        if (folder / _aligned_name(index, path)).resolve() in inputs:
            raise OutputError(
                f"--save-aligned {folder}: would overwrite the input {path.name}; "
                f"choose another folder"
            )


def _save_aligned(
    target: Path,
    pixels: torch.Tensor | np.ndarray,
    mask: torch.Tensor | None,
    *,
    linear: bool,
    gray: bool,
    bit_depth: int,
) -> None:
    """Write one aligned frame (pixels outside the frame black), display-encoded, as PNG."""
    if isinstance(pixels, torch.Tensor):
        pixels = (pixels * mask).permute(1, 2, 0).float().cpu().numpy()
    if linear:
        pixels = linear_to_srgb(pixels)
    write_image(target, pixels[:, :, 0] if gray else pixels, bit_depth=bit_depth)
