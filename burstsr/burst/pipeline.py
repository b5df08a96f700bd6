"""``merge_burst``: frames on disk -> load -> align -> warp -> merge -> one image.

Frames are decoded and aligned one at a time, the next one in a background thread while the
current one is warped and merged, so with the streaming merges the memory holds the reference,
two frames and the accumulator, whatever the burst's length. Warping and merging run on the CPU
with OpenCV (:mod:`burstsr.burst.merge_cpu`, no torch) for the ``mean`` and ``robust`` merges on
the frames' grid, and with torch (:mod:`burstsr.burst.merge_torch`) on CUDA, for the other
merges and for finer grids.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from burstsr.burst.align import (
    Alignment,
    build_pyramid,
    estimate_transform,
    prepare_reference,
    to_gray,
)
from burstsr.burst.camera import linear_to_srgb
from burstsr.burst.config import MergeConfig
from burstsr.burst.merge_cpu import CPU_MERGES, CpuStack
from burstsr.burst.reference import pick_reference
from burstsr.burst.result import FrameReport, MergeResult
from burstsr.device import device_name
from burstsr.errors import AlignmentError, InputError, OutputError
from burstsr.io import Burst, Image, load_burst, make_folder, write_image

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (frames done, frames in all, name of the last one)

__all__ = ["MergeConfig", "Progress", "merge_burst"]

_AHEAD = 2  # frames decoded and aligned ahead of the merge, each in its own thread
_MIN_SIDE = 8  # smaller frames cannot be aligned


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
        device: where warping and merging run: ``"cpu"``, ``"cuda[:N]"``, ``"auto"`` or a
            ``torch.device`` (alignment runs on the CPU with OpenCV).
        progress: called after each frame with (done, total, frame name).
        save_aligned: a folder to write every aligned frame into (created if missing).

    Raises:
        InputError: a bad option, unreadable frames (unless ``config.skip_bad``), frames of
            different sizes, a bad ``reference``, fewer than two usable frames.
        AlignmentError: no frame besides the reference could be aligned.
    """
    config.check()
    device = device_name(str(device))
    burst = source if isinstance(source, Burst) else load_burst(source)
    start = time.perf_counter()
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
            reports[index].seconds["load"] = time.perf_counter() - t0
        return image

    ref_index, ref = pick_reference(burst, config.reference, read)
    ref_path, ref_shape, ref_linear = burst.paths[ref_index], ref.shape, ref.linear
    if min(ref_shape) < _MIN_SIDE:
        raise InputError(
            f"{ref_path}: {ref_shape[1]}x{ref_shape[0]} frames are too small to align "
            f"(at least {_MIN_SIDE}x{_MIN_SIDE})"
        )
    # The output is gray only if every merged frame is, and deep if any merged frame is.
    output = {"gray": ref.gray, "depth": 16 if ref.bit_depth > 8 or ref.linear else 8}
    ref_report = reports[ref_index]
    ref_report.used, ref_report.reference = True, True
    ref_report.transform, ref_report.score = np.eye(3).tolist(), 1.0
    options = config.align_options()
    t0 = time.perf_counter()
    reference = prepare_reference(to_gray(ref.pixels, linear=ref_linear), options=options)
    ref_report.seconds["align"] = time.perf_counter() - t0
    aligned_dir = Path(save_aligned) if save_aligned is not None else None
    save_format = {"linear": ref_linear, "gray": output["gray"], "bit_depth": output["depth"]}
    if aligned_dir is not None:
        _check_aligned_dir(aligned_dir, burst)
        make_folder(aligned_dir, what="--save-aligned folder")
        _save_aligned(aligned_dir / _aligned_name(ref_index, ref_path), ref.pixels, **save_format)
    others = [i for i in range(len(burst)) if i != ref_index]
    readable = 1

    def prepare(index: int) -> tuple[Image | None, Alignment | None]:
        """Decode and align one frame (in a background thread: it touches only its report)."""
        image = read(index)
        if image is None:
            return None, None
        path = burst.paths[index]
        _check_compatible(image, ref_shape, ref_linear, path, ref_path)
        t0 = time.perf_counter()
        pyramid = build_pyramid(to_gray(image.pixels, linear=image.linear))
        found = estimate_transform(reference, pyramid, options=options)
        reports[index].seconds["align"] = time.perf_counter() - t0
        return image, found

    def record(index: int, image: Image, found: Alignment) -> None:
        """Note what alignment found for a frame (in the caller's thread)."""
        path, report = burst.paths[index], reports[index]
        report.score, report.method = round(found.score, 5), found.method
        report.inlier_ratio, report.overlap = found.inlier_ratio, round(found.overlap, 4)
        report.transform = found.transform.tolist()
        report.used, report.message = found.ok, found.message
        if found.ok:
            output["gray"] = output["gray"] and image.gray
            output["depth"] = max(output["depth"], 16 if image.bit_depth > 8 else 8)
        log.debug("%s: %s, score %.4f, %s", path.name, found.method, found.score, report.seconds)
        if not found.ok:
            log.warning("%s: left out, not aligned: %s", path.name, found.message)

    def aligned_frames() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(index, pixels, transform) of every aligned frame but the reference, in order. Two
        threads decode and align the next frames while the caller warps and merges this one."""
        nonlocal readable
        if progress is not None:
            progress(1, len(burst), ref_path.name)
        with ThreadPoolExecutor(max_workers=_AHEAD) as pool:
            upcoming = deque(pool.submit(prepare, i) for i in others[:_AHEAD])
            for done, index in enumerate(others, start=2):
                image, found = upcoming.popleft().result()
                if done - 2 + _AHEAD < len(others):
                    upcoming.append(pool.submit(prepare, others[done - 2 + _AHEAD]))
                if image is not None:
                    readable += 1
                    record(index, image, found)
                if found is not None and found.ok:
                    t0 = time.perf_counter()
                    yield index, image.pixels, found.transform
                    reports[index].seconds["warp_merge"] = time.perf_counter() - t0
                del image
                if progress is not None:
                    progress(done, len(burst), burst.paths[index].name)

    def on_warped(index: int, warped: np.ndarray, mask: np.ndarray) -> None:
        if aligned_dir is not None:
            name = _aligned_name(index, burst.paths[index])
            _save_aligned(aligned_dir / name, warped * mask[:, :, None], **save_format)

    pixels, ref = ref.pixels, None  # from here on the reference's pixels live only in the merge
    confidence = None
    if device == "cpu" and config.scale == 1 and config.merge in CPU_MERGES:
        stack = CpuStack(pixels, method=config.merge, interpolation=config.interpolation)
        del pixels
        for index, frame, transform in aligned_frames():
            save = None if aligned_dir is None else (lambda w, m, i=index: on_warped(i, w, m))
            stack.add(frame, transform, on_warped=save)
        image = stack.result()
        del stack
    else:
        from burstsr.burst.merge_torch import merge_torch

        image, confidence = merge_torch(
            pixels,
            aligned_frames(),
            config=config,
            device=device,
            on_warped=on_warped if aligned_dir is not None else None,
        )
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
    if ref_linear:
        image = linear_to_srgb(image)
    # Stage times summed over frames (decoding and aligning overlap the merge: they can add up
    # to more than the total).
    seconds = {
        stage: sum(r.seconds.get(stage, 0.0) for r in reports)
        for stage in ("load", "align", "warp_merge")
    }
    seconds["total"] = time.perf_counter() - start
    seconds = {k: round(v, 4) for k, v in seconds.items()}
    for r in reports:
        r.seconds = {k: round(v, 4) for k, v in r.seconds.items()}
    return MergeResult(
        image=np.ascontiguousarray(image, dtype=np.float32),
        bit_depth=output["depth"],
        gray=output["gray"],
        reference=str(ref_path),
        frames=reports,
        seconds=seconds,
        confidence=confidence,
        grid=config.scale,
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
    target: Path, pixels: np.ndarray, *, linear: bool, gray: bool, bit_depth: int
) -> None:
    """Write one aligned frame (pixels outside the frame black), display-encoded, as PNG."""
    if linear:
        pixels = linear_to_srgb(pixels)
    write_image(target, pixels[:, :, 0] if gray else pixels, bit_depth=bit_depth)
